import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { VfsError } from '../errors.js';
import { makeFoldersSync } from '../make-folders.js';

/**
 * Readers and writers of local files claimed across processes, for servers that run several processes on one
 * folder (`ftpd --workers`): the in-process registry (`local-writers.ts`) cannot see a download in one process
 * while another rewrites the file in place, and Node takes no fcntl locks. So each claim is also an entry in a
 * folder the processes share (best on tmpfs), named after the file's `dev-ino`, each a symbolic link made in one
 * system call, so that none is ever seen half-made:
 *
 * - a writer makes `<dev-ino>.w` (pointing at `<pid>.<n>`) exclusively, then looks for readers of the file
 *   (`<dev-ino>.r.<pid>.<n>`) of other processes and backs off if it finds one;
 * - a reader makes `<dev-ino>.r.<pid>.<n>`, then backs off if another process holds `<dev-ino>.w`.
 *
 * Each side makes its own entry before it looks for the other's, so of a reader and a writer racing, at least one
 * sees the other (both may back off: EBUSY, the server's 450, which clients retry), never both go on; two writers
 * cannot both make `.w`. Entries are removed only by the process that made them, and those of a process that died by
 * {@link releaseClaimsOf} (ftpd's supervisor calls it when a worker exits): removing another's entry here could race
 * with its replacement. A download costs four system calls (make, read the epoch marker, look, remove); an upload
 * lists the folder, which holds an entry per transfer running in any process. A writer's idle takeover (see
 * `local-writers.ts`) stays within its own process. A failure of the folder itself is EIO (the server's 451, and a
 * logged fault), never a refusal that blames the client's file. A folder removed under running transfers: see
 * {@link EPOCH}.
 */
const state = ((globalThis as Record<symbol, unknown>)[Symbol.for('@ftp/vfs.sharedFileClaims.v2')] ??= {
  root: null,
  sequence: 0,
  epoch: null,
  live: new Map(),
  pending: new Set(),
  watch: null,
  warn: null,
}) as {
  root: string | null;
  sequence: number;
  /** The folder's epoch marker as this process last read it; null before its first claim. */
  epoch: string | null;
  /** This process's claims not yet released, by entry: made again in a folder made anew. */
  live: Map<string, SharedClaim>;
  /** Live claims not made again yet: their entry was taken (another process's short-lived one); tried at each look. */
  pending: Set<SharedClaim>;
  /** Looks at the folder while this process holds claims. */
  watch: NodeJS.Timeout | null;
  /** Where warnings go (see {@link ShareFileClaimsOptions.warn}); null: `process.emitWarning`. */
  warn: ((message: string) => void) | null;
};

/**
 * The entry that tells one life of the folder from the next: a symbolic link to `e<random>-<made>`, `made` being the
 * system's monotonic clock in ms (the same for every process of the machine, and never set back) when a process made
 * it anew, or 0 for a folder made empty before any process claimed in it ({@link startFileClaimsFolder}).
 *
 * A folder removed under running transfers (a clean-up of /dev/shm, systemd's RemoveIPC) takes the claims with it,
 * and a download in one process then read a file an upload in another was rewriting (226 with a mixed file). So:
 * - every claim reads the marker after it has looked for the other side's entries (a folder removed before the look
 *   is then seen), and a writer also before it makes its entry (see {@link claimWrite});
 * - a process holding claims looks every {@link WATCH_MS}: a marker gone is made anew; a marker it has not seen has
 *   it make its claims again; its own entries gone while the marker stands (a clean-up removing entry by entry, the
 *   marker, the oldest, last) has it make a new marker ({@link bumpEpoch}) and its claims again;
 * - every process refuses new claims (EBUSY, the server's 450) while the marker is younger than
 *   {@link RENEWAL_GRACE_MS}: by then the others have made theirs again. The age is the marker's own, not the time a
 *   process noticed it, so a process that has not looked yet refuses too.
 * And where a claim was lost all the same: a download whose claim did not stand to its end ({@link claimIntact}) fails
 * there if its file changed meanwhile (`LocalProvider`); a process that made its claims again too late (held up past
 * the grace: stopped, a hung call) ends its uploads whose file another process reads or writes by then (`onLost`),
 * and makes a new marker, so that the downloads other processes began meanwhile count as lost and are checked.
 * What remains: a download that starts and ends inside the {@link WATCH_MS} after an entry-by-entry clean-up took a
 * writer's entry and before its process looks, reading a file the upload did not change meanwhile (a part of it).
 */
const EPOCH = 'epoch';

/** How often a process holding claims looks at the folder (ms). */
const WATCH_MS = 250;

/** How long after a folder is made anew every process refuses new claims (ms): many looks of every process. */
export const RENEWAL_GRACE_MS = 2000;

/** Options of {@link shareFileClaims}. */
export interface ShareFileClaimsOptions {
  /**
   * Where to say that the folder was made anew under running transfers, and how many claims this process made again
   * (a server's logger); default `process.emitWarning` (type `FtpVfsWarning`).
   */
  warn?: (message: string) => void;
}

/**
 * Makes every `LocalProvider` of this process claim the files it opens in `dir` too, a folder shared by all the
 * processes serving the same files (null: this process only, the default). It is made if missing (mode 0700); it
 * is never removed here (whoever made it removes it). Whoever makes it for the others calls
 * {@link startFileClaimsFolder} first; otherwise the first claims wait {@link RENEWAL_GRACE_MS}, as in a folder made
 * anew. Kept for every copy of this package loaded in the process.
 */
export function shareFileClaims(dir: string | null, options: ShareFileClaimsOptions = {}): void {
  state.root = dir;
  state.epoch = null;
  state.warn = options.warn ?? null;
}

/**
 * Marks `dir`, a folder just made for shared claims (empty, no process claiming in it yet), as one whose claims can
 * be trusted at once.
 * @throws when the marker cannot be made (the folder is missing, or already marked).
 */
export function startFileClaimsFolder(dir: string): void {
  fs.symlinkSync(`e${randomBytes(6).toString('hex')}-0`, `${dir}/${EPOCH}`);
}

/** Whether claims are shared with other processes. */
export function sharingFileClaims(): boolean {
  return state.root !== null;
}

/** A claim made in the shared folder: the entry to remove when the file is closed, and what it points at. */
export interface SharedClaim {
  readonly entry: string;
  readonly token: string;
  /** A writer's entry may be replaced (an idle takeover in its process): removed only while still its own. */
  readonly writer: boolean;
  /** The folder's epoch marker when it was made (see {@link claimIntact}). */
  epoch?: string;
  /**
   * Ends a writer whose claim was made again too late (its process held up past the grace) while another process
   * reads or writes the file by then; returns whether there was a transfer to end.
   */
  onLost?: (why: string) => boolean;
}

/**
 * Whether `claim` has stood since it was made: its entry is still its own and the folder's marker unchanged. False
 * after a clean-up of the folder (even once this process made the claim again): another process may have written
 * the file meanwhile, which a download then checks (`LocalProvider`: an error, not a complete transfer, when the file
 * changed). Two `readlink`s.
 */
export function claimIntact(claim: SharedClaim): boolean {
  return claim.epoch !== undefined && readlinkOrNull(`${state.root}/${EPOCH}`) === claim.epoch && readlinkOrNull(claim.entry) === claim.token;
}

/** An error of the claims folder itself: EIO, with the cause. */
function folderFailed(err: unknown): VfsError {
  return new VfsError('EIO', `file claims folder ${state.root}: ${(err as Error).message}`, { cause: err });
}

function warn(message: string): void {
  if (state.warn !== null) state.warn(message);
  else process.emitWarning(message, 'FtpVfsWarning');
}

/** The system's monotonic clock (ms): `CLOCK_MONOTONIC`, one for every process of the machine. */
const monotonicMs = (): number => Number(process.hrtime.bigint() / 1_000_000n);

const newMarker = (): string => `e${randomBytes(6).toString('hex')}-${monotonicMs()}`;

/** Whether the epoch marker `token` was made anew less than {@link RENEWAL_GRACE_MS} ago. */
function young(token: string): boolean {
  const age = monotonicMs() - Number(token.slice(token.lastIndexOf('-') + 1));
  // A marker from the future (a process in another time namespace) or not ours: trusted, not refused for ever.
  return age >= 0 && age < RENEWAL_GRACE_MS;
}

/**
 * Throws unless the folder, when it is there, is a folder of this user: one found made again (it is visible in
 * /dev/shm, so another local user could make it first after a clean-up) could otherwise have any claim removed or
 * forged by its owner. Who else may write it is left to its owner (an embedder's folder may be shared with a group).
 */
function checkOwner(): void {
  const st = fs.lstatSync(state.root as string, { throwIfNoEntry: false });
  const uid = process.getuid?.();
  if (st !== undefined && (!st.isDirectory() || (uid !== undefined && st.uid !== uid))) {
    throw folderFailed(new Error('not a folder of this user (made again by someone else?)'));
  }
}

/** Makes the folder when it is missing (checking it when someone else made it first: {@link checkOwner}). */
function makeFolder(): void {
  try {
    if (makeFoldersSync(state.root as string, 0o700) !== undefined) return;
  } catch (err) {
    throw folderFailed(err);
  }
  checkOwner();
}

/** Reads the epoch marker, making the folder and a new marker when either is missing or the marker is no link. */
function readMarker(): string {
  const marker = `${state.root}/${EPOCH}`;
  for (let attempt = 0; ; attempt++) {
    try {
      return fs.readlinkSync(marker);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'EINVAL') || attempt === 2) throw folderFailed(err);
      // EINVAL: something that is not a link stands there (a file, a folder): replaced, as a marker gone would be.
      // The folder itself is made (and checked) only when it is the folder that is missing.
      checkOwner();
      if (code === 'EINVAL') fs.rmSync(marker, { recursive: true, force: true });
      if (!make(() => fs.symlinkSync(newMarker(), marker))) continue; // made meanwhile by another process: read it
    }
  }
}

/**
 * Reads the folder's epoch marker (see {@link EPOCH}) and makes this process's live claims again when it is not the
 * one it last read. Returns whether new claims must wait.
 * @throws VfsError EIO when the folder cannot be used.
 */
function checkEpoch(): boolean {
  const token = readMarker();
  if (token !== state.epoch) {
    const first = state.epoch === null;
    state.epoch = token;
    if (!first || state.live.size > 0) remakeLiveClaims(token);
  }
  return young(token);
}

/**
 * Makes a new epoch marker in place of the current one: this process found its own entries gone while the marker
 * stood (a clean-up removing entries one by one), so the others' may be gone too, and all must make theirs again.
 */
function bumpEpoch(quiet = false): void {
  const token = newMarker();
  const marker = `${state.root}/${EPOCH}`;
  const aside = `${marker}.${token}`;
  fs.symlinkSync(token, aside);
  try {
    fs.renameSync(aside, marker);
  } catch (err) {
    fs.rmSync(aside, { force: true });
    throw err;
  }
  state.epoch = token;
  remakeLiveClaims(token, quiet);
}

/**
 * Makes this process's live claims again in a folder made anew (those already there are left as they are); one
 * whose entry another process holds for a moment (a newcomer's, about to be refused) is tried again at each look.
 * Too late (this process held up past the grace while other processes claimed on), its uploads whose file another
 * process reads or writes by then end, and a new marker makes every other process's running downloads count as
 * lost, so that one whose file changed fails at its end instead of looking complete.
 */
function remakeLiveClaims(token: string, quiet = false): void {
  for (const claim of state.live.values()) state.pending.add(claim);
  const before = state.pending.size;
  remakePending();
  const remade = before - state.pending.size;
  if (before === 0) return;
  const late = !young(token);
  let ended = 0;
  let writing = false;
  if (late) {
    for (const claim of [...state.live.values()]) {
      if (!claim.writer) continue;
      writing = true;
      let other = state.pending.has(claim); // its entry is another process's upload now
      try {
        other ||= othersRead(claim.entry.slice(0, -2));
      } catch {
        other = true; // cannot tell: the other transfer is what must not break
      }
      if (other && claim.onLost?.('EIO: the upload was ended: its file claim was lost while this process was held up (the file claims folder was cleaned up), and another process uses the file now') === true) ended++;
    }
  }
  if (!quiet) {
    warn(
      `file claims folder ${state.root} was made anew (removed under running transfers?): ${remade} claim(s) of this process made again` +
        (state.pending.size > 0 ? `, ${state.pending.size} to be tried again` : '') +
        (late ? ` ${RENEWAL_GRACE_MS} ms or more after it was made anew (this process was held up): their files were unclaimed meanwhile` : '') +
        (ended > 0 ? `; ${ended} upload(s) ended, their files used by another process` : '') +
        `; new claims wait ${RENEWAL_GRACE_MS} ms`,
    );
  }
  if (writing) {
    try {
      bumpEpoch(true);
    } catch {
      // The folder went again meanwhile: the look that finds it gone makes a new marker anyway.
    }
  }
}

function remakePending(): void {
  for (const claim of state.pending) {
    if (state.live.get(claim.entry) !== claim) {
      state.pending.delete(claim);
      continue;
    }
    try {
      fs.symlinkSync(claim.token, claim.entry);
      state.pending.delete(claim);
    } catch (err) {
      // EEXIST: still there (only the marker went), or an entry another process made meanwhile (tried again).
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && readlinkOrNull(claim.entry) === claim.token) state.pending.delete(claim);
    }
  }
}

function readlinkOrNull(entry: string): string | null {
  try {
    return fs.readlinkSync(entry);
  } catch {
    return null;
  }
}

/** A look at the folder by a process holding claims (see {@link EPOCH}). */
function look(): void {
  checkEpoch();
  if (state.pending.size > 0) remakePending();
  if (state.live.size === 0) return;
  const names = new Set(fs.readdirSync(state.root as string));
  for (const claim of state.live.values()) {
    if (!state.pending.has(claim) && !names.has(claim.entry.slice(claim.entry.lastIndexOf('/') + 1))) {
      bumpEpoch();
      return;
    }
  }
}

/** Keeps {@link look} running while this process holds claims: one that makes no new claim must still notice. */
function watchWhileLive(): void {
  if (state.live.size > 0 && state.watch === null) {
    state.watch = setInterval(() => {
      if (state.root === null || state.live.size === 0) {
        clearInterval(state.watch as NodeJS.Timeout);
        state.watch = null;
        state.pending.clear();
        return;
      }
      try {
        look();
      } catch {
        // The folder cannot be used now: claims fail as EIO meanwhile, and the next look tries again.
      }
    }, WATCH_MS);
    state.watch.unref();
  }
}

function keep(claim: SharedClaim): SharedClaim {
  claim.epoch = state.epoch ?? undefined;
  state.live.set(claim.entry, claim);
  watchWhileLive();
  return claim;
}

/**
 * Runs `make` (a system call making an entry in the folder); false when the entry exists. A folder that vanished
 * is made again once (its epoch marker, read next, then says that it is new).
 */
function make(action: () => void): boolean {
  for (let attempt = 0; ; attempt++) {
    try {
      action();
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      if (code === 'ENOENT' && attempt === 0 && state.root !== null) {
        makeFolder();
        continue;
      }
      throw folderFailed(err);
    }
  }
}

/** The process a writer's entry names, or null when it is gone. */
function writerOf(entry: string): number | null {
  // Nearly always absent: checked without the cost of an exception first (lstat: the link's target is no file).
  if (fs.lstatSync(entry, { throwIfNoEntry: false }) === undefined) return null;
  const target = readlinkOrNull(entry);
  return target === null ? null : Number(target.split('.')[0]);
}

const prefixOf = (key: string): string => `${state.root}/${key.replace(':', '-')}`;

/** Whether another process has a reader's entry for the file of `prefix`. */
function othersRead(prefix: string): boolean {
  return othersHave(prefix, 'r');
}

/** Whether another process has an entry of `kind` (`r`: a reader; `l`: lent pages) for the file of `prefix`. */
function othersHave(prefix: string, kind: 'r' | 'l'): boolean {
  const entries = `${prefix.slice(prefix.lastIndexOf('/') + 1)}.${kind}.`;
  const mine = `${entries}${process.pid}.`;
  for (const name of fs.readdirSync(state.root as string)) {
    if (name.startsWith(entries) && !name.startsWith(mine)) return true;
  }
  return false;
}

/**
 * Says the file `key` (`dev:ino`) has pages lent to a finished download's socket (see `lendPages` in
 * local-writers.ts): other processes then refuse to rewrite it in place ({@link lentByOthers}). Given back with
 * {@link release}.
 * @throws VfsError EIO when the claims folder fails.
 */
export function claimLent(key: string): SharedClaim {
  const token = `${process.pid}.${++state.sequence}`;
  const claim: SharedClaim = { entry: `${prefixOf(key)}.l.${token}`, token, writer: false };
  make(() => fs.symlinkSync(token, claim.entry));
  return keep(claim);
}

/**
 * Whether another process has pages of the file `key` (`dev:ino`) lent to a download's socket ({@link claimLent}).
 * False when claims are not shared, or the folder fails (as for {@link readByOthers}).
 */
export function lentByOthers(key: string): boolean {
  if (!sharingFileClaims()) return false;
  try {
    return othersHave(prefixOf(key), 'l');
  } catch {
    return false;
  }
}

/** Runs a check of the folder, any failure as EIO (after `undo`). */
function checked<T>(check: () => T, undo: () => void = () => {}): T {
  try {
    return check();
  } catch (err) {
    undo();
    throw err instanceof VfsError ? err : folderFailed(err);
  }
}

/**
 * Claims the file `key` (`dev:ino`) for writing; null when another process reads or writes it, or while the folder
 * is new ({@link RENEWAL_GRACE_MS}).
 * @throws VfsError EIO when the claims folder fails.
 */
export function claimWrite(key: string): SharedClaim | null {
  const prefix = prefixOf(key);
  const entry = `${prefix}.w`;
  const token = `${process.pid}.${++state.sequence}`;
  const claim: SharedClaim = { entry, token, writer: true };
  // While the folder is new, refused before anything is made: a `.w` made for a moment could be in the way of the
  // writer's entry its process is making again, which would then stay unmade.
  if (checked(checkEpoch)) return null;
  if (make(() => fs.symlinkSync(token, entry))) {
    if (checked(() => othersRead(prefix) || checkEpoch(), () => release(claim))) {
      release(claim);
      return null;
    }
    return keep(claim);
  }
  // Another process's writer: busy. This process's own, which the in-process registry has decided to end (an idle
  // takeover): replaced, atomically (made aside, renamed over it), but only once nothing refuses it, so that a
  // refused newcomer leaves the idle writer's entry as it was (its upload still runs).
  if (writerOf(entry) !== process.pid) return null;
  if (checked(() => othersRead(prefix))) return null;
  const aside = `${entry}.${token}`;
  make(() => fs.symlinkSync(token, aside));
  try {
    fs.renameSync(aside, entry);
  } catch (err) {
    fs.rmSync(aside, { force: true });
    throw folderFailed(err);
  }
  // The folder made anew between the look and the rename: the idle writer's entry is put back as it was, and the
  // newcomer refused (the next look makes the claims again).
  if (readlinkOrNull(`${state.root}/${EPOCH}`) !== state.epoch) {
    const idle = state.live.get(entry);
    if (idle === undefined) release(claim);
    else {
      const back = `${entry}.${idle.token}`;
      try {
        fs.symlinkSync(idle.token, back);
        fs.renameSync(back, entry);
      } catch {
        fs.rmSync(back, { force: true });
        state.pending.add(idle);
      }
    }
    return null;
  }
  return keep(claim);
}

/**
 * Whether another process has the file `key` (`dev:ino`) claimed for writing: an upload it runs. False when claims
 * are not shared, and when the folder cannot be read (a removal is not refused for the claims folder's failure).
 */
export function writtenByOthers(key: string): boolean {
  if (!sharingFileClaims()) return false;
  try {
    const writer = writerOf(`${prefixOf(key)}.w`);
    return writer !== null && writer !== process.pid;
  } catch {
    return false;
  }
}

/**
 * Whether another process has the file `key` (`dev:ino`) open for reading: what {@link claimWrite} would refuse, asked
 * without claiming anything (a look before the server's 150). False when claims are not shared, or the folder fails.
 */
export function readByOthers(key: string): boolean {
  if (!sharingFileClaims()) return false;
  try {
    return othersRead(prefixOf(key));
  } catch {
    return false;
  }
}

/**
 * Claims the file `key` (`dev:ino`) for reading; null when another process writes it, or while the folder is new
 * ({@link RENEWAL_GRACE_MS}).
 * @throws VfsError EIO when the claims folder fails.
 */
export function claimRead(key: string): SharedClaim | null {
  const prefix = prefixOf(key);
  const token = `${process.pid}.${++state.sequence}`;
  const entry = `${prefix}.r.${token}`;
  const claim: SharedClaim = { entry, token, writer: false };
  make(() => fs.symlinkSync(token, entry));
  // The marker after the look: a folder removed before the look (which then found no writer) is seen.
  const writer = checked(() => writerOf(`${prefix}.w`), () => release(claim));
  if ((writer !== null && writer !== process.pid) || checked(checkEpoch, () => release(claim))) {
    release(claim);
    return null;
  }
  return keep(claim);
}

/** Gives a claim back: its entry is removed while it is still its own (a writer's may have been replaced). */
export function release(claim: SharedClaim): void {
  if (state.live.get(claim.entry) === claim) state.live.delete(claim.entry);
  state.pending.delete(claim);
  try {
    if (!claim.writer || fs.readlinkSync(claim.entry) === claim.token) fs.unlinkSync(claim.entry);
  } catch {
    // already gone
  }
}

/**
 * Removes the claims of process `pid` from `dir` (a process that has exited: its entries would keep its files busy
 * for the others). Returns how many went.
 */
export function releaseClaimsOf(dir: string, pid: number): number {
  let removed = 0;
  const own = `${pid}.`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    let target: string;
    try {
      target = fs.readlinkSync(`${dir}/${name}`);
    } catch {
      continue;
    }
    // The epoch marker's target starts with `e`: never a process's.
    if (!target.startsWith(own)) continue;
    try {
      fs.unlinkSync(`${dir}/${name}`);
      removed++;
    } catch {
      // gone meanwhile
    }
  }
  return removed;
}

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { VfsError } from '../errors.js';

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
  watch: null,
}) as {
  root: string | null;
  sequence: number;
  /** The folder's epoch marker as this process last read it; null before its first claim. */
  epoch: string | null;
  /** This process's claims not yet released, by entry: made again in a folder made anew. */
  live: Map<string, SharedClaim>;
  /** Looks at the folder's epoch while this process holds claims. */
  watch: NodeJS.Timeout | null;
};

/**
 * The entry that tells one life of the folder from the next: a symbolic link to `e<random>-<made>`, `made` being the
 * system's monotonic clock in ms (the same for every process of the machine, and never set back) when a process found
 * the folder or the marker missing and made it, or 0 for a folder made empty before any process claimed in it
 * ({@link startFileClaimsFolder}). A folder removed under running transfers (a clean-up of /dev/shm, systemd's
 * RemoveIPC) takes every claim with it, and a download in one process then read a file an upload in another was
 * rewriting (226 with a mixed file). Now every claim reads the marker (one `readlink`), and while a process holds
 * claims it reads it every {@link WATCH_MS}; a process that finds a marker it has not seen makes its live claims
 * again, and every process refuses new claims (EBUSY, the server's 450) while the marker is younger than
 * {@link RENEWAL_GRACE_MS}: by then the others have made theirs again. The age is the marker's own, not the time a
 * process noticed it, so a process that has not looked yet refuses too.
 */
const EPOCH = 'epoch';

/** How often a process holding claims reads the folder's epoch marker (ms). */
const WATCH_MS = 250;

/** How long after a folder is made anew every process refuses new claims (ms): many looks of every process. */
export const RENEWAL_GRACE_MS = 2000;

/**
 * Makes every `LocalProvider` of this process claim the files it opens in `dir` too, a folder shared by all the
 * processes serving the same files (null: this process only, the default). It is made if missing (mode 0700); it
 * is never removed here (whoever made it removes it). Whoever makes it for the others calls
 * {@link startFileClaimsFolder} first; otherwise the first claims wait {@link RENEWAL_GRACE_MS}, as in a folder made
 * anew. Kept for every copy of this package loaded in the process.
 */
export function shareFileClaims(dir: string | null): void {
  state.root = dir;
  state.epoch = null;
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
}

/** An error of the claims folder itself: EIO, with the cause. */
function folderFailed(err: unknown): VfsError {
  return new VfsError('EIO', `file claims folder ${state.root}: ${(err as Error).message}`, { cause: err });
}

/** The system's monotonic clock (ms): `CLOCK_MONOTONIC`, one for every process of the machine. */
const monotonicMs = (): number => Number(process.hrtime.bigint() / 1_000_000n);

/** Whether the epoch marker `token` was made anew less than {@link RENEWAL_GRACE_MS} ago. */
function young(token: string): boolean {
  const age = monotonicMs() - Number(token.slice(token.lastIndexOf('-') + 1));
  // A marker from the future (a process in another time namespace) or not ours: trusted, not refused for ever.
  return age >= 0 && age < RENEWAL_GRACE_MS;
}

/**
 * Reads the folder's epoch marker, making the folder and a new marker when either is missing, and makes this
 * process's live claims again when the marker is not the one it last read. Returns whether new claims must wait.
 * @throws VfsError EIO when the folder cannot be used.
 */
function checkEpoch(): boolean {
  const root = state.root as string;
  const marker = `${root}/${EPOCH}`;
  let token: string | null = null;
  for (let attempt = 0; token === null; attempt++) {
    try {
      token = fs.readlinkSync(marker);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt === 2) throw folderFailed(err);
      try {
        fs.mkdirSync(root, { recursive: true, mode: 0o700 });
        fs.symlinkSync(`e${randomBytes(6).toString('hex')}-${monotonicMs()}`, marker);
      } catch (makeErr) {
        if ((makeErr as NodeJS.ErrnoException).code !== 'EEXIST') throw folderFailed(makeErr);
      }
    }
  }
  if (token !== state.epoch) {
    const first = state.epoch === null;
    state.epoch = token;
    if (!first || state.live.size > 0) remakeLiveClaims();
  }
  return young(token);
}

/** Makes this process's live claims again in a folder made anew (those already there are left as they are). */
function remakeLiveClaims(): void {
  let remade = 0;
  let lost = 0;
  for (const claim of state.live.values()) {
    try {
      fs.symlinkSync(claim.token, claim.entry);
      remade++;
    } catch (err) {
      // EEXIST: still there (only the marker went), or a writer's entry another process made meanwhile.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && readlinkOrNull(claim.entry) === claim.token) continue;
      lost++;
    }
  }
  if (remade + lost > 0) {
    process.emitWarning(
      `file claims folder ${state.root} was made anew (removed under running transfers?): ${remade} claim(s) of this process made again` +
        (lost > 0 ? `, ${lost} could not be` : '') +
        `; new claims wait ${RENEWAL_GRACE_MS} ms`,
      'FtpVfsWarning',
    );
  }
}

function readlinkOrNull(entry: string): string | null {
  try {
    return fs.readlinkSync(entry);
  } catch {
    return null;
  }
}

/** Keeps {@link checkEpoch} running while this process holds claims: one that makes no new claim must still notice. */
function watchWhileLive(): void {
  if (state.live.size > 0 && state.watch === null) {
    state.watch = setInterval(() => {
      if (state.root === null || state.live.size === 0) {
        clearInterval(state.watch as NodeJS.Timeout);
        state.watch = null;
        return;
      }
      try {
        checkEpoch();
      } catch {
        // The folder cannot be used now: claims fail as EIO meanwhile, and the next look tries again.
      }
    }, WATCH_MS);
    state.watch.unref();
  }
}

function keep(claim: SharedClaim): SharedClaim {
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
        try {
          fs.mkdirSync(state.root, { recursive: true, mode: 0o700 });
        } catch (mkdirErr) {
          throw folderFailed(mkdirErr);
        }
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
  const readers = `${prefix.slice(prefix.lastIndexOf('/') + 1)}.r.`;
  const mine = `${readers}${process.pid}.`;
  for (const name of fs.readdirSync(state.root as string)) {
    if (name.startsWith(readers) && !name.startsWith(mine)) return true;
  }
  return false;
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
  const claim = { entry, token, writer: true };
  if (make(() => fs.symlinkSync(token, entry))) {
    try {
      if (checkEpoch() || othersRead(prefix)) {
        release(claim);
        return null;
      }
    } catch (err) {
      release(claim);
      throw err instanceof VfsError ? err : folderFailed(err);
    }
    return keep(claim);
  }
  // Another process's writer: busy. This process's own, which the in-process registry has decided to end (an idle
  // takeover): replaced, atomically (made aside, renamed over it), but only once nothing refuses it, so that a
  // refused newcomer leaves the idle writer's entry as it was (its upload still runs).
  if (writerOf(entry) !== process.pid) return null;
  try {
    if (checkEpoch() || othersRead(prefix)) return null;
  } catch (err) {
    throw err instanceof VfsError ? err : folderFailed(err);
  }
  const aside = `${entry}.${token}`;
  make(() => fs.symlinkSync(token, aside));
  try {
    fs.renameSync(aside, entry);
  } catch (err) {
    fs.rmSync(aside, { force: true });
    throw folderFailed(err);
  }
  return keep(claim);
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
  const claim = { entry, token, writer: false };
  make(() => fs.symlinkSync(token, entry));
  try {
    const writer = checkEpoch() ? -1 : writerOf(`${prefix}.w`);
    if (writer !== null && writer !== process.pid) {
      release(claim);
      return null;
    }
  } catch (err) {
    release(claim);
    throw err instanceof VfsError ? err : folderFailed(err);
  }
  return keep(claim);
}

/** Gives a claim back: its entry is removed while it is still its own (a writer's may have been replaced). */
export function release(claim: SharedClaim): void {
  if (state.live.get(claim.entry) === claim) state.live.delete(claim.entry);
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

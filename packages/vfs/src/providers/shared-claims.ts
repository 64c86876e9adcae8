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
 * with its replacement. A download costs three system calls (make, look, remove); an upload lists
 * the folder, which holds an entry per transfer running in any process. A writer's idle takeover (see
 * `local-writers.ts`) stays within its own process. A failure of the folder itself is EIO (the server's 451, and a
 * logged fault), never a refusal that blames the client's file.
 */
const state = ((globalThis as Record<symbol, unknown>)[Symbol.for('@ftp/vfs.sharedFileClaims.v1')] ??= { root: null, sequence: 0 }) as {
  root: string | null;
  sequence: number;
};

/**
 * Makes every `LocalProvider` of this process claim the files it opens in `dir` too, a folder shared by all the
 * processes serving the same files (null: this process only, the default). It is made if missing (mode 0700); it
 * is never removed here (whoever made it removes it). Kept for every copy of this package loaded in the process.
 */
export function shareFileClaims(dir: string | null): void {
  state.root = dir;
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

/**
 * Runs `make` (a system call making an entry in the folder); false when the entry exists. A folder that vanished
 * (a clean-up of /dev/shm, systemd's RemoveIPC) is made again once.
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
  try {
    return Number(fs.readlinkSync(entry).split('.')[0]);
  } catch {
    return null;
  }
}

const prefixOf = (key: string): string => `${state.root}/${key.replace(':', '-')}`;

/**
 * Claims the file `key` (`dev:ino`) for writing; null when another process reads or writes it.
 * @throws VfsError EIO when the claims folder fails.
 */
export function claimWrite(key: string): SharedClaim | null {
  const prefix = prefixOf(key);
  const entry = `${prefix}.w`;
  const token = `${process.pid}.${++state.sequence}`;
  if (!make(() => fs.symlinkSync(token, entry))) {
    // Another process's writer: busy. This process's own, which the in-process registry has decided to end (an
    // idle takeover): replaced, atomically (made aside, renamed over it).
    if (writerOf(entry) !== process.pid) return null;
    const aside = `${entry}.${token}`;
    make(() => fs.symlinkSync(token, aside));
    try {
      fs.renameSync(aside, entry);
    } catch (err) {
      fs.rmSync(aside, { force: true });
      throw folderFailed(err);
    }
  }
  const claim = { entry, token, writer: true };
  try {
    const readers = `${prefix.slice(prefix.lastIndexOf('/') + 1)}.r.`;
    const mine = `${readers}${process.pid}.`;
    for (const name of fs.readdirSync(state.root as string)) {
      if (name.startsWith(readers) && !name.startsWith(mine)) {
        release(claim);
        return null;
      }
    }
  } catch (err) {
    release(claim);
    throw folderFailed(err);
  }
  return claim;
}

/**
 * Claims the file `key` (`dev:ino`) for reading; null when another process writes it.
 * @throws VfsError EIO when the claims folder fails.
 */
export function claimRead(key: string): SharedClaim | null {
  const prefix = prefixOf(key);
  const token = `${process.pid}.${++state.sequence}`;
  const entry = `${prefix}.r.${token}`;
  make(() => fs.symlinkSync(token, entry));
  const writer = writerOf(`${prefix}.w`);
  if (writer !== null && writer !== process.pid) {
    release({ entry, token, writer: false });
    return null;
  }
  return { entry, token, writer: false };
}

/** Gives a claim back: its entry is removed while it is still its own (a writer's may have been replaced). */
export function release(claim: SharedClaim): void {
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

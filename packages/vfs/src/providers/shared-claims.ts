import fs from 'node:fs';

/**
 * Readers and writers of local files claimed across processes, for servers that run several processes on one
 * folder (`ftpd --workers`): the in-process registry (`local-writers.ts`) cannot see a download in one process
 * while another rewrites the file in place, and Node takes no fcntl locks. So each claim is also an entry in a
 * folder the processes share (best on tmpfs), named after the file's `dev-ino`:
 *
 * - a writer creates `<dev-ino>.w` exclusively (holding `<pid>.<n>`), then looks for readers of the file
 *   (`<dev-ino>.r.*`) and backs off if it finds a live one;
 * - a reader creates `<dev-ino>.r.<pid>.<n>`, then looks for the writer's entry and backs off if a live process
 *   holds it.
 *
 * Each side writes its own entry before it reads the other's, so of a reader and a writer racing, at least one sees
 * the other: both may back off (both get EBUSY, the server's 450, and the clients retry), never both go on.
 * Downloads, the common case, cost three system calls (create, look, remove: ~15 µs); an upload lists the folder,
 * which holds one entry per transfer running in any process. Entries name their process; one left by a process
 * that died (a killed worker) is removed by whoever meets it. A writer's idle takeover (see `local-writers.ts`)
 * stays within its own process.
 */
let root: string | null = null;
let sequence = 0;

/**
 * Makes every `LocalProvider` of this process claim the files it opens in `dir` too, a folder shared by all the
 * processes serving the same files (null: this process only, the default). The folder must exist; it is never
 * removed here (the process that made it removes it).
 */
export function shareFileClaims(dir: string | null): void {
  root = dir;
}

/** Whether claims are shared with other processes. */
export function sharingFileClaims(): boolean {
  return root !== null;
}

/** A claim made in the shared folder: the entry to remove when the file is closed, and what it holds (a writer's). */
export interface SharedClaim {
  readonly entry: string;
  readonly token?: string;
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function unlinkQuietly(path: string): void {
  try {
    fs.unlinkSync(path);
  } catch {
    // already gone
  }
}

/** The pid of a writer's entry (it holds `<pid>.<n>`), or null when it is gone or unreadable. */
function writerPid(entry: string): number | null {
  try {
    return Number(fs.readFileSync(entry, 'utf8').split('.')[0]);
  } catch {
    return null;
  }
}

/**
 * Whether an entry of process `pid` stands in the way: this process's own claims are the in-process registry's to
 * judge (it already has); a dead process's entry is removed.
 */
function blocks(entry: string, pid: number | null): boolean {
  if (pid === null || !Number.isInteger(pid) || pid === process.pid) return false;
  if (alive(pid)) return true;
  unlinkQuietly(entry);
  return false;
}

/** Creates `entry` (exclusively, or replacing it); false when it exists and `exclusive`. */
function create(entry: string, content: string, exclusive: boolean): boolean {
  try {
    // A reader's empty entry: open and close, one system call fewer than writeFileSync.
    if (content === '') fs.closeSync(fs.openSync(entry, exclusive ? 'wx' : 'w'));
    else fs.writeFileSync(entry, content, { flag: exclusive ? 'wx' : 'w' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

const prefixOf = (key: string): string => `${root}/${key.replace(':', '-')}`;

/** Claims the file `key` (`dev:ino`) for writing; null when another live process reads or writes it. */
export function claimWrite(key: string): SharedClaim | null {
  const prefix = prefixOf(key);
  const entry = `${prefix}.w`;
  const token = `${process.pid}.${++sequence}`;
  if (!create(entry, token, true)) {
    const pid = writerPid(entry);
    // This process's own writer, let go by the in-process registry (an idle takeover): replaced.
    if (pid === process.pid) create(entry, token, false);
    // (blocks() removes a dead process's entry.) Exclusive again: another process may be taking it over too.
    else if (blocks(entry, pid) || !create(entry, token, true)) return null;
  }
  const claim = { entry, token };
  const readers = `${prefix.slice(prefix.lastIndexOf('/') + 1)}.r.`;
  for (const name of fs.readdirSync(root as string)) {
    if (name.startsWith(readers) && blocks(`${root}/${name}`, Number(name.slice(readers.length).split('.')[0]))) {
      release(claim);
      return null;
    }
  }
  return claim;
}

/** Claims the file `key` (`dev:ino`) for reading; null when another live process writes it. */
export function claimRead(key: string): SharedClaim | null {
  const prefix = prefixOf(key);
  const entry = `${prefix}.r.${process.pid}.${++sequence}`;
  create(entry, '', false);
  const writer = `${prefix}.w`;
  if (fs.existsSync(writer) && blocks(writer, writerPid(writer))) {
    release({ entry });
    return null;
  }
  return { entry };
}

/** Gives a claim back (a writer's only while its entry is still its own). */
export function release(claim: SharedClaim): void {
  if (claim.token !== undefined) {
    let current: string | undefined;
    try {
      current = fs.readFileSync(claim.entry, 'utf8');
    } catch {
      current = undefined;
    }
    if (current !== claim.token) return;
  }
  unlinkQuietly(claim.entry);
}

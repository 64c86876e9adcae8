import fs from 'node:fs';

/**
 * Readers and writers of local files claimed across processes, for servers that run several processes on one
 * folder (`ftpd --workers`): the in-process registry (`local-writers.ts`) cannot see a download in one process
 * while another rewrites the file in place, and Node takes no fcntl locks. So each claim is also a file in a
 * folder the processes share (best on tmpfs: a few µs a claim), one sub-folder per `dev:ino`:
 *
 * - a writer creates `w` exclusively, then looks for readers (`r.*`) and backs off if it finds a live one;
 * - a reader creates `r.<pid>.<n>`, then looks for `w` and backs off if a live process holds it.
 *
 * Each side writes its own entry before it reads the other's, so of a reader and a writer racing, at least one sees
 * the other: both may back off (both get EBUSY, the server's 450, and the clients retry), never both go on.
 * Entries name their process; one left by a process that died (a killed worker) is removed by whoever meets it.
 * A writer's idle takeover (see `local-writers.ts`) stays within its own process.
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

/** The pid an entry names (`w` holds `<pid>.<n>`, readers have it in their name), or null if unreadable. */
function ownerOf(folder: string, name: string): number | null {
  try {
    return Number((name.startsWith('r.') ? name.slice(2) : fs.readFileSync(`${folder}/${name}`, 'utf8')).split('.')[0]);
  } catch {
    return null;
  }
}

/**
 * Whether `name` in `folder` is held by another live process (this process's own claims are the in-process
 * registry's to judge, which has already done so); a dead process's entry is removed.
 */
function held(folder: string, name: string): boolean {
  const pid = ownerOf(folder, name);
  if (pid === null || !Number.isInteger(pid) || pid === process.pid) return false;
  if (alive(pid)) return true;
  fs.rmSync(`${folder}/${name}`, { force: true });
  return false;
}

/** Creates `name` in the key's folder (made if missing; it may vanish under a release, hence the retries). */
function create(key: string, name: string, content: string, exclusive: boolean): string | null {
  const folder = `${root}/${key.replace(':', '-')}`;
  for (let attempt = 0; attempt < 3; attempt++) {
    fs.mkdirSync(folder, { recursive: true });
    try {
      fs.writeFileSync(`${folder}/${name}`, content, { flag: exclusive ? 'wx' : 'w' });
      return folder;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return null;
      if (code !== 'ENOENT') throw err;
    }
  }
  throw Object.assign(new Error(`shared claim ${key}: its folder keeps vanishing`), { code: 'EBUSY' });
}

/** Claims the file `key` for writing; null when another live process reads or writes it. */
export function claimWrite(key: string): SharedClaim | null {
  const token = `${process.pid}.${++sequence}`;
  let folder = create(key, 'w', token, true);
  if (folder === null) {
    // Held by another live process (busy), or by this one (a writer the in-process registry let go: an idle
    // takeover), or left by a dead process: the last two are replaced.
    const dir = `${root}/${key.replace(':', '-')}`;
    if (ownerOf(dir, 'w') === process.pid) folder = create(key, 'w', token, false) as string;
    else {
      if (held(dir, 'w')) return null;
      // (held() removed the dead process's entry.) Exclusive again: another process may be taking it over too.
      folder = create(key, 'w', token, true);
      if (folder === null) return null;
    }
  }
  const claim = { entry: `${folder}/w`, token };
  for (const name of fs.readdirSync(folder)) {
    if (name.startsWith('r.') && held(folder, name)) {
      release(claim);
      return null;
    }
  }
  return claim;
}

/** Claims the file `key` for reading; null when another live process writes it. */
export function claimRead(key: string): SharedClaim | null {
  const name = `r.${process.pid}.${++sequence}`;
  const folder = create(key, name, '', false) as string;
  const entry = `${folder}/${name}`;
  if (fs.existsSync(`${folder}/w`) && held(folder, 'w')) {
    release({ entry });
    return null;
  }
  return { entry };
}

/** Gives a claim back (a writer's only while its entry is still its own); its folder goes with its last entry. */
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
  fs.rmSync(claim.entry, { force: true });
  try {
    fs.rmdirSync(claim.entry.slice(0, claim.entry.lastIndexOf('/')));
  } catch {
    // Not empty (other claims), or already gone.
  }
}

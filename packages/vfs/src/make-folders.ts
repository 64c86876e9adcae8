import fs from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * `mkdir -p` on the host: makes `path` and its missing ancestors, one `mkdir` each, and returns the first folder it
 * made (undefined when `path` was there), as `fs.mkdirSync(path, { recursive: true })` does. Node's own never returns
 * where `mkdir` answers ENOENT under a parent that exists (a pseudo file system such as `/proc` or `/sys`): it climbs
 * and retries without end, and a server told to serve such a path hung at its start. Here that ENOENT is the answer.
 *
 * @throws the `mkdir` or `stat` error: EEXIST when `path` is a file, ENOTDIR when an ancestor is, ENOENT, EACCES…
 */
export function makeFoldersSync(path: string, mode?: number): string | undefined {
  const missing: string[] = [];
  // Bounded by the path's depth: each step goes one folder up, and the root always exists.
  for (let at = resolve(path); ; at = dirname(at)) {
    const st = fs.statSync(at, { throwIfNoEntry: false });
    if (st !== undefined) {
      if (!st.isDirectory()) throw notFolder(at, missing.length === 0 ? 'EEXIST' : 'ENOTDIR', path);
      break;
    }
    missing.push(at);
    if (dirname(at) === at) break;
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      fs.mkdirSync(missing[i]!, mode === undefined ? undefined : { mode });
    } catch (err) {
      // Made by someone else meanwhile: as good as made here.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && fs.statSync(missing[i]!, { throwIfNoEntry: false })?.isDirectory() === true) continue;
      throw err;
    }
  }
  return missing.at(-1);
}

function notFolder(at: string, code: 'EEXIST' | 'ENOTDIR', path: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: ${code === 'EEXIST' ? 'file already exists' : 'not a directory'}, mkdir '${path}' (${at} is a file)`);
  err.code = code;
  err.syscall = 'mkdir';
  err.path = path;
  return err;
}

import fs from 'node:fs';
import { dirname } from 'node:path';

/**
 * `mkdir -p` on the host: makes `path` and its missing ancestors, one `mkdir` each, and returns the first folder this
 * call made (undefined when it made none: `path` was there, or someone else made it meanwhile), as
 * `fs.mkdirSync(path, { recursive: true })` does. Node's own never returns where `mkdir` answers ENOENT under a
 * parent that exists (a pseudo file system such as `/proc` or `/sys`): it climbs and retries without end, and a
 * server told to serve such a path hung at its start. Here that ENOENT is the answer.
 *
 * The ancestors are those of `path` as written (`link/../x` is made where the kernel takes it: beside the link's
 * target, as `mkdir -p` does), and the folders returned are written as `path` is (relative stays relative).
 *
 * @throws the `mkdir` or `stat` error: EEXIST when `path` is a file, ENOTDIR when an ancestor is, ENOENT, EACCES…
 */
export function makeFoldersSync(path: string, mode?: number): string | undefined {
  const missing: string[] = [];
  // Bounded by the path's length: each step drops a component, and `/` or `.` always exists.
  for (let at = path; ; at = dirname(at)) {
    const st = fs.statSync(at, { throwIfNoEntry: false });
    if (st !== undefined) {
      if (!st.isDirectory()) throw notFolder(at, missing.length === 0 ? 'EEXIST' : 'ENOTDIR', path);
      break;
    }
    missing.push(at);
    if (dirname(at) === at) break;
  }
  let first: string | undefined;
  for (let i = missing.length - 1; i >= 0; i--) {
    const dir = missing[i]!;
    try {
      fs.mkdirSync(dir, mode === undefined ? undefined : { mode });
      first ??= dir;
    } catch (err) {
      // Made by someone else meanwhile (or `..` of a folder made here): there, but not made by this call.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory() === true) continue;
      throw err;
    }
  }
  return first;
}

function notFolder(at: string, code: 'EEXIST' | 'ENOTDIR', path: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: ${code === 'EEXIST' ? 'file already exists' : 'not a directory'}, mkdir '${path}' (${at} is a file)`);
  err.code = code;
  err.syscall = 'mkdir';
  err.path = path;
  return err;
}

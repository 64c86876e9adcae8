/**
 * lstat of many entries of one folder in one call, for listings: each entry one statx(2), its fields written
 * straight into a Float64Array. Node's `fs.lstatSync` costs about twice that per entry (a request, a Stats
 * object and a path conversion each time), which is most of what a 10,000-entry listing costs.
 */
import { getSystemErrorName } from 'node:util';
import { addonMissingReason, loadAddon } from './addon.js';

/** The fields of a row, in order: the number fields of Node's `fs.Stats`, in Node's own order. */
export const LSTAT_ROW_FIELDS = ['dev', 'mode', 'nlink', 'uid', 'gid', 'rdev', 'blksize', 'ino', 'size', 'blocks', 'atimeMs', 'mtimeMs', 'ctimeMs', 'birthtimeMs'] as const;

/** Set once the kernel said it has no statx (Linux before 4.11): callers use `fs.lstatSync` from then on. */
let noStatx = false;

/** Null when {@link lstatRows} works here; otherwise why not (it then returns null). `FTP_NATIVE_LSTAT=0` turns it off. */
export function lstatRowsUnavailableReason(): string | null {
  if (process.env.FTP_NATIVE_LSTAT === '0') return 'turned off by FTP_NATIVE_LSTAT=0';
  if (noStatx) return 'the kernel has no statx(2)';
  return addonMissingReason();
}

/**
 * The lstat of `prefix + name` for each name, as rows of {@link LSTAT_ROW_FIELDS} doubles with the values
 * `fs.lstatSync` gives; an entry that does not exist (gone since the folder was read) has a `mode` of NaN.
 * Throws the error `fs.lstatSync` would for the first entry that cannot be looked up (`code`, `errno`, `syscall`
 * 'lstat', `path`). Returns null when {@link lstatRowsUnavailableReason} is not null: use `fs.lstatSync` then.
 */
export function lstatRows(prefix: string, names: readonly string[]): Float64Array | null {
  if (process.env.FTP_NATIVE_LSTAT === '0' || noStatx) return null;
  const native = loadAddon();
  if (native === null) return null;
  const rows = new Float64Array(names.length * LSTAT_ROW_FIELDS.length);
  const failed = native.lstatRows(prefix, names, rows);
  if (failed === null) return rows;
  const code = systemErrorName(failed.errno);
  if (code === 'ENOSYS') {
    noStatx = true;
    return null;
  }
  const path = prefix + (names[failed.index] ?? '');
  const err: NodeJS.ErrnoException = new Error(`${code}: lstat '${path}'`);
  err.code = code;
  err.errno = failed.errno;
  err.syscall = 'lstat';
  err.path = path;
  throw err;
}

function systemErrorName(errno: number): string {
  try {
    return getSystemErrorName(errno);
  } catch {
    return `E${-errno}`;
  }
}

/**
 * lstat of many entries of one folder in one call, for listings: each entry one statx(2), its fields written
 * straight into a Float64Array. Node's `fs.lstatSync` costs about twice that per entry (a request, a Stats
 * object and a path conversion each time), which is most of what a 10,000-entry listing costs.
 */
import { addonFor, addonForReason, errnoName } from './addon.js';

/** The fields of a row, in order: the number fields of Node's `fs.Stats`, in Node's own order. */
export const LSTAT_ROW_FIELDS = ['dev', 'mode', 'nlink', 'uid', 'gid', 'rdev', 'blksize', 'ino', 'size', 'blocks', 'atimeMs', 'mtimeMs', 'ctimeMs', 'birthtimeMs'] as const;

/** Set once the kernel said it has no statx (Linux before 4.11): callers use `fs.lstatSync` from then on. */
let noStatx = false;

/** Null when {@link lstatRows} works here; otherwise why not (it then returns null). `FTP_NATIVE_LSTAT=0` turns it off. */
export function lstatRowsUnavailableReason(): string | null {
  const reason = addonForReason('FTP_NATIVE_LSTAT');
  if (reason === null && noStatx) return 'the kernel has no statx(2)';
  return reason;
}

/** The folder the names are looked up in, as the caller confined it: a folder found there that is not this one is refused. */
export interface ExpectedFolder {
  dev: number;
  ino: number;
}

/**
 * The lstat of `prefix + name` for each name, as rows of {@link LSTAT_ROW_FIELDS} doubles with the values
 * `fs.lstatSync` gives; an entry that does not exist (gone since the folder was read) has a `mode` of NaN.
 * Throws the error `fs.lstatSync` would for the first entry that cannot be looked up (`code`, `errno`, `syscall`
 * 'lstat', `path`). With `folder`, `prefix` must end in '/' and name that very folder when the lookups begin: a
 * folder swapped there meanwhile (for a link that leads elsewhere, say) throws `code` 'ESTALE' instead, with
 * nothing looked up in it. Returns null when {@link lstatRowsUnavailableReason} is not null: use `fs.lstatSync`.
 */
export function lstatRows(prefix: string, names: readonly string[], folder?: ExpectedFolder): Float64Array | null {
  const native = noStatx ? null : addonFor('FTP_NATIVE_LSTAT');
  if (native === null) return null;
  const rows = new Float64Array(names.length * LSTAT_ROW_FIELDS.length);
  const failed = folder === undefined ? native.lstatRows(prefix, names, rows) : native.lstatRows(prefix, names, rows, folder.dev, folder.ino);
  if (failed === null) return rows;
  const [code, description] = errnoName(failed.errno);
  if (code === 'ENOSYS') {
    noStatx = true;
    return null;
  }
  if (failed.index < 0) {
    throw Object.assign(new Error(`ESTALE: the folder ${prefix} is not the one expected (replaced since it was checked), lstat '${prefix}'`), { code: 'ESTALE', errno: failed.errno, syscall: 'lstat', path: prefix });
  }
  // Worded as Node words its own (uvException): "ENOTDIR: not a directory, lstat '/a/b'".
  const path = prefix + (names[failed.index] ?? '');
  throw Object.assign(new Error(`${code}: ${description}, lstat '${path}'`), { code, errno: failed.errno, syscall: 'lstat', path });
}

import type { VfsErrorCode } from './spec.js';

const BRAND = Symbol.for('@ftp/vfs.VfsError');

/** Every {@link VfsErrorCode}, in the order of the contract. */
export const VFS_ERROR_CODES: readonly VfsErrorCode[] = Object.freeze([
  'ENOENT',
  'EEXIST',
  'ENOTDIR',
  'EISDIR',
  'ENOTEMPTY',
  'EACCES',
  'EPERM',
  'EROFS',
  'ENOSPC',
  'EDQUOT',
  'ENOTSUP',
  'EINVAL',
  'ENAMETOOLONG',
  'ELOOP',
  'EXDEV',
  'EBUSY',
  'EIO',
] as const);

const KNOWN = new Set<string>(VFS_ERROR_CODES);

const DESCRIPTIONS: Record<VfsErrorCode, string> = {
  ENOENT: 'no such file or directory',
  EEXIST: 'file already exists',
  ENOTDIR: 'not a directory',
  EISDIR: 'illegal operation on a directory',
  ENOTEMPTY: 'directory not empty',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'quota exceeded',
  ENOTSUP: 'operation not supported',
  EINVAL: 'invalid argument',
  ENAMETOOLONG: 'name too long',
  ELOOP: 'too many levels of symbolic links',
  EXDEV: 'cross-device link not permitted',
  EBUSY: 'resource busy or locked',
  EIO: 'i/o error',
};

/** Codes outside the contract that have an obvious equivalent inside it. */
const ALIASES: Record<string, VfsErrorCode> = {
  EOPNOTSUPP: 'ENOTSUP',
  ENOSYS: 'ENOTSUP',
  ERR_METHOD_NOT_IMPLEMENTED: 'ENOTSUP',
  ERR_FEATURE_UNAVAILABLE_ON_PLATFORM: 'ENOTSUP',
  EFBIG: 'ENOSPC',
  ETXTBSY: 'EBUSY',
  EMFILE: 'EBUSY',
  ENFILE: 'EBUSY',
  EAGAIN: 'EBUSY',
  EBADF: 'EINVAL',
  ERR_INVALID_ARG_VALUE: 'EINVAL',
  ERR_INVALID_ARG_TYPE: 'EINVAL',
  ERR_OUT_OF_RANGE: 'EINVAL',
  ERR_INVALID_STATE: 'EIO',
};

/** SQLite primary result codes (`err.errcode & 0xff`) with a contract equivalent; others become EIO. */
const SQLITE_CODES: Record<number, VfsErrorCode> = {
  3: 'EACCES', // SQLITE_PERM
  5: 'EBUSY', // SQLITE_BUSY
  6: 'EBUSY', // SQLITE_LOCKED
  8: 'EROFS', // SQLITE_READONLY
  13: 'ENOSPC', // SQLITE_FULL
  14: 'EIO', // SQLITE_CANTOPEN
  18: 'ENAMETOOLONG', // SQLITE_TOOBIG
  23: 'EACCES', // SQLITE_AUTH
};

/** Options of the {@link VfsError} constructor. */
export interface VfsErrorOptions {
  /** The virtual path concerned (never a host path). */
  path?: string;
  /** The operation that failed (`open`, `rename`, …). */
  syscall?: string;
  /** The original error. */
  cause?: unknown;
}

/**
 * The error of the filesystem contract: an `Error` with a stable Node-style {@link VfsErrorCode}. It carries a
 * `Symbol.for('@ftp/vfs.VfsError')` brand, so {@link VfsError.isInstance} recognises it across duplicate installs
 * of this package, where `instanceof` would fail.
 */
export class VfsError extends Error {
  /** The contract error code (`ENOENT`, `EACCES`, …). */
  readonly code: VfsErrorCode;
  /** The virtual path concerned, when known. */
  readonly path?: string;
  /** The operation that failed, when known. */
  readonly syscall?: string;
  /** Brand that identifies the class across copies of the package. */
  readonly [BRAND] = true;

  /**
   * @param code the contract code.
   * @param message defaults to Node's form: `ENOENT: no such file or directory, open '/a'`.
   * @param options path, syscall and cause.
   */
  constructor(code: VfsErrorCode, message?: string, options: VfsErrorOptions = {}) {
    super(message ?? describeError(code, options.syscall, options.path), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VfsError';
    this.code = code;
    if (options.path !== undefined) this.path = options.path;
    if (options.syscall !== undefined) this.syscall = options.syscall;
  }

  /** True for any `VfsError`, including one created by another copy of this package. */
  static isInstance(e: unknown): e is VfsError {
    return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** Node's message form: `CODE: description, syscall 'path'`. */
function describeError(code: VfsErrorCode, syscall?: string, path?: string): string {
  let msg = `${code}: ${DESCRIPTIONS[code]}`;
  if (syscall !== undefined) msg += `, ${syscall}`;
  if (path !== undefined) msg += syscall === undefined ? `, '${path}'` : ` '${path}'`;
  return msg;
}

/**
 * Creates a {@link VfsError}.
 * @param code the contract code.
 * @param message defaults to Node's form, naming `path`.
 * @param path the virtual path concerned.
 */
export function vfsError(code: VfsErrorCode, message?: string, path?: string): VfsError {
  return new VfsError(code, message, path === undefined ? {} : { path });
}

/** Creates a {@link VfsError} with the syscall named, as providers throw them. */
export function fsError(code: VfsErrorCode, syscall: string, path?: string): VfsError {
  return new VfsError(code, undefined, path === undefined ? { syscall } : { path, syscall });
}

/** The operation named by the error of an upload whose file was taken over (see {@link takenOverError}). */
const TAKEOVER = 'takeover';

/**
 * The error an idle upload ends with when a newcomer takes its file over (another upload, a download, a removal):
 * EBUSY, told apart by {@link isTakenOver} so that its client hears why, not "busy, try again".
 */
export function takenOverError(path: string): VfsError {
  return new VfsError('EBUSY', `EBUSY: the upload sent nothing for a while and another session took the file over, '${path}'`, { path, syscall: TAKEOVER });
}

/** Whether `err` (or an error it wraps) is a {@link takenOverError}. */
export function isTakenOver(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && typeof e === 'object' && e !== null; depth++) {
    if ((e as { syscall?: unknown }).syscall === TAKEOVER && errorCodeOf(e) === 'EBUSY') return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** The contract code for any thrown value: Node fs codes as is, known aliases, SQLite result codes, else EIO. */
export function errorCodeOf(err: unknown): VfsErrorCode {
  if (typeof err !== 'object' || err === null) return 'EIO';
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (KNOWN.has(code)) return code as VfsErrorCode;
    const alias = ALIASES[code];
    if (alias !== undefined) return alias;
    if (code === 'ERR_SQLITE_ERROR') {
      const errcode = (err as { errcode?: unknown }).errcode;
      if (typeof errcode === 'number') return SQLITE_CODES[errcode & 0xff] ?? 'EIO';
    }
  }
  return 'EIO';
}

/**
 * Normalises any thrown value to a {@link VfsError}: Node fs errors by `code`, `@platformatic/vfs` errors,
 * SQLite errors; unknown codes become `EIO`. The original is kept as `cause`.
 *
 * When `path` is given the result names that (virtual) path and its message is rebuilt around it, so a host path
 * in the original message (a local disk's real path, an inner provider's path) never reaches a client.
 * A `VfsError` that already names `path` (or any `VfsError` when `path` is omitted) is returned as is.
 */
export function toVfsError(err: unknown, path?: string): VfsError {
  if (VfsError.isInstance(err) && (path === undefined || err.path === path)) return err;
  const code = errorCodeOf(err);
  const syscallValue = typeof err === 'object' && err !== null ? (err as { syscall?: unknown }).syscall : undefined;
  const syscall = typeof syscallValue === 'string' ? syscallValue : undefined;
  const options: VfsErrorOptions = { cause: err };
  if (syscall !== undefined) options.syscall = syscall;
  if (path !== undefined) {
    options.path = path;
    return new VfsError(code, undefined, options);
  }
  const origPath = VfsError.isInstance(err) ? err.path : undefined;
  if (origPath !== undefined) options.path = origPath;
  let message: string;
  if (!(err instanceof Error)) message = `${describeError(code, syscall)}: ${String(err)}`;
  else if (err.message.startsWith(`${code}:`)) message = err.message;
  else message = `${code}: ${err.message}`;
  return new VfsError(code, message, options);
}

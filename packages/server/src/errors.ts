import { ProtocolError } from '@ftp/protocol';
import { VfsError, toVfsError, type VfsErrorCode } from '@ftp/vfs';

const kBrand = Symbol.for('@ftp/server.FtpError');

/** An error that already knows its FTP reply. Handlers throw it for protocol-level refusals (503, 530, 425...). */
export class FtpError extends Error {
  readonly [kBrand] = true;
  constructor(
    readonly replyCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'FtpError';
  }

  static isInstance(e: unknown): e is FtpError {
    return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[kBrand] === true;
  }
}

/** The reply a filesystem error code becomes. The one table that maps storage failures to FTP (RFC 959 §4.2). */
const VFS_REPLIES: Record<VfsErrorCode, readonly [number, string]> = {
  ENOENT: [550, 'No such file or directory.'],
  EEXIST: [550, 'File exists.'],
  ENOTDIR: [550, 'Not a directory.'],
  EISDIR: [550, 'Is a directory.'],
  ENOTEMPTY: [550, 'Directory not empty.'],
  EACCES: [550, 'Permission denied.'],
  EPERM: [550, 'Operation not permitted.'],
  EROFS: [550, 'Read-only file system.'],
  ENOSPC: [452, 'Insufficient storage space.'],
  EDQUOT: [552, 'Storage quota exceeded.'],
  ENOTSUP: [504, 'Not supported by this filesystem.'],
  EINVAL: [501, 'Invalid argument.'],
  ENAMETOOLONG: [553, 'File name too long.'],
  ELOOP: [550, 'Too many levels of symbolic links.'],
  EXDEV: [550, 'Cannot move across filesystems.'],
  EBUSY: [450, 'File busy, try again later.'],
  EIO: [451, 'Local error in processing.'],
};

/** A reply to send: code and text. */
export interface Reply {
  code: number;
  text: string;
}

/**
 * Maps any error a handler raised to its FTP reply: the single place where typed errors become replies.
 * `path` is the client's view of the path involved, used in the text (never a backend's real path).
 */
export function toReply(err: unknown, path?: string): Reply {
  if (FtpError.isInstance(err)) return { code: err.replyCode, text: err.message };
  if (ProtocolError.isInstance(err)) {
    if (err.code === 'LINE_TOO_LONG') return { code: 500, text: 'Command line too long.' };
    // 504, or 522 for EPRT/EPSV (RFC 2428), as the protocol package says; 501 for anything malformed.
    return { code: err.replyCode, text: err.message || (err.code === 'BAD_ARGUMENT' ? 'Syntax error in parameters.' : 'Parameter not implemented.') };
  }
  const vfsErr = VfsError.isInstance(err) ? err : toVfsError(err);
  const [code, text] = VFS_REPLIES[vfsErr.code] ?? VFS_REPLIES.EIO;
  return { code, text: path ? `${path}: ${text}` : text };
}

/** True for errors that mean the storage failed rather than the request was wrong (worth logging as errors). */
export function isServerFault(err: unknown): boolean {
  if (FtpError.isInstance(err) || ProtocolError.isInstance(err)) return false;
  const code = VfsError.isInstance(err) ? err.code : toVfsError(err).code;
  return code === 'EIO';
}

/**
 * Failures that a client's request or the moment explains (the file or folder is missing or busy, the quota is
 * full): answered, and logged only in the transfer's own line. Anything else (EIO, a full disk, a read-only remount,
 * permissions the system denied, a bug's EINVAL) is worth a warning with its cause.
 */
const REFUSALS: ReadonlySet<string> = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ENOTEMPTY', 'EBUSY', 'EDQUOT', 'ENAMETOOLONG', 'ELOOP']);

/** True for a failure the client's request explains (see {@link REFUSALS}); false for one worth a warning. */
export function isRefusal(err: unknown): boolean {
  if (FtpError.isInstance(err) || ProtocolError.isInstance(err)) return true;
  return REFUSALS.has(VfsError.isInstance(err) ? err.code : toVfsError(err).code);
}

import { ProtocolError } from '@ftp/protocol';
import { errorCodeOf, isTakenOver, type VfsErrorCode } from '@ftp/vfs';

const kBrand = Symbol.for('@ftp/server.FtpError');

/** An error that already knows its FTP reply. Handlers throw it for protocol-level refusals (503, 530, 425...). */
export class FtpError extends Error {
  readonly [kBrand] = true;
  constructor(
    readonly replyCode: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'FtpError';
  }

  static isInstance(e: unknown): e is FtpError {
    return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[kBrand] === true;
  }
}

const kAccountUnavailable = Symbol.for('@ftp/server.AccountUnavailableError');

/**
 * For a driver's `authenticate` to throw for an account whose password it found right but which cannot be served
 * now (its home is a file, its storage is being moved): the client gets 530 with this message, and it counts as no
 * failed login, so a client retrying with the right password is not banned (nor is everyone behind its address).
 * Throw it only after the password was checked: before, it would tell a guesser which names exist, uncounted.
 */
export class AccountUnavailableError extends Error {
  readonly [kAccountUnavailable] = true;
  constructor(message: string) {
    super(message);
    this.name = 'AccountUnavailableError';
  }

  static isInstance(e: unknown): e is AccountUnavailableError {
    return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[kAccountUnavailable] === true;
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

/** The reply text when the server itself is out of file descriptors. */
export const TOO_MANY_FILES = 'Too many open files on the server, try again later.';

/**
 * The reply text of an upload ended because it sent nothing for a while and another session then took its file
 * (another upload, a download, a removal): "busy, try again" would send its client straight into the newcomer.
 */
const TAKEN_OVER = 'Upload ended: it sent nothing for a while and another session took the file over.';

/**
 * Whether a storage error is the server running out of descriptors (EMFILE, ENFILE): the contract calls it EBUSY,
 * worth retrying, but it is the operator's problem, not the client's file, and said as such.
 */
function isShortage(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'EMFILE' || code === 'ENFILE') return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

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
  const storage = errorCodeOf(err);
  const [code, known] = VFS_REPLIES[storage] ?? VFS_REPLIES.EIO;
  const text = storage !== 'EBUSY' ? known : isShortage(err) ? TOO_MANY_FILES : isTakenOver(err) ? TAKEN_OVER : known;
  return { code, text: path ? `${path}: ${text}` : text };
}

/**
 * The final reply of a transfer command that has already said 150, in the set RFC 959 §5.4 allows there: 226, 250,
 * 425, 426 and 451 for every one, and 551 and 552 too for uploads (STOR, STOU, APPE); 421 may end any command. A
 * refusal that comes only once the transfer has begun (an upload's file opens after the data connection is up) keeps
 * its text and its class: a transient one (450 busy) becomes 451, a permanent one 551 for an upload (550 permission
 * denied, 553 name too long) and 451 for a download or a listing, which have no permanent code there; an upload that
 * fills the storage (452) ends with 552.
 * RFC 4217's security replies (522: the data connection's TLS session was not resumed) stay as they are, as vsftpd
 * sends them.
 */
export function afterPreliminary(reply: Reply, direction: 'upload' | 'download' | 'listing'): Reply {
  const { code } = reply;
  if (code === 421 || code === 425 || code === 426 || code === 451 || code < 400 || (code >= 520 && code < 540)) return reply;
  if (direction === 'upload' && code >= 500) return code === 551 || code === 552 ? reply : { code: 551, text: reply.text };
  // Storage that filled during an upload: 552 (RFC 959: "exceeded storage allocation"), not a transient 451 that
  // clients answer by sending the same upload again at once.
  if (direction === 'upload' && code === 452) return { code: 552, text: reply.text };
  return { code: 451, text: reply.text };
}

/** True for errors that mean the storage failed rather than the request was wrong (worth logging as errors). */
export function isServerFault(err: unknown): boolean {
  if (FtpError.isInstance(err) || ProtocolError.isInstance(err)) return false;
  return errorCodeOf(err) === 'EIO';
}

/**
 * Failures that a client's request or the moment explains (the file or folder is missing or busy, the quota is
 * full): answered, and logged only in the transfer's own line. Anything else (EIO, a full disk, a read-only remount,
 * permissions the system denied, a bug's EINVAL) is worth a warning with its cause.
 */
const REFUSALS: ReadonlySet<string> = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ENOTEMPTY', 'EBUSY', 'EDQUOT', 'ENAMETOOLONG', 'ELOOP']);

/**
 * True for a refusal of a command (not a transfer) that the system explains rather than the request: a read-only
 * file system, a full disk, descriptors running out. Worth a warning: the operator can act on it, the client
 * cannot. (A client's bad argument, EINVAL or ENOTSUP, is not.)
 */
export function isSystemRefusal(err: unknown): boolean {
  // A reply the server chose for a shortage (425 for a PASV that found no descriptor) still names it as its cause.
  if (FtpError.isInstance(err)) return isShortage(err.cause);
  if (ProtocolError.isInstance(err)) return false;
  if (isShortage(err)) return true;
  // Not EACCES: the root's confinement says it to a client reaching outside (a link, SITE SYMLINK), as often as the
  // client likes; transfers still warn of it.
  const code = errorCodeOf(err);
  return code === 'EROFS' || code === 'ENOSPC';
}

/** True for a failure the client's request explains (see {@link REFUSALS}); false for one worth a warning. */
export function isRefusal(err: unknown): boolean {
  if (FtpError.isInstance(err) || ProtocolError.isInstance(err)) return true;
  if (isShortage(err)) return false;
  return REFUSALS.has(errorCodeOf(err));
}

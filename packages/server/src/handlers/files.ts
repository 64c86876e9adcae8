import { formatFtpTime } from '@ftp/protocol';
import { FtpError } from '../errors.js';
import { changesRecorded, reportChange } from '../change-log.js';
import { requirePermission, type Session } from '../session.js';
import { mdtmSet } from './extensions.js';
import { exists } from './transfer.js';

/** DELE: removes a file (a directory needs RMD). */
export async function dele(s: Session, arg: string): Promise<void> {
  requirePermission(s, 'delete');
  const path = s.resolveFile(arg);
  const st = await lstatOf(s, path);
  if (st.isDirectory()) throw new FtpError(550, `${path}: Is a directory; use RMD.`);
  await s.vfs.unlink(path);
  reportChange(s, 'delete', path);
  return s.reply(250, `File ${path} deleted.`);
}

/** RNFR (RFC 959 §4.1.3): 350 when the source exists; RNTO must follow at once. */
export async function rnfr(s: Session, arg: string): Promise<void> {
  requirePermission(s, 'rename');
  const path = s.resolve(arg);
  if (path === '/') throw new FtpError(550, 'Cannot rename the root directory.');
  const st = await lstatOf(s, path);
  // A trailing slash names a folder (rename(2) gives ENOTDIR for `file/`), as at RNTO.
  if (arg.endsWith('/') && !st.isDirectory()) throw new FtpError(550, `${arg}: Not a directory.`);
  s.renameFrom = path;
  return s.reply(350, 'Ready for RNTO.');
}

/** RNTO: 503 without a preceding RNFR. */
export async function rnto(s: Session, arg: string): Promise<void> {
  const from = s.renameFrom;
  s.renameFrom = null;
  if (!from) throw new FtpError(503, 'RNFR required first.');
  requirePermission(s, 'rename');
  const to = s.resolveNew(arg);
  if (to === '/') throw new FtpError(553, '/: the root cannot be replaced.');
  if (to.startsWith(from + '/')) throw new FtpError(553, 'Cannot move a directory into itself.');
  // A trailing slash names a folder (as rename(2) has it): a file is not renamed to `name/` as if it were `name`.
  if (arg.endsWith('/') && !(await lstatOf(s, from)).isDirectory()) throw new FtpError(553, `${arg}: Not a directory.`);
  // For the audit: a rename over a file replaces it (asked before, so a little racy; told, not enforced). Asked
  // only when something records it: on remote storage the question is a round trip.
  const replaced = changesRecorded(s) && (await exists(s, to));
  await s.vfs.rename(from, to);
  reportChange(s, 'rename', from, { to, ...(replaced ? { replaced } : {}) });
  return s.reply(250, 'Rename successful.');
}

/** SIZE (RFC 3659 §4): bytes of a plain file; a directory is 550. */
export async function size(s: Session, arg: string): Promise<void> {
  const path = s.resolveFile(arg);
  const st = await s.vfs.stat(path);
  if (!st.isFile()) throw new FtpError(550, `${path}: not a plain file.`);
  // Digits only (RFC 3659 §4): a provider's NaN, negative or text size is its error, not a size to tell.
  if (!Number.isSafeInteger(st.size) || st.size < 0) throw storageNonsense(path, 'size');
  // The stored size in TYPE A too, as vsftpd and pure-ftpd answer. RFC 3659 §4 would have the octets a TYPE A RETR
  // sends (LF as CRLF), which only reading the whole file tells, and pyftpdlib and proftpd refuse SIZE in TYPE A
  // instead; but sessions start in TYPE A, and scripts ask the size before any TYPE I (Python's ftplib `size()`)
  // and take the answer for the file's size.
  return s.reply(213, String(st.size));
}

/** 451: storage answered with something that is not a value (a size or time it cannot have), not the client's error. */
function storageNonsense(path: string, what: string): FtpError {
  return new FtpError(451, `${path}: storage gave no valid ${what}.`);
}

/** MDTM (RFC 3659 §3): modification time in UTC, `YYYYMMDDHHMMSS`. */
export async function mdtm(s: Session, arg: string): Promise<void> {
  if (await mdtmSet(s, arg)) return;
  const path = s.resolveFile(arg);
  const st = await s.vfs.stat(path);
  if (!st.isFile()) throw new FtpError(550, `${path}: not a plain file.`);
  let time: string;
  try {
    time = formatFtpTime(st.mtimeMs);
  } catch {
    // A time outside what the reply can say (NaN, before year 1000 or after 9999): storage's answer, not a 501.
    throw storageNonsense(path, 'modification time');
  }
  return s.reply(213, time);
}

async function lstatOf(s: Session, path: string) {
  const fs = s.vfs;
  return fs.lstat ? fs.lstat(path) : fs.stat(path);
}

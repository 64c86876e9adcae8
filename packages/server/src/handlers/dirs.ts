import { quotePath } from '@ftp/protocol';
import { FtpError } from '../errors.js';
import { reportChange } from '../change-log.js';
import { requirePermission, type Session } from '../session.js';

/** PWD (RFC 959 §4.1.3, Appendix II): 257 with the path quoted, `"` doubled. */
export function pwd(s: Session): Promise<void> | void {
  return s.reply(257, `${quotePath(s.cwd)} is the current directory.`);
}

/**
 * CWD: enters a directory that exists. Without an argument, the user's home: RFC 1738 §3.2.2 maps an empty segment
 * of a URL (`ftp://host//etc/motd`) to a CWD with an empty argument, and tnftp sends just that (pure-ftpd and
 * pyftpdlib answer it the same way; a 501 failed the whole download).
 */
export async function cwd(s: Session, arg: string): Promise<void> {
  const path = arg === '' ? s.home : s.resolve(arg);
  await enter(s, path);
  return s.reply(250, `Directory changed to ${s.cwd}.`);
}

/** CDUP: the parent of the working directory (RFC 959 says 200; 250 is what most servers send and clients accept). */
export async function cdup(s: Session): Promise<void> {
  await enter(s, s.resolve('..'));
  return s.reply(250, `Directory changed to ${s.cwd}.`);
}

async function enter(s: Session, path: string): Promise<void> {
  const st = await s.vfs.stat(path);
  if (!st.isDirectory()) throw new FtpError(550, `${path}: Not a directory.`);
  // A folder the server's own user may not search (no execute permission) is refused here, as chdir(2) refuses it:
  // entered, every command in it would fail.
  await s.vfs.checkEnter?.(path);
  s.cwd = path;
}

/** MKD (RFC 959 Appendix II): 257 with the new directory's absolute path. */
export async function mkd(s: Session, arg: string): Promise<void> {
  requirePermission(s, 'mkdir');
  const path = s.resolveNew(arg);
  if (path === '/') throw new FtpError(550, '/: File exists.');
  await s.vfs.mkdir(path);
  reportChange(s, 'make-folder', path);
  return s.reply(257, `${quotePath(path)} created.`);
}

/** RMD: removes an empty directory. The root, the working directory and its ancestors stay. */
export async function rmd(s: Session, arg: string): Promise<void> {
  requirePermission(s, 'rmdir');
  const path = s.resolve(arg);
  if (path === '/') throw new FtpError(550, 'Cannot remove the root directory.');
  if (s.cwd === path || s.cwd.startsWith(path + '/')) throw new FtpError(550, `${path}: is the current directory or contains it.`);
  await s.vfs.rmdir(path);
  reportChange(s, 'remove-folder', path);
  return s.reply(250, `Directory ${path} removed.`);
}

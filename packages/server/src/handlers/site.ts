import { formatFtpTime, parseSiteChmod, parseSiteCommand, parseSiteUtime } from '@ftp/protocol';
import { FtpError } from '../errors.js';
import { reportChange } from '../change-log.js';
import { setModificationTime } from './extensions.js';
import { printable, requirePermission, type Session } from '../session.js';

type SiteHandler = (s: Session, arg: string) => Promise<void> | void;

/**
 * The mode bits a client may set: read, write and execute for owner, group and others. Setuid, setgid and sticky
 * are dropped: an FTP user could otherwise upload a program and make it run as the account the server writes files
 * as (root, for a server started as root), for any local user.
 */
const CLIENT_MODE_BITS = 0o777;

/** SITE CHMOD <mode> <path>: permission bits, through the provider's `chmod` (see {@link CLIENT_MODE_BITS}). */
async function chmod(s: Session, arg: string): Promise<void> {
  const { mode: asked, path: name } = parseSiteChmod(arg);
  const path = s.resolve(name);
  const mode = asked & CLIENT_MODE_BITS;
  // Served only where storage has chmod (see SITE_COMMANDS).
  await s.vfs.chmod!(path, mode);
  reportChange(s, 'chmod', path, { mode });
  if (mode === asked) return s.reply(200, 'SITE CHMOD command successful.');
  // Said, not silent: a mirroring client should not believe the special bits were set.
  return s.reply(200, `SITE CHMOD command successful: mode set to 0${mode.toString(8).padStart(3, '0')} (setuid, setgid and sticky bits are not allowed).`);
}

/** SITE SYMLINK <target> <link>: a symbolic link, through the provider's `symlink` (which keeps it inside the root). */
async function symlink(s: Session, arg: string): Promise<void> {
  const parts = arg.trim().split(/\s+/);
  if (parts.length !== 2) throw new FtpError(501, 'Syntax: SITE SYMLINK <target> <link>.');
  const [target, link] = parts as [string, string];
  // The target is stored as the client gave it (in the form of names the storage keeps); resolving it is the
  // provider's job, and it refuses targets that leave the root.
  // Served only where storage has links (see SITE_COMMANDS).
  const linkPath = s.resolveNew(link);
  await s.vfs.symlink!(s.forStorage(target), linkPath);
  reportChange(s, 'symlink', linkPath, { to: s.forStorage(target) });
  return s.reply(200, 'SITE SYMLINK command successful.');
}

/**
 * SITE UTIME, in either form (see `parseSiteUtime`): the modification time, as MFMT sets it, for clients that know
 * no MFMT (lftp before 4.9.3 and ncftp keep uploaded files' times this way).
 */
async function utime(s: Session, arg: string): Promise<void> {
  const { time, path } = parseSiteUtime(arg);
  const kept = await setModificationTime(s, path, time);
  return s.reply(200, `SITE UTIME command successful (Modify=${formatFtpTime(kept)}).`);
}

/**
 * The SITE subcommands: the second-level command table. `served` says whether the user's storage can do it: SITE
 * HELP lists only those, as HELP and FEAT list only the commands served (a mirroring client reading the list, lftp,
 * would otherwise try SITE CHMOD on every file of an S3 bucket and report each 502).
 */
const SITE_COMMANDS: Readonly<Record<string, { help: string; served?: (s: Session) => boolean; handler?: SiteHandler }>> = {
  CHMOD: { help: 'SITE CHMOD <mode> <path>', served: (s) => s.vfs.chmod !== undefined, handler: chmod },
  SYMLINK: { help: 'SITE SYMLINK <target> <link>', served: (s) => s.vfs.symlink !== undefined && s.vfs.supportsSymlinks !== false, handler: symlink },
  UTIME: { help: 'SITE UTIME <time> <path> | SITE UTIME <path> <atime> <mtime> <ctime> UTC', served: (s) => s.vfs.setTimes !== undefined, handler: utime },
  HELP: { help: 'SITE HELP' },
};

/** SITE (RFC 959 §4.1.3): dispatches to the subcommand table; off entirely with `siteCommands: false`. */
export async function site(s: Session, arg: string): Promise<void> {
  if (!s.settings.siteCommands) throw new FtpError(502, 'SITE commands are disabled.');
  const { verb, arg: rest } = parseSiteCommand(arg);
  if (verb === 'HELP') {
    const served = Object.values(SITE_COMMANDS).filter((c) => c.served?.(s) !== false);
    return s.reply(214, ['The following SITE commands are recognized:', ...served.map((c) => ` ${c.help}`), 'End.']);
  }
  const sub = SITE_COMMANDS[verb];
  if (!sub?.handler) throw new FtpError(500, `SITE ${printable(verb)} not understood.`);
  if (sub.served?.(s) === false) throw new FtpError(502, `SITE ${verb} is not supported by this filesystem.`);
  requirePermission(s, 'site');
  return sub.handler(s, rest);
}

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './load.js';
import type { FtpdConfig } from './schema.js';

/**
 * What `check-config` and the start add to the file's validation about homes (see {@link localHomeProblems}):
 * throws a {@link ConfigError} when the anonymous home is not a folder; returns a warning for each user's that is not.
 */
export function checkLocalHomes(config: FtpdConfig, file: string): string[] {
  const problems = localHomeProblems(config);
  const stopping = problems.filter((p) => p.stopsStart).map((p) => p.message);
  if (stopping.length > 0) throw new ConfigError(file, stopping);
  return problems.map((p) => p.message);
}

/**
 * The same problems as warnings only, for a SIGHUP reload: the users applied, a user whose home is a file is refused
 * at login as at start, and the operator is told now rather than by that user.
 */
export function localHomeWarnings(config: FtpdConfig): string[] {
  return localHomeProblems(config).map((p) => p.message);
}

/** A home on a local disk that exists and is not a folder. */
interface LocalHomeProblem {
  /** `users[0].home: home /afile on backend "disk" (/srv/ftp/afile) is not a folder: …` */
  message: string;
  /** The anonymous home: ftpd does not start (a user's home only refuses that user's logins). */
  stopsStart: boolean;
}

/**
 * The homes on local backends that exist and are not folders: a user's logins are then refused (users.ts), and
 * anonymous access stops the start, as `--anonymous-root` naming a file does. `check-config` and the start can know
 * it only for local disks (other backends are met at the first login). A user's home is a warning, not an error:
 * the disk may change before a login (the file removed, the home is then made), and the other users are served.
 */
function localHomeProblems(c: FtpdConfig): LocalHomeProblem[] {
  const problems: LocalHomeProblem[] = [];
  const look = (where: string, backend: string, home: string, outcome: string, stopsStart = false): void => {
    const b = c.backends[backend];
    if (b?.type !== 'local' || home === '/') return;
    const path = join(b.root, home);
    if (!isFolderOrAbsent(path)) problems.push({ message: `${where}: home ${home} on backend "${backend}" (${path}) is not a folder: ${outcome}`, stopsStart });
  };
  c.users.forEach((u, i) => {
    const refused = `user "${u.name}" cannot log in until it is one`;
    look(`users[${i}].home`, u.backend, u.home, refused);
    for (const [at, m] of Object.entries(u.mounts)) look(`users[${i}].mounts.${at}.home`, m.backend, m.home, refused);
  });
  if (c.anonymous) look('anonymous.home', c.anonymous.backend, c.anonymous.home, 'anonymous access cannot be served there', true);
  return problems;
}

/** False for a file, or a path under a file; true for a folder, a path not there yet, or one that cannot be looked at. */
function isFolderOrAbsent(path: string): boolean {
  try {
    // Not `throwIfNoEntry: false`: it answers undefined for a path under a file (ENOTDIR) as for a missing one.
    return statSync(path).isDirectory();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOTDIR';
  }
}

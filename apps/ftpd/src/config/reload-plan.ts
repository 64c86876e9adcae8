import { isDeepStrictEqual } from 'node:util';
import { configProblems, type FtpdConfig } from './schema.js';

/**
 * The sections a running ftpd cannot change: its sockets, open backends, server object, processes and logger were
 * made from them at start. A reload that finds them changed says so and leaves them for a restart.
 */
export const RESTART_SECTIONS = ['listeners', 'backends', 'server', 'anonymous', 'workers', 'bans', 'metrics', 'log', 'shutdownGrace'] as const;

/** How the users of a reload differ from the running ones, by name. */
export interface UsersChange {
  total: number;
  added: number;
  removed: number;
  changed: number;
}

/** What a reload may apply of a newly read configuration, and what it must leave (see {@link planReload}). */
export interface ReloadPlan {
  /** The configuration to run once applied: the running one, with the new users (unless refused) and `tls` section. */
  config: FtpdConfig;
  /** The sections that differ from the running ones and wait for a restart, as an operator reads them. */
  restartNeeded: string[];
  /** Why the new users cannot be applied (the running ones then stay), or null; the users change otherwise. */
  users: { refused: string } | { change: UsersChange };
  /** The TLS files to read again (the new file's section), or null: no TLS, or TLS turned on or off (a restart). */
  tls: NonNullable<FtpdConfig['tls']> | null;
}

/**
 * Compares a configuration read again (SIGHUP) with the running one. Users may change at once, as long as every
 * backend they name runs as the new file defines it (a backend is opened at start only); the TLS files are read
 * again; any other section that changed waits for a restart.
 */
export function planReload(running: FtpdConfig, next: FtpdConfig): ReloadPlan {
  const restartNeeded: string[] = RESTART_SECTIONS.filter((s) => !isDeepStrictEqual(running[s], next[s]));
  if (!running.tls !== !next.tls) restartNeeded.push(next.tls ? 'tls (added)' : 'tls (removed)');
  const tls = running.tls && next.tls ? next.tls : null;
  const refused = backendsNotRunning(running, next) ?? disagreements({ ...running, users: next.users, ...(tls ? { tls } : {}) });
  const users = refused ? { refused } : { change: usersChange(running, next) };
  return { config: { ...running, users: refused ? running.users : next.users, ...(tls ? { tls } : {}) }, restartNeeded, users, tls };
}

/**
 * What the new users would contradict in the sections that keep running (the new file was checked with its own:
 * a user quota in a file that turns workers off, a user requiring TLS in one that turns it on), in one line; or null.
 */
function disagreements(wouldRun: FtpdConfig): string | null {
  const problems = configProblems(wouldRun);
  if (problems.length === 0) return null;
  return problems.map(({ path, message }) => `${path.join('.')}: ${message} (with the running ${path[0] === 'users' ? 'settings' : path[0]})`).join('; ');
}

/** The new users that name a backend which is new or defined otherwise than the open one, said in one line; or null. */
function backendsNotRunning(running: FtpdConfig, next: FtpdConfig): string | null {
  const problems: string[] = [];
  for (const u of next.users) {
    const named = new Set([u.backend, ...Object.values(u.mounts).map((m) => m.backend)]);
    for (const name of named) {
      const open = running.backends[name];
      if (isDeepStrictEqual(open, next.backends[name])) continue;
      problems.push(`user "${u.name}" uses backend "${name}", which is ${open ? 'defined otherwise than the running one' : 'new'}`);
    }
  }
  return problems.length > 0 ? problems.join('; ') : null;
}

function usersChange(running: FtpdConfig, next: FtpdConfig): UsersChange {
  const before = new Map(running.users.map((u) => [u.name, u]));
  const after = new Set(next.users.map((u) => u.name));
  let added = 0;
  let changed = 0;
  for (const u of next.users) {
    const was = before.get(u.name);
    if (!was) added++;
    else if (!isDeepStrictEqual(was, u)) changed++;
  }
  const removed = running.users.filter((u) => !after.has(u.name)).length;
  return { total: next.users.length, added, removed, changed };
}

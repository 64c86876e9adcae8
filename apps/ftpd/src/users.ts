import { RateLimiter, type FtpDriver, type LoginResult, type Permissions } from '@ftp/server';
import { errorCodeOf, mounts, quota, readOnly, scoped, type FsProvider } from '@ftp/vfs';
import type { FtpdConfig, UserConfig } from './config/schema.js';
import { decoyCostOf, parseHash, verifyPassword } from './passwords.js';

const ALL: readonly (keyof Permissions)[] = ['read', 'write', 'append', 'delete', 'rename', 'mkdir', 'rmdir', 'site'];

/** The permissions of a user as the server wants them: every one named, `false` for those not granted. */
export function permissionsOf(p: UserConfig['permissions']): Permissions {
  const granted = new Set<string>(p === 'all' ? ALL : p === 'read-only' ? ['read'] : p);
  return Object.fromEntries(ALL.map((k) => [k, granted.has(k)])) as unknown as Permissions;
}

/** What a configured user gets at login, built once: views and limiters are shared by all their sessions. */
interface Account {
  hash: NonNullable<ReturnType<typeof parseHash>>;
  login: LoginResult;
  /** Creates the user's home (and mounted homes) on the backends, once, at the first login. */
  ensureHomes: () => Promise<void>;
}

/** Failures of a home's mkdir that another try would meet again. */
const PERMANENT_REFUSALS: ReadonlySet<string> = new Set(['EROFS', 'EACCES', 'EPERM', 'ENOTDIR']);

/**
 * mkdir -p of a user's homes on their backends, until it has worked once. A failure does not stop the login (a
 * read-only backend keeps its error for the commands), and is tried again at the next login: remembered, a first
 * login while the backend was down left the user without a home, every command 550, until ftpd restarted.
 */
export function homeMaker(backends: Map<string, FsProvider>, homes: Array<{ backend: string; home: string }>): () => Promise<void> {
  let made: Promise<void> | null = null;
  return () => {
    made ??= (async () => {
      let failed = false;
      for (const { backend, home } of homes) {
        if (home === '/') continue;
        await backends.get(backend)?.mkdir(home, { recursive: true }).catch((err: unknown) => {
          // A backend that refuses for good (read-only, permissions) is not asked again at every login.
          if (!PERMANENT_REFUSALS.has(errorCodeOf(err) ?? '')) failed = true;
        });
      }
      if (failed) made = null;
    })();
    return made;
  };
}

function viewOf(backends: Map<string, FsProvider>, backend: string, home: string): FsProvider {
  const p = backends.get(backend);
  if (!p) throw new Error(`unknown backend "${backend}"`);
  return home === '/' ? p : scoped(p, home);
}

/**
 * The `authenticate` half of ftpd's driver: users from the configuration, scrypt-checked (unknown users cost the
 * same check, so timing does not tell who exists), each in their own view of their backend.
 */
export function accountsDriver(
  config: FtpdConfig,
  backends: Map<string, FsProvider>,
): Pick<FtpDriver, 'authenticate'> & { anonymous: { fs: FsProvider } | undefined; makeAnonymousHome: () => Promise<void> } {
  const accounts = new Map<string, Account>();
  for (const u of config.users) {
    const permissions = permissionsOf(u.permissions);
    let fs = viewOf(backends, u.backend, u.home);
    const table = Object.entries(u.mounts);
    if (table.length > 0) fs = mounts(fs, Object.fromEntries(table.map(([at, m]) => [at, viewOf(backends, m.backend, m.home)])));
    if (u.quota !== undefined) fs = quota(fs, { bytes: u.quota });
    // A user who may change nothing gets a read-only view too: then FEAT and every write path agree.
    if (ALL.every((k) => k === 'read' || !permissions[k])) fs = readOnly(fs);
    const rateLimits = {
      ...(u.downloadRate > 0 ? { download: new RateLimiter(u.downloadRate) } : {}),
      ...(u.uploadRate > 0 ? { upload: new RateLimiter(u.uploadRate) } : {}),
    };
    accounts.set(u.name, {
      hash: parseHash(u.passwordHash)!,
      ensureHomes: homeMaker(backends, [{ backend: u.backend, home: u.home }, ...Object.values(u.mounts)]),
      login: { fs, permissions, rateLimits, ...(u.tlsRequired ? { tlsRequired: u.tlsRequired } : {}) },
    });
  }
  const decoyCost = decoyCostOf([...accounts.values()].map((a) => a.hash));
  const anonymous = config.anonymous ? { fs: readOnly(viewOf(backends, config.anonymous.backend, config.anonymous.home)) } : undefined;
  return {
    anonymous,
    // Anonymous logins have no hook of ours to make the home at the first one: it is made at start, as
    // --anonymous-root is (else 230, then 550 for every LIST).
    makeAnonymousHome: config.anonymous ? homeMaker(backends, [config.anonymous]) : async () => {},
    async authenticate(_session, user, password) {
      const account = accounts.get(user);
      const ok = await verifyPassword(password, account?.hash ?? null, decoyCost);
      if (!ok || !account) return null;
      // A new user's home appears on first login (an S3 prefix or SQL folder nobody made yet).
      await account.ensureHomes();
      return account.login;
    },
  };
}

import { isDeepStrictEqual } from 'node:util';
import { AccountUnavailableError, RateLimiter, type FtpDriver, type LoginResult, type Permissions } from '@ftp/server';
import { errorCodeOf, mounts, quota, readOnly, scoped, type FsProvider } from '@ftp/vfs';
import type { FtpdConfig, UserConfig } from './config/schema.js';
import { decoyCostOf, parseHash, verifyPassword, type ScryptCost } from './passwords.js';

const ALL: readonly (keyof Permissions)[] = ['read', 'write', 'append', 'delete', 'rename', 'mkdir', 'rmdir', 'site'];

/** The permissions of a user as the server wants them: every one named, `false` for those not granted. */
export function permissionsOf(p: UserConfig['permissions']): Permissions {
  const granted = new Set<string>(p === 'all' ? ALL : p === 'read-only' ? ['read'] : p);
  return Object.fromEntries(ALL.map((k) => [k, granted.has(k)])) as unknown as Permissions;
}

/** What a configured user gets at login, built once: views and limiters are shared by all their sessions. */
interface Account {
  /** The settings it was built from: at a reload, an account whose settings did not change is kept as it is. */
  user: UserConfig;
  hash: NonNullable<ReturnType<typeof parseHash>>;
  login: LoginResult;
  /** Creates the user's home (and mounted homes) on the backends, once, at the first login: see {@link homeMaker}. */
  ensureHomes: () => Promise<HomeNotFolder[]>;
}

/** Failures of a home's mkdir that another try would meet again. */
const PERMANENT_REFUSALS: ReadonlySet<string> = new Set(['EROFS', 'EACCES', 'EPERM', 'ENOTDIR']);

/**
 * How long a home made (or found) is trusted before a login makes sure of it again (ms): a home removed while ftpd
 * runs (an operator resetting an account, a clean-up) is made again at a login after this, as at the first, rather
 * than leaving the user 550 for everything until a restart. One `mkdir -p` per user this often, whatever the rate
 * of logins.
 */
export const HOME_RECHECK_MS = 10_000;

/** A home that exists and is not a folder (or lies under a file): a login there would see a file as `/`. */
export interface HomeNotFolder {
  backend: string;
  home: string;
}

/**
 * mkdir -p of a user's homes on their backends, at the first login and again at a login {@link HOME_RECHECK_MS}
 * after the last time it worked; resolves with the homes that are not folders (none when all is well). Another
 * failure does not stop the login (a read-only backend keeps its error for the commands), and is tried again at
 * the next login: remembered, a first login while the backend was down left the user without a home, every command
 * 550, until ftpd restarted. A home that is not a folder is looked at again at every login, so that the login
 * works as soon as the operator has put it right.
 */
export function homeMaker(backends: Map<string, FsProvider>, homes: Array<{ backend: string; home: string }>): () => Promise<HomeNotFolder[]> {
  let made: Promise<HomeNotFolder[]> | null = null;
  let madeAt = 0;
  return () => {
    if (made !== null && madeAt !== 0 && performance.now() - madeAt >= HOME_RECHECK_MS) made = null;
    made ??= (async () => {
      madeAt = 0;
      let failed = false;
      const notFolders: HomeNotFolder[] = [];
      for (const { backend, home } of homes) {
        if (home === '/') continue;
        const provider = backends.get(backend);
        await provider?.mkdir(home, { recursive: true }).catch(async (err: unknown) => {
          if (await isNotFolder(provider, home, err)) notFolders.push({ backend, home });
          // A backend that refuses for good (read-only, permissions) is not asked again at every login.
          else if (!PERMANENT_REFUSALS.has(errorCodeOf(err) ?? '')) failed = true;
        });
      }
      if (failed || notFolders.length > 0) made = null;
      else madeAt = performance.now();
      return notFolders;
    })();
    return made;
  };
}

/** Whether a failed mkdir -p of `home` failed because a file is there, or above it. */
async function isNotFolder(provider: FsProvider, home: string, mkdirError: unknown): Promise<boolean> {
  const code = errorCodeOf(mkdirError);
  if (code !== 'EEXIST' && code !== 'ENOTDIR') return false;
  try {
    return !(await provider.stat(home)).isDirectory();
  } catch (err) {
    return errorCodeOf(err) === 'ENOTDIR';
  }
}

/** `home /afile on backend "disk"`, for a log line or an error. */
export function describeHomes(homes: readonly HomeNotFolder[]): string {
  return homes.map((h) => `home ${h.home} on backend "${h.backend}"`).join(', ');
}

function viewOf(backends: Map<string, FsProvider>, backend: string, home: string): FsProvider {
  const p = backends.get(backend);
  if (!p) throw new Error(`unknown backend "${backend}"`);
  return home === '/' ? p : scoped(p, home);
}

/** What a user's homes depend on: an account rebuilt with these unchanged keeps its home maker (homes made stay made). */
function homesOf(u: UserConfig): Array<{ backend: string; home: string }> {
  return [{ backend: u.backend, home: u.home }, ...Object.values(u.mounts)];
}

/** What a user's view depends on: rebuilt with these unchanged, an account keeps its view (and its quota's count). */
function viewInputsOf(u: UserConfig): unknown {
  return { backend: u.backend, home: u.home, mounts: u.mounts, quota: u.quota, readOnly: isReadOnly(permissionsOf(u.permissions)) };
}

/** A user who may change nothing: their view is read-only too, so that FEAT and every write path agree. */
function isReadOnly(permissions: Permissions): boolean {
  return ALL.every((k) => k === 'read' || !permissions[k]);
}

function viewFor(backends: Map<string, FsProvider>, u: UserConfig): FsProvider {
  let fs = viewOf(backends, u.backend, u.home);
  const table = Object.entries(u.mounts);
  if (table.length > 0) fs = mounts(fs, Object.fromEntries(table.map(([at, m]) => [at, viewOf(backends, m.backend, m.home)])));
  if (u.quota !== undefined) fs = quota(fs, { bytes: u.quota });
  if (isReadOnly(permissionsOf(u.permissions))) fs = readOnly(fs);
  return fs;
}

/**
 * The account of user `u`. `previous` is the one a reload replaces: kept whole when `u` did not change, so that the
 * sessions opened before and after share one set of limiters, one view and one quota count. Else the parts whose
 * settings did not change are taken over from it (a new password keeps the limiters, the quota's count and the
 * homes already made); a changed part is made anew, for new logins only (open sessions keep the one they had).
 */
function accountOf(backends: Map<string, FsProvider>, u: UserConfig, previous: Account | undefined): Account {
  if (previous && isDeepStrictEqual(previous.user, u)) return previous;
  const same = (pick: (u: UserConfig) => unknown): boolean => previous !== undefined && isDeepStrictEqual(pick(previous.user), pick(u));
  const was = previous?.login.rateLimits;
  const limiter = (rate: number, kept: RateLimiter | undefined): RateLimiter | undefined => (rate <= 0 ? undefined : (kept ?? new RateLimiter(rate)));
  const download = limiter(u.downloadRate, same((x) => x.downloadRate) ? was?.download : undefined);
  const upload = limiter(u.uploadRate, same((x) => x.uploadRate) ? was?.upload : undefined);
  return {
    user: u,
    hash: parseHash(u.passwordHash)!,
    ensureHomes: previous && same(homesOf) ? previous.ensureHomes : homeMaker(backends, homesOf(u)),
    login: {
      fs: previous && same(viewInputsOf) ? previous.login.fs : viewFor(backends, u),
      permissions: permissionsOf(u.permissions),
      rateLimits: { ...(download ? { download } : {}), ...(upload ? { upload } : {}) },
      ...(u.tlsRequired ? { tlsRequired: u.tlsRequired } : {}),
    },
  };
}

/** Where a refused login's reason goes (pino's logger is one): the operator's log. */
export interface ErrorLog {
  error(fields: object, message: string): void;
}

/** The configured users as `authenticate` looks them up, with the decoy cost for names that are not among them. */
interface UserTable {
  accounts: Map<string, Account>;
  decoyCost: ScryptCost;
}

function userTable(backends: Map<string, FsProvider>, users: readonly UserConfig[], previous: Map<string, Account>): UserTable {
  const accounts = new Map<string, Account>();
  for (const u of users) accounts.set(u.name, accountOf(backends, u, previous.get(u.name)));
  return { accounts, decoyCost: decoyCostOf([...accounts.values()].map((a) => a.hash)) };
}

/**
 * The `authenticate` half of ftpd's driver: users from the configuration, scrypt-checked (unknown users cost the
 * same check, so timing does not tell who exists), each in their own view of their backend. `replaceUsers` puts
 * another list of users in service (SIGHUP): new logins get it, sessions already logged in keep what they had.
 */
export function accountsDriver(
  config: FtpdConfig,
  backends: Map<string, FsProvider>,
  logger: ErrorLog,
): Pick<FtpDriver, 'authenticate'> & {
  anonymous: { fs: FsProvider } | undefined;
  /** Makes the anonymous home; rejects when it is not a folder (anonymous logins would see a file). */
  makeAnonymousHome: () => Promise<void>;
  /** Replaces the users; every backend they name must be open in `backends` (else it throws, and nothing changes). */
  replaceUsers: (users: readonly UserConfig[]) => void;
} {
  let table = userTable(backends, config.users, new Map());
  const anonymous = config.anonymous ? { fs: readOnly(viewOf(backends, config.anonymous.backend, config.anonymous.home)) } : undefined;
  return {
    anonymous,
    // Anonymous logins have no hook of ours to make the home at the first one (nor to refuse them): it is made at
    // start, as --anonymous-root is (else 230, then 550 for every LIST), and one that is a file stops the start.
    async makeAnonymousHome() {
      if (!config.anonymous) return;
      const notFolders = await homeMaker(backends, [config.anonymous])();
      if (notFolders.length > 0) throw new Error(`anonymous: ${describeHomes(notFolders)} is not a folder`);
    },
    replaceUsers(users) {
      table = userTable(backends, users, table.accounts);
    },
    async authenticate(_session, user, password) {
      // `ftpd hash-password` refuses an empty password, but a hash made elsewhere may be of one: a bare `PASS` then
      // logged in whoever knew the name. Refused for every name alike, it tells nothing about who exists.
      if (password === '') return null;
      const { accounts, decoyCost } = table;
      let account = accounts.get(user);
      const ok = await verifyPassword(password, account?.hash ?? null, decoyCost);
      if (!ok || !account) return null;
      // Users reloaded while the password was checked: a user removed, or whose password changed, meanwhile (a
      // leaked one, revoked) does not get in; otherwise the account as it is now.
      if (table.accounts !== accounts) {
        const now = table.accounts.get(user);
        if (now === undefined || now.user.passwordHash !== account.user.passwordHash) return null;
        account = now;
      }
      // A new user's home appears on first login (an S3 prefix or SQL folder nobody made yet).
      const notFolders = await account.ensureHomes();
      if (notFolders.length > 0) {
        // Served, the user would see a file as / (LIST showing one entry named /, STOR 551): the operator's mistake,
        // said where the operator looks. The client, whose password was right, is told so and counts no failed login:
        // counted as one, a client retrying banned its address (and everyone behind it) until the ban ran out.
        logger.error({ user, homes: notFolders }, `login refused: user "${user}": ${describeHomes(notFolders)} is not a folder`);
        throw new AccountUnavailableError('Your home folder is not available; the administrator has been told.');
      }
      return account.login;
    },
  };
}

import { setTimeout as sleep } from 'node:timers/promises';
import { latin1ForEscapes } from '@ftp/protocol';
import { readOnly, resolvePath } from '@ftp/vfs';
import type { LoginResult } from '../driver.js';
import type { FairSlots, ReleaseSlot } from '../fair-slots.js';
import { AccountUnavailableError, FtpError } from '../errors.js';
import { banKey } from '../login-guard.js';
import { ALL_PERMISSIONS, NO_LIMITS, type Session } from '../session.js';
import type { TlsRequirement } from '../settings.js';

const TLS_RANK: Record<TlsRequirement, number> = { none: 0, control: 1, all: 2 };

function isAnonymousName(s: Session, name: string): boolean {
  const anonymous = s.ctx.anonymous;
  return anonymous !== undefined && (anonymous.users ?? ['anonymous']).some((u) => u.toLowerCase() === name.toLowerCase());
}

/** USER (RFC 959 §4.1.1): remembers the name; a new USER logs the previous user out. */
/** Longest user name accepted. */
const MAX_USER_LENGTH = 256;

export function user(s: Session, arg: string): Promise<void> | void {
  resetLogin(s);
  s.userCommands++;
  const limit = s.settings.maxLoginAttemptsPerSession;
  if (limit > 0 && s.userCommands > limit * 3) {
    s.log.warn('too many USER commands');
    void s.reply(421, 'Too many login attempts on this connection.');
    s.close();
    return;
  }
  if (arg.length > MAX_USER_LENGTH) throw new FtpError(501, 'User name too long.');
  // Refuse before the password crosses the network in clear (vsftpd's force_local_logins_ssl).
  if (TLS_RANK[s.tlsRequired] >= TLS_RANK.control && !s.secure) throw new FtpError(530, 'TLS required: use AUTH TLS before logging in.');
  // Credentials are compared as text, not stored as names: bytes that are not UTF-8 are read as Latin-1 (a byte
  // escape would become U+FFFD in any UTF-8 comparison, and every such byte would then match every other).
  const user = latin1ForEscapes(arg);
  s.user = user;
  s.setLogBindings(s.secure ? { user, tls: true } : { user });
  if (isAnonymousName(s, user)) return s.reply(331, 'Anonymous login ok, send your e-mail address as password.');
  return s.reply(331, 'Password required.');
}

/**
 * PASS: asks the driver. A failure never says whether the user exists, and is answered after a growing delay.
 * Logins from one address take turns (`maxConcurrentLoginsPerIp`), each holding its turn through that delay:
 * parallel guesses are answered one after another, each seeing the failures (and the ban) of those before it. The
 * check itself waits for one of the server's `maxConcurrentLogins` slots, held only while the driver works, so a
 * delay never holds up another address.
 */
export async function pass(s: Session, arg: string): Promise<void> {
  if (s.authenticated) return s.reply(230, 'Already logged in.');
  if (s.user === undefined) throw new FtpError(503, 'Login with USER first.');
  const name = s.user;
  const anonymous = isAnonymousName(s, name);
  // Anonymous logins check no password: nothing to wait for.
  if (anonymous && s.ctx.anonymous) return login(s, name, arg, true);
  // A client that leaves while it waits leaves the line at once: it costs no check, and its session is not kept.
  const watch = s.closeWatch();
  try {
    const release = await slotUnlessClosed(s.ctx.loginTurns, banKey(s.remoteAddress), watch.signal);
    if (release === undefined) return;
    let abandoned: Promise<unknown> | undefined;
    try {
      if (s.isClosed) return;
      return await login(s, name, arg, anonymous, { closed: watch.signal, abandoned: (check) => (abandoned = check) });
    } finally {
      if (abandoned === undefined) release();
      else holdUntilSettled(s, abandoned, release);
    }
  } finally {
    watch.done();
  }
}

/**
 * Gives a login slot back once an abandoned check (its client left while the driver worked) settles: the limits
 * bound the driver's work, not sessions, so a client that resets after each PASS must not start checks without
 * limit. A driver that never answers holds it for `loginTimeout` at most (a second if none), not for ever.
 */
function holdUntilSettled(s: Session, check: Promise<unknown>, release: ReleaseSlot): void {
  let held = true;
  const free = (): void => {
    if (!held) return;
    held = false;
    clearTimeout(limit);
    release();
  };
  const limit = setTimeout(free, Math.max(1, s.settings.loginTimeout) * 1000);
  limit.unref();
  check.then(free, free);
}

/** How a password check learns that its client left, and tells its caller that it goes on without it. */
interface CheckWatch {
  closed?: AbortSignal | undefined;
  /** Called with the driver's check when the client left while it ran: it goes on, holding its slots. */
  abandoned?: ((check: Promise<unknown>) => void) | undefined;
}

/** A slot of `slots`, or undefined when the session closed while it waited (the only way `acquire` fails). */
async function slotUnlessClosed(slots: FairSlots, key: string, closed?: AbortSignal): Promise<ReleaseSlot | undefined> {
  try {
    return await slots.acquire(key, closed);
  } catch {
    return undefined;
  }
}

/**
 * The driver's answer, in one of the server's check slots; undefined when the client left while it waited, or
 * while the driver worked (the session ends at `loginTimeout` at the latest). A check whose client left goes on
 * holding its slots until the driver answers, or `loginTimeout` more has passed: an answer that never comes (an
 * LDAP or database call without a timeout) no longer holds them, and every later login behind them, for ever.
 * Anything but a login result is a failed login.
 */
/** The driver's answer; its {@link AccountUnavailableError}, when it threw one, is handed back (see `login`). */
async function checkPassword(s: Session, name: string, arg: string, watch: CheckWatch = {}): Promise<LoginResult | AccountUnavailableError | null | undefined> {
  const release = await slotUnlessClosed(s.ctx.loginSlots, banKey(s.remoteAddress), watch.closed);
  if (release === undefined) return undefined;
  if (s.isClosed) {
    release();
    return undefined;
  }
  const check = new Promise<unknown>((resolve) => resolve(s.ctx.driver.authenticate(s, name, latin1ForEscapes(arg)))).then(
    (answer) => {
      if (answer === null || isLoginResult(answer)) return answer;
      // `undefined` (a function that falls off its end), `true`, `{}`: never access, and counted as a failure.
      s.log.error({ returned: typeof answer }, 'authenticator returned neither a login result ({ fs }) nor null; login refused');
      return null;
    },
    (err: unknown) => {
      if (AccountUnavailableError.isInstance(err)) return err;
      s.log.warn({ err }, 'authenticator failed');
      return null;
    },
  );
  const answer = await unlessClosed(check, watch.closed);
  if (answer !== CLIENT_LEFT) {
    release();
    return answer;
  }
  // The check goes on without its client: its slots stay taken until it ends, and a wrong password it finds still
  // counts against the address (a guesser that resets after each PASS is delayed and banned like any other).
  holdUntilSettled(s, check, release);
  watch.abandoned?.(check);
  void check.then(async (result) => {
    if (result !== null) return;
    const verdict = await s.ctx.guard.failure(s.remoteAddress);
    s.log.info({ banned: verdict.banned }, 'login failed after the client left');
    if (verdict.banned) s.ctx.emit('ban', { remoteAddress: s.remoteAddress });
  }).catch((err: unknown) => s.log.warn({ err }, 'could not count a failed login'));
  return undefined;
}

const CLIENT_LEFT = Symbol('client left');

/** `work`'s value, or {@link CLIENT_LEFT} as soon as `closed` aborts. */
function unlessClosed<T>(work: Promise<T>, closed: AbortSignal | undefined): Promise<T | typeof CLIENT_LEFT> {
  if (closed === undefined) return work;
  if (closed.aborted) {
    work.catch(() => {});
    return Promise.resolve(CLIENT_LEFT);
  }
  return new Promise((resolve, reject) => {
    const left = (): void => resolve(CLIENT_LEFT);
    closed.addEventListener('abort', left, { once: true });
    work.then(resolve, reject).finally(() => closed.removeEventListener('abort', left));
  });
}

/** Whether the driver's answer is a login result: an object whose `fs` is a filesystem (has `stat`). */
function isLoginResult(answer: unknown): answer is LoginResult {
  if (typeof answer !== 'object' || answer === null) return false;
  const fs = (answer as { fs?: unknown }).fs;
  return typeof fs === 'object' && fs !== null && typeof (fs as { stat?: unknown }).stat === 'function';
}

async function login(s: Session, name: string, arg: string, anonymous: boolean, watch: CheckWatch = {}): Promise<void> {
  // A ban decided while this connection was open (or while it waited for its check) applies to it too.
  const banned = s.ctx.guard.isBanned(s.remoteAddress);
  if (typeof banned === 'boolean' ? banned : await banned) {
    await s.reply(421, 'Too many failed logins from your address; try again later.');
    s.close();
    return;
  }
  let result: LoginResult | null = null;
  if (anonymous && s.ctx.anonymous) {
    result = { fs: readOnly(s.ctx.anonymous.fs), permissions: { write: false, append: false, delete: false, rename: false, mkdir: false, rmdir: false, site: false } };
  } else {
    const checked = await checkPassword(s, name, arg, watch);
    if (checked === undefined) return;
    if (AccountUnavailableError.isInstance(checked)) {
      // Answered with the driver's words and not counted as a failed login (see the error); 530, not 421: curl
      // takes any 421 for a timeout ("Timeout was reached"), and the session may go on.
      s.user = undefined;
      s.log.info({ user: name, reason: checked.message }, 'login refused: account unavailable');
      return s.reply(530, checked.message || 'This account cannot be served now.');
    }
    result = checked;
  }
  const required = result?.tlsRequired && TLS_RANK[result.tlsRequired] > TLS_RANK[s.tlsRequired] ? result.tlsRequired : s.tlsRequired;
  if (result && TLS_RANK[required] >= TLS_RANK.control && !s.secure) {
    // Answered exactly as a wrong password, so a clear-text client cannot tell a right one.
    s.log.info('login refused: TLS required for this user');
    return failedLogin(s, name);
  }
  if (!result) return failedLogin(s, name);
  s.fs = result.fs;
  s.permissions = result.permissions ? { ...ALL_PERMISSIONS, ...result.permissions } : ALL_PERMISSIONS;
  s.userLimits = result.rateLimits ?? NO_LIMITS;
  s.tlsRequired = required;
  s.anonymous = anonymous;
  s.home = resolvePath('/', result.home ?? '/');
  s.cwd = s.home;
  // The root is always a directory, and were it unreachable the fallback would be the root anyway: no stat.
  if (s.home !== '/') await checkHome(s);
  s.authenticated = true;
  s.ctx.emit('login', { session: s.id, user: name, remoteAddress: s.remoteAddress });
  s.logAt('info')?.info({ anonymous }, 'logged in');
  return s.reply(230, anonymous ? 'Anonymous access granted, restrictions apply.' : 'Login successful.');
}

/** Logs in at the root, with a warning, when the user's home cannot be entered. */
async function checkHome(s: Session): Promise<void> {
  const fs = s.fs!;
  try {
    const st = await fs.stat(s.home);
    if (!st.isDirectory()) throw new Error('home is not a directory');
  } catch (err) {
    // A home that cannot be entered is the operator's mistake; log in at the root rather than refuse.
    s.log.warn({ err, home: s.home }, 'home directory unavailable, starting at /');
    s.home = '/';
    s.cwd = '/';
  }
}

async function failedLogin(s: Session, name: string): Promise<void> {
  s.ctx.emit('login:failed', { session: s.id, user: name, remoteAddress: s.remoteAddress });
  s.user = undefined;
  s.loginFailures++;
  const verdict = await s.ctx.guard.failure(s.remoteAddress);
  s.log.info({ failures: s.loginFailures, banned: verdict.banned }, 'login failed');
  if (verdict.banned) s.ctx.emit('ban', { remoteAddress: s.remoteAddress });
  if (verdict.delayMs > 0) await sleep(verdict.delayMs);
  if (verdict.banned) {
    await s.reply(421, 'Too many failed logins; try again later.');
    s.close();
    return;
  }
  if (s.loginFailures >= s.settings.maxLoginAttemptsPerSession && s.settings.maxLoginAttemptsPerSession > 0) {
    // As vsftpd's max_login_fails: the last failure is answered, then the connection is closed.
    await s.reply(530, 'Login incorrect.');
    s.close();
    return;
  }
  throw new FtpError(530, 'Login incorrect.');
}

/** ACCT: accounts are not used (RFC 959 allows 202 when superfluous). */
export function acct(s: Session): Promise<void> | void {
  return s.reply(202, 'ACCT not needed.');
}

/** REIN (RFC 959 §4.1.1): back to the state of a new connection, keeping the control connection (and its TLS). */
export function rein(s: Session): Promise<void> | void {
  if (s.transfer) s.transfer.stop('aborted');
  resetLogin(s);
  s.setDataSetup(null);
  // TYPE, MODE, REST, RANG, EPSV ALL, OPTS MLST and OPTS HASH among them; the connection's TLS stays.
  s.resetParameters();
  return s.reply(220, 'Service ready for new user.');
}

/** QUIT: 221, then the connection closes once the reply is flushed. */
export async function quit(s: Session): Promise<void> {
  await s.reply(221, 'Goodbye.');
  s.close();
}

/** Forgets the user (REIN, and AUTH after a USER or a login in clear text); the connection and its TLS stay. */
export function resetLogin(s: Session): void {
  s.authenticated = false;
  s.anonymous = false;
  s.user = undefined;
  // Later lines must not name a user who is no longer logged in (TLS and CCC still hold).
  const { user: _previous, ...connection } = s.logContext;
  s.setLogBindings(connection);
  s.fs = null;
  s.home = '/';
  s.cwd = '/';
  s.renameFrom = null;
  s.permissions = ALL_PERMISSIONS;
  s.userLimits = NO_LIMITS;
  s.tlsRequired = s.settings.tlsRequired;
}

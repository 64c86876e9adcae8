import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { isPublicHost } from '@ftp/server';
import { OPTION_VARIABLES, OPTIONS, type OptionName } from './flags.js';

export { USAGE } from './flags.js';

/** What `ftpd` runs with: the command line over the environment (`FTPD_*`) over the embedded defaults. */
export interface FtpdOptions {
  host: string;
  port: number;
  root: string;
  user: string;
  password: string;
  /** True when the password was generated (and so must be printed for the operator). */
  passwordGenerated: boolean;
  passivePortRange: [number, number];
  publicHost: string | undefined;
  logLevel: string;
  /** PEM certificate and key files: enable AUTH TLS (and implicit FTPS with `implicitPort`). */
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /** Make a throw-away certificate at start (for trying FTPS locally). */
  selfSigned: boolean;
  /** Port for implicit FTPS, if any. */
  implicitPort: number | undefined;
  tlsRequired: 'none' | 'control' | 'all';
  /** Whether PROT P data connections must resume the control connection's TLS session (@ftp/server's `tlsSessionReuse`). */
  tlsSessionReuse: boolean;
  /** Allow CCC after login. */
  allowCcc: boolean;
  tlsUploadRequiresCloseNotify: boolean;
  /** A folder served read-only to user `anonymous`; none by default. */
  anonymousRoot: string | undefined;
  maxLoginFailures: number | undefined;
  banDuration: number | undefined;
  /** Addresses and networks never banned (`--ban-exempt`); undefined: the server's default (loopback). */
  banExempt: string[] | undefined;
  /** Milliseconds before answering a failed login (growing with each failure). */
  loginDelay: number | undefined;
  /** Most concurrent sessions (421 past it); 0 means unlimited. */
  maxSessions: number | undefined;
  /** Metadata calls on the main thread (the local disk's default); false for network or FUSE file systems. */
  syncMetadata: boolean;
  /** Processes serving the port together (1: this one alone). */
  workers: number;
  /** Offer MODE Z (deflate on data connections); off by default, see `modeZ` in @ftp/server. */
  modeZ: boolean;
}

/**
 * `--port -1` as `--port=-1`: a value that starts with a dash and a digit is the option's value, to be checked like
 * any other ("expected a port number"), where parseArgs would call the option "ambiguous".
 */
function joinDashedValues(argv: readonly string[]): string[] {
  const takesValue = new Set<string>();
  for (const [name, o] of Object.entries(OPTIONS)) {
    if (o.type !== 'string') continue;
    takesValue.add(`--${name}`);
    if ('short' in o) takesValue.add(`-${o.short}`);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (takesValue.has(a) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a.startsWith('--') ? a : `--${longNameOf(a)}`}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

function longNameOf(short: string): string {
  return Object.entries(OPTIONS).find(([, o]) => 'short' in o && `-${o.short}` === short)?.[0] ?? short;
}

/** Thrown for a bad command line: the message says which option and what was expected. */
export class UsageError extends Error {}

/**
 * Parses argv and the environment into options, or throws a UsageError naming what was wrong as the operator gave
 * it: the option (`--port`) or its variable (`FTPD_PORT`).
 */
export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): FtpdOptions | 'help' | 'version' {
  let parsed;
  try {
    parsed = parseArgs({ args: joinDashedValues(argv), strict: true, allowPositionals: false, options: OPTIONS });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  if (v.version) return 'version';
  const given = (name: OptionName): Given | undefined => givenOption(v, env, name);
  const port = parsePort(given('port') ?? DEFAULT_PORT);
  const pasvRange = given('pasv-range') ?? { text: '30000-30999', from: '--pasv-range' };
  const range = pasvRange.text.split('-');
  if (range.length !== 2) throw new UsageError(`${pasvRange.from}: expected two ports as MIN-MAX, e.g. 30000-30999`);
  const min = parsePort({ text: range[0] ?? '', from: pasvRange.from });
  const max = parsePort({ text: range[1] ?? '', from: pasvRange.from });
  if (min > max) throw new UsageError(`${pasvRange.from}: MIN must not be above MAX`);
  // Port 0 asks the kernel for any port: no range could hold it (refused at the start, exit 1, before).
  if (min < 1) throw new UsageError(`${pasvRange.from}: ports must be 1-65535`);
  const logLevel = given('log-level') ?? { text: 'info', from: '--log-level' };
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel.text)) {
    throw new UsageError(`${logLevel.from}: expected one of fatal, error, warn, info, debug, trace, silent; got ${logLevel.text}`);
  }
  const password = given('password');
  // An empty password would let anyone in who knows the user name (`PASS` with nothing after it); a password of
  // spaces is a password. Left out, one is generated.
  if (password?.text === '') throw new UsageError(`${password.from}: must not be empty (leave it out and a password is generated)`);
  const user = given('user') ?? { text: 'ftp', from: '--user' };
  if (user.text === '') throw new UsageError(`${user.from}: must not be empty`);
  const anonymousRoot = given('anonymous-root');
  // The server matches the anonymous names first, in any case: a user of that name could never log in. (`ftp`, the
  // other anonymous name, stays the real user's when --user names it: see startFtpd.)
  if (anonymousRoot !== undefined && user.text.toLowerCase() === 'anonymous') {
    throw new UsageError(`${user.from} ${user.text}: that is the anonymous login while ${anonymousRoot.from} is given; choose another user name`);
  }
  const tlsCert = given('tls-cert')?.text;
  const tlsKey = given('tls-key')?.text;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  const selfSigned = v['self-signed'] === true;
  if (selfSigned && tlsCert !== undefined) throw new UsageError('--self-signed or --tls-cert/--tls-key, not both');
  const hasTls = selfSigned || tlsCert !== undefined;
  const implicit = given('implicit-port');
  const implicitPort = implicit === undefined ? undefined : parsePort(implicit);
  if (implicitPort !== undefined && !hasTls) throw new UsageError('--implicit-port needs --tls-cert and --tls-key (or --self-signed)');
  // Port 0 is any free port for each listener: only the same real port is a conflict.
  if (implicitPort !== undefined && implicitPort !== 0 && implicitPort === port) {
    throw new UsageError(`${implicit!.from} and ${given('port')?.from ?? '--port'} are both ${port}: the plain and the implicit FTPS listener need a port each`);
  }
  const tlsRequired = given('tls-required') ?? { text: 'none', from: '--tls-required' };
  if (tlsRequired.text !== 'none' && tlsRequired.text !== 'control' && tlsRequired.text !== 'all') {
    throw new UsageError(`${tlsRequired.from}: expected none, control or all; got ${tlsRequired.text}`);
  }
  if (tlsRequired.text !== 'none' && !hasTls) throw new UsageError('--tls-required needs --tls-cert and --tls-key (or --self-signed)');
  if (v['no-tls-session-reuse'] === true && v['require-tls-session-reuse'] === true) {
    throw new UsageError('--no-tls-session-reuse and --require-tls-session-reuse contradict each other');
  }
  const workers = given('workers') ?? { text: '1', from: '--workers' };
  const publicHost = given('public-host');
  // Checked here, as every other option: the server's own check came at the start, as "cannot start" and exit 1.
  if (publicHost !== undefined && !isPublicHost(publicHost.text)) {
    throw new UsageError(`${publicHost.from}: expected an IPv4 address or a DNS name (PASV has no IPv6), got ${JSON.stringify(publicHost.text)}`);
  }
  return {
    tlsCert,
    tlsKey,
    selfSigned,
    implicitPort,
    tlsRequired: tlsRequired.text,
    tlsSessionReuse: v['require-tls-session-reuse'] === true,
    allowCcc: v['allow-ccc'] === true,
    tlsUploadRequiresCloseNotify: v['strict-tls-eof'] === true,
    anonymousRoot: anonymousRoot?.text,
    maxLoginFailures: optionalCount(given('max-login-failures')),
    banDuration: optionalCount(given('ban-duration')),
    banExempt: networkList(given('ban-exempt')),
    loginDelay: optionalCount(given('login-delay')),
    maxSessions: optionalCount(given('max-sessions')),
    workers: parseWorkers(workers.text, workers.from),
    syncMetadata: !switchedOn(v, env, 'async-metadata'),
    modeZ: switchedOn(v, env, 'mode-z'),
    host: given('host')?.text ?? '127.0.0.1',
    port,
    root: given('root')?.text ?? './data',
    user: user.text,
    password: password?.text ?? randomBytes(9).toString('base64url'),
    passwordGenerated: password === undefined,
    passivePortRange: [min, max],
    publicHost: publicHost?.text,
    logLevel: logLevel.text,
  };
}

const DEFAULT_PORT: Given = { text: '2121', from: '--port' };

/** A value as the operator gave it, and where (`--port` or `FTPD_PORT`): what its error message names. */
interface Given {
  text: string;
  from: string;
}

type ParsedValues = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

/** A string option from the command line, else from its variable (when it has one); undefined when neither. */
function givenOption(values: ParsedValues, env: NodeJS.ProcessEnv, name: OptionName): Given | undefined {
  const flag = values[name];
  if (typeof flag === 'string') return { text: flag, from: `--${name}` };
  const variable = (OPTION_VARIABLES as Partial<Record<OptionName, string>>)[name];
  const text = variable === undefined ? undefined : env[variable];
  return text === undefined ? undefined : { text, from: variable! };
}

const SWITCH_WORDS: ReadonlyMap<string, boolean> = new Map([
  ...['1', 'true', 'yes', 'on'].map((w) => [w, true] as const),
  ...['0', 'false', 'no', 'off'].map((w) => [w, false] as const),
]);

/**
 * A switch given on the command line, or by its variable as 1, true, yes or on (off: 0, false, no, off; any case;
 * empty is unset, as compose files write `FTPD_MODE_Z=${FTPD_MODE_Z:-}`). Another value is refused:
 * `FTPD_MODE_Z=maybe` was silently off.
 */
function switchedOn(values: ParsedValues, env: NodeJS.ProcessEnv, name: 'async-metadata' | 'mode-z'): boolean {
  if (values[name] === true) return true;
  const variable = OPTION_VARIABLES[name];
  const text = env[variable];
  if (text === undefined || text.trim() === '') return false;
  const on = SWITCH_WORDS.get(text.trim().toLowerCase());
  if (on === undefined) throw new UsageError(`${variable}: expected 1, true, yes or on (or 0, false, no, off), got ${JSON.stringify(text)}`);
  return on;
}

/** `auto` (one per CPU) or a count from 1 to 256. */
export function parseWorkers(text: string, option: string): number {
  if (text === 'auto') return availableParallelism();
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 256) throw new UsageError(`${option}: expected auto or a number from 1 to 256, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** A comma-separated list of addresses or networks, each checked (`''` is the empty list). */
function networkList(given: Given | undefined): string[] | undefined {
  if (given === undefined) return undefined;
  const list = given.text.split(',').map((n) => n.trim()).filter((n) => n !== '');
  for (const n of list) {
    const [address = '', bits] = n.split('/');
    const max = isIP(address) === 4 ? 32 : isIP(address) === 6 ? 128 : 0;
    if (max === 0 || (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > max))) {
      throw new UsageError(`${given.from}: expected addresses or networks such as 10.0.0.0/8, got ${JSON.stringify(n)}`);
    }
  }
  return list;
}

function optionalCount(given: Given | undefined): number | undefined {
  if (given === undefined) return undefined;
  if (!/^\d+$/.test(given.text)) throw new UsageError(`${given.from}: expected a whole number, got ${JSON.stringify(given.text)}`);
  return Number(given.text);
}

function parsePort({ text, from }: Given): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 0 || n > 65535) throw new UsageError(`${from}: expected a port number 0-65535, got ${JSON.stringify(text)}`);
  return n;
}

import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';

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

export const USAGE = `Usage: ftpd [options]
       ftpd --config FILE        serve what a YAML configuration file says (env FTPD_CONFIG)
       ftpd check-config FILE    validate a configuration file and exit (0: valid, 1: not)
       ftpd hash-password        read a password (hidden at a terminal, else from stdin), print its hash

Runs an FTP server over a local folder. With no options it serves ./data on 127.0.0.1:2121
for one user whose password is printed at start.

Options:
  -p, --port <n>          control port (default 2121, env FTPD_PORT)
  -H, --host <addr>       listen address (default 127.0.0.1, env FTPD_HOST)
  -r, --root <dir>        folder served (default ./data, created if missing, env FTPD_ROOT)
  -u, --user <name>       user name (default ftp, env FTPD_USER)
  -P, --password <pass>   password (default: generated and printed, env FTPD_PASSWORD)
      --pasv-range <a-b>  passive port range (default 30000-30999, env FTPD_PASV_RANGE)
      --public-host <ip>  address advertised in PASV replies: IPv4, or a DNS name looked up every minute (env FTPD_PUBLIC_HOST)
      --log-level <lvl>   fatal, error, warn, info, debug, trace or silent (default info, env FTPD_LOG_LEVEL)
      --tls-cert <file>   PEM certificate: enables AUTH TLS (env FTPD_TLS_CERT)
      --tls-key <file>    PEM private key (env FTPD_TLS_KEY)
      --self-signed       make a throw-away certificate at start, for trying FTPS locally
      --implicit-port <n> also listen for implicit FTPS on this port (env FTPD_IMPLICIT_PORT)
      --tls-required <m>  none, control or all (default none, env FTPD_TLS_REQUIRED)
      --require-tls-session-reuse  refuse TLS data connections that do not resume the control session (vsftpd's
                          require_ssl_reuse; Python's ftplib, and curl from its second transfer, then fail)
      --no-tls-session-reuse  accept them (the default)
      --allow-ccc         allow CCC (clear control connection after login, for NAT helpers)
      --strict-tls-eof    fail TLS uploads that end without close_notify (vsftpd's strict_ssl_read_eof)
      --anonymous-root <dir>  serve this folder read-only to users anonymous and ftp (ftp only when --user is
                          not ftp; env FTPD_ANONYMOUS_ROOT)
      --max-login-failures <n>  failed logins from one address before a ban (default 10; 0: never)
      --ban-duration <s>  seconds a banned address is refused (default 900)
      --ban-exempt <list> addresses or networks never banned, comma-separated (default 127.0.0.0/8,::1;
                          '' bans every address)
      --login-delay <ms>  pause before answering a failed login, growing per failure (default 1000)
      --max-sessions <n>  most concurrent sessions, 421 past it (default 1000; 0: unlimited; env FTPD_MAX_SESSIONS)
      --workers <n|auto>  processes serving the port together, the kernel spreading connections (default 1;
                          auto: one per CPU; Linux and FreeBSD; env FTPD_WORKERS)
      --mode-z            offer MODE Z (deflate on data connections; off by default: lftp turns it on by itself
                          and loses the end of big listings with it; env FTPD_MODE_Z=1)
      --async-metadata    do file-system metadata calls in the thread pool: for NFS, SMB or FUSE roots, where
                          one call can hang (default: on the main thread, fastest on a local disk;
                          env FTPD_ASYNC_METADATA=1)
  -h, --help              this help
  -v, --version           the version
`;

/** Every option of the zero-config mode, for parseArgs. */
const OPTIONS = {
  port: { type: 'string', short: 'p' },
  host: { type: 'string', short: 'H' },
  root: { type: 'string', short: 'r' },
  user: { type: 'string', short: 'u' },
  password: { type: 'string', short: 'P' },
  'pasv-range': { type: 'string' },
  'public-host': { type: 'string' },
  'log-level': { type: 'string' },
  'tls-cert': { type: 'string' },
  'self-signed': { type: 'boolean' },
  'tls-key': { type: 'string' },
  'implicit-port': { type: 'string' },
  'tls-required': { type: 'string' },
  'no-tls-session-reuse': { type: 'boolean' },
  'require-tls-session-reuse': { type: 'boolean' },
  'allow-ccc': { type: 'boolean' },
  'strict-tls-eof': { type: 'boolean' },
  'anonymous-root': { type: 'string' },
  'max-login-failures': { type: 'string' },
  'ban-duration': { type: 'string' },
  'ban-exempt': { type: 'string' },
  'login-delay': { type: 'string' },
  'max-sessions': { type: 'string' },
  'async-metadata': { type: 'boolean' },
  'mode-z': { type: 'boolean' },
  workers: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const satisfies NonNullable<Parameters<typeof parseArgs>[0]>['options'];

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

/** Parses argv and the environment into options, or throws a UsageError. */
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
  const port = parsePort(v.port ?? env.FTPD_PORT ?? '2121', '--port');
  const range = (v['pasv-range'] ?? env.FTPD_PASV_RANGE ?? '30000-30999').split('-');
  if (range.length !== 2) throw new UsageError('--pasv-range: expected two ports as MIN-MAX, e.g. 30000-30999');
  const min = parsePort(range[0] ?? '', '--pasv-range');
  const max = parsePort(range[1] ?? '', '--pasv-range');
  if (min > max) throw new UsageError('--pasv-range: MIN must not be above MAX');
  // Port 0 asks the kernel for any port: no range could hold it (refused at the start, exit 1, before).
  if (min < 1) throw new UsageError('--pasv-range: ports must be 1-65535');
  const logLevel = v['log-level'] ?? env.FTPD_LOG_LEVEL ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new UsageError(`--log-level: expected one of fatal, error, warn, info, debug, trace, silent; got ${logLevel}`);
  }
  const password = v.password ?? env.FTPD_PASSWORD;
  const user = v.user ?? env.FTPD_USER ?? 'ftp';
  if (user === '') throw new UsageError('--user: must not be empty');
  const tlsCert = v['tls-cert'] ?? env.FTPD_TLS_CERT;
  const tlsKey = v['tls-key'] ?? env.FTPD_TLS_KEY;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  const selfSigned = v['self-signed'] === true;
  if (selfSigned && tlsCert !== undefined) throw new UsageError('--self-signed or --tls-cert/--tls-key, not both');
  const hasTls = selfSigned || tlsCert !== undefined;
  const implicit = v['implicit-port'] ?? env.FTPD_IMPLICIT_PORT;
  const implicitPort = implicit === undefined ? undefined : parsePort(implicit, '--implicit-port');
  if (implicitPort !== undefined && !hasTls) throw new UsageError('--implicit-port needs --tls-cert and --tls-key (or --self-signed)');
  const tlsRequired = v['tls-required'] ?? env.FTPD_TLS_REQUIRED ?? 'none';
  if (tlsRequired !== 'none' && tlsRequired !== 'control' && tlsRequired !== 'all') {
    throw new UsageError(`--tls-required: expected none, control or all; got ${tlsRequired}`);
  }
  if (tlsRequired !== 'none' && !hasTls) throw new UsageError('--tls-required needs --tls-cert and --tls-key (or --self-signed)');
  if (v['no-tls-session-reuse'] === true && v['require-tls-session-reuse'] === true) {
    throw new UsageError('--no-tls-session-reuse and --require-tls-session-reuse contradict each other');
  }
  return {
    tlsCert,
    tlsKey,
    selfSigned,
    implicitPort,
    tlsRequired,
    tlsSessionReuse: v['require-tls-session-reuse'] === true,
    allowCcc: v['allow-ccc'] === true,
    tlsUploadRequiresCloseNotify: v['strict-tls-eof'] === true,
    anonymousRoot: v['anonymous-root'] ?? env.FTPD_ANONYMOUS_ROOT,
    maxLoginFailures: optionalCount(v['max-login-failures'], '--max-login-failures'),
    banDuration: optionalCount(v['ban-duration'], '--ban-duration'),
    banExempt: networkList(v['ban-exempt'], '--ban-exempt'),
    loginDelay: optionalCount(v['login-delay'], '--login-delay'),
    maxSessions: optionalCount(v['max-sessions'] ?? env.FTPD_MAX_SESSIONS, '--max-sessions'),
    workers: parseWorkers(v.workers ?? env.FTPD_WORKERS ?? '1', '--workers'),
    syncMetadata: !switchedOn(v['async-metadata'], env.FTPD_ASYNC_METADATA),
    modeZ: switchedOn(v['mode-z'], env.FTPD_MODE_Z),
    host: v.host ?? env.FTPD_HOST ?? '127.0.0.1',
    port,
    root: v.root ?? env.FTPD_ROOT ?? './data',
    user,
    password: password ?? randomBytes(9).toString('base64url'),
    passwordGenerated: password === undefined,
    passivePortRange: [min, max],
    publicHost: v['public-host'] ?? env.FTPD_PUBLIC_HOST,
    logLevel,
  };
}

/** `auto` (one per CPU) or a count from 1 to 256. */
export function parseWorkers(text: string, option: string): number {
  if (text === 'auto') return availableParallelism();
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 256) throw new UsageError(`${option}: expected auto or a number from 1 to 256, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** A switch given on the command line, or in the environment as `1`, `true` or `yes` (any case). */
function switchedOn(flag: boolean | undefined, envValue: string | undefined): boolean {
  return flag === true || ['1', 'true', 'yes'].includes((envValue ?? '').toLowerCase());
}

/** A comma-separated list of addresses or networks, each checked (`''` is the empty list). */
function networkList(text: string | undefined, option: string): string[] | undefined {
  if (text === undefined) return undefined;
  const list = text.split(',').map((n) => n.trim()).filter((n) => n !== '');
  for (const n of list) {
    const [address = '', bits] = n.split('/');
    const max = isIP(address) === 4 ? 32 : isIP(address) === 6 ? 128 : 0;
    if (max === 0 || (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > max))) {
      throw new UsageError(`${option}: expected addresses or networks such as 10.0.0.0/8, got ${JSON.stringify(n)}`);
    }
  }
  return list;
}

function optionalCount(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`${option}: expected a whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

function parsePort(text: string, option: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 0 || n > 65535) throw new UsageError(`${option}: expected a port number 0-65535, got ${JSON.stringify(text)}`);
  return n;
}

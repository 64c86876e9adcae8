import type { parseArgs } from 'node:util';

/** The zero-config command line: its help text, its options as parseArgs takes them, and their `FTPD_*` variables. */

export const USAGE = `Usage: ftpd [options]
       ftpd --config FILE        serve what a YAML configuration file says (env FTPD_CONFIG)
       ftpd check-config FILE    validate one configuration file and exit (0: valid, 1: not, 2: no file or two)
       ftpd hash-password        read a password (hidden at a terminal, else from stdin), print its hash

Runs an FTP server over a local folder. With no options it serves ./data on 127.0.0.1:2121
for one user whose password is printed at start.

Options:
  -p, --port <n>          control port (default 2121, env FTPD_PORT)
  -H, --host <addr>       listen address (default 127.0.0.1, env FTPD_HOST)
  -r, --root <dir>        folder served (default ./data, created if missing, env FTPD_ROOT)
  -u, --user <name>       user name (default ftp, env FTPD_USER)
  -P, --password <pass>   password, not empty (default: generated and printed, env FTPD_PASSWORD)
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
                          not ftp; --user anonymous is refused with it; env FTPD_ANONYMOUS_ROOT)
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

A switch's variable takes 1, true, yes or on, and 0, false, no or off. With a configuration file (--config or
FTPD_CONFIG) these variables are not read, and ftpd warns of them: the file says everything.
`;

/** Every option of the zero-config mode, for parseArgs. */
export const OPTIONS = {
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

/** An option's long name (`port` for `--port`). */
export type OptionName = keyof typeof OPTIONS;

/**
 * The variable each option may be given by instead (the option wins when both are). The one list of them: the
 * zero-config mode reads them, and with a configuration file ftpd warns of those set (it refuses the options).
 */
export const OPTION_VARIABLES = {
  port: 'FTPD_PORT',
  host: 'FTPD_HOST',
  root: 'FTPD_ROOT',
  user: 'FTPD_USER',
  password: 'FTPD_PASSWORD',
  'pasv-range': 'FTPD_PASV_RANGE',
  'public-host': 'FTPD_PUBLIC_HOST',
  'log-level': 'FTPD_LOG_LEVEL',
  'tls-cert': 'FTPD_TLS_CERT',
  'tls-key': 'FTPD_TLS_KEY',
  'implicit-port': 'FTPD_IMPLICIT_PORT',
  'tls-required': 'FTPD_TLS_REQUIRED',
  'anonymous-root': 'FTPD_ANONYMOUS_ROOT',
  'max-sessions': 'FTPD_MAX_SESSIONS',
  workers: 'FTPD_WORKERS',
  'mode-z': 'FTPD_MODE_Z',
  'async-metadata': 'FTPD_ASYNC_METADATA',
} as const satisfies Partial<Record<OptionName, `FTPD_${string}`>>;

/** The zero-config variables set in `env` (set to anything, the empty string included), in the table's order. */
export function optionVariablesIn(env: NodeJS.ProcessEnv): string[] {
  return Object.values(OPTION_VARIABLES).filter((name) => env[name] !== undefined);
}

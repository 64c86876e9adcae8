import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { logOutput } from './log-output.js';
import { availableParallelism } from 'node:os';
import { DEFAULT_SETTINGS } from '@ftp/server';
import { parseOptions, startFtpd, USAGE, UsageError } from './index.js';
import { optionVariablesIn } from './flags.js';
import { idleReleaseQuietMs, releaseMemoryWhenIdle } from './idle-memory.js';
import { nativeStatus } from './native-status.js';
import { oneAtATime } from './one-at-a-time.js';
import { withoutPem } from './secret-text.js';
import { reportStartFailure } from './start-errors.js';
import { handleHangUps, ignoreHangUps } from './hang-ups.js';
import { NOTHING_TO_RELOAD, onHangUp } from './tls-reload.js';
import { applyFtpdV8Flags } from './v8-flags.js';
import { graceMsOf, type WorkerListener, type WorkerSetup } from './workers/messages.js';
import type { Supervisor } from './workers/supervisor.js';

// Before our code runs hot: Maglev alone keeps 4–7 MiB resident after a burst of logins (see v8-flags.ts).
applyFtpdV8Flags();
/**
 * Every serving ftpd process (each worker and the supervisor too) hands back the memory a burst of work grew, once
 * it has been quiet (see idle-memory.ts). False, after saying why, when FTPD_RELEASE_IDLE_MEMORY is not valid.
 */
function startIdleRelease(): boolean {
  let quietMs: number | null;
  try {
    quietMs = idleReleaseQuietMs(process.env);
  } catch (err) {
    process.stderr.write(`ftpd: ${(err as Error).message}\n`);
    return false;
  }
  if (quietMs !== null) releaseMemoryWhenIdle({ quietMs });
  return true;
}
// The configuration file's modules (YAML, the schema, the drivers) load only in the modes that use them, so the
// zero-config server starts light.
const configModules = async () => {
  const [{ ConfigError, loadConfig }, { checkConfiguredTls, readConfiguredTls }, { checkLocalHomes }] = await Promise.all([
    import('./config/load.js'),
    import('./config/tls-check.js'),
    import('./config/home-check.js'),
  ]);
  return { ConfigError, loadConfig, checkConfiguredTls, readConfiguredTls, checkLocalHomes };
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * What every serving process (a worker, the supervisor, a single server) sets up before it serves; false, after
 * saying why, when the idle release's setting is not valid. What ftpd prints to stdout and stderr (the banner,
 * warnings) is for a person, and a stream that fails (a full disk: ENOSPC; a closed pipe) must not end the server:
 * unheard, a failed write to them is an uncaught 'error' (with stderr on a full disk ftpd exited at start).
 */
function prepareToServe(): boolean {
  if (!startIdleRelease()) return false;
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  return true;
}

function makeLogger(level: string): Logger {
  // Pretty for a person at a terminal, JSON lines for log collectors (in batches while busy: log-output.ts).
  if (process.stdout.isTTY) return pino({ level }, pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' }));
  const output = logOutput();
  const logger = pino({ level }, output);
  output.onDropped = (count) => logger.warn({ dropped: count }, 'log lines dropped: the log output did not take them (not read, or failing)');
  return logger;
}

/** Reads a password: hidden at a terminal (asked twice), else the first line of standard input. */
async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    let text = '';
    for await (const chunk of stdin) {
      text += String(chunk);
      if (text.includes('\n')) break;
    }
    return text.split(/\r?\n/)[0] ?? '';
  }
  const ask = (prompt: string): Promise<string> =>
    new Promise((resolve) => {
      process.stderr.write(prompt);
      stdin.setRawMode(true);
      stdin.resume();
      let typed = '';
      const onData = (b: Buffer): void => {
        for (const ch of b.toString('utf8')) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') {
            stdin.off('data', onData);
            stdin.setRawMode(false);
            stdin.pause();
            process.stderr.write('\n');
            return resolve(typed);
          }
          if (ch === '\u0003') process.exit(130);
          typed = ch === '\u007f' ? typed.slice(0, -1) : typed + ch;
        }
      };
      stdin.on('data', onData);
    });
  const first = await ask('Password: ');
  const again = await ask('Again: ');
  if (first !== again) throw new UsageError('the passwords differ');
  return first;
}

async function hashPasswordCommand(): Promise<number> {
  const password = await readPassword();
  if (password === '') {
    process.stderr.write('ftpd hash-password: empty password\n');
    return 2;
  }
  const { hashPassword } = await import('./passwords.js');
  process.stdout.write(`${await hashPassword(password)}\n`);
  return 0;
}

async function checkConfigCommand(args: readonly string[]): Promise<number> {
  const [file] = args;
  if (!file || args.length > 1) {
    // A second file was silently not checked: `check-config a b` said only whether a was valid.
    process.stderr.write(`${args.length > 1 ? `ftpd check-config: one file at a time (got ${args.join(' ')})\n` : ''}Usage: ftpd check-config FILE\n`);
    return 2;
  }
  const { ConfigError, loadConfig, checkConfiguredTls, checkLocalHomes } = await configModules();
  try {
    const c = loadConfig(file);
    const warnings = [await checkConfiguredTls(c, file), ...checkLocalHomes(c, file)];
    for (const warning of warnings) if (warning) process.stderr.write(`${file}: warning: ${warning}\n`);
    process.stdout.write(
      `${file}: ok (${c.listeners.length} listener(s), ${Object.keys(c.backends).length} backend(s), ${c.users.length} user(s)${c.anonymous ? ', anonymous access' : ''})\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/** `ftpd --config FILE`: the whole server from a configuration file. */
async function serveConfig(file: string): Promise<number> {
  const { ConfigError, loadConfig, checkConfiguredTls, readConfiguredTls, checkLocalHomes } = await configModules();
  let config;
  let warnings;
  try {
    config = loadConfig(file);
    // Here, not only in each worker: a pair that cannot serve stops the start once, with the file's other problems' format.
    warnings = [await checkConfiguredTls(config, file), ...checkLocalHomes(config, file)];
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ftpd: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const logger = makeLogger(config.log.level);
  for (const warning of warnings) {
    if (!warning) continue;
    logger.warn(warning);
    process.stderr.write(`ftpd: warning: ${warning}\n`);
  }
  const { reloadConfiguration } = await import('./config-reload.js');
  // What runs now: SIGHUP compares the file with it, and replaces its users (see config-reload.ts).
  let running = config;
  const workers = config.workers === 'auto' ? availableParallelism() : config.workers;
  if (workers > 1) {
    const addresses = config.listeners.map((l) => ({ host: l.host, port: l.port }));
    const setupFor = (c: typeof config, ports: number[]): WorkerSetup => ({
      mode: 'config',
      config: { ...c, listeners: c.listeners.map((l, i) => ({ ...l, port: ports[i] ?? l.port })) },
      limits: sessionLimits(c.server).some((n) => n > 0),
    });
    return supervise(logger, {
      workers,
      addresses,
      settings: config.server,
      metrics: config.metrics,
      setupFor: (ports) => setupFor(config, ports),
      banner: listenersBanner,
      // Read and checked here, once: an invalid file is said in one line and no worker hears of it.
      reload: async (supervisor, ports) => {
        running = await reloadConfiguration(file, running, logger, {
          readTls: async (tls) => void (await readConfiguredTls(tls)),
          apply: (c, tls) => supervisor.reload({ setup: setupFor(c, ports), tls }),
        });
      },
    });
  }
  const { startFromConfig } = await import('./serve-config.js');
  const ftpd = await startFromConfig(config, logger).catch((err: unknown) => {
    reportStartFailure(logger, err);
    return null;
  });
  if (!ftpd) return 1;
  // A hang-up that came while it started (noted since cli.ts) is done now.
  const stopHangUps = handleHangUps(
    oneAtATime(logger, async () => {
      running = await reloadConfiguration(file, running, logger, { readTls: (tls) => ftpd.reloadTls(tls), apply: (c) => ftpd.replaceUsers(c.users) });
    }),
  );
  // Before the banner: a process manager or test may stop ftpd as soon as it reads it, and a SIGTERM that comes before
  // the handler is installed ends the process by the signal (not the exit code 0 of a graceful stop).
  const stopped = waitForStop(logger, (graceMs) => ftpd.close(graceMs), config.shutdownGrace * 1000);
  listenersBanner(ftpd.listeners);
  if (ftpd.metricsAddress) process.stderr.write(`  metrics on http://${ftpd.metricsAddress.address}:${ftpd.metricsAddress.port}/metrics\n`);
  logger.info({ listeners: ftpd.listeners, users: config.users.length, ...nativeStatus() }, 'ready');
  await stopped;
  stopHangUps();
  return 0;
}

/** Resolves once SIGINT or SIGTERM has stopped the server (running transfers get a few seconds). */
async function waitForStop(logger: Logger, close: (graceMs: number) => Promise<void>, graceMs: number): Promise<void> {
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      // A second signal while draining stops at once: the operator does not want to wait.
      if (stopping) {
        logger.info({ signal }, 'stopping now');
        void close(0);
        return;
      }
      stopping = true;
      ignoreHangUps();
      logger.info({ signal, graceMs }, 'shutting down: no new connections, running transfers may finish');
      void close(graceMs).then(resolve);
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
  logger.info('stopped');
  logger.flush?.();
}

function hostOf(l: { address: string; family: string }): string {
  return l.family === 'IPv6' ? `[${l.address}]` : l.address;
}

/** Says why the server could not start, in the log and on stderr; a port in use or a privileged port by name. */
function cannotStart(logger: Logger, err: NodeJS.ErrnoException, port: number | undefined): void {
  // The port the failed listen named (the implicit FTPS port is the second one tried); an EACCES from anything else
  // (the root's mkdir) says what it is about itself.
  const listening = err.syscall === 'listen' || err.syscall === 'bind';
  const which = (err as { port?: unknown }).port ?? port ?? '';
  const why = !listening ? undefined : err.code === 'EADDRINUSE' ? `port ${which} is in use` : err.code === 'EACCES' ? `no permission to listen on port ${which}` : undefined;
  reportStartFailure(logger, err, why);
}

/** The command line server's banner: where it serves, the certificate's fingerprint, who logs in. */
function serverBanner(
  options: { root: string; user: string; password: string; passwordGenerated: boolean },
  plain: { address: string; family: string; port: number },
  implicit: { port: number } | undefined,
  fingerprint: string | undefined,
): void {
  const shown = options.passwordGenerated ? options.password : '(as given)';
  process.stderr.write(
    `ftpd ${version()} serving ${options.root} on ftp://${hostOf(plain)}:${plain.port}\n` +
      (implicit ? `  implicit FTPS on ftps://${hostOf(plain)}:${implicit.port}\n` : '') +
      (fingerprint ? `  self-signed certificate, SHA-256 ${fingerprint}\n` : '') +
      `  user: ${options.user}\n  password: ${shown}\n`,
  );
}

/** A configured server's banner: one line per listener. */
function listenersBanner(listeners: ReadonlyArray<{ address: string; family: string; port: number; implicitTls: boolean }>): void {
  for (const l of listeners) process.stderr.write(`ftpd ${version()} listening on ${l.implicitTls ? 'ftps' : 'ftp'}://${hostOf(l)}:${l.port}\n`);
}

/** The session limits a supervisor counts for all workers: maxSessions and maxSessionsPerIp, defaults filled in. */
function sessionLimits(settings: { maxSessions?: number | undefined; maxSessionsPerIp?: number | undefined }): [number, number] {
  return [settings.maxSessions ?? DEFAULT_SETTINGS.maxSessions, settings.maxSessionsPerIp ?? DEFAULT_SETTINGS.maxSessionsPerIp];
}

/** What {@link supervise} runs. */
interface SupervisedServer {
  workers: number;
  /** The listeners' addresses, in order; a port 0 is chosen once for all workers. */
  addresses: Array<{ host: string; port: number }>;
  /** The session limits and passive ports, as the server settings say them. */
  settings: { maxSessions?: number | undefined; maxSessionsPerIp?: number | undefined; passivePortRange?: readonly [number, number] | undefined };
  metrics: { host: string; port: number } | undefined;
  /** What every worker runs, given the chosen ports. */
  setupFor: (ports: number[]) => WorkerSetup;
  /** Prints what is served, once the first worker listens. */
  banner: (listeners: WorkerListener[]) => void;
  /** SIGHUP's work once the workers serve (one at a time): what to tell them, given the ports chosen. */
  reload: (supervisor: Supervisor, ports: number[]) => Promise<void>;
}

/** Runs several worker processes on the same ports (see workers/supervisor.ts) until SIGINT or SIGTERM. */
async function supervise(logger: Logger, run: SupervisedServer): Promise<number> {
  if (!['linux', 'freebsd'].includes(process.platform)) {
    process.stderr.write(`ftpd: more than one worker needs SO_REUSEPORT port sharing, which Node offers on Linux and FreeBSD only (this is ${process.platform})\n`);
    return 1;
  }
  const { Supervisor, choosePorts } = await import('./workers/supervisor.js');
  const { passiveRangeProblem } = await import('./workers/passive-slices.js');
  const problem = passiveRangeProblem(run.settings.passivePortRange, run.workers);
  if (problem) {
    process.stderr.write(`ftpd: ${problem}\n`);
    return 1;
  }
  let ports: number[];
  try {
    ports = await choosePorts(run.addresses);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { port?: number };
    cannotStart(logger, e, e.port);
    return 1;
  }
  const [maxSessions, maxSessionsPerIp] = sessionLimits(run.settings);
  const reload = oneAtATime(logger, () => run.reload(supervisor, ports));
  const setup = run.setupFor(ports);
  const supervisor = new Supervisor({ workers: run.workers, setup, limits: { maxSessions, maxSessionsPerIp }, metrics: run.metrics, logger });
  let listeners: WorkerListener[];
  try {
    listeners = await supervisor.start();
  } catch (err) {
    reportStartFailure(logger, err);
    return 1;
  }
  // A hang-up that came while the workers started (noted since cli.ts) is done now.
  const stopHangUps = handleHangUps(reload);
  // Before the banner, as in serveConfig.
  // The grace is the workers' (each closes its own sessions); logged here as they will use it.
  const stopped = waitForStop(logger, () => supervisor.stop(), graceMsOf(setup));
  run.banner(listeners);
  process.stderr.write(`  ${run.workers} worker processes\n`);
  if (supervisor.metricsAddress) process.stderr.write(`  metrics on http://${supervisor.metricsAddress.address}:${supervisor.metricsAddress.port}/metrics\n`);
  logger.info({ listeners, workers: run.workers, ...nativeStatus() }, 'ready');
  await stopped;
  stopHangUps();
  return 0;
}

async function main(): Promise<number> {
  if (cluster.isWorker) {
    if (!prepareToServe()) return 2;
    const { runWorker } = await import('./workers/worker.js');
    return runWorker(makeLogger);
  }
  const argv = process.argv.slice(2);
  // `pnpm start -- --port 2222` (the README's form) hands the `--` on: a leading one separates nothing here.
  if (argv[0] === '--') argv.shift();
  if (argv[0] === 'hash-password') return hashPasswordCommand();
  if (argv[0] === 'check-config') return checkConfigCommand(argv.slice(1));
  const request = configRequest(argv, process.env);
  if (request) {
    // --help and --version answer whatever else is set (FTPD_CONFIG in a container's environment, say).
    if (request.others.some((a) => a === '--help' || a === '-h')) return printHelp();
    if (request.others.some((a) => a === '--version' || a === '-v')) return printVersion();
    if (request.file === '') return usageError(`${request.from} needs a file`);
    if (request.others.length > 0) {
      const why = request.from === 'FTPD_CONFIG' ? 'with FTPD_CONFIG set, ftpd takes no option' : '--config FILE takes no other option';
      return usageError(`${why}: the file says everything (got ${request.others.join(' ')})`);
    }
    // Said, not refused (silently ignored, FTPD_PORT=2222 left the file's port serving without a word): Kubernetes
    // and Docker links put FTPD_PORT=tcp://10.0.0.5:21 into every container beside a service named ftpd, and a
    // refusal stopped such a pod from ever starting.
    const variables = optionVariablesIn(process.env);
    if (variables.length > 0) {
      const why = request.from === 'FTPD_CONFIG' ? 'with FTPD_CONFIG set' : 'with --config FILE';
      process.stderr.write(
        `ftpd: warning: ${variables.join(', ')} ignored ${why}: ${variables.length === 1 ? 'an option variable' : 'option variables'} of the zero-config mode; the file says everything (its fields are overridden as FTPD_<SECTION>__<FIELD>, e.g. FTPD_LISTENERS__0__PORT)\n`,
      );
    }
    if (!prepareToServe()) return 2;
    return serveConfig(request.file);
  }
  let options;
  try {
    options = parseOptions(argv, process.env);
  } catch (err) {
    if (err instanceof UsageError) return usageError(err.message);
    throw err;
  }
  if (options === 'help') return printHelp();
  if (options === 'version') return printVersion();
  if (!prepareToServe()) return 2;
  const logger = makeLogger(options.logLevel);
  if (options.workers > 1) {
    const cliOptions = options;
    // Checked once here: each worker reading a broken pair would fail alone, after the supervisor had started.
    if (options.tlsCert && options.tlsKey) {
      const { CLI_TLS_NAMES, readTlsMaterial, validityWarning } = await import('./tls-material.js');
      try {
        const warning = validityWarning((await readTlsMaterial({ cert: options.tlsCert, key: options.tlsKey }, CLI_TLS_NAMES)).certificate, '--tls-cert');
        if (warning) logger.warn(warning);
      } catch (err) {
        reportStartFailure(logger, err);
        return 1;
      }
    }
    const addresses = [{ host: options.host, port: options.port }, ...(options.implicitPort !== undefined ? [{ host: options.host, port: options.implicitPort }] : [])];
    // One certificate for every worker: a client sees the same fingerprint whichever worker it reaches.
    const made = options.selfSigned ? await (await import('./self-signed.js')).selfSignedCertificate() : null;
    const tls = made ? { cert: made.cert.toString(), key: made.key.toString(), fingerprint: made.fingerprint } : null;
    const settings = { maxSessions: options.maxSessions, passivePortRange: options.passivePortRange };
    return supervise(logger, {
      workers: options.workers,
      addresses,
      settings,
      metrics: undefined,
      setupFor: (ports) => ({
        mode: 'cli',
        options: { ...cliOptions, port: ports[0] ?? cliOptions.port, implicitPort: cliOptions.implicitPort === undefined ? undefined : ports[1] },
        tls,
        limits: sessionLimits(settings).some((n) => n > 0),
      }),
      banner: (listeners) => {
        const plain = listeners.find((l) => !l.implicitTls);
        if (plain) serverBanner(cliOptions, plain, listeners.find((l) => l.implicitTls), tls?.fingerprint);
      },
      reload: async (supervisor) => {
        if (options.tlsCert === undefined) return logger.info(`SIGHUP: nothing to reload (${NOTHING_TO_RELOAD})`);
        // Each worker logs its own outcome.
        logger.info('SIGHUP: the workers read the TLS files again');
        supervisor.reload({ tls: true });
      },
    });
  }
  const ftpd = await startFtpd(options, logger).catch((err: NodeJS.ErrnoException) => {
    cannotStart(logger, err, options.port);
    return null;
  });
  if (!ftpd) return 1;
  const stopHangUps = onHangUp(logger, async () => ((await ftpd.reloadTls()) ? null : NOTHING_TO_RELOAD));
  const { address } = ftpd;
  // Before the banner, as in serveConfig.
  const stopped = waitForStop(logger, (graceMs) => ftpd.close(graceMs), CLI_SHUTDOWN_GRACE_MS);
  serverBanner(options, address, ftpd.implicitAddress, ftpd.fingerprint);
  logger.info({ port: address.port, host: address.address, root: options.root, user: options.user, ...nativeStatus() }, 'ready');
  await stopped;
  stopHangUps();
  return 0;
}

/** Running transfers' time to finish at SIGINT/SIGTERM in zero-config mode (a file's `shutdownGrace` says it there). */
const CLI_SHUTDOWN_GRACE_MS = 5000;

/** The configuration file asked for: `--config FILE`, `-c FILE`, `--config=FILE`, else FTPD_CONFIG; and the other arguments. */
function configRequest(argv: readonly string[], env: NodeJS.ProcessEnv): { file: string; from: string; others: string[] } | null {
  let file: string | undefined;
  let from = '--config';
  const others: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || a === '-c') {
      from = a;
      file = argv[++i] ?? '';
    } else if (a.startsWith('--config=')) {
      file = a.slice('--config='.length);
    } else {
      others.push(a);
    }
  }
  if (file === undefined && env.FTPD_CONFIG !== undefined) {
    file = env.FTPD_CONFIG;
    from = 'FTPD_CONFIG';
  }
  return file === undefined ? null : { file, from, others };
}

/** A command-line mistake: one line saying what, a pointer to --help, and exit code 2 (1 is for configuration and start errors). */
function usageError(message: string): number {
  process.stderr.write(`ftpd: ${message}\nRun "ftpd --help" for the options.\n`);
  return 2;
}

function printHelp(): number {
  process.stdout.write(USAGE);
  return 0;
}

function printVersion(): number {
  process.stdout.write(`${version()}\n`);
  return 0;
}

/**
 * How long the process may stay after its work is done before it ends itself. What can keep it is a write to
 * stdout blocked in the thread pool: a pipe whose reader has stopped, which the workers' exits can leave in blocking
 * mode (helper-108: a supervisor ignored every SIGTERM until its reader resumed; log-output.ts now writes pipes
 * through a non-blocking descriptor of its own, so this is the bound for what remains, e.g. a socket). Long enough
 * for what a stop starts and does not wait for (an S3 multipart upload cut at the end of the grace being aborted).
 * The exit then writes what waits in the log, for a second at most.
 */
const EXIT_AFTER_MS = 10_000;

main()
  .then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`ftpd: ${withoutPem((err as Error)?.stack ?? String(err))}\n`);
      process.exitCode = 1;
    },
  )
  .then(() => setTimeout(() => process.exit(), EXIT_AFTER_MS).unref());

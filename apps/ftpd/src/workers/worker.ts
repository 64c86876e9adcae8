import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { shareFileClaims } from '@ftp/vfs';
import { startFtpd } from '../index.js';
import type { ConfiguredFtpd } from '../serve-config.js';
import { messageOf, reportStartFailure } from '../start-errors.js';
import { NOTHING_TO_RELOAD, tlsReloader } from '../tls-reload.js';
import { SupervisorLink } from './supervisor-link.js';
import { graceMsOf, type ReloadOrder, type WorkerListener } from './messages.js';

/**
 * A worker process of `workers > 1`: waits for its setup, serves it on the shared ports, and stops when the
 * supervisor says so (an order that comes while it starts is kept for when it serves). A supervisor that is gone
 * ends it at once, without a grace period: Node's cluster exits a worker whose primary disconnects before any
 * listener of ours runs. SIGINT is left to the supervisor: at a terminal's Ctrl-C the whole process group gets it,
 * and the supervisor's stop order is the one that counts. SIGTERM sent to one worker stops that worker
 * (gracefully; a second SIGTERM, at once); the supervisor starts another.
 */
export async function runWorker(makeLogger: (level: string) => Logger): Promise<number> {
  // A hang-up that reaches the whole process group (a closed terminal) is the supervisor's to act on, as SIGINT is:
  // cli.ts caught SIGHUP already (hang-ups.ts), and a worker hands it to nobody.
  const link = new SupervisorLink();
  const setup = await link.setup();
  const level = setup.mode === 'cli' ? setup.options.logLevel : setup.config.log.level;
  const logger = makeLogger(level).child({ worker: cluster.worker?.id });
  // Local files are claimed where every worker sees it: a download in one worker and an upload rewriting the file in
  // another must not meet, as they cannot within one process. The folder made anew under running transfers (a
  // clean-up of /dev/shm) is said in the log, not on stderr.
  const fileClaims = link.fileClaims;
  shareFileClaims(fileClaims, { warn: (message) => logger.warn({ fileClaims }, message) });
  const hooks = { banStore: link.banStore, sessionGate: setup.limits ? link.sessionGate : undefined };
  let running: { close(graceMs?: number): Promise<void>; reload(order: ReloadOrder): void; listeners: WorkerListener[] };
  const graceMs = graceMsOf(setup);
  try {
    if (setup.mode === 'cli') {
      const ftpd = await startFtpd(setup.options, logger, { ...hooks, selfSigned: setup.tls });
      const listeners = [{ ...ftpd.address, implicitTls: false }, ...(ftpd.implicitAddress ? [{ ...ftpd.implicitAddress, implicitTls: true }] : [])];
      const reloadTls = tlsReloader(logger, async () => ((await ftpd.reloadTls()) ? null : NOTHING_TO_RELOAD));
      running = { close: (g) => ftpd.close(g), reload: () => reloadTls(), listeners };
    } else {
      const { startFromConfig } = await import('../serve-config.js');
      const ftpd = await startFromConfig(setup.config, logger, { ...hooks, serveMetrics: (source) => link.serveMetrics(source) });
      // One reload after the other: two orders close together must end in the later one's TLS files, not in whichever
      // read finished last.
      let reloads = Promise.resolve();
      running = { close: (g) => ftpd.close(g), reload: (order) => void (reloads = reloads.then(() => applyReload(ftpd, order, logger))), listeners: ftpd.listeners };
    }
  } catch (err) {
    reportStartFailure(logger, err, messageOf(err), { stderr: false });
    link.send({ t: 'failed', message: messageOf(err) });
    process.disconnect?.();
    return 1;
  }
  link.send({ t: 'ready', listeners: running.listeners.map((l) => ({ address: l.address, family: l.family, port: l.port, implicitTls: l.implicitTls })) });
  link.onReload((order) => running.reload(order));
  await new Promise<void>((resolve) => {
    let stopping = false;
    // Only a repeated order means "now": at a stop of the whole process group (systemd's default) this worker's own
    // SIGTERM and the supervisor's first order arrive together, in either order, and are one stop, not two.
    const stop = (why: string, now: boolean): void => {
      if (!stopping) {
        stopping = true;
        logger.info({ why, graceMs }, 'shutting down: no new connections, running transfers may finish');
        void running.close(graceMs).then(resolve);
      }
      if (!now) return;
      logger.info({ why }, 'stopping now');
      void running.close(0);
    };
    let sigterms = 0;
    process.on('SIGINT', () => {});
    process.on('SIGTERM', () => stop('SIGTERM', sigterms++ > 0));
    link.onStop((now) => stop('supervisor', now));
  });
  logger.info('stopped');
  logger.flush?.();
  // The IPC channel would keep the process alive, so it is closed; without Node's cluster handler, which would
  // exit on the spot, the process then ends by itself once its last output is written.
  process.removeAllListeners('disconnect');
  if (process.connected) process.disconnect?.();
  return 0;
}

/**
 * A configured worker's share of a SIGHUP: the supervisor read and checked the file (and said what it applies, once
 * for all); this worker puts the users in service and reads the TLS files again, and says so, or why it could not.
 */
function applyReload(ftpd: ConfiguredFtpd, order: ReloadOrder, logger: Logger): Promise<void> {
  const config = order.setup?.mode === 'config' ? order.setup.config : undefined;
  let users = 'users unchanged';
  if (config) {
    try {
      ftpd.replaceUsers(config.users);
      users = `${config.users.length} user${config.users.length === 1 ? '' : 's'}`;
    } catch (err) {
      // The supervisor checked the backends the users name; should one be missing here all the same, they stay as they were.
      logger.error(`SIGHUP: users not applied, the running ones stay: ${messageOf(err)}`);
    }
  }
  if (!order.tls) return Promise.resolve(logger.info(`SIGHUP: configuration applied: ${users}`));
  return ftpd.reloadTls(config?.tls).then(
    () => logger.info(`SIGHUP: configuration applied: ${users}, TLS reloaded`),
    (err: unknown) => {
      logger.info(`SIGHUP: configuration applied: ${users}`);
      logger.error(`TLS certificate reload failed, the previous one stays: ${messageOf(err)}`);
    },
  );
}

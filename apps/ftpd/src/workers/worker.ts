import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { startFtpd } from '../index.js';
import { SupervisorLink } from './supervisor-link.js';
import type { WorkerListener } from './messages.js';

/**
 * A worker process of `workers > 1`: waits for its setup, serves it on the shared ports, and stops when the
 * supervisor says so (an order that comes while it starts is kept for when it serves). A supervisor that is gone
 * ends it at once, without a grace period: Node's cluster exits a worker whose primary disconnects before any
 * listener of ours runs. SIGINT is left to the supervisor: at a terminal's Ctrl-C the whole process group gets it,
 * and the supervisor's stop order is the one that counts. SIGTERM sent to one worker stops that worker
 * (gracefully); the supervisor starts another.
 */
export async function runWorker(makeLogger: (level: string) => Logger): Promise<number> {
  const link = new SupervisorLink();
  const setup = await link.setup();
  const level = setup.mode === 'cli' ? setup.options.logLevel : setup.config.log.level;
  const logger = makeLogger(level).child({ worker: cluster.worker?.id });
  const hooks = { banStore: link.banStore, sessionGate: setup.limits ? link.sessionGate : undefined };
  let running: { close(graceMs?: number): Promise<void>; reloadTls?(): Promise<void>; listeners: WorkerListener[] };
  let graceMs: number;
  try {
    if (setup.mode === 'cli') {
      const ftpd = await startFtpd(setup.options, logger, { ...hooks, selfSigned: setup.tls });
      const listeners = [{ ...ftpd.address, implicitTls: false }, ...(ftpd.implicitAddress ? [{ ...ftpd.implicitAddress, implicitTls: true }] : [])];
      running = { close: (g) => ftpd.close(g), listeners };
      graceMs = 5000;
    } else {
      const { startFromConfig } = await import('../serve-config.js');
      const ftpd = await startFromConfig(setup.config, logger, { ...hooks, serveMetrics: (source) => link.serveMetrics(source) });
      running = { close: (g) => ftpd.close(g), reloadTls: () => ftpd.reloadTls(), listeners: ftpd.listeners };
      graceMs = setup.config.shutdownGrace * 1000;
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    logger.fatal({ err }, `cannot start: ${e.message}`);
    link.send({ t: 'failed', message: e.message });
    process.disconnect?.();
    return 1;
  }
  link.send({ t: 'ready', listeners: running.listeners.map((l) => ({ address: l.address, family: l.family, port: l.port, implicitTls: l.implicitTls })) });
  link.on('reload', () => {
    running.reloadTls?.().then(
      () => logger.info('TLS certificate reloaded'),
      (err: unknown) => logger.error({ err }, 'TLS certificate reload failed; the previous one stays'),
    );
  });
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (why: string): void => {
      if (stopping) {
        logger.info({ why }, 'stopping now');
        void running.close(0);
        return;
      }
      stopping = true;
      logger.info({ why, graceMs }, 'shutting down: no new connections, running transfers may finish');
      void running.close(graceMs).then(resolve);
    };
    process.on('SIGINT', () => {});
    process.on('SIGTERM', () => stop('SIGTERM'));
    link.on('stop', () => stop('supervisor'));
  });
  logger.info('stopped');
  logger.flush?.();
  // The IPC channel would keep the process alive, so it is closed; without Node's cluster handler, which would
  // exit on the spot, the process then ends by itself once its last output is written.
  process.removeAllListeners('disconnect');
  if (process.connected) process.disconnect?.();
  return 0;
}

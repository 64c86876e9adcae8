import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import { FtpServer } from '@ftp/server';
import { closeBackends, openBackends } from './backends.js';
import type { FtpdConfig, UserConfig } from './config/schema.js';
import type { WorkerHooks } from './index.js';
import { Metrics, startMetricsServer, type MetricsSnapshot } from './metrics.js';
import { readConfiguredTls } from './config/tls-check.js';
import { validityWarning } from './tls-material.js';
import { accountsDriver } from './users.js';

/** A server started from a configuration file. */
export interface ConfiguredFtpd {
  server: FtpServer;
  /** Each listener's bound address, in the order of the configuration. */
  listeners: Array<AddressInfo & { implicitTls: boolean }>;
  /** The metrics and health listener's address, when configured. */
  metricsAddress: AddressInfo | undefined;
  /**
   * Reads the certificate and key files again: those of `tls` (a reloaded configuration's section) when given, else
   * the running ones. New TLS sessions use them, running ones are untouched. Rejects with a TlsMaterialError (and
   * keeps the current pair) when the new files would not serve. Without TLS at start, does nothing (a restart turns
   * it on).
   */
  reloadTls(tls?: FtpdConfig['tls']): Promise<void>;
  /** Puts a reloaded configuration's users in service: new logins get them, logged-in sessions keep what they had. */
  replaceUsers(users: readonly UserConfig[]): void;
  close(graceMs?: number): Promise<void>;
}

/** What a worker process of a configured server adds (see `workers`); its metrics go to the supervisor. */
export type ConfigWorkerHooks = Omit<WorkerHooks, 'selfSigned'> & { serveMetrics(source: () => MetricsSnapshot): void };

/** Opens the backends, builds the users and starts every listener of a validated configuration. */
export async function startFromConfig(config: FtpdConfig, logger: Logger, worker?: ConfigWorkerHooks): Promise<ConfiguredFtpd> {
  let tlsOptions: SecureContextOptions | null = config.tls ? (await readConfiguredTls(config.tls)).options : null;
  // What a SIGHUP reads again: the section of the last configuration reloaded.
  let tlsSection = config.tls;
  const backends = await openBackends(config.backends);
  // Redis, when configured, is shared by every process; else workers share their supervisor's memory.
  const redisBans = config.bans ? new (await import('@ftp/driver-redis')).RedisBanStore({ redis: config.bans.url, prefix: config.bans.prefix, ...(config.bans.timeoutMs ? { timeoutMs: config.bans.timeoutMs } : {}) }) : undefined;
  const banStore = redisBans ?? worker?.banStore;
  const { anonymous, authenticate, makeAnonymousHome, replaceUsers } = accountsDriver(config, backends, logger);
  try {
    await makeAnonymousHome();
  } catch (err) {
    await closeBackends(backends);
    await redisBans?.close();
    throw err;
  }
  const server = new FtpServer({
    logger,
    settings: config.server,
    ...(banStore ? { banStore } : {}),
    ...(worker?.sessionGate ? { sessionGate: worker.sessionGate } : {}),
    ...(anonymous ? { anonymous: { ...anonymous, users: ['anonymous', 'ftp'] } } : {}),
    driver: {
      authenticate,
      // The same object until a reload: the server then keeps its TLS context (see FtpDriver.tlsOptions).
      ...(config.tls ? { tlsOptions: () => tlsOptions } : {}),
    },
  });
  const listeners: ConfiguredFtpd['listeners'] = [];
  let closing = false;
  let metricsServer: Server | undefined;
  let metricsAddress: AddressInfo | undefined;
  try {
    if (config.metrics) {
      const metrics = new Metrics(server);
      // A worker's figures are served, summed with the other workers', by the supervisor.
      if (worker) worker.serveMetrics(() => metrics.snapshot());
      else ({ server: metricsServer, address: metricsAddress } = await startMetricsServer(metrics, () => !closing, config.metrics.port, config.metrics.host));
    }
    for (const l of config.listeners) {
      const options = { ...(l.publicHost ? { publicHost: l.publicHost } : {}), proxyProtocol: l.proxyProtocol, ...(worker ? { reusePort: true } : {}) };
      const address = l.implicitTls ? await server.listenImplicitTls(l.port, l.host, options) : await server.listen(l.port, l.host, options);
      listeners.push({ ...address, implicitTls: l.implicitTls });
    }
  } catch (err) {
    metricsServer?.close();
    await server.close(0);
    await closeBackends(backends);
    await redisBans?.close();
    throw err;
  }
  return {
    server,
    listeners,
    metricsAddress,
    async reloadTls(tls) {
      if (!tlsSection) return;
      const material = await readConfiguredTls(tls ?? tlsSection);
      tlsOptions = material.options;
      tlsSection = tls ?? tlsSection;
      const warning = validityWarning(material.certificate, 'tls.cert');
      if (warning) logger.warn(warning);
    },
    replaceUsers,
    async close(graceMs) {
      closing = true;
      await server.close(graceMs);
      await closeBackends(backends);
      await redisBans?.close();
      if (metricsServer) await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
    },
  };
}

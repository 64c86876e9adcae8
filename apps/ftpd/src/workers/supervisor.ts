import cluster, { type Worker } from 'node:cluster';
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { MemoryBanStore, SessionCounts } from '@ftp/server';
import { releaseClaimsOf } from '@ftp/vfs';
import { renderSnapshots, retireSnapshot, startMetricsServer, type MetricsSnapshot } from '../metrics.js';
import { BanList } from './ban-list.js';
import { makeClaimsFolder } from './claims-folder.js';
import { graceMsOf, isMessage, type ToSupervisor, type ToWorker, type WorkerListener, type WorkerSetup } from './messages.js';

/** What the supervisor runs. */
export interface SupervisorPlan {
  workers: number;
  /** What every worker runs; its listener ports must already be chosen ({@link choosePorts}). */
  setup: WorkerSetup;
  /** The session limits the supervisor counts for all workers together (0: unlimited). */
  limits: { maxSessions: number; maxSessionsPerIp: number };
  /** Where the supervisor serves the workers' metrics summed, and its health check. */
  metrics: { host: string; port: number } | undefined;
  logger: Logger;
}

/** How long the supervisor waits for a worker's answer (its metrics, its copy of a ban). */
const ANSWER_WAIT_MS = 1000;
/** How long workers get to exit after a repeated stop before they are killed. */
const NOW_KILL_MS = 2000;
/** How long past the grace period workers get to exit (closing their backends) before they are killed. */
const GRACE_KILL_MARGIN_MS = 5000;
/** A worker that lived this long had no start-up problem: its restart delay starts again from the shortest. */
const STABLE_MS = 60_000;

function liveWorkers(): Worker[] {
  return Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
}

/**
 * Binds each address once, without sharing, to find out that it is free (a second server of the same user would
 * otherwise join the workers' `SO_REUSEPORT` group silently) and to choose one port for a port 0, which every worker
 * then binds. Throws the bind error (EADDRINUSE, EACCES) as a single server would.
 */
export async function choosePorts(addresses: ReadonlyArray<{ host: string; port: number }>): Promise<number[]> {
  const probes: Server[] = [];
  try {
    const ports: number[] = [];
    for (const { host, port } of addresses) {
      const probe = createServer();
      probes.push(probe);
      await new Promise<void>((resolve, reject) => {
        probe.once('error', reject);
        probe.listen({ host, port, exclusive: true }, () => resolve());
      });
      ports.push((probe.address() as AddressInfo).port);
    }
    return ports;
  } finally {
    await Promise.all(probes.map((p) => new Promise((resolve) => p.close(resolve))));
  }
}

/**
 * The primary process of `workers > 1`: forks the workers, gives each the setup, counts sessions and failed
 * logins for all of them, passes bans on, restarts a worker that dies, and stops them all on SIGINT/SIGTERM.
 */
export class Supervisor {
  private readonly counts: SessionCounts;
  /** Each live worker's admitted sessions (counted without limits), given back when the worker dies. */
  private readonly perWorker = new Map<number, SessionCounts>();
  private readonly failures = new MemoryBanStore();
  private readonly bans = new BanList();
  private readonly ready = new Set<Worker>();
  /** Answers awaited from workers (metrics, ban acknowledgements), by request id. */
  private readonly waiters = new Map<number, (m: ToSupervisor) => void>();
  private nextRequest = 1;
  private stopping = false;
  /** Set once the first start succeeded: from then on a worker that dies, even while starting, is replaced. */
  private serving = false;
  /** The wait before the next replacement of a worker that died young: none at first, then 500 ms doubling to 30 s. */
  private restartDelayMs = 0;
  /** Replacements waiting for their delay; they keep the supervisor alive while no worker runs. */
  private readonly restarts = new Set<NodeJS.Timeout>();
  /**
   * Each live worker's last metrics answer: a worker that does not answer in time (busy) is counted with it, so
   * that the sums never go backwards.
   */
  private readonly lastMetrics = new Map<number, MetricsSnapshot>();
  /** The counters of the workers that exited, as they last reported them. */
  private retiredMetrics: MetricsSnapshot = [];
  private metricsServer: Server | undefined;
  metricsAddress: AddressInfo | undefined;
  private allExited: (() => void) | null = null;
  /** The deadlines after which workers still alive at a stop are killed. */
  private readonly killTimers: NodeJS.Timeout[] = [];
  private exited: Promise<void> | null = null;
  /** The folder where the workers claim the local files they open (made at start, removed at stop). */
  private fileClaims: string | null = null;

  /** What a new worker runs: the plan's setup, or the last one a reload gave. */
  private setup: WorkerSetup;

  constructor(private readonly plan: SupervisorPlan) {
    this.setup = plan.setup;
    this.counts = new SessionCounts(plan.limits.maxSessions, plan.limits.maxSessionsPerIp);
  }

  /**
   * Starts the first worker, then the others once it listens, and resolves with the first one's listeners.
   * Rejects (after stopping any started worker) when a worker cannot start.
   */
  async start(): Promise<WorkerListener[]> {
    this.fileClaims = makeClaimsFolder();
    if (this.plan.metrics) {
      const started = await startMetricsServer({ render: () => this.renderMetrics() }, () => !this.stopping && this.ready.size > 0, this.plan.metrics.port, this.plan.metrics.host);
      this.metricsServer = started.server;
      this.metricsAddress = started.address;
    }
    try {
      const listeners = await this.fork(0);
      await Promise.all(Array.from({ length: this.plan.workers - 1 }, (_, i) => this.fork(i + 1)));
      this.serving = true;
      return listeners;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /**
   * Stops every worker (running transfers get their grace period; called again, at once) and resolves when all have
   * exited. A worker that does not exit in time (its event loop stuck) is killed: shortly after a repeated stop, or
   * once the grace period and a margin have passed.
   */
  async stop(): Promise<void> {
    const now = this.stopping;
    this.stopping = true;
    for (const timer of this.restarts) clearTimeout(timer);
    this.restarts.clear();
    const workers = liveWorkers();
    this.exited ??= (async () => {
      if (workers.length > 0) await new Promise<void>((resolve) => (this.allExited = resolve));
      for (const timer of this.killTimers) clearTimeout(timer);
      if (this.metricsServer) await new Promise((resolve) => this.metricsServer?.close(resolve));
      if (this.fileClaims !== null) rmSync(this.fileClaims, { recursive: true, force: true });
    })();
    // Without a deadline a stuck worker would keep the supervisor, and so the service, from ever stopping.
    const deadline = setTimeout(() => this.killStragglers(now ? 'a second stop' : 'the grace period'), now ? NOW_KILL_MS : graceMsOf(this.setup) + GRACE_KILL_MARGIN_MS);
    // A worker alive keeps the supervisor alive by itself; the deadline must not once none is.
    deadline.unref();
    this.killTimers.push(deadline);
    // `now` tells the workers apart the first order, which a worker already stopping on its own SIGTERM (the whole
    // process group signalled) must not take for a second one, from a repeated one, which ends transfers at once.
    for (const w of workers) this.send(w, { t: 'stop', now });
    await this.exited;
  }

  private killStragglers(after: string): void {
    for (const w of liveWorkers()) {
      this.plan.logger.error({ worker: w.id, workerPid: w.process.pid }, `worker did not stop after ${after}; killed`);
      w.process.kill('SIGKILL');
    }
  }

  /**
   * Tells every worker to reload (SIGHUP): to read the TLS files again when `tls`, and to put the users of `setup`
   * in service when given (a reloaded configuration; workers started from now on get it too). Workers still starting
   * apply it once they serve.
   */
  reload(order: { setup?: WorkerSetup; tls: boolean }): void {
    if (order.setup) this.setup = order.setup;
    for (const w of liveWorkers()) this.send(w, { t: 'reload', ...order });
  }

  /** Starts a worker on share `slot` of the passive ports (a replacement takes its predecessor's). */
  private fork(slot: number): Promise<WorkerListener[]> {
    const worker = cluster.fork();
    this.perWorker.set(worker.id, new SessionCounts(0, 0));
    return new Promise((resolve, reject) => {
      let started = false;
      // Monotonic: a wall clock stepped while it ran would make a young worker look stable, or a stable one young.
      const bornAt = performance.now();
      worker.on('message', (m: unknown) => {
        if (!isMessage<ToSupervisor>(m)) return;
        if (m.t === 'ready') {
          started = true;
          this.ready.add(worker);
          resolve(m.listeners);
        } else if (m.t === 'failed') {
          reject(new Error(m.message));
        } else {
          this.answer(worker, m);
        }
      });
      worker.on('error', () => {}); // an IPC write to a worker that is exiting; 'exit' follows
      const pid = worker.process.pid;
      worker.on('exit', (code, signal) => {
        this.ready.delete(worker);
        this.forgetSessions(worker.id);
        const last = this.lastMetrics.get(worker.id);
        if (last) this.retiredMetrics = retireSnapshot(this.retiredMetrics, last);
        this.lastMetrics.delete(worker.id);
        // Its file claims would keep those files busy for the other workers (450) for good.
        if (this.fileClaims !== null && pid !== undefined) releaseClaimsOf(this.fileClaims, pid);
        if (!started) reject(new Error(`a worker exited while starting (${signal ?? `code ${code}`})`));
        if (this.stopping) {
          if (liveWorkers().length === 0) this.allExited?.();
          return;
        }
        // A failure of the first start is start()'s to report; any later one must not shrink the pool for good.
        if (!started && !this.serving) return;
        // Replaced at once; one that dies young may die again at once: wait longer each time, up to half a minute.
        const delayMs = performance.now() - bornAt > STABLE_MS ? 0 : this.restartDelayMs;
        this.restartDelayMs = Math.min(Math.max(delayMs * 2, 500), 30_000);
        this.plan.logger.error({ worker: worker.id, code, signal, restartInMs: delayMs }, 'worker died; starting another');
        // Not unref'd: with every worker dead, this timer is all that keeps the supervisor from exiting (with 0).
        const timer = setTimeout(() => {
          this.restarts.delete(timer);
          this.fork(slot).catch((err: Error) => this.plan.logger.error({ err }, 'a new worker could not start'));
        }, delayMs);
        this.restarts.add(timer);
      });
      this.send(worker, { t: 'setup', setup: this.setup, slot, slots: this.plan.workers, bans: this.bans.active(), fileClaims: this.fileClaims as string });
    });
  }

  private answer(worker: Worker, m: Exclude<ToSupervisor, { t: 'ready' | 'failed' }>): void {
    switch (m.t) {
      case 'enter': {
        const mine = this.perWorker.get(worker.id);
        // A worker already gone (its last messages can come after its exit): nothing would give the session back.
        if (!mine) return;
        const verdict = this.counts.enter(m.ip);
        if (verdict === 'ok') mine.enter(m.ip);
        return this.send(worker, { t: 'entered', id: m.id, verdict });
      }
      case 'leave':
        // Only what this worker was counted for: a confused or stale message cannot free another worker's sessions.
        if (this.perWorker.get(worker.id)?.leave(m.ip)) this.counts.leave(m.ip);
        return;
      case 'failure':
        return this.send(worker, { t: 'failures', id: m.id, count: this.failures.addFailure(m.key, m.windowMs) });
      case 'ban': {
        this.bans.add(m.key, m.until);
        // Starting workers too: their setup's copy of the bans is older than this one. The banning worker hears
        // back once all have it (or have not answered in time).
        const others = liveWorkers().filter((w) => w !== worker);
        void Promise.all(others.map((w) => this.ask(w, (id) => ({ t: 'banned', id, key: m.key, until: m.until })))).then(() =>
          this.send(worker, { t: 'ban-done', id: m.id }),
        );
        return;
      }
      case 'metrics':
      case 'banned-ack':
        this.waiters.get(m.id)?.(m);
        this.waiters.delete(m.id);
    }
  }

  private forgetSessions(workerId: number): void {
    for (const [ip, n] of this.perWorker.get(workerId)?.byAddress() ?? []) this.counts.leave(ip, n);
    this.perWorker.delete(workerId);
  }

  private async renderMetrics(): Promise<string> {
    await Promise.all(
      [...this.ready].map(async (w) => {
        const answer = await this.ask(w, (id) => ({ t: 'metrics?', id }));
        // Kept as it comes, not after every answer: a worker that exits meanwhile is then retired with this one.
        if (answer?.t === 'metrics' && !w.isDead()) this.lastMetrics.set(w.id, answer.snapshot);
      }),
    );
    return renderSnapshots([...this.lastMetrics.values(), this.retiredMetrics]);
  }

  /** Sends a worker a request and resolves with its answer, or null after {@link ANSWER_WAIT_MS}. */
  private ask(worker: Worker, message: (id: number) => ToWorker): Promise<ToSupervisor | null> {
    const id = this.nextRequest++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        resolve(null);
      }, ANSWER_WAIT_MS);
      this.waiters.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      this.send(worker, message(id));
    });
  }

  private send(worker: Worker, m: ToWorker): void {
    if (!worker.isConnected()) return;
    try {
      worker.send(m);
    } catch {
      // The worker is exiting; its 'exit' handles the rest.
    }
  }
}

import type { BanStore, SessionGate, SessionGateVerdict } from '@ftp/server';
import type { MetricsSnapshot } from '../metrics.js';
import { isMessage, type ReloadOrder, type ToSupervisor, type ToWorker, type WorkerSetup } from './messages.js';
import { slicePassiveSettings } from './passive-slices.js';
import { BanList } from './ban-list.js';

/** How long a worker waits for the supervisor's answer before going on without it. */
const ANSWER_TIMEOUT_MS = 2000;

/**
 * A worker's side of the IPC channel to its supervisor: the shared session count, the shared failed-login count
 * and a copy of the bans (pushed by the supervisor, so that checking a new connection costs no round trip).
 */
export class SupervisorLink {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (m: ToWorker) => void; timer: NodeJS.Timeout }>();
  private readonly bans = new BanList();
  private setupWaiter: ((m: { setup: WorkerSetup; slot: number; slots: number; fileClaims: string }) => void) | null = null;
  private metricsSource: (() => MetricsSnapshot) | null = null;
  private readonly stopOrders: Array<(now: boolean) => void> = [];
  /** Stop orders (their `now`) that came while nobody listened yet (the worker was still starting): run when someone does. */
  private readonly earlyStops: boolean[] = [];
  private readonly reloadOrders: Array<(order: ReloadOrder) => void> = [];
  /**
   * The last reload order that came while nobody listened yet: a worker forked before a reload, still starting
   * with the previous configuration, applies it once it serves.
   */
  private earlyReload: ReloadOrder | null = null;
  /** The folder where the workers claim local files (see `shareFileClaims`), once the setup came. */
  fileClaims: string | null = null;
  /** This worker's share of the passive ports, from its setup: a reloaded setup is sliced the same way. */
  private share = { slot: 0, slots: 1 };

  constructor() {
    process.on('message', (m: unknown) => {
      if (isMessage<ToWorker>(m)) this.receive(m);
    });
  }

  /** Resolves with what this worker is to run, once the supervisor sends it, its own share of the passive ports set. */
  setup(): Promise<WorkerSetup> {
    return new Promise((resolve) => {
      this.setupWaiter = ({ setup, slot, slots, fileClaims }) => {
        this.fileClaims = fileClaims;
        this.share = { slot, slots };
        resolve(this.mine(setup));
      };
    });
  }

  /** A setup as this worker runs it: with its own share of the passive ports. */
  private mine(setup: WorkerSetup): WorkerSetup {
    const { slot, slots } = this.share;
    if (setup.mode === 'cli') {
      const { passivePortRange } = slicePassiveSettings(setup.options, slot, slots);
      return { ...setup, options: { ...setup.options, passivePortRange } };
    }
    const server = { ...setup.config.server, ...slicePassiveSettings(setup.config.server, slot, slots) };
    return { ...setup, config: { ...setup.config, server } };
  }

  send(m: ToSupervisor): void {
    // A supervisor that is gone: Node's cluster ends this worker on 'disconnect'; until then messages are dropped.
    if (!process.connected || !process.send) return;
    try {
      process.send(m);
    } catch {
      // Same as above.
    }
  }

  /** Runs `then` at each of the supervisor's `stop` orders, with whether the order is a repeated one. */
  onStop(then: (now: boolean) => void): void {
    this.stopOrders.push(then);
    for (const now of this.earlyStops.splice(0)) then(now);
  }

  /** Runs `then` at each of the supervisor's `reload` orders (SIGHUP), its setup sliced as this worker's. */
  onReload(then: (order: ReloadOrder) => void): void {
    this.reloadOrders.push(then);
    if (this.earlyReload) then(this.earlyReload);
    this.earlyReload = null;
  }

  /** Answers the supervisor's requests for this worker's metrics. */
  serveMetrics(source: () => MetricsSnapshot): void {
    this.metricsSource = source;
  }

  readonly banStore: BanStore = {
    addFailure: (key, windowMs) => this.request<{ count: number }>((id) => ({ t: 'failure', id, key, windowMs })).then((m) => m.count),
    // Resolves once every worker has the ban, so that the banned client's next connection is refused wherever it lands.
    ban: (key, until) => {
      this.bans.add(key, until);
      return this.request((id) => ({ t: 'ban', id, key, until })).then(() => undefined);
    },
    isBanned: (key) => this.bans.has(key),
  };

  readonly sessionGate: SessionGate = {
    enter: (ip: string) =>
      this.request<{ verdict: SessionGateVerdict }>(
        (id) => ({ t: 'enter', id, ip }),
        // The server admitted the session uncounted when the answer was late: a late admission is given back at
        // once, or the supervisor would count that session for as long as this worker lives.
        (late) => {
          if (late.t === 'entered' && late.verdict === 'ok') this.send({ t: 'leave', ip });
        },
      ).then((m) => m.verdict),
    leave: (ip: string) => this.send({ t: 'leave', ip }),
  };

  /** Asks the supervisor; after {@link ANSWER_TIMEOUT_MS} rejects, and an answer that still comes goes to `late`. */
  private request<T>(message: (id: number) => ToSupervisor, late?: (m: ToWorker) => void): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (late) this.pending.set(id, { resolve: late, timer });
        else this.pending.delete(id);
        reject(new Error('the supervisor did not answer'));
      }, ANSWER_TIMEOUT_MS);
      timer.unref();
      this.pending.set(id, { resolve: resolve as (m: ToWorker) => void, timer });
      if (!process.connected) {
        clearTimeout(timer);
        this.pending.delete(id);
        return reject(new Error('no supervisor'));
      }
      this.send(message(id));
    });
  }

  private receive(m: ToWorker): void {
    switch (m.t) {
      case 'setup':
        for (const [key, until] of m.bans) this.bans.add(key, until);
        this.setupWaiter?.(m);
        this.setupWaiter = null;
        return;
      case 'banned':
        this.bans.add(m.key, m.until);
        return this.send({ t: 'banned-ack', id: m.id });
      case 'stop':
        if (this.stopOrders.length === 0) this.earlyStops.push(m.now === true);
        for (const then of this.stopOrders) then(m.now === true);
        return;
      case 'reload': {
        const order = { ...(m.setup ? { setup: this.mine(m.setup) } : {}), tls: m.tls };
        // Early orders merge: the latest setup, and TLS to read again if any of them asked (a later order that did not
        // must not cancel an earlier one's new files).
        if (this.reloadOrders.length === 0) this.earlyReload = { ...this.earlyReload, ...order, tls: order.tls || this.earlyReload?.tls === true };
        for (const then of this.reloadOrders) then(order);
        return;
      }
      case 'metrics?':
        if (this.metricsSource) this.send({ t: 'metrics', id: m.id, snapshot: this.metricsSource() });
        return;
      case 'entered':
      case 'failures':
      case 'ban-done': {
        const waiter = this.pending.get(m.id);
        if (!waiter) return;
        this.pending.delete(m.id);
        clearTimeout(waiter.timer);
        waiter.resolve(m);
      }
    }
  }
}

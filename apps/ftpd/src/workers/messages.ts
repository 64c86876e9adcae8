import type { SessionGateVerdict } from '@ftp/server';
import type { FtpdConfig } from '../config/schema.js';
import type { MetricsSnapshot } from '../metrics.js';
import type { FtpdOptions } from '../options.js';

/**
 * What a worker is told to run: the command line's options or a validated configuration, with every listener
 * port already chosen (a port 0 is picked once by the supervisor, so that all workers share it).
 */
export type WorkerSetup =
  | { mode: 'cli'; options: FtpdOptions; tls: { cert: string; key: string; fingerprint: string | undefined } | null; limits: boolean }
  | { mode: 'config'; config: FtpdConfig; limits: boolean };

/** One bound listener, as a worker reports it. */
export interface WorkerListener {
  address: string;
  family: string;
  port: number;
  implicitTls: boolean;
}

/** Messages from a worker to the supervisor. Requests carry an `id` the answer repeats. */
export type ToSupervisor =
  | { t: 'ready'; listeners: WorkerListener[] }
  | { t: 'failed'; message: string }
  | { t: 'enter'; id: number; ip: string }
  | { t: 'leave'; ip: string }
  | { t: 'failure'; id: number; key: string; windowMs: number }
  /** A ban this worker made; answered with `ban-done` once every other worker has it. */
  | { t: 'ban'; id: number; key: string; until: number }
  /** This worker has the ban the supervisor pushed with `id`. */
  | { t: 'banned-ack'; id: number }
  | { t: 'metrics'; id: number; snapshot: MetricsSnapshot };

/** Messages from the supervisor to a worker. */
export type ToWorker =
  /** `slot` of `slots`: which share of the passive port range is this worker's. */
  /** `fileClaims`: the folder where the workers claim the local files they read and write (see `shareFileClaims`). */
  | { t: 'setup'; setup: WorkerSetup; slot: number; slots: number; bans: Array<[string, number]>; fileClaims: string }
  | { t: 'entered'; id: number; verdict: SessionGateVerdict }
  | { t: 'failures'; id: number; count: number }
  | { t: 'banned'; id: number; key: string; until: number }
  | { t: 'ban-done'; id: number }
  | { t: 'metrics?'; id: number }
  /**
   * Stop: running transfers get the grace period. `now`: the supervisor's order is a repeated one (a second
   * signal): end them at once. A worker that already stops on its own SIGTERM must not take the supervisor's
   * first order for a second one: at a stop of the whole process group (systemd) both come together.
   */
  | { t: 'stop'; now: boolean }
  /**
   * SIGHUP to the supervisor. `setup`, in config mode: the configuration reloaded, to put its users in service (the
   * supervisor checked it; its ports are mapped as at start). `tls`: read the TLS files again (those of `setup`'s
   * `tls` section, when given).
   */
  | { t: 'reload'; setup?: WorkerSetup; tls: boolean };

/** What a worker is to reload (see the `reload` message). */
export type ReloadOrder = Omit<Extract<ToWorker, { t: 'reload' }>, 't'>;

/** Whether a value received over IPC looks like one of our messages (anything else is ignored). */
export function isMessage<T extends { t: string }>(m: unknown): m is T {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}

/** How long running transfers get at a stop, in the setup's terms (the command line's is fixed). */
export function graceMsOf(setup: WorkerSetup): number {
  return setup.mode === 'cli' ? 5000 : setup.config.shutdownGrace * 1000;
}

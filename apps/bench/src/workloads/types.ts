/** The shape every workload shares. */
import type { RunningServer, ServerSpec, StartContext } from '../servers/types.js';
import type { Figure } from '../stats.js';

/** The files every server gets in its home (on disk, or uploaded first). */
export interface Seed {
  /** The big file for RETR/STOR, on local disk (curl uploads it from here). */
  bigFile: string;
  bigBytes: number;
  /** Name of the big file and of the 1 MiB file inside every home. */
  bigName: string;
  mibName: string;
  /** Folder with `listEntries` files inside every home. */
  listDir: string;
  listEntries: number;
}

export interface WorkloadContext {
  spec: ServerSpec;
  server: RunningServer;
  start: StartContext;
  seed: Seed;
  runs: number;
  /** Seconds of the 200-client workload. */
  clientSeconds: number;
  /** Starts a fresh server process (the current one is stopped first), for workloads that measure memory. */
  restart(): Promise<RunningServer>;
  log(message: string): void;
}

/** One figure of one server. `better` says which way our ratio to a peer is taken. */
export interface Row {
  workload: string;
  metric: string;
  unit: string;
  better: 'higher' | 'lower' | 'info';
  figure: Figure | null;
  /** Why there is no figure, or a note on it (e.g. failures seen). */
  note?: string;
}

export interface Workload {
  id: string;
  title: string;
  /**
   * Measured with no other server running, one server after the other, rather than in interleaved rounds beside
   * them (memory workloads: PSS splits pages shared with other processes, such as another Node server's binary).
   */
  alone?: boolean;
  run(ctx: WorkloadContext): Promise<Row[]>;
}

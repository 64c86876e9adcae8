/** What the bench needs from each server under test. */

/** Where and how a server is started. */
export interface StartContext {
  /** Control port on 127.0.0.1. */
  port: number;
  /** Passive port range, below the kernel's ephemeral range (so TIME_WAIT from earlier runs cannot exhaust it). */
  passive: [number, number];
  /** The folder the bench user logs in to (a fresh one per server). */
  home: string;
  /** Scratch folder for the server's config files. */
  work: string;
  user: string;
  password: string;
  /**
   * Certificate and key (PEM files) for explicit FTPS, or null for a plain-only server. Peers get TLS only for the
   * FTPS workloads: forking servers set it up again for every session, which would slow their plain logins.
   */
  tls: { cert: string; key: string } | null;
}

/** A started server. */
export interface RunningServer {
  /** The process whose tree (it and its children) is billed for CPU and memory. */
  pid: number;
  stop(): Promise<void>;
}

/** One column of the results. */
export interface ServerSpec {
  /** Column label. */
  name: string;
  /** Ours or a peer: the report gives our ratio to every peer. */
  ours: boolean;
  /** Keeps TLS configured for every workload (its cost is per server, not per session); else only for FTPS ones. */
  alwaysTls?: boolean;
  /**
   * Each login takes a deliberate ~0.1 s (scrypt): only the sequential login rate is measured; 50 at once would only
   * queue on the thread pool, and take seconds to drain each run.
   */
  slowLogins?: boolean;
  /** The files under test live in `home` on local disk (else they are uploaded through FTP first). */
  homeOnDisk: boolean;
  /** Installs (if needed) and checks the server; resolves to null when it can run, else why it cannot. */
  prepare(): Promise<string | null>;
  start(ctx: StartContext): Promise<RunningServer>;
}

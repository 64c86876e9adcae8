import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { trimHeap } from '@ftp/native';

/**
 * Gives memory back to the system once the server has been quiet for a while after a burst of work.
 *
 * Why: V8 grows its young generation while sessions log in, files move or folders are listed, and keeps the grown
 * semi-space pages resident afterwards; nothing shrinks them while the process sits idle, because only a garbage
 * collection can, and an idle process allocates nothing that would start one. Chrome has idle-time and
 * memory-reducer collections for this; Node has neither.
 *
 * How: the event loop's utilization is sampled every {@link IdleMemoryPolicy.tickMs}. When it has stayed below
 * {@link IdleMemoryPolicy.quietUtilization} for {@link IdleMemoryPolicy.quietMs}, and the loop did enough work since
 * the last release for a collection to be worth it, one memory-reducing collection runs (V8's "last resort" full
 * collection: it shrinks the young generation and releases free pages), and then the malloc heaps' free pages go
 * back to the system (glibc's `malloc_trim`, through @ftp/native's `trimHeap`): what TLS, deflate, SQLite and Node's
 * buffers freed between chunks still in use, which glibc keeps resident otherwise (after 30 sessions' transfers over
 * SQLite with TLS and MODE Z: RSS 306 → 110 MB, the main heap 106 → 12.5 MB; side by side, the collection alone
 * left 172 MB with 77.6 MB of heap, the trim after it 105 MB with 11.9).
 *
 * Why only after 10 minutes by default, measured on a 2-core VM: a release takes ~6 MiB off the process after a
 * burst of 1,500 logins (1,000 idle sessions: 4.7 → ~2 KiB each), but the next burst runs cold:
 * - Any full collection made while no session is active (the memory-reducing one and a plain major one alike) lets
 *   V8 drop the hidden classes of the objects sessions and transfers make (sockets, streams, our own), and every
 *   optimized function that checks them is thrown away ("embedded weak objects cleared": 297 deoptimizations over
 *   four releases, in Node's streams and ours). Four rounds of 1,000 16 KiB uploads 3 s apart: with a release
 *   between rounds, 1.3–1.45 ms of server CPU per upload in the third and fourth rounds; without, 0.45–0.95.
 * - The young generation starts small again and is grown back: a LIST of 10,000 entries right after a release
 *   took 98 ms instead of 67, an MLSD 54 instead of 35.
 * After 30 s (the first default), a server with bursts a minute apart paid both on every burst, and so did our
 * server in `pnpm bench`, idle while the other servers ran their rounds. After 10 minutes, only a server that is
 * really idle gives the memory back, and pays for it once.
 *
 * Bounds: a release costs one pause (~25 ms with 1,000 sessions, ~50 ms with 10,000), and the trim a few more
 * milliseconds (1–7 ms measured in ftpd after bursts of MODE Z sessions; up to ~120 ms for 400 MB freed in 256-byte
 * holes, a heap more fragmented than a server's). It only runs after the loop has been busy for at least twice the
 * previous pause, and no sooner than twenty previous pauses after it. A server that never goes quiet never pays for
 * one.
 */
export interface IdleMemoryPolicy {
  /** How often the event loop's utilization is sampled (ms). */
  tickMs: number;
  /** A sample with a utilization at or below this (0–1) counts as quiet. */
  quietUtilization: number;
  /** How long the loop must stay quiet before a release (ms). */
  quietMs: number;
  /** Event-loop work since the last release (ms) below which a release is not worth its pause. */
  minBusyMs: number;
}

export const DEFAULT_IDLE_MEMORY_POLICY: IdleMemoryPolicy = { tickMs: 250, quietUtilization: 0.02, quietMs: 600_000, minBusyMs: 50 };

/** A running release loop. */
export interface IdleMemoryRelease {
  /** Releases done so far. */
  readonly releases: number;
  /** The pause of the last release (ms), 0 before the first. */
  readonly lastPauseMs: number;
  stop(): void;
}

/** What the loop reads and does; replaced in tests. */
export interface IdleMemoryDeps {
  /** `performance.eventLoopUtilization` or a stand-in. */
  utilization: (since?: EventLoopUtilization) => EventLoopUtilization;
  /** Runs one memory-reducing collection, then gives the malloc heaps' free pages back. */
  collect: () => void;
  now: () => number;
}

/**
 * Starts releasing memory when the server goes quiet. The timer is unref'd: it never keeps the process alive.
 * `FTPD_RELEASE_IDLE_MEMORY=off` in the environment turns it off (see ftpd's README).
 */
export function releaseMemoryWhenIdle(policy: Partial<IdleMemoryPolicy> = {}, deps: Partial<IdleMemoryDeps> = {}): IdleMemoryRelease {
  const p = { ...DEFAULT_IDLE_MEMORY_POLICY, ...policy };
  const quietTicks = Math.max(1, Math.ceil(p.quietMs / p.tickMs));
  const utilization = deps.utilization ?? ((since?: EventLoopUtilization) => performance.eventLoopUtilization(since));
  const collect = deps.collect ?? releaseAll(memoryReducingCollection());
  const now = deps.now ?? (() => performance.now());
  let last = utilization();
  // Starting up is work too: loading the code and the configuration leaves garbage for the first quiet moment.
  let busyMs = p.minBusyMs;
  let quiet = 0;
  let releases = 0;
  let lastPauseMs = 0;
  let notBefore = 0;
  const timer = setInterval(() => {
    const sample = utilization(last);
    last = utilization();
    const isQuiet = sample.utilization <= p.quietUtilization;
    // Only work counts: the tick's own work and the runtime's housekeeping in a quiet sample would otherwise add up,
    // over minutes of quiet, to a release that nothing made worth it.
    if (!isQuiet) busyMs += sample.active;
    quiet = isQuiet ? quiet + 1 : 0;
    if (quiet < quietTicks || busyMs < Math.max(p.minBusyMs, 2 * lastPauseMs) || now() < notBefore) return;
    const start = now();
    collect();
    const end = now();
    lastPauseMs = end - start;
    notBefore = end + 20 * lastPauseMs;
    releases++;
    busyMs = 0;
    quiet = 0;
    // The pause itself is not work that makes garbage: the next sample starts after it.
    last = utilization();
  }, p.tickMs);
  timer.unref();
  return {
    get releases() {
      return releases;
    },
    get lastPauseMs() {
      return lastPauseMs;
    },
    stop: () => clearInterval(timer),
  };
}

/**
 * V8's collection, then malloc's trim: the collection frees array buffers' and native objects' memory (its finalizers
 * call free()), which the trim can then hand back. Where there is no trim (no addon, not glibc) the collection alone.
 */
export function releaseAll(collect: () => void, trim: () => unknown = trimHeap): () => void {
  return () => {
    collect();
    trim();
  };
}

type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/**
 * V8's memory-reducing full collection. `gc` is only installed in contexts made while `--expose-gc` is set, so the
 * flag is set for the moment one small context is made, then cleared again. The context is made on the first
 * release, not at start-up.
 */
export function memoryReducingCollection(): () => void {
  // Started with --expose-gc: the function is there, and the flag is the operator's, left as it is.
  let gc = typeof (globalThis as { gc?: unknown }).gc === 'function' ? (globalThis as { gc: GcFunction }).gc : undefined;
  return () => {
    if (gc === undefined) {
      setFlagsFromString('--expose-gc');
      try {
        gc = runInNewContext('gc') as GcFunction;
      } finally {
        setFlagsFromString('--no-expose-gc');
      }
    }
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  };
}

/**
 * The quiet time `FTPD_RELEASE_IDLE_MEMORY` asks for, in ms: unset, empty, `on`, `true` or `yes` is the default
 * (10 minutes); `off`, `false`, `no` or any number equal to 0 is null (no release); another number is seconds (0.25 to
 * 86,400). Anything else throws, naming the variable.
 */
export function idleReleaseQuietMs(env: NodeJS.ProcessEnv): number | null {
  const raw = (env.FTPD_RELEASE_IDLE_MEMORY ?? '').trim();
  if (raw === '' || /^(on|true|yes)$/i.test(raw)) return DEFAULT_IDLE_MEMORY_POLICY.quietMs;
  if (/^(off|false|no)$/i.test(raw)) return null;
  const seconds = /^(\d+\.?\d*|\.\d+)$/.test(raw) ? Number(raw) : NaN;
  if (seconds === 0) return null;
  if (!(seconds >= 0.25 && seconds <= 86_400)) {
    throw new Error(`FTPD_RELEASE_IDLE_MEMORY: expected off, on or the seconds of quiet before memory is released (0.25 to 86400), got ${JSON.stringify(raw)}`);
  }
  return Math.round(seconds * 1000);
}

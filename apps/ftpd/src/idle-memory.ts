import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Gives memory back to the system once the server goes quiet after a burst of work.
 *
 * Why: V8 grows its young generation while sessions log in or files move, and keeps the grown semi-space pages
 * resident afterwards; nothing shrinks them while the process sits idle, because only a garbage collection can, and
 * an idle process allocates nothing that would start one. Measured with 1,000 idle logged-in sessions
 * (`pnpm bench --workloads idle`): 4.7 KiB RSS per session without this, ~1.5 KiB with it, and the whole process
 * ~4 MB smaller. Chrome does the same with its idle-time and memory-reducer collections; Node does neither.
 *
 * How: the event loop's utilization is sampled every {@link IdleMemoryPolicy.tickMs}. When it has stayed below
 * {@link IdleMemoryPolicy.quietUtilization} for {@link IdleMemoryPolicy.quietTicks} samples in a row, and the loop
 * did enough work since the last release for a collection to be worth it, one memory-reducing collection runs
 * (V8's "last resort" full collection: it shrinks the young generation and releases free pages).
 *
 * Bounds: a release costs one pause (~25 ms with 1,000 sessions on a 2-core VM, longer with a bigger heap). It only
 * runs after the loop has been busy for at least twice the previous pause, and no sooner than twenty previous pauses
 * after it, so releases never take more than a small share of the server's time, however the load comes and goes.
 * A server that never goes quiet never pays for one.
 */
export interface IdleMemoryPolicy {
  /** How often the event loop's utilization is sampled (ms). */
  tickMs: number;
  /** A sample with a utilization at or below this (0–1) counts as quiet. */
  quietUtilization: number;
  /** Quiet samples in a row before a release. */
  quietTicks: number;
  /** Event-loop work since the last release (ms) below which a release is not worth its pause. */
  minBusyMs: number;
}

export const DEFAULT_IDLE_MEMORY_POLICY: IdleMemoryPolicy = { tickMs: 250, quietUtilization: 0.02, quietTicks: 2, minBusyMs: 50 };

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
  /** Runs one memory-reducing collection. */
  collect: () => void;
  now: () => number;
}

/**
 * Starts releasing memory when the server goes quiet. The timer is unref'd: it never keeps the process alive.
 * `FTPD_RELEASE_IDLE_MEMORY=off` in the environment turns it off (see ftpd's README).
 */
export function releaseMemoryWhenIdle(policy: Partial<IdleMemoryPolicy> = {}, deps: Partial<IdleMemoryDeps> = {}): IdleMemoryRelease {
  const p = { ...DEFAULT_IDLE_MEMORY_POLICY, ...policy };
  const utilization = deps.utilization ?? ((since?: EventLoopUtilization) => performance.eventLoopUtilization(since));
  const collect = deps.collect ?? memoryReducingCollection();
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
    busyMs += sample.active;
    quiet = sample.utilization <= p.quietUtilization ? quiet + 1 : 0;
    if (quiet < p.quietTicks || busyMs < Math.max(p.minBusyMs, 2 * lastPauseMs) || now() < notBefore) return;
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

type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/**
 * V8's memory-reducing full collection. `gc` is only installed in contexts made while `--expose-gc` is set, so the
 * flag is set for the moment one small context is made, then cleared again. The context is made on the first
 * release, not at start-up.
 */
export function memoryReducingCollection(): () => void {
  let gc: GcFunction | undefined;
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

/** Whether the environment turns the release off (`FTPD_RELEASE_IDLE_MEMORY=off`, `0`, `false` or `no`). */
export function idleReleaseDisabled(env: NodeJS.ProcessEnv): boolean {
  return /^(off|0|false|no)$/i.test(env.FTPD_RELEASE_IDLE_MEMORY ?? '');
}

import { setFlagsFromString } from 'node:v8';

/**
 * Invocations after which TurboFan optimizes a function once Maglev is off: V8's own Maglev threshold. V8's default
 * (3,000) assumes Maglev runs in between; without it, a function runs as baseline code until then.
 */
export const TURBOFAN_INVOCATIONS = 400;

/**
 * The V8 settings ftpd runs with, chosen by measurement (issue 9, `pnpm bench`):
 *
 * - `--no-maglev`: Maglev, V8's mid-tier compiler, keeps 4–7 MiB resident after a burst of logins, whatever the
 *   number of sessions (1,000 idle sessions: 10.6–11.6 KiB each with it, 4.5–4.7 without; limiting it to one
 *   thread or to the main thread does not help). smaps puts it in malloc's memory: the compile threads' arenas
 *   (~1.8 MiB) and the main heap (1.2–1.9 MiB), besides V8's pages. glibc's settings did not bring it back: with
 *   `MALLOC_ARENA_MAX=1`, 6.8–11.5 KiB per idle session; with trim and mmap thresholds of 64 KiB too, 8.4–11.9.
 * - `--invocation-count-for-turbofan=400`: with Maglev off, V8 still waits for 3,000 calls of a function before
 *   TurboFan optimizes it (that default counts on Maglev in between), so code run once per file or per login
 *   stayed baseline code through whole benchmark rounds. At Maglev's own threshold, measured on a 2-core VM with
 *   `pnpm bench --servers ours --workloads files --runs 5`, three A/B pairs (median of each run's five rounds):
 *   16 KiB uploads 734–942 → 1,149–1,233 per second and 0.73–0.97 → 0.51–0.63 ms of server CPU each; downloads
 *   1,946–2,227 → 2,121–2,660 per second and 0.35–0.47 → 0.26–0.36 ms each. The first round of 1,000 files pays
 *   for the compiling either way. Idle sessions: 4.8 → 5.3 KiB each (what TurboFan compiles while they log in;
 *   thresholds of 800 and 1,500 cost 6.3–6.5 KiB, compiling later, inside the burst).
 *
 * Maglev and TurboFan with a shorter wait together were no faster than the above.
 *
 * The idle release (idle-memory.ts) does not win Maglev's memory back: that memory is malloc's, not V8's heap.
 * With Maglev and a release after half a second of quiet, 1,000 idle sessions still cost 3.5–4.8 KiB each,
 * against 0.2–0.8 without.
 *
 * Not set, though measured: `--semi-space-growth-factor=1` (a young generation that never grows) took a further
 * ~2.5 KiB off an idle session, but under load it promotes medium-lived objects early: a synthetic load with 2,000
 * objects in flight went from 54 minor and 0 major collections to 1,791 minor and 39 major. A server under load
 * matters more than an idle one. Heap sizes (`--max-semi-space-size`) can only be set at launch:
 * `NODE_OPTIONS=--max-semi-space-size=2 ftpd …` for memory-bound deployments.
 *
 * Flags V8 reads only at launch are in launch-flags.ts (ftpd starts itself again with them).
 *
 * Both flags are read by V8 as it decides what to compile, so setting them at start-up, before ftpd's own code
 * runs hot, works. The operator's own choice, in the `node` arguments (Node refuses V8's compiler flags in
 * `NODE_OPTIONS`), wins:
 * - Maglev turned on (`node --maglev …/cli.js`, the last of `--maglev`/`--no-maglev` deciding) leaves V8's tiering
 *   as it is; so does any other Maglev flag (`--maglev-inlining`…), taken as the operator working with Maglev.
 * - Maglev turned off by the operator still gets the lower TurboFan threshold.
 * - A TurboFan threshold given is kept.
 */
export function ftpdV8Flags(execArgv: readonly string[]): string[] {
  let maglev: boolean | undefined;
  let maglevTuned = false;
  let turbofanChosen = false;
  for (const arg of execArgv) {
    // V8 reads `--no-x`, `--nox`, `-no-x` and underscores alike; the last on/off flag wins.
    const onOff = /^--?(no[-_]?)?maglev$/.exec(arg);
    if (onOff) maglev = onOff[1] === undefined;
    else if (/^--?[a-z0-9_-]*maglev[a-z0-9_-]*(=|$)/i.test(arg)) maglevTuned = true;
    if (/^--?invocation[-_]count[-_]for[-_]turbofan(=|$)/.test(arg)) turbofanChosen = true;
  }
  if (maglev === true || (maglev === undefined && maglevTuned)) return [];
  const flags = maglev === undefined ? ['--no-maglev'] : [];
  if (!turbofanChosen) flags.push(`--invocation-count-for-turbofan=${TURBOFAN_INVOCATIONS}`);
  return flags;
}

/** Applies {@link ftpdV8Flags} to this process; returns the flags set. */
export function applyFtpdV8Flags(): string[] {
  const flags = ftpdV8Flags(process.execArgv);
  for (const flag of flags) setFlagsFromString(flag);
  return flags;
}

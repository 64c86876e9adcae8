import { setFlagsFromString } from 'node:v8';

/**
 * The V8 settings ftpd runs with, chosen by measurement (issue 9, `pnpm bench --workloads idle,idle-10000`):
 *
 * - `--no-maglev`: Maglev, V8's mid-tier compiler, keeps about 6 MiB resident after a burst of logins, whatever the
 *   number of sessions (1,000 idle sessions: 10.6–11.6 KiB each with it, 4.5–4.7 without; limiting it to one
 *   thread or to the main thread does not help). The price, measured per thread from /proc on a 2-core VM: a login
 *   costs ~320 µs of main-thread CPU instead of ~230, a 16 KiB upload ~360–455 µs of user time instead of ~250–305
 *   (16 KiB files up and down: 20–35 % fewer per second); big transfers and listings do not change. For servers
 *   busy with logins or small files, `node --maglev …/cli.js` puts it back.
 *
 * The idle release (idle-memory.ts) does not win this back: that memory is malloc's, not V8's heap. With Maglev and
 * a release after half a second of quiet, 1,000 idle sessions still cost 3.5–4.8 KiB each, against 0.2–0.8 without.
 *
 * Not set, though measured: `--semi-space-growth-factor=1` (a young generation that never grows) took a further
 * ~2.5 KiB off an idle session, but under load it promotes medium-lived objects early: a synthetic load with 2,000
 * objects in flight went from 54 minor and 0 major collections to 1,791 minor and 39 major. A server under load
 * matters more than an idle one. Heap sizes (`--max-semi-space-size`) can only be set at launch:
 * `NODE_OPTIONS=--max-semi-space-size=2 ftpd …` for memory-bound deployments.
 *
 * The flag is read by V8 as it compiles, so setting it at start-up, before ftpd's own code runs hot, works. A
 * Maglev flag the operator chose (`node --maglev`, `NODE_OPTIONS=--maglev`) wins.
 */
export function ftpdV8Flags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const chosen = `${execArgv.join(' ')} ${nodeOptions ?? ''}`;
  return /maglev/.test(chosen) ? [] : ['--no-maglev'];
}

/** Applies {@link ftpdV8Flags} to this process; returns the flags set. */
export function applyFtpdV8Flags(): string[] {
  const flags = ftpdV8Flags(process.execArgv, process.env.NODE_OPTIONS);
  for (const flag of flags) setFlagsFromString(flag);
  return flags;
}

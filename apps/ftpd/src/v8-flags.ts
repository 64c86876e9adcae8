import { setFlagsFromString } from 'node:v8';

/**
 * The V8 settings ftpd runs with, chosen by measurement (issue 9, `pnpm bench --workloads idle,idle-10000`):
 *
 * - `--no-maglev`: Maglev, V8's mid-tier compiler, compiles on background threads whose malloc arenas keep about
 *   5 MiB resident after a burst of logins, whatever the number of sessions (at 1,000 idle sessions: ~5 KiB each).
 *   TurboFan still optimizes hot code; the transfer, listing and login workloads showed no loss beyond noise.
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

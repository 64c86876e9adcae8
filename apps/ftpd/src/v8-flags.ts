import { setFlagsFromString } from 'node:v8';

/**
 * The V8 settings ftpd runs with, chosen by measurement (issue 9, `pnpm bench --workloads idle,idle-10000`):
 *
 * - `--no-maglev`: Maglev, V8's mid-tier compiler, compiles on background threads whose malloc arenas keep about
 *   5 MiB resident after a burst of logins, whatever the number of sessions (at 1,000 idle sessions: ~5 KiB each).
 *   TurboFan still optimizes hot code; the transfer, listing and login workloads showed no loss beyond noise.
 * - `--semi-space-growth-factor=1`: the young generation stays at its initial size instead of doubling up to
 *   128 MiB while thousands of long-lived sessions are allocated (their objects survive, which is what makes V8
 *   grow it), and an idle server never shrinks it back.
 *
 * Both are read by V8 as it runs, so setting them at start-up works (heap sizes such as `--max-semi-space-size`
 * are fixed once the process starts and cannot be set here). A flag the operator chose (`node --maglev`,
 * `NODE_OPTIONS=--max-semi-space-size=64`) wins: the setting it concerns is left alone.
 */
export function ftpdV8Flags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const chosen = `${execArgv.join(' ')} ${nodeOptions ?? ''}`;
  const flags: string[] = [];
  if (!/maglev/.test(chosen)) flags.push('--no-maglev');
  if (!/semi[-_]space/.test(chosen)) flags.push('--semi-space-growth-factor=1');
  return flags;
}

/** Applies {@link ftpdV8Flags} to this process; returns the flags set. */
export function applyFtpdV8Flags(): string[] {
  const flags = ftpdV8Flags(process.execArgv, process.env.NODE_OPTIONS);
  for (const flag of flags) setFlagsFromString(flag);
  return flags;
}

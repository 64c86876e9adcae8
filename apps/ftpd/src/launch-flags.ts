import { accessSync, constants } from 'node:fs';

/**
 * V8 settings that only take effect when the process starts, which ftpd gets by starting itself again at once with
 * them (`process.execve`: the same process id, the same arguments, before anything is opened or listened on).
 *
 * - `--no-concurrent-recompilation`: TurboFan compiles on the main thread rather than on V8's helper threads. Each
 *   helper thread has its own malloc arena, and the burst that first runs ftpd's hot code (sessions logging in, the
 *   first transfers) leaves ~0.7 MB in each of three that nothing gives back. Measured with `pnpm bench --variant`
 *   (four rounds, 1,000 idle sessions after a warm-up): 6.14 (5.45–6.89) → 5.03 (4.99–5.08) KiB per idle session;
 *   logins, 16 KiB files and 200 clients within the rounds' noise (200 clients: 1,611 → 1,655 transfers/s, p99 249
 *   → 210 ms; logins 3,944 → 3,719 one at a time, 8,208 → 7,933 fifty at a time). The cost is that a compile is a
 *   pause of the event loop, and compiles happen while a fresh process warms up. `v8.setFlagsFromString` cannot
 *   do it: V8 creates the compile dispatcher when the process starts (set at run time, the flag changed nothing).
 *
 * Not relaunched, and the process left as it is:
 * - when the operator chose either way (`--concurrent-recompilation` or `--no-concurrent-recompilation` on
 *   `node`'s command line; Node refuses both in `NODE_OPTIONS`);
 * - when `FTPD_RELAUNCH` is `off`, `false`, `no` or `0`, or for a command that prints and exits (`hash-password`,
 *   `check-config`, `--help`, `--version`);
 * - after a relaunch (`FTPD_RELAUNCHED` is set in the new process's environment, so it can never loop);
 * - with a debugger flag (`--inspect…`, `--debug…`, on the command line or in `NODE_OPTIONS`): the debugger would
 *   be attached to a process that is replaced;
 * - with `LISTEN_FDS` set (systemd socket activation), or an IPC channel to a parent (`child_process.fork`, PM2's
 *   fork mode) or a cluster primary (`NODE_UNIQUE_ID`): descriptors other than 0–2 do not survive the exec;
 * - when `node` itself cannot be run again (its file gone or not executable): before Node 26 a failed exec ends the
 *   process instead of throwing;
 * - where `process.execve` is missing (Node before 22.15) or fails (Windows): ftpd then runs without the flags.
 */
export const LAUNCH_FLAGS: readonly string[] = ['--no-concurrent-recompilation'];

/** ftpd's commands that print something and exit rather than serve. */
const ONE_SHOT_COMMANDS: ReadonlySet<string> = new Set(['hash-password', 'check-config', '--help', '-h', '--version', '-v']);

/** Set in the relaunched process's environment: it must not relaunch again. */
export const RELAUNCHED_ENV = 'FTPD_RELAUNCHED';

/** What {@link relaunchArgs} decides from. */
export interface LaunchState {
  execPath: string;
  /** `process.execArgv`: `node`'s own options. */
  execArgv: readonly string[];
  /** `process.argv`: `[execPath, script, ...arguments]`. */
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  /** The process has an IPC channel to its parent (`process.channel`). */
  ipc?: boolean;
}

/**
 * The command line to start ftpd again with {@link LAUNCH_FLAGS} (`node`'s options first, then the script and its
 * arguments as they were), or null when it runs as it is (see the module's comment for when).
 */
export function relaunchArgs(state: LaunchState): string[] | null {
  const { execPath, execArgv, argv, env } = state;
  if (env[RELAUNCHED_ENV] !== undefined || env.LISTEN_FDS !== undefined || env.NODE_UNIQUE_ID !== undefined || state.ipc === true) return null;
  if (/^(off|false|no|0)$/i.test((env.FTPD_RELAUNCH ?? '').trim())) return null;
  if (argv.length < 2) return null;
  // Commands that print and exit gain nothing from the flag, only a second start of Node.
  const first = argv[2] === '--' ? argv[3] : argv[2];
  if (first !== undefined && ONE_SHOT_COMMANDS.has(first)) return null;
  const missing = LAUNCH_FLAGS.filter((flag) => !execArgv.some((arg) => sameFlag(arg, flag)));
  if (missing.length === 0) return null;
  const debugging = (arg: string): boolean => /^--?(inspect|debug)/.test(arg);
  if (execArgv.some(debugging) || (env.NODE_OPTIONS ?? '').split(/\s+/).some(debugging)) return null;
  return [execPath, ...missing, ...execArgv, ...argv.slice(1)];
}

/**
 * Whether `arg` sets the flag `flag` names, on or off, in any of V8's spellings (`--no-x`, `--nox`, `--no_x`,
 * `-x`): an operator's own choice either way stands.
 */
function sameFlag(arg: string, flag: string): boolean {
  const name = (s: string): string => s.replace(/^--?/, '').replace(/=.*$/, '').replace(/_/g, '-').replace(/^no-?/, '');
  return name(arg) === name(flag);
}

/**
 * Replaces this process with ftpd started with {@link LAUNCH_FLAGS}, when {@link relaunchArgs} says so. Returns
 * only when it does not relaunch (or cannot: the process then simply goes on without the flags). Call it first,
 * before any module of the server is loaded: the first process's work is thrown away.
 */
export function relaunchWithLaunchFlags(proc: NodeJS.Process = process): void {
  const args = relaunchArgs({ execPath: proc.execPath, execArgv: proc.execArgv, argv: proc.argv, env: proc.env, ipc: proc.channel !== undefined });
  if (args === null || typeof proc.execve !== 'function') return;
  try {
    accessSync(proc.execPath, constants.X_OK);
  } catch {
    return;
  }
  try {
    proc.execve(proc.execPath, args, { ...proc.env, [RELAUNCHED_ENV]: '1' });
  } catch {
    // Not available here (Windows) or refused: ftpd runs as it was started.
  }
}

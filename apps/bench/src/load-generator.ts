/**
 * The load generator of the session workloads (`clients`, `logins`): native/loadgen.c, built with the machine's
 * `cc` on first use into .peers/. From Node the same sessions cost a whole core at ~1,400 sessions/s, and the
 * 200-client figure became the client's; in C they cost well under half of one.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { BENCH_ROOT, PEERS_DIR } from './peers.js';

const run = promisify(execFile);
const SOURCE = path.join(BENCH_ROOT, 'native', 'loadgen.c');
const BINARY = path.join(PEERS_DIR, 'loadgen');

let built: Promise<string> | undefined;

/** The built load generator's path; rebuilt when the source is newer. Throws with the compiler's complaint. */
export function loadGenerator(): Promise<string> {
  built ??= (async () => {
    if (existsSync(BINARY) && statSync(BINARY).mtimeMs >= statSync(SOURCE).mtimeMs) return BINARY;
    mkdirSync(PEERS_DIR, { recursive: true });
    // Built beside it and renamed into place: an interrupted build never leaves a half binary with a fresh mtime.
    const partial = `${BINARY}.${process.pid}.tmp`;
    try {
      await run('cc', ['-O2', '-Wall', '-o', partial, SOURCE], { timeout: 60_000 });
      renameSync(partial, BINARY);
    } catch (e) {
      rmSync(partial, { force: true });
      const err = e as { stderr?: string; message: string };
      built = undefined; // a later workload tries again (and says the same)
      throw new Error(`the load generator (native/loadgen.c) did not build with cc: ${(err.stderr?.trim() || err.message).slice(0, 300)}`);
    }
    return BINARY;
  })();
  return built;
}

export interface LoadOptions {
  mode: 'logins' | 'clients';
  port: number;
  user: string;
  password: string;
  concurrency: number;
  seconds: number;
  /** Sessions started at most (logins). */
  maxSessions?: number;
  /** clients: the file each session downloads, and its size (a session that gets another count fails). */
  retr?: { name: string; bytes: number };
  /** A session with no progress for this long fails. */
  timeoutSeconds?: number;
}

export interface LoadResult {
  done: number;
  failed: number;
  /** Sessions completed inside the window, and its length: the rate is their quotient (stragglers waiting out a timeout after it do not stretch it). */
  doneInWindow: number;
  window: number;
  /** From the first session's start to the last one's end. */
  seconds: number;
  /** Session time (connect to 221), milliseconds. */
  p50: number;
  p99: number;
  cpuSeconds: number;
  firstError: string;
}

/**
 * Runs one bout of sessions against a server on 127.0.0.1 and returns what the generator counted. Build it first
 * ({@link loadGenerator}), outside anything measured: the compiler's time and CPU are no client's.
 */
export async function generateLoad(options: LoadOptions): Promise<LoadResult> {
  const binary = await loadGenerator();
  const args = ['--mode', options.mode, '--port', String(options.port), '--user', options.user, '--pass', options.password];
  args.push('--concurrency', String(options.concurrency), '--seconds', String(options.seconds));
  args.push('--timeout', String(options.timeoutSeconds ?? 10));
  if (options.maxSessions !== undefined) args.push('--max-sessions', String(options.maxSessions));
  if (options.retr) args.push('--retr', options.retr.name, '--expect-bytes', String(options.retr.bytes));
  // Its own loop ends by the deadline plus one timeout; this bound is for a generator that hangs regardless.
  const bound = Math.ceil((options.seconds + (options.timeoutSeconds ?? 10) + 30) * 1000);
  const { stdout } = await run(binary, args, { timeout: bound, killSignal: 'SIGKILL' });
  return JSON.parse(stdout) as LoadResult;
}

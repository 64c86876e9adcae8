/**
 * The bench's small C programs (native/<name>.c), built with the machine's `cc` on first use into .peers/, outside
 * anything measured: the load generator of the session workloads and the memory warm-up before upload rounds.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { BENCH_ROOT, PEERS_DIR } from './peers.js';

const run = promisify(execFile);
const built = new Map<string, Promise<string>>();

/** native/<name>.c built into .peers/<name> (again when the source is newer); its path. Throws with cc's complaint. */
export function nativeTool(name: string, what: string): Promise<string> {
  let binary = built.get(name);
  if (binary === undefined) {
    binary = build(name, what);
    built.set(name, binary);
    // A later caller tries again (and says the same).
    binary.catch(() => built.delete(name));
  }
  return binary;
}

async function build(name: string, what: string): Promise<string> {
  const source = path.join(BENCH_ROOT, 'native', `${name}.c`);
  const binary = path.join(PEERS_DIR, name);
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) return binary;
  mkdirSync(PEERS_DIR, { recursive: true });
  // Built beside it and renamed into place: an interrupted build never leaves a half binary with a fresh mtime.
  const partial = `${binary}.${process.pid}.tmp`;
  try {
    await run('cc', ['-O2', '-Wall', '-o', partial, source], { timeout: 60_000 });
    renameSync(partial, binary);
  } catch (e) {
    rmSync(partial, { force: true });
    const err = e as { stderr?: string; message: string };
    throw new Error(`${what} (native/${name}.c) did not build with cc: ${(err.stderr?.trim() || err.message).slice(0, 300)}`);
  }
  return binary;
}

/**
 * Faults in `mib` MiB of memory and frees it (native/prefault.c): before an upload round, so that on a machine
 * whose freed memory goes back to its hypervisor the round's page cache lands in memory that is backed, whichever
 * server runs it. Returns the seconds it took (long when the memory had gone back).
 */
export async function prefault(mib: number): Promise<number> {
  const binary = await nativeTool('prefault', 'the memory warm-up');
  const started = performance.now();
  await run(binary, [String(Math.ceil(mib))], { timeout: 60_000 });
  return (performance.now() - started) / 1000;
}

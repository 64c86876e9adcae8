import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { redisAnswers } from '../src/testing.js';

const run = promisify(execFile);

/** A redis-server child process of a test, on a loopback port of its own. */
export interface RedisProcess {
  port: number;
  child: ChildProcess;
}

/**
 * Starts `redis-server` on a free random loopback port (below 30000, so that a Cluster bus port, +10000, is valid
 * too) with `extra` arguments; waits for PING (10 s at most). Throws when it cannot: these tests never skip.
 */
export async function startRedis(extra: readonly string[] = [], dir?: string): Promise<RedisProcess> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 9_000);
    if (await redisAnswers(port)) continue; // Taken.
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(dir === undefined ? [] : ['--dir', dir]), ...extra], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && child.exitCode === null) {
      if (await redisAnswers(port)) return { port, child };
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
  }
  throw new Error('could not start a redis-server for the test');
}

/** Stops a server started by {@link startRedis} (its own pid only) and waits for it to exit. */
export async function stopRedis(p: RedisProcess): Promise<void> {
  if (p.child.exitCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** A 3-master Redis Cluster on loopback (no replicas), for the tests; `stop()` ends its processes. */
export async function startCluster(): Promise<{ ports: number[]; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'ftp-redis-cluster-'));
  const nodes: RedisProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const n of nodes) await stopRedis(n);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(await startRedis(['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${i}.conf`, '--cluster-node-timeout', '5000', '--dbfilename', `dump-${i}.rdb`], dir));
    }
    const addrs = nodes.map((n) => `127.0.0.1:${n.port}`);
    await run('redis-cli', ['--cluster', 'create', ...addrs, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 20_000 });
    const deadline = Date.now() + 15_000;
    for (const n of nodes) {
      for (;;) {
        const { stdout } = await run('redis-cli', ['-p', String(n.port), 'cluster', 'info']);
        if (stdout.includes('cluster_state:ok')) break;
        if (Date.now() > deadline) throw new Error('the test Cluster did not reach cluster_state:ok in 15 s');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return { ports: nodes.map((n) => n.port), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

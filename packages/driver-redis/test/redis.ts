import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { deleteFilesystem } from '../src/index.js';

const HOST = '127.0.0.1';
const PORT = 6379;

async function ping(): Promise<boolean> {
  const probe = new Redis({ host: HOST, port: PORT, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/**
 * A client of the test Redis on 127.0.0.1:6379, started (`redis-server --daemonize yes`) when it is down. A Redis
 * that cannot be reached nor started fails the run loudly, in CI and elsewhere: these tests are never skipped.
 */
export async function testRedis(): Promise<Redis> {
  if (!(await ping())) {
    try {
      await promisify(execFile)('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '-::1', '--port', String(PORT), '--save', '', '--appendonly', 'no']);
    } catch (err) {
      throw new Error(`Redis is down on ${HOST}:${PORT} and redis-server could not be started${process.env.CI === 'true' ? ' (CI)' : ''}: ${String(err)}`);
    }
    const deadline = Date.now() + 10_000;
    while (!(await ping())) {
      if (Date.now() > deadline) throw new Error(`redis-server started but ${HOST}:${PORT} does not answer PING within 10 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return new Redis({ host: HOST, port: PORT });
}

/** A fresh random key prefix for one test's filesystem. */
export function testPrefix(label = 't'): string {
  return `ftp-test-${label}-${randomBytes(6).toString('hex')}`;
}

/** Deletes the keys of the given prefixes (SCAN on each pattern). */
export async function cleanup(redis: Redis, prefixes: Iterable<string>): Promise<void> {
  for (const p of prefixes) await deleteFilesystem(redis, p);
}

/** Deletes the keys matching a SCAN pattern (for stores whose keys have no hash tag, such as the ban store's). */
export async function deletePattern(redis: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  for (let round = 0; round < 10_000; round++) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    if (keys.length > 0) n += await redis.unlink(...keys);
    cursor = next;
    if (cursor === '0') break;
  }
  return n;
}

import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { deleteFilesystem, type RedisProvider } from '../src/index.js';
import { ensureLocalRedis } from '../src/testing.js';

const HOST = '127.0.0.1';
const PORT = 6379;

/**
 * A client of the test Redis on 127.0.0.1:6379, started when it is down (see `ensureLocalRedis`). A Redis that
 * cannot be reached nor started fails the run loudly, in CI and elsewhere: these tests are never skipped.
 */
export async function testRedis(): Promise<Redis> {
  await ensureLocalRedis(PORT);
  return new Redis({ host: HOST, port: PORT });
}

/** A fresh random key prefix for one test's filesystem. */
export function testPrefix(label = 't'): string {
  return `ftp-test-${label}-${randomBytes(6).toString('hex')}`;
}

/** Deletes the keys of the given prefixes (SCAN on each pattern). */
export async function cleanup(redis: Redis, prefixes: Iterable<string>): Promise<void> {
  for (const p of prefixes) await deleteFilesystem(redis, p, { removeIdCounter: true });
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

/** A download opened and read for its first chunk: the rest is read by `rest()`. */
export async function partly(p: RedisProvider, path: string): Promise<{ stream: Readable; rest: () => Promise<Buffer> }> {
  const stream = await p.createReadStream(path);
  const it = stream[Symbol.asyncIterator]();
  const first = (await it.next()).value as Buffer;
  return {
    stream,
    rest: async () => {
      const parts = [first];
      for (let r = await it.next(); r.done !== true; r = await it.next()) parts.push(r.value as Buffer);
      return Buffer.concat(parts);
    },
  };
}

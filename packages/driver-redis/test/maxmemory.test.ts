import { afterAll, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { deterministicBytes, deterministicChunks, readAll, rejectsWithCode, writeAll } from '@ftp/vfs-conformance';
import { countKeys, RedisProvider } from '../src/index.js';
import { startRedis, stopRedis } from './servers.js';

// A Redis of our own with a small maxmemory: the shared one must not be reconfigured by a test.
const server = await startRedis(['--maxmemory', '12mb', '--maxmemory-policy', 'noeviction']);
const redis = new Redis({ host: '127.0.0.1', port: server.port });

afterAll(async () => {
  await redis.quit();
  await stopRedis(server);
});

describe('RedisProvider under maxmemory', () => {
  it('reports the room left (AVBL), fails a too-big upload with ENOSPC and leaves no content of it', async () => {
    const p = new RedisProvider({ redis, prefix: 'full' });
    const before = await p.availableSpace('/');
    expect(before).toBeLessThanOrEqual(12 * 1024 * 1024);
    expect(before).toBeGreaterThan(0);
    await writeAll(p, '/small', Buffer.alloc(1024 * 1024, 7));
    const after = await p.availableSpace('/');
    expect(after).toBeLessThan(before - 900 * 1024);
    await p.allocate('/', 100_000);
    await rejectsWithCode(p.allocate('/', 64 * 1024 * 1024), 'ENOSPC');
    await rejectsWithCode(() => writeAll(p, '/huge', deterministicChunks(40 * 1024 * 1024)), 'ENOSPC');
    // The destroyed upload deleted what it had stored (after its writes in flight landed).
    await new Promise((r) => setTimeout(r, 50));
    expect(await countKeys(redis, 'full', 'c:*')).toBe(1);
    await expect(p.stat('/huge')).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readAll(p, '/small')).length).toBe(1024 * 1024);
    expect(await p.availableSpace('/')).toBeGreaterThan(after - 512 * 1024);
  });

  it('a full Redis still serves downloads with their leases (a write it could refuse) and deletes at once', async () => {
    const p = new RedisProvider({ redis, prefix: 'full-read', chunkSize: 64 * 1024 });
    const data = deterministicBytes(1024 * 1024, 3);
    await writeAll(p, '/f', data);
    const ino = (await p.stat('/f')).ino;
    // Over maxmemory from now on: Redis refuses ZADD (denyoom), as it does uploads.
    await redis.config('SET', 'maxmemory', '1');
    try {
      await rejectsWithCode(() => writeAll(p, '/g', 'x'), 'ENOSPC');
      const rs = await p.createReadStream('/f');
      const it = rs[Symbol.asyncIterator]();
      const parts = [(await it.next()).value as Buffer];
      await p.unlink('/f');
      for (let r = await it.next(); r.done !== true; r = await it.next()) parts.push(r.value as Buffer);
      expect(Buffer.concat(parts).equals(data)).toBe(true);
      // Deleting is what frees a full Redis: it works, and the content goes once its reader has ended.
      await vi.waitFor(async () => expect(await redis.exists(p.keys.content(ino))).toBe(0), { timeout: 2000, interval: 10 });
      // The root, seq, and the record of the delete (against a replay of it: it expires).
      expect(await countKeys(redis, 'full-read')).toBe(3);
      expect(await countKeys(redis, 'full-read', 'q:*')).toBe(1);
    } finally {
      await redis.config('SET', 'maxmemory', '12mb');
    }
  });
});

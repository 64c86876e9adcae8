import { afterAll, describe, expect, it, vi } from 'vitest';
import { Cluster } from 'ioredis';
import { describeProvider, readAll, writeAll } from '@ftp/vfs-conformance';
import type { FsProvider } from '@ftp/vfs';
import { deleteFilesystem, RedisProvider } from '../src/index.js';
import { startCluster } from './servers.js';
import { testPrefix } from './redis.js';

// A real 3-master Cluster of our own (started at collection time: the suite's factory runs then).
const cluster = await startCluster();
const client = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
const prefixes = new WeakMap<FsProvider, string>();

afterAll(async () => {
  await client.quit();
  await cluster.stop();
});

describe('Redis Cluster', () => {
  it('keeps every key of a filesystem in one slot, and filesystems spread over the masters', async () => {
    const prefixes = Array.from({ length: 12 }, (_, i) => `${testPrefix('slot')}-${i}`);
    const masters = new Set<string>();
    for (const prefix of prefixes) {
      const p = new RedisProvider({ redis: client, prefix });
      await p.mkdir('/d/e', { recursive: true });
      await writeAll(p, '/d/e/f', Buffer.alloc(300_000, 1));
      await p.rename('/d', '/moved');
      expect((await readAll(p, '/moved/e/f')).length).toBe(300_000);
      // A download in progress: its reader lease is a key of the filesystem too.
      const reading = await p.createReadStream('/moved/e/f');
      await reading[Symbol.asyncIterator]().next();
      const keys: string[] = [];
      for (const node of client.nodes('master')) {
        const found = await node.keys(`{${prefix}}:*`);
        if (found.length > 0) masters.add(`${node.options.port}`);
        keys.push(...found);
      }
      const slots = new Set(await Promise.all(keys.map((k) => client.cluster('KEYSLOT', k))));
      expect(keys.filter((k) => k.includes('}:r:'))).toHaveLength(1);
      expect(keys.length).toBeGreaterThanOrEqual(6);
      expect(slots.size).toBe(1);
      // The lease goes with the download (a script on the filesystem's node, like every other).
      reading.destroy();
      const lease = keys.find((k) => k.includes('}:r:')) ?? '';
      await vi.waitFor(async () => expect(await client.exists(lease)).toBe(0), { timeout: 2000, interval: 10 });
      // Every key but the lease (gone) and the id counter (kept, on the same node: see deleteFilesystem).
      expect(await deleteFilesystem(client, prefix)).toBe(keys.length - 2);
      expect(await client.exists(p.keys.idCounter)).toBe(1);
    }
    expect(masters.size).toBeGreaterThan(1);
  });
});

describeProvider(
  'RedisProvider on a Redis Cluster',
  () => {
    const prefix = testPrefix('cluster');
    const p = new RedisProvider({ redis: client, prefix });
    prefixes.set(p, prefix);
    return p;
  },
  {
    largeFileBytes: 16 * 1024 * 1024,
    teardown: async (p) => {
      const prefix = prefixes.get(p);
      if (prefix !== undefined) await deleteFilesystem(client, prefix, { removeIdCounter: true });
    },
  },
);

import { afterAll, describe, expect, it } from 'vitest';
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
      const keys: string[] = [];
      for (const node of client.nodes('master')) {
        const found = await node.keys(`{${prefix}}:*`);
        if (found.length > 0) masters.add(`${node.options.port}`);
        keys.push(...found);
      }
      const slots = new Set(await Promise.all(keys.map((k) => client.cluster('KEYSLOT', k))));
      expect(keys.length).toBeGreaterThanOrEqual(5);
      expect(slots.size).toBe(1);
      expect(await deleteFilesystem(client, prefix)).toBe(keys.length);
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
      if (prefix !== undefined) await deleteFilesystem(client, prefix);
    },
  },
);

import { createRequire } from 'node:module';
import { afterAll, describe, expect, it } from 'vitest';
import { writeAll } from '@ftp/vfs-conformance';
import type { Redis } from 'ioredis';
import { deleteFilesystem, RedisProvider } from '../src/index.js';
import { connect } from '../src/client.js';
import { testPrefix, testRedis } from './redis.js';

const require = createRequire(import.meta.url);

/**
 * ioredis as a second copy, with classes of its own (what an application gets with another version of ioredis
 * than the driver's, or a duplicate install): its modules are loaded again past the require cache.
 */
function secondIoredis(): { Redis: typeof Redis } {
  const saved = new Map(Object.entries(require.cache));
  for (const key of Object.keys(require.cache)) if (/[/\\]ioredis[/\\]/.test(key)) delete require.cache[key];
  try {
    return require('ioredis') as { Redis: typeof Redis };
  } finally {
    // The driver's own copy goes back into the cache: whatever requires ioredis after this test file gets it.
    for (const [key, mod] of saved) require.cache[key] = mod;
  }
}

const DB = 3;
const ours = await testRedis();
const Copy = secondIoredis().Redis;
const copyClient = new Copy({ host: '127.0.0.1', port: 6379, db: DB });
const prefix = testPrefix('copy');

afterAll(async () => {
  await deleteFilesystem(copyClient, prefix, { removeIdCounter: true });
  await copyClient.quit();
  await ours.quit();
});

describe('a client from another copy of ioredis', () => {
  it('is used as it is, not taken for options (which would connect to database 0 of localhost)', async () => {
    expect(copyClient instanceof (ours.constructor as typeof Redis)).toBe(false);
    expect(connect(copyClient as never)).toEqual({ client: copyClient, owned: false });
    const p = new RedisProvider({ redis: copyClient as never, prefix });
    await writeAll(p, '/in-db-3', 'x');
    expect(await copyClient.exists(`{${prefix}}:seq`)).toBeGreaterThan(0);
    const inDb0 = await ours.keys(`{${prefix}}:*`);
    expect(inDb0).toEqual([]);
    await p.close();
  });

  it('a value that is neither a URL, plain options nor a client is refused, not taken for options', () => {
    class NotAClient {
      host = '10.0.0.1';
    }
    expect(() => connect(new NotAClient() as never)).toThrow(TypeError);
    expect(() => connect(new Map() as never)).toThrow(/ioredis client/);
  });
});

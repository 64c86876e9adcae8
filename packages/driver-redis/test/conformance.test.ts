import { afterAll } from 'vitest';
import { describeProvider } from '@ftp/vfs-conformance';
import type { FsProvider } from '@ftp/vfs';
import { deleteFilesystem, RedisProvider } from '../src/index.js';
import { testPrefix, testRedis } from './redis.js';

// Top-level await: the suite's factory runs while the tests are collected, so Redis must answer by then.
const redis = await testRedis();
const prefixes = new WeakMap<FsProvider, string>();

describeProvider(
  'RedisProvider',
  () => {
    const prefix = testPrefix('conf');
    const p = new RedisProvider({ redis, prefix });
    prefixes.set(p, prefix);
    return p;
  },
  {
    teardown: async (p) => {
      await (p as RedisProvider).close();
      const prefix = prefixes.get(p);
      if (prefix !== undefined) await deleteFilesystem(redis, prefix, { removeIdCounter: true });
    },
  },
);

afterAll(async () => {
  await redis.quit();
});

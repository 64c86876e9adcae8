import { afterAll } from 'vitest';
import type { FsProvider } from '@ftp/vfs';
import { describeProvider } from '@ftp/vfs-conformance';
import { S3Provider } from '../src/index.js';
import { startStore, type TestTarget } from './fixtures/store.js';

const store = await startStore();
afterAll(() => store.close());

const targets = new WeakMap<FsProvider, TestTarget>();

describeProvider(
  `S3Provider (${store.external ? store.settings.endpoint ?? 'AWS' : 's3rver'})`,
  async () => {
    const target = await store.target();
    const p = new S3Provider({ bucket: target.bucket, prefix: target.prefix, ...store.settings });
    targets.set(p, target);
    return p;
  },
  {
    teardown: async (p) => {
      (p as S3Provider).close();
      await targets.get(p)?.cleanup();
    },
    skip: [
      'symlinks: S3 has no links',
      'set-times: ListObjectsV2 returns no metadata, so listings show S3 LastModified, not the time setTimes stores (stat shows it: test/upload.test.ts)',
    ],
    largeFileTimeout: 120_000,
  },
);

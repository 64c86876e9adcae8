import { afterAll } from 'vitest';
import { describeProvider } from '@ftp/vfs-conformance';
import type { FsProvider } from '@ftp/vfs';
import type { SqlProvider } from '../src/index.js';
import { DBS, disposeProvider, freshProvider } from './services.js';

afterAll(() => {
  for (const db of DBS) db.cleanup();
});

for (const db of DBS) {
  // Every test gets a provider over its own, freshly migrated tables (random prefix), dropped afterwards.
  describeProvider(`SqlProvider (${db.dialect})`, () => freshProvider(db), {
    teardown: (p: FsProvider) => disposeProvider(p as SqlProvider),
    largeFileTimeout: 90_000,
  });
}

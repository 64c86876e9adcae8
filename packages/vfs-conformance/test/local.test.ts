import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvider } from '@ftp/vfs';
import type { FsProvider } from '@ftp/vfs';
import { describeProvider } from '../src/index.js';

const roots = new WeakMap<FsProvider, string>();

// Both modes: metadata calls on the main thread (the default) and through the thread pool (network disks).
for (const syncMetadata of [true, false]) {
  describeProvider(
    `LocalProvider (syncMetadata: ${syncMetadata})`,
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'ftp-vfs-local-'));
      const p = new LocalProvider(dir, { syncMetadata });
      roots.set(p, dir);
      return p;
    },
    {
      teardown: (p) => {
        const dir = roots.get(p);
        if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      },
    },
  );
}

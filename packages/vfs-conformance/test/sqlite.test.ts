import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteProvider } from '@ftp/vfs';
import type { FsProvider } from '@ftp/vfs';
import { describeProvider } from '../src/index.js';

describeProvider('SqliteProvider (:memory:)', () => new SqliteProvider(':memory:'), { contentInMemory: true });

const dirs = new WeakMap<FsProvider, string>();

describeProvider(
  'SqliteProvider (file)',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'ftp-vfs-sqlite-'));
    const p = new SqliteProvider(join(dir, 'fs.db'));
    dirs.set(p, dir);
    return p;
  },
  {
    teardown: (p) => {
      (p as SqliteProvider).close();
      const dir = dirs.get(p);
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
  },
);

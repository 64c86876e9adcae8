import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvider } from '@ftp/vfs';
import type { FsProvider } from '@ftp/vfs';
import { describeProvider } from '../src/index.js';

const roots = new WeakMap<FsProvider, string>();

describeProvider(
  'LocalProvider',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'ftp-vfs-local-'));
    const p = new LocalProvider(dir);
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

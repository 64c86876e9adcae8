import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvider, MemoryProvider, mounts, quota, scoped, SqliteProvider } from '@ftp/vfs';
import type { FsProvider } from '@ftp/vfs';
import { describeProvider } from '../src/index.js';

// The whole suite through scoped() views (a user's home inside a shared provider), with a smaller large file.
const inner = new WeakMap<FsProvider, { provider: FsProvider; cleanup?: () => void }>();

function home(provider: FsProvider, cleanup?: () => void): FsProvider {
  const view = scoped(provider, '/home/user');
  inner.set(view, cleanup === undefined ? { provider } : { provider, cleanup });
  return view;
}

const teardown = async (view: FsProvider): Promise<void> => {
  const entry = inner.get(view);
  await entry?.provider.close?.();
  entry?.cleanup?.();
};

describeProvider(
  'scoped(MemoryProvider)',
  async () => {
    const p = new MemoryProvider();
    await p.mkdir('/home/user', { recursive: true });
    await p.mkdir('/home/other', { recursive: true });
    return home(p);
  },
  { teardown, largeFileBytes: 8 * 1024 * 1024, contentInMemory: true },
);

describeProvider(
  'scoped(LocalProvider)',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'ftp-vfs-scoped-'));
    const p = new LocalProvider(dir);
    p.mkdirSync('/home/user', { recursive: true });
    return home(p, () => rmSync(dir, { recursive: true, force: true }));
  },
  { teardown, largeFileBytes: 8 * 1024 * 1024 },
);

describeProvider(
  'scoped(SqliteProvider)',
  () => {
    const p = new SqliteProvider();
    p.mkdirSync('/home/user', { recursive: true });
    return home(p);
  },
  { teardown, largeFileBytes: 8 * 1024 * 1024, contentInMemory: true },
);

// The suite inside a mount point (paths routed to the mounted provider) and beside one (routed to the root).
const mounted = new WeakMap<FsProvider, () => void>();

describeProvider(
  'scoped(mounts(MemoryProvider, { /data: LocalProvider }), /data)',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'ftp-vfs-mounts-'));
    const view = scoped(mounts(new MemoryProvider(), { '/data': new LocalProvider(dir) }), '/data');
    mounted.set(view, () => rmSync(dir, { recursive: true, force: true }));
    return view;
  },
  { teardown: (view) => mounted.get(view)?.(), largeFileBytes: 8 * 1024 * 1024 },
);

describeProvider(
  'scoped(mounts(MemoryProvider, { /archive: SqliteProvider }), /home)',
  async () => {
    const root = new MemoryProvider();
    await root.mkdir('/home', { recursive: true });
    return scoped(mounts(root, { '/archive': new SqliteProvider() }), '/home');
  },
  { teardown: () => undefined, largeFileBytes: 8 * 1024 * 1024, contentInMemory: true },
);

// The whole suite through a quota far above what it writes: the wrapper must pass everything through unchanged.
describeProvider('quota(MemoryProvider, 1 GiB)', () => quota(new MemoryProvider(), { bytes: 1024 ** 3 }), {
  teardown: () => undefined,
  largeFileBytes: 8 * 1024 * 1024,
  contentInMemory: true,
  skip: ['space: the quota, not the provider, answers availableSpace and allocate (own tests in @ftp/vfs)'],
});

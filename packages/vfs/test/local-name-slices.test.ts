import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';

// Names-only listings (`listNameSlices`, what NLST uses): the names and order of `listSlices`, with no entry
// looked up; the wrappers pass it on, and `listNameSlices()` falls back for providers without it.
import {
  listDirectorySlices,
  listNameSlices,
  LocalProvider,
  MemoryProvider,
  mounts,
  quota,
  readOnly,
  scoped,
  slicesOf,
  type DirEntry,
  type DirSlices,
  type FsProvider,
  type ListSlicesOptions,
  type NameSlices,
} from '../src/index.js';
import { LstatThread } from '../src/internal/lstat-thread.js';

let root: string;
const SIZES = [0, 1, 499, 500, 501, 1999, 2000, 2001, 4500];
beforeAll(() => {
  root = fs.mkdtempSync(join(tmpdir(), 'vfs-names-'));
  for (const n of SIZES) {
    fs.mkdirSync(join(root, `d${n}`));
    for (let i = 0; i < n; i++) fs.writeFileSync(join(root, `d${n}`, `e${(i * 7919) % 100_003}`), '');
  }
  const mixed = join(root, 'mixed');
  fs.mkdirSync(mixed);
  for (const name of ['a', '.dot', 'line\nfeed', 'caf\u00e9']) fs.writeFileSync(join(mixed, name), '');
  fs.mkdirSync(join(mixed, 'sub'));
  fs.symlinkSync('nowhere', join(mixed, 'dangling'));
  fs.symlinkSync('/', join(mixed, 'out'));
  // Names that are not UTF-8 (one each, and two that Node reads alike): see NameRepair.
  const bytes = Buffer.from(mixed);
  for (const b of [[0x63, 0x61, 0x66, 0xe9], [0x63, 0x61, 0x66, 0xe8], [0xff, 0x2e, 0x74]]) fs.writeFileSync(Buffer.concat([bytes, Buffer.from('/'), Buffer.from(b)]), '');
});
afterEach(() => {
  vi.restoreAllMocks();
});
afterAll(async () => {
  await LstatThread.stopShared();
  fs.rmSync(root, { recursive: true, force: true });
});

async function drain(s: NameSlices) {
  const names: string[] = [];
  const held: Array<number | undefined> = [];
  let sorted: boolean | undefined;
  for await (const slice of s) {
    sorted ??= s.sorted;
    held.push(s.held);
    for (const name of slice) names.push(name);
  }
  return { names, sorted: sorted ?? s.sorted, held };
}

async function entryNames(s: DirSlices) {
  const names: string[] = [];
  for await (const slice of s) for (const e of slice) names.push(e.name);
  return names;
}

describe('listNameSlices on local disk', () => {
  it('the names of listSlices, in its order, sorted iff it says so, with what it holds going down to 0', async () => {
    const p = new LocalProvider(root, { listingThread: false });
    for (const n of SIZES) {
      const want = fs.readdirSync(join(root, `d${n}`)).sort();
      for (const max of [undefined, 0, 1, 499, 500, 2000, n - 1, n, n + 1, 20_000]) {
        if (max !== undefined && max < 0) continue;
        const options = max === undefined ? undefined : { sortedUpTo: max };
        const got = await drain(await p.listNameSlices(`/d${n}`, options));
        expect([n, max, got.names.length]).toEqual([n, max, n]);
        expect([...got.names].sort()).toEqual(want);
        expect([n, max, got.sorted === true]).toEqual([n, max, max !== undefined && n <= max]);
        if (got.sorted) expect(got.names).toEqual(want);
        else if (max !== undefined) expect(got.names).toEqual(await entryNames(await p.listSlices(`/d${n}`, options)));
        if (got.held.length > 0) expect(got.held[got.held.length - 1]).toBe(0);
        for (let i = 1; i < got.held.length; i++) expect(got.held[i]).toBeLessThanOrEqual(got.held[i - 1] as number);
      }
    }
  });

  it('looks no entry up: no lstat or stat of an entry, no listing thread', async () => {
    const p = new LocalProvider(root);
    const dir = join(root, 'd4500');
    let lookups = 0;
    const count = (path: unknown): void => {
      if (String(path).startsWith(`${dir}/`)) lookups++;
    };
    for (const name of ['lstat', 'lstatSync', 'stat', 'statSync'] as const) {
      const original = fs[name] as (...args: unknown[]) => unknown;
      vi.spyOn(fs, name).mockImplementation(((...args: unknown[]) => {
        count(args[0]);
        return original.apply(fs, args);
      }) as never);
    }
    const thread = vi.spyOn(LstatThread.prototype, 'lstat');
    // @ftp/native's batch lookups off: every lookup on this thread goes through fs.lstatSync, and is counted.
    process.env.FTP_NATIVE_LSTAT = '0';
    onTestFinished(() => void delete process.env.FTP_NATIVE_LSTAT);
    expect((await drain(await p.listNameSlices('/d4500', { sortedUpTo: 10_000 }))).names).toHaveLength(4500);
    expect((await drain(await p.listNameSlices('/d4500', { sortedUpTo: 100 }))).names).toHaveLength(4500);
    expect((await drain(await p.listNameSlices('/d4500'))).names).toHaveLength(4500);
    expect([lookups, thread.mock.calls.length]).toEqual([0, 0]);
    // (What a listing with stats costs: one lookup per entry.)
    await entryNames(await new LocalProvider(root, { listingThread: false }).listSlices('/d4500'));
    expect(lookups).toBeGreaterThanOrEqual(4500);
  });

  it('every kind of entry and name, as listSlices names them (names that are not UTF-8 escaped alike)', async () => {
    for (const syncMetadata of [true, false]) {
      const p = new LocalProvider(root, { syncMetadata });
      const names = (await drain(await p.listNameSlices('/mixed', { sortedUpTo: 100 }))).names;
      expect(names).toHaveLength(10);
      expect([...names].sort()).toEqual((await entryNames(await p.listSlices('/mixed', { sortedUpTo: 100 }))).sort());
      expect(names).toEqual(expect.arrayContaining(['a', '.dot', 'line\nfeed', 'caf\u00e9', 'sub', 'dangling', 'out']));
      for (const name of names) expect(name).not.toContain('\uFFFD');
    }
  });

  it('refuses what listSlices refuses: a missing folder, a file, a path out of the root', async () => {
    const p = new LocalProvider(join(root, 'mixed'));
    await expect(p.listNameSlices('/missing')).rejects.toMatchObject({ code: 'ENOENT', path: '/missing' });
    await expect(p.listNameSlices('/a')).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(p.listNameSlices('/out')).rejects.toMatchObject({ code: expect.stringMatching(/^E/) });
    await expect(p.listSlices('/out')).rejects.toMatchObject({ code: expect.stringMatching(/^E/) });
  });

  it('a listing stopped early, started or not, closes its folder', async () => {
    const p = new LocalProvider(root);
    const fds = (): number => fs.readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 20; i++) await (await p.listNameSlices('/d4500')).return();
    for (let i = 0; i < 20; i++) {
      const s = await p.listNameSlices('/d4500', { sortedUpTo: i % 2 === 0 ? 100 : 10_000 });
      await s.next();
      await s.return();
    }
    expect(fds()).toBeLessThanOrEqual(before);
  });
});

describe('wrappers and fallbacks', () => {
  it('scoped, quota, readOnly and mounts pass it on; errors name the path asked for', async () => {
    const local = new LocalProvider(root, { listingThread: false });
    const want = fs.readdirSync(join(root, 'd501')).sort();
    const views: FsProvider[] = [scoped(local, '/d501'), quota(scoped(local, '/d501'), { bytes: 1e9 }), readOnly(scoped(local, '/d501'))];
    for (const v of views) {
      expect(typeof v.listNameSlices).toBe('function');
      const got = await drain(await listNameSlices(v, '/', { sortedUpTo: 1000 }));
      expect([got.sorted, got.names]).toEqual([true, want]);
      await expect(listNameSlices(v, '/missing')).rejects.toMatchObject({ code: 'ENOENT', path: '/missing' });
    }
    const m = mounts(local, { '/d1/mnt': new MemoryProvider(), '/v/w': new MemoryProvider() });
    expect(typeof m.listNameSlices).toBe('function');
    expect(await drain(await listNameSlices(m, '/d501', { sortedUpTo: 1000 }))).toMatchObject({ sorted: true, names: want });
    // Mount points come last, in place of a same-named entry; a purely virtual folder has them only.
    expect((await drain(await listNameSlices(m, '/d1'))).names).toEqual([...fs.readdirSync(join(root, 'd1')), 'mnt']);
    expect((await drain(await listNameSlices(m, '/v'))).names).toEqual(['w']);
  });

  it('a provider without it: the names of its listSlices, of its list, or of its readdir', async () => {
    const memory = new MemoryProvider();
    await memory.mkdir('/d');
    for (const name of ['b', 'a', 'c']) await memory.mkdir(`/d/${name}`);
    // A provider with `list` only (the memory provider has its own slices now).
    const listOnly = { readdir: memory.readdir.bind(memory), stat: memory.stat.bind(memory), list: memory.list.bind(memory) } as unknown as FsProvider;
    const fromList = await drain(await listNameSlices(listOnly, '/d'));
    expect([...fromList.names].sort()).toEqual(['a', 'b', 'c']);

    const local = new LocalProvider(root, { listingThread: false });
    const slicesOnly: FsProvider = { ...plain(local), listSlices: (path, options) => local.listSlices(path, options) };
    expect(await drain(await listNameSlices(slicesOnly, '/d2001', { sortedUpTo: 5000 }))).toMatchObject({ sorted: true, names: fs.readdirSync(join(root, 'd2001')).sort() });

    const readdirOnly = plain(local);
    let stats = 0;
    readdirOnly.stat = (path: string) => {
      stats++;
      return local.stat(path);
    };
    const got = await drain(await listNameSlices(readdirOnly, '/mixed'));
    expect(got.names).toHaveLength(10);
    expect(stats).toBe(0);
    await expect(listNameSlices(readdirOnly, '/missing')).rejects.toMatchObject({ code: 'ENOENT', path: '/missing' });
    // (listDirectorySlices of the same provider looks every entry up.)
    await entryNames(await listDirectorySlices(readdirOnly, '/d501'));
    expect(stats).toBeGreaterThanOrEqual(501);
  });
});

/** A provider with `local`'s basic calls only (no listing capability). */
function plain(local: LocalProvider): FsProvider & { stat: FsProvider['stat'] } {
  return {
    specVersion: local.specVersion,
    stat: (path) => local.stat(path),
    readdir: (path) => local.readdir(path),
    mkdir: (path, options) => local.mkdir(path, options),
    rmdir: (path) => local.rmdir(path),
    unlink: (path) => local.unlink(path),
    rename: (from, to) => local.rename(from, to),
    open: (path, flags, mode) => local.open(path, flags, mode),
  } as FsProvider & { stat: FsProvider['stat'] };
}

describe('a folder swapped for a link between its confinement and its open', () => {
  it('is refused (EACCES), as LIST refuses it, rather than listing the names where the link leads', async () => {
    const base = fs.mkdtempSync(join(tmpdir(), 'name-swap-'));
    const jail = join(base, 'jail');
    const outside = join(base, 'outside');
    fs.mkdirSync(join(jail, 'd'), { recursive: true });
    fs.writeFileSync(join(jail, 'd', 'inside.txt'), '');
    fs.mkdirSync(outside);
    fs.writeFileSync(join(outside, 'SECRET_OUTSIDE'), '');
    const realOpendir = fs.opendirSync;
    // What another process writing in the tree (a shell user, a second server) can do at that moment.
    const swapOnNextOpen = (): void => {
      fs.opendirSync = ((path: fs.PathLike, options?: fs.OpenDirOptions) => {
        fs.opendirSync = realOpendir;
        if (String(path).endsWith('/jail/d')) {
          fs.renameSync(join(jail, 'd'), join(jail, 'd.old'));
          fs.symlinkSync(outside, join(jail, 'd'));
        }
        return realOpendir(path, options);
      }) as typeof fs.opendirSync;
    };
    try {
      const p = new LocalProvider(jail, { listingThread: false });
      swapOnNextOpen();
      await expect(listNameSlices(p, '/d', { sortedUpTo: 100 }).then(collectNames)).rejects.toThrow(/EACCES/);
      fs.unlinkSync(join(jail, 'd'));
      fs.renameSync(join(jail, 'd.old'), join(jail, 'd'));
      // Unswapped, the same folder lists as before.
      expect(await listNameSlices(p, '/d', { sortedUpTo: 100 }).then(collectNames)).toEqual(['inside.txt']);
    } finally {
      fs.opendirSync = realOpendir;
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});

async function collectNames(slices: AsyncIterable<string[]>): Promise<string[]> {
  const out: string[] = [];
  for await (const slice of slices) out.push(...slice);
  return out;
}

describe('a LocalProvider subclass that lists otherwise', () => {
  it('has its names listed as its own listing gives them, not as the disk holds them (NLST shows what LIST shows)', async () => {
    const base = fs.mkdtempSync(join(tmpdir(), 'name-subclass-'));
    fs.writeFileSync(join(base, 'public.txt'), '');
    fs.writeFileSync(join(base, '.htpasswd'), '');
    class Hiding extends LocalProvider {
      override async listSlices(path: string, options?: ListSlicesOptions): Promise<DirSlices> {
        const kept: DirEntry[][] = [];
        for await (const slice of await super.listSlices(path, options)) kept.push(slice.filter((e) => !e.name.startsWith('.ht')));
        return slicesOf(kept);
      }
    }
    try {
      const p = new Hiding(base);
      expect(await listNameSlices(p, '/').then(collectNames)).toEqual(['public.txt']);
      // The base class still reads names alone.
      expect((await listNameSlices(new LocalProvider(base), '/').then(collectNames)).sort()).toEqual(['.htpasswd', 'public.txt']);
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});

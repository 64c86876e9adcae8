import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  describeCapabilities,
  hashFile,
  joinPath,
  listDirectory,
  LocalProvider,
  MemoryProvider,
  mounts,
  openReadStream,
  openWriteStream,
  readOnly,
  SqliteProvider,
  type DirSlices,
  type FileStats,
  type FsProvider,
} from '../src/index.js';

async function put(p: FsProvider, path: string, text: string): Promise<void> {
  const w = await openWriteStream(p, path);
  await new Promise<void>((resolve, reject) => w.end(Buffer.from(text), (err?: Error | null) => (err ? reject(err) : resolve())));
  await new Promise((r) => setImmediate(r));
}

async function get(p: FsProvider, path: string): Promise<string> {
  let s = '';
  for await (const c of await openReadStream(p, path)) s += String(c);
  return s;
}

function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (err: NodeJS.ErrnoException) => err.code,
  );
}

/** A root with /home, a mount at /archive and a deeper one at /mnt/deep/store (so /mnt and /mnt/deep are virtual). */
async function tree() {
  const root = new MemoryProvider();
  const archive = new MemoryProvider();
  const store = new MemoryProvider();
  await root.mkdir('/home');
  const fs = mounts(root, { '/archive': archive, '/mnt/deep/store/': store });
  return { root, archive, store, fs };
}

describe('mounts', () => {
  it("gives a mounted provider's absolute link targets under the mount point, normalised first", async () => {
    const inner = new MemoryProvider();
    await inner.writeFile('/x', 'x');
    await inner.symlink('/x', '/abs');
    const tree = mounts(new MemoryProvider(), { '/m': inner });
    expect(await tree.readlink!('/m/abs')).toBe('/m/x');
    const climbing = new MemoryProvider();
    climbing.readlink = async () => '/a/../..';
    const other = mounts(new MemoryProvider(), { '/m': climbing });
    expect(await other.readlink!('/m/l')).toBe('/m');
  });

  it('routes each path to the provider of its longest mount point', async () => {
    const { root, archive, store, fs } = await tree();
    await put(fs, '/home/a.txt', 'root');
    await put(fs, '/archive/b.txt', 'archive');
    await put(fs, '/mnt/deep/store/c.txt', 'store');
    expect(await get(root, '/home/a.txt')).toBe('root');
    expect(await get(archive, '/b.txt')).toBe('archive');
    expect(await get(store, '/c.txt')).toBe('store');
    expect(await get(fs, '/archive/b.txt')).toBe('archive');
    expect(await codeOf(root.stat('/archive/b.txt'))).toBe('ENOENT');
  });

  it('lists mount points and the virtual folders that lead to them', async () => {
    const { fs } = await tree();
    expect((await listDirectory(fs, '/')).map((e) => e.name).sort()).toEqual(['archive', 'home', 'mnt']);
    expect((await fs.readdir('/mnt')).sort()).toEqual(['deep']);
    expect((await listDirectory(fs, '/mnt/deep')).map((e) => [e.name, e.stats.isDirectory()])).toEqual([['store', true]]);
    expect((await fs.stat('/mnt')).isDirectory()).toBe(true);
    expect((await fs.stat('/archive')).isDirectory()).toBe(true);
    expect(await codeOf(fs.stat('/mnt/nothing'))).toBe('ENOENT');
  });

  it('passes paged listings through: a big folder comes a slice at a time, mount points in a slice of their own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfs-mounts-slices-'));
    try {
      mkdirSync(join(dir, 'big'));
      for (let i = 0; i < 1200; i++) writeFileSync(join(dir, 'big', `f${i}`), '');
      // A file the mount point hides: it must not be listed twice.
      writeFileSync(join(dir, 'big', 'archive'), 'hidden');
      const fs = mounts(new LocalProvider(dir), { '/big/archive': new MemoryProvider() });
      expect(typeof fs.listSlices).toBe('function');
      const slices = (await fs.listSlices!('/big')) as DirSlices;
      const sizes: number[] = [];
      const names: string[] = [];
      for await (const slice of slices) {
        sizes.push(slice.length);
        for (const e of slice) names.push(e.name);
      }
      expect(sizes.length).toBeGreaterThan(2);
      expect(names).toHaveLength(1201);
      expect(names.filter((n) => n === 'archive')).toHaveLength(1);
      expect(names.at(-1)).toBe('archive');
      expect((await listDirectory(fs, '/big')).find((e) => e.name === 'archive')?.stats.isDirectory()).toBe(true);

      // Stopped early, the inner listing is ended (its folder closed), and a folder outside any mount passes through.
      const early = await fs.listSlices!('/big');
      expect((await early.next()).done).toBe(false);
      await early.return();
      expect((await early.next()).done).toBe(true);
      expect(await codeOf(fs.listSlices!('/nothing'))).toBe('ENOENT');
      expect(await codeOf(fs.listSlices!('/big/f1'))).toBe('ENOTDIR');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a purely virtual folder lists as its mount points alone, through listSlices too', async () => {
    const { fs } = await tree();
    const names: string[] = [];
    for await (const slice of await fs.listSlices!('/mnt')) for (const e of slice) names.push(e.name);
    expect(names).toEqual(['deep']);
  });

  it('refuses what cannot cross providers, and keeps mount points in place (EPERM: for good, where EBUSY would be a 450 that clients retry)', async () => {
    const { fs } = await tree();
    await put(fs, '/home/a.txt', 'x');
    await put(fs, '/archive/b.txt', 'y');
    expect(await codeOf(fs.rename('/home/a.txt', '/archive/a.txt'))).toBe('EXDEV');
    expect(await codeOf(fs.rename('/archive/b.txt', '/home/b.txt'))).toBe('EXDEV');
    expect(await codeOf(fs.rmdir('/archive'))).toBe('EPERM');
    expect(await codeOf(fs.rename('/archive', '/old'))).toBe('EPERM');
    expect(await codeOf(fs.rename('/home', '/mnt'))).toBe('EPERM');
    expect(await codeOf(fs.rmdir('/mnt'))).toBe('EPERM');
    expect(await codeOf(fs.unlink('/archive'))).toBe('EPERM');
    expect(await codeOf(fs.rmdir('/mnt/deep'))).toBe('EPERM');
    expect(await codeOf(fs.rename('/home/a.txt', '/archive'))).toBe('EPERM');
    expect(await codeOf(fs.rmdir('/'))).toBe('EPERM');
    expect(await codeOf(fs.rename('/', '/x'))).toBe('EPERM');
    expect(await codeOf(fs.mkdir('/archive'))).toBe('EEXIST');
    await fs.mkdir('/archive', { recursive: true });
    // Renames inside one provider still work.
    await fs.rename('/archive/b.txt', '/archive/c.txt');
    expect(await get(fs, '/archive/c.txt')).toBe('y');
  });

  it('a real folder that holds a mount point cannot be removed, and lists it beside its own entries', async () => {
    const root = new MemoryProvider();
    await root.mkdir('/srv');
    await root.mkdir('/srv/own');
    const fs = mounts(root, { '/srv/data': new MemoryProvider() });
    expect(await codeOf(fs.rmdir('/srv'))).toBe('EPERM');
    expect((await fs.readdir('/srv')).sort()).toEqual(['data', 'own']);
    await root.rmdir('/srv/own');
    expect((await fs.readdir('/srv')).sort()).toEqual(['data']);
  });

  it('has a capability when any provider has it, falls back or says ENOTSUP where one lacks it', async () => {
    const fs = mounts(new MemoryProvider(), { '/ro': readOnly(new MemoryProvider()) });
    expect(describeCapabilities(fs).setTimes).toBe(true);
    expect(describeCapabilities(fs).readonly).toBe(false);
    await put(fs, '/f.txt', 'hash me');
    expect(await hashFile(fs, '/f.txt', 'SHA-256')).toBe(createHash('sha256').update('hash me').digest('hex'));
    await fs.setTimes!('/f.txt', new Date(1_000_000_000_000));
    expect((await fs.stat('/f.txt')).mtimeMs).toBe(1_000_000_000_000);
    expect(await codeOf(put(fs, '/ro/x.txt', 'no'))).toBe('EROFS');
    expect(describeCapabilities(mounts(readOnly(new MemoryProvider()), { '/a': readOnly(new MemoryProvider()) })).readonly).toBe(true);
  });

  describe('device numbers (dev + ino make the MLSx unique fact)', () => {
    /** Every file and folder of `fs` under `dir`, with its stats as a listing gives them. */
    async function walk(fs: FsProvider, dir: string, out: { path: string; stats: FileStats }[] = []): Promise<{ path: string; stats: FileStats }[]> {
      for (const e of await listDirectory(fs, dir)) {
        const path = joinPath(dir, e.name);
        out.push({ path, stats: e.stats });
        if (e.stats.isDirectory()) await walk(fs, path, out);
      }
      return out;
    }
    const unique = (st: FileStats): string => `${(st.dev ?? 0).toString(16)}-${(st.ino ?? 0).toString(16)}`;

    it('two memory or SQLite mounts (no devices, overlapping inode numbers) still give every object its own dev + ino', async () => {
      // The bug: /db/b.txt and /scratch/c.txt both showed unique=2, and both mount points unique=1.
      const table = { '/db': new SqliteProvider(), '/scratch': new MemoryProvider(), '/deep/tmp': new MemoryProvider() };
      const fs = mounts(new MemoryProvider(), table);
      await put(fs, '/a.txt', 'root');
      await put(fs, '/db/b.txt', 'db');
      await put(fs, '/scratch/c.txt', 'scratch');
      await put(fs, '/deep/tmp/d.txt', 'tmp');
      const all = await walk(fs, '/');
      expect(all.map((e) => e.path).sort()).toEqual(['/a.txt', '/db', '/db/b.txt', '/deep', '/deep/tmp', '/deep/tmp/d.txt', '/scratch', '/scratch/c.txt']);
      const identified = all.filter((e) => (e.stats.ino ?? 0) > 0);
      // The inode numbers alone collide (each provider counts from 1)…
      expect(new Set(identified.map((e) => e.stats.ino)).size).toBeLessThan(identified.length);
      // …dev + ino do not, in listings, stat and lstat alike, and the devices are never a real one (< 2^32).
      expect(new Set(identified.map((e) => unique(e.stats))).size).toBe(identified.length);
      for (const { path, stats } of identified) {
        expect(stats.dev).toBeGreaterThanOrEqual(2 ** 32);
        expect(unique(await fs.stat(path))).toBe(unique(stats));
        expect(unique(await fs.lstat!(path))).toBe(unique(stats));
      }
      // Mount points: the roots of their providers, each with its provider's device.
      expect(unique(await fs.stat('/db'))).not.toBe(unique(await fs.stat('/scratch')));
      expect((await fs.stat('/db/b.txt')).dev).toBe((await fs.stat('/db')).dev);
      // Stable: a tree built again from the same table gives the same values.
      const again = mounts(new MemoryProvider(), table);
      expect(unique(await again.stat('/scratch/c.txt'))).toBe(unique(await fs.stat('/scratch/c.txt')));
      // Through listSlices too.
      for await (const slice of await fs.listSlices!('/scratch')) for (const e of slice) expect(unique(e.stats)).toBe(unique(await fs.stat(`/scratch/${e.name}`)));
    });

    it('a provider mounted twice keeps one device (its files are the same files); local-disk mounts keep their real one', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'vfs-mounts-dev-'));
      try {
        writeFileSync(join(dir, 'f.txt'), 'on disk');
        const shared = new MemoryProvider();
        const fs = mounts(new MemoryProvider(), { '/a': shared, '/b': shared, '/disk': new LocalProvider(dir) });
        await put(fs, '/a/same.txt', 'x');
        expect(unique(await fs.stat('/b/same.txt'))).toBe(unique(await fs.stat('/a/same.txt')));
        const real = statSync(join(dir, 'f.txt'));
        for (const st of [await fs.stat('/disk/f.txt'), (await listDirectory(fs, '/disk'))[0]!.stats]) {
          expect(st.dev).toBe(real.dev);
          expect(st.ino).toBe(real.ino);
        }
        expect((await fs.stat('/disk')).dev).toBe(statSync(dir).dev);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('stats that refuse a new dev (frozen, a getter over private fields) are seen through a proxy that still works', async () => {
      class Sealed implements FileStats {
        readonly #mode = 0o100644;
        get dev(): number {
          return 0;
        }
        ino = 7;
        size = 3;
        mtimeMs = 0;
        get mode(): number {
          return this.#mode;
        }
        isFile(): boolean {
          return (this.#mode & 0o170000) === 0o100000;
        }
        isDirectory(): boolean {
          return false;
        }
        isSymbolicLink(): boolean {
          return false;
        }
      }
      const inner = new MemoryProvider();
      await put(inner, '/frozen.txt', 'abc');
      const odd: FsProvider = Object.assign(Object.create(inner) as FsProvider, {
        stat: async (path: string) => (path === '/sealed.txt' ? new Sealed() : Object.freeze(await inner.stat(path))),
      });
      const fs = mounts(new MemoryProvider(), { '/m': odd });
      const sealed = await fs.stat('/m/sealed.txt');
      expect(sealed.dev).toBeGreaterThanOrEqual(2 ** 32);
      expect([sealed.isFile(), sealed.mode, sealed.ino]).toEqual([true, 0o100644, 7]);
      const frozen = await fs.stat('/m/frozen.txt');
      expect(frozen.dev).toBe(sealed.dev);
      expect([frozen.isFile(), frozen.size]).toEqual([true, 3]);
    });
  });

  it('rejects a mount at / and a mount point given twice', () => {
    expect(() => mounts(new MemoryProvider(), { '/': new MemoryProvider() })).toThrow(TypeError);
    expect(() => mounts(new MemoryProvider(), { '/a': new MemoryProvider(), '/a/': new MemoryProvider() })).toThrow(TypeError);
  });
});

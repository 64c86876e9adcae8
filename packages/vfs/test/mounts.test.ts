import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  describeCapabilities,
  hashFile,
  listDirectory,
  LocalProvider,
  MemoryProvider,
  mounts,
  openReadStream,
  openWriteStream,
  readOnly,
  type DirSlices,
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

  it('rejects a mount at / and a mount point given twice', () => {
    expect(() => mounts(new MemoryProvider(), { '/': new MemoryProvider() })).toThrow(TypeError);
    expect(() => mounts(new MemoryProvider(), { '/a': new MemoryProvider(), '/a/': new MemoryProvider() })).toThrow(TypeError);
  });
});

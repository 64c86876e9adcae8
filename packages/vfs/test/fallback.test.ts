import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { MemoryProvider as PlatformaticMemory, RealFSProvider, VirtualProvider } from '@platformatic/vfs';
import { afterAll, describe, expect, it } from 'vitest';
import { describeCapabilities, hashFile, listDirectory, MemoryProvider, openReadStream, openWriteStream, readOnly, scoped, statEntry, toVfsError, TRANSFER_CHUNK_SIZE } from '../src/index.js';
import type { FsProvider, UploadStream } from '../src/index.js';

// @platformatic/vfs providers have no streaming or list capability: every FTP operation goes through the fallbacks.

async function upload(p: FsProvider, path: string, data: Buffer | string, options?: { start?: number; append?: boolean }): Promise<void> {
  const ws: UploadStream = await openWriteStream(p, path, options);
  await new Promise<void>((resolve, reject) => {
    ws.on('error', reject);
    ws.on('finish', resolve);
    ws.end(typeof data === 'string' ? Buffer.from(data) : data);
  });
}

async function download(p: FsProvider, path: string, options?: { start?: number; end?: number }): Promise<{ data: Buffer; chunks: number[] }> {
  const chunks: Buffer[] = [];
  for await (const c of await openReadStream(p, path, options)) chunks.push(c as Buffer);
  return { data: Buffer.concat(chunks), chunks: chunks.map((c) => c.length) };
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return toVfsError(err).code;
  }
}

/** A view of `p` with some methods replaced (the others bound to `p`, whose private fields need it). */
function override(p: FsProvider, overrides: Partial<Record<keyof FsProvider, unknown>>): FsProvider {
  return new Proxy(p, {
    get(target, prop) {
      if (Object.hasOwn(overrides, prop)) return (overrides as Record<string | symbol, unknown>)[prop];
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** Wraps a provider's open() to count handles opened and closed. */
function counting(p: FsProvider): { p: FsProvider; opened: () => number; closed: () => number } {
  let opened = 0;
  let closed = 0;
  const open = p.open.bind(p);
  const wrapped = override(p, {
    open: async (path: string, flags?: string, mode?: number) => {
    const h = (await open(path, flags, mode)) as { close(): Promise<void> };
    opened++;
    const close = h.close.bind(h);
    h.close = async () => {
      closed++;
      return close();
    };
    return h;
    },
  });
  return { p: wrapped, opened: () => opened, closed: () => closed };
}

describe('@platformatic/vfs MemoryProvider as an FTP backend (fallback paths)', () => {
  const data = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 8)) & 0xff;

  it('has no streaming or list capability, but symlinks', () => {
    const caps = describeCapabilities(new PlatformaticMemory());
    expect(caps).toMatchObject({ streaming: false, list: false, hash: false, setTimes: false, chmod: false, symlink: true, readonly: false, atomicUploads: false });
    class NoLinks extends VirtualProvider {}
    expect(describeCapabilities(new NoLinks()).symlink).toBe(false);
  });

  it('uploads and downloads through file handles, 256 KiB per read, closing the handles', async () => {
    const c = counting(new PlatformaticMemory());
    await upload(c.p, '/big.bin', data);
    const { data: back, chunks } = await download(c.p, '/big.bin');
    expect(back.equals(data)).toBe(true);
    expect(Math.max(...chunks)).toBeLessThanOrEqual(TRANSFER_CHUNK_SIZE);
    expect(chunks.length).toBeGreaterThanOrEqual(Math.ceil(data.length / TRANSFER_CHUNK_SIZE));
    expect(c.opened()).toBe(2);
    expect(c.closed()).toBe(2);
  });

  it('reads ranges', async () => {
    const p = new PlatformaticMemory();
    await upload(p, '/f', data);
    expect((await download(p, '/f', { start: 1000, end: 300_000 })).data.equals(data.subarray(1000, 300_001))).toBe(true);
    expect((await download(p, '/f', { start: data.length })).data.length).toBe(0);
  });

  it('a download destroyed midway closes its handle', async () => {
    const c = counting(new PlatformaticMemory());
    await upload(c.p, '/f', data);
    const rs = await openReadStream(c.p, '/f');
    await new Promise<void>((resolve) => {
      rs.once('data', () => {
        rs.destroy();
        rs.once('close', resolve);
      });
    });
    expect(c.closed()).toBe(c.opened());
  });

  it('REST + STOR keeps the prefix and drops the tail; APPE appends and creates', async () => {
    const p = new PlatformaticMemory();
    await upload(p, '/f', '0123456789');
    await upload(p, '/f', 'XY', { start: 4 });
    expect((await download(p, '/f')).data.toString()).toBe('0123XY');
    await upload(p, '/f', '++', { append: true });
    expect((await download(p, '/f')).data.toString()).toBe('0123XY++');
    await upload(p, '/g', 'new', { append: true });
    expect((await download(p, '/g')).data.toString()).toBe('new');
    await upload(p, '/h', 'rest-on-missing', { start: 0 });
    expect((await download(p, '/h')).data.toString()).toBe('rest-on-missing');
  });

  it('EISDIR for a directory, ENOENT for a missing file, EINVAL for bad ranges', async () => {
    const p = new PlatformaticMemory();
    await p.mkdir('/d');
    expect(await code(openReadStream(p, '/d'))).toBe('EISDIR');
    expect(await code(openWriteStream(p, '/d'))).toBe('EISDIR');
    expect(await code(openReadStream(p, '/missing'))).toBe('ENOENT');
    expect(await code(openReadStream(p, '/d', { start: -1 }))).toBe('EINVAL');
    expect(await code(openWriteStream(p, '/x', { start: 1, append: true }))).toBe('EINVAL');
  });

  it('lists with readdir + lstat, from names or Dirents', async () => {
    const p = new PlatformaticMemory();
    await p.mkdir('/d');
    await upload(p, '/d/a', 'aaa');
    await p.mkdir('/d/sub');
    await p.symlink('/d/a', '/d/l');
    const list = await listDirectory(p, '/d');
    const by = new Map(list.map((e) => [e.name, e.stats]));
    expect([...by.keys()].sort()).toEqual(['a', 'l', 'sub']);
    expect(by.get('a')?.size).toBe(3);
    expect(by.get('sub')?.isDirectory()).toBe(true);
    expect(by.get('l')?.isSymbolicLink()).toBe(true);
    // A provider whose readdir returns Dirents, and one where entries vanish between readdir and lstat.
    const dirents = override(p, { readdir: (path: string) => p.readdir(path, { withFileTypes: true }) });
    expect((await listDirectory(dirents, '/d')).map((e) => e.name).sort()).toEqual(['a', 'l', 'sub']);
    const vanishing = override(p, { readdir: async (path: string) => [...(await p.readdir(path)), 'ghost'] });
    expect((await listDirectory(vanishing, '/d')).map((e) => e.name).sort()).toEqual(['a', 'l', 'sub']);
    expect((await statEntry(p, '/d/l')).isSymbolicLink()).toBe(true);
    expect(await code(listDirectory(p, '/d/a'))).toBe('ENOTDIR');
  });

  it('hashes by streaming', async () => {
    const p = new PlatformaticMemory();
    await upload(p, '/f', data);
    expect(await hashFile(p, '/f', 'SHA-256')).toBe(createHash('sha256').update(data).digest('hex'));
    expect(await hashFile(p, '/f', 'CRC32', 10, 500_000)).toBe(crc32(data.subarray(10, 500_000)).toString(16).padStart(8, '0'));
    expect(await hashFile(p, '/f', 'MD5', 7, 7)).toBe(createHash('md5').digest('hex'));
    expect(await code(hashFile(p, '/f', 'WHIRLPOOL' as 'MD5'))).toBe('EINVAL');
  });

  it('a long hash of storage that always has data ready gives the rest of the process turns, and stops when asked', async () => {
    const p = new MemoryProvider();
    const big = Buffer.alloc(64 * 1024 * 1024, 3);
    await p.writeFile('/big', big);
    const order: string[] = [];
    setImmediate(() => order.push('other work'));
    const digest = await hashFile(p, '/big', 'SHA-256');
    order.push('hash');
    expect(digest).toBe(createHash('sha256').update(big).digest('hex'));
    // Without turns, the whole 64 MiB was hashed before anything else could run.
    expect(order).toEqual(['other work', 'hash']);
    const controller = new AbortController();
    const stopped = hashFile(p, '/big', 'SHA-256', undefined, undefined, { signal: controller.signal });
    setImmediate(() => controller.abort());
    await expect(stopped).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('wraps: readOnly and scoped work over it', async () => {
    const p = new PlatformaticMemory();
    await p.mkdir('/home/u', { recursive: true });
    await upload(p, '/home/u/f', 'mine');
    await upload(p, '/secret', 'secret');
    const s = scoped(p, '/home/u');
    expect((await download(s, '/../secret').catch((e: unknown) => e)) as object).toMatchObject({ code: 'ENOENT' });
    expect((await download(s, '/f')).data.toString()).toBe('mine');
    const ro = readOnly(s);
    expect(await code(upload(ro, '/f', 'x'))).toBe('EROFS');
    expect(await code(upload(ro, '/f', 'x', { start: 1 }))).toBe('EROFS');
    expect(await code(upload(ro, '/f', 'x', { append: true }))).toBe('EROFS');
    expect((await download(ro, '/f')).data.toString()).toBe('mine');
    expect(describeCapabilities(ro)).toMatchObject({ streaming: false, list: false, readonly: true, symlink: true });
  });
});

describe('@platformatic/vfs RealFSProvider through the fallbacks', () => {
  const dir = fs.mkdtempSync(join(tmpdir(), 'ftp-vfs-realfs-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('streams, REST-truncates and refuses directories (open(dir, "r") succeeds on Linux)', async () => {
    const p = new RealFSProvider(dir);
    await upload(p, '/f', '0123456789');
    await upload(p, '/f', 'AB', { start: 3 });
    expect(fs.readFileSync(join(dir, 'f'), 'utf8')).toBe('012AB');
    await p.mkdir('/d');
    expect(await code(openReadStream(p, '/d'))).toBe('EISDIR');
    expect((await listDirectory(p, '/')).map((e) => e.name).sort()).toEqual(['d', 'f']);
  });
});

import { mkdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { PutObjectCommand, type ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { listDirectory } from '@ftp/vfs';
import { writeAll } from '@ftp/vfs-conformance';
import { mapLimit } from '../src/concurrency.js';
import { harness } from './fixtures/harness.js';
import { S3RVER_ONLY, startS3rver, startStore, useExternal } from './fixtures/store.js';

const store = await startStore();
afterAll(() => store.close());

/** Objects created through the API (PutObject, 32 at a time): 2,500 is three ListObjectsV2 pages of 1,000. */
const API_OBJECTS = Number(process.env.FTP_S3_LIST_OBJECTS ?? 2500);

describe('listing', () => {
  it(`lists a folder of ${API_OBJECTS} objects made with PutObject completely, sizes from the pages alone`, async () => {
    const h = await harness(store);
    try {
      const names = Array.from({ length: API_OBJECTS }, (_, i) => `f${String(i).padStart(6, '0')}`);
      await mapLimit(names, 32, (name, i) =>
        store.client.send(new PutObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}big/${name}`, Body: 'x'.repeat(i % 7) })),
      );
      await h.p.mkdir('/big/sub');
      h.calls.length = 0;
      const t0 = performance.now();
      const list = await listDirectory(h.p, '/big');
      const ms = performance.now() - t0;
      console.info(`[driver-s3] listed ${list.length} entries in ${ms.toFixed(0)} ms, ${h.count('ListObjectsV2Command')} ListObjectsV2 pages`);
      expect(list.length).toBe(API_OBJECTS + 1);
      const files = list.filter((e) => e.stats.isFile());
      expect(files.map((e) => e.name).sort()).toEqual(names);
      for (const e of files) expect(e.stats.size).toBe(Number(e.name.slice(1)) % 7);
      expect(list.find((e) => e.name === 'sub')?.stats.isDirectory()).toBe(true);
      // Pagination happened, and no request per entry: only listing pages.
      expect(h.count('ListObjectsV2Command')).toBe(Math.ceil((API_OBJECTS + 1) / 1000));
      expect(h.calls.every((c) => c.command === 'ListObjectsV2Command')).toBe(true);
      expect((await h.p.readdir('/big')).length).toBe(API_OBJECTS + 1);
    } finally {
      await h.close();
    }
  }, 120_000);

  const seeded = "lists a folder of 25,000 objects completely (seeded in s3rver's on-disk format: PutObject makes ~460/s here)";
  (useExternal ? it.skip : it)(useExternal ? `${seeded} — ${S3RVER_ONLY}` : seeded, async () => {
    // An s3rver of its own, whose directory the test writes the seeded bucket into.
    const s3rver = await startS3rver();
    try {
      const bucket = 'seeded';
      const dir = join(s3rver.directory, bucket, 'folder');
      mkdirSync(dir, { recursive: true });
      const n = 25_000;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        // s3rver's layout: <key>._S3rver_object, its .md5 and the metadata.json beside it.
        const body = String(i);
        const base = join(dir, `f${String(i).padStart(6, '0')}`);
        writeFileSync(`${base}._S3rver_object`, body);
        writeFileSync(`${base}._S3rver_object.md5`, createHash('md5').update(body).digest('hex'));
        writeFileSync(`${base}._S3rver_metadata.json`, '{"content-type":"application/octet-stream"}');
      }
      const seedMs = performance.now() - t0;
      const { S3Provider } = await import('../src/index.js');
      const p = new S3Provider({ bucket, endpoint: s3rver.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
      const t1 = performance.now();
      const list = await p.list('/folder');
      const listMs = performance.now() - t1;
      // Sliced, the first page can go out before the other 24 are read.
      const t2 = performance.now();
      const slices = await p.listSlices('/folder');
      const first = await slices.next();
      const firstMs = performance.now() - t2;
      await slices.return();
      p.close();
      expect(first.value).toHaveLength(1000);
      console.info(`[driver-s3] 25,000 objects: seeded in ${seedMs.toFixed(0)} ms, listed in ${listMs.toFixed(0)} ms, first slice of 1,000 in ${firstMs.toFixed(0)} ms`);
      expect(list.length).toBe(n);
      const seen = new Set(list.map((e) => e.name));
      expect(seen.size).toBe(n);
      for (const i of [0, 999, 1000, 12_345, 24_999]) expect(seen.has(`f${String(i).padStart(6, '0')}`)).toBe(true);
      expect(list.find((e) => e.name === 'f012345')?.stats.size).toBe(5);
    } finally {
      await s3rver.close();
    }
  }, 180_000);

  it('a prefix is a tree of its own: nothing outside it is listed or reachable', async () => {
    const h = await harness(store);
    try {
      await store.client.send(new PutObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}users/bob/secret.txt`, Body: 'bob' }));
      await store.client.send(new PutObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}users/alice/mine.txt`, Body: 'alice' }));
      const { S3Provider } = await import('../src/index.js');
      const alice = new S3Provider({ bucket: h.target.bucket, prefix: `${h.target.prefix}users/alice`, client: h.client });
      expect(await alice.readdir('/')).toEqual(['mine.txt']);
      expect((await alice.stat('/mine.txt')).size).toBe(5);
      await expect(alice.stat('/secret.txt')).rejects.toMatchObject({ code: 'ENOENT' });
      await writeAll(alice, '/new.txt', 'new');
      expect(await h.p.readdir('/users/alice')).toEqual(['mine.txt', 'new.txt']);
      expect(await h.p.readdir('/users/bob')).toEqual(['secret.txt']);
    } finally {
      await h.close();
    }
  });

  it('a prefix with objects but no marker is a directory; a marker keeps an emptied directory', async () => {
    const h = await harness(store);
    try {
      await store.client.send(new PutObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}implicit/deep/f.txt`, Body: 'f' }));
      expect((await h.p.stat('/implicit')).isDirectory()).toBe(true);
      expect((await h.p.stat('/implicit/deep')).isDirectory()).toBe(true);
      expect(await h.p.readdir('/implicit')).toEqual(['deep']);
      await h.p.unlink('/implicit/deep/f.txt');
      // Deleting the last file leaves its directory in place (the driver writes the marker).
      expect((await h.p.stat('/implicit/deep')).isDirectory()).toBe(true);
      expect(await h.p.readdir('/implicit/deep')).toEqual([]);
      await h.p.rmdir('/implicit/deep');
      expect((await h.p.stat('/implicit')).isDirectory()).toBe(true);
      await expect(h.p.stat('/implicit/deep')).rejects.toMatchObject({ code: 'ENOENT' });
      // Below a file there is no directory, recursive or not.
      await writeAll(h.p, '/implicit/file', 'f');
      await expect(h.p.mkdir('/implicit/file/sub', { recursive: true })).rejects.toMatchObject({ code: 'ENOTDIR' });
      await expect(h.p.mkdir('/implicit/file/sub')).rejects.toMatchObject({ code: 'ENOTDIR' });
      await expect(h.p.readdir('/implicit/file')).rejects.toMatchObject({ code: 'ENOTDIR' });
    } finally {
      await h.close();
    }
  });
});

describe('listing a page at a time (listSlices)', () => {
  /** `/d` holds 1,100 files `a!0000`… (`!` sorts before `/`), the object `a/x` and the directory `b`: two pages. */
  async function seed(h: Awaited<ReturnType<typeof harness>>): Promise<string[]> {
    const many = Array.from({ length: 1100 }, (_, i) => `a!${String(i).padStart(4, '0')}`);
    const keys = ['a/x', ...many].map((name) => `${h.target.prefix}d/${name}`);
    await mapLimit(keys, 32, (Key) => store.client.send(new PutObjectCommand({ Bucket: h.target.bucket, Key, Body: 'xyz' })));
    await h.p.mkdir('/d/b');
    return ['a', ...many, 'b'].sort();
  }

  it('gives a slice per page, fetching one page ahead, each entry once', async () => {
    const h = await harness(store);
    try {
      const expected = await seed(h);
      h.calls.length = 0;
      const slices = await h.p.listSlices('/d');
      // Opened: the first page only (it tells a folder from a file or nothing).
      expect(h.count('ListObjectsV2Command')).toBe(1);
      const sizes: number[] = [];
      const got: Array<{ name: string; dir: boolean }> = [];
      for await (const slice of slices) {
        sizes.push(slice.length);
        for (const e of slice) got.push({ name: e.name, dir: e.stats.isDirectory() });
      }
      // Two pages, two slices (s3rver repeats the prefix `a/` on its second page: listed once all the same).
      expect(sizes).toHaveLength(2);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(1001);
      expect(got.map((e) => e.name).sort()).toEqual(expected);
      expect(got.filter((e) => e.dir).map((e) => e.name).sort()).toEqual(['a', 'b']);
      expect(h.count('ListObjectsV2Command')).toBe(2);
      expect(h.calls.every((c) => c.command === 'ListObjectsV2Command')).toBe(true);
      expect((await h.p.list('/d')).map((e) => e.name).sort()).toEqual(expected);
    } finally {
      await h.close();
    }
  }, 120_000);

  it('stopped after a slice, fetches nothing more; a failed page ends the listing with its error', async () => {
    const h = await harness(store);
    try {
      await seed(h);
      h.calls.length = 0;
      const stopped = await h.p.listSlices('/d');
      expect((await stopped.next()).done).toBe(false);
      expect((await stopped.return()).done).toBe(true);
      expect((await stopped.next()).done).toBe(true);
      await new Promise((r) => setTimeout(r, 100));
      // The first page, and the second fetched ahead: no third.
      expect(h.count('ListObjectsV2Command')).toBe(2);

      const failing = await h.p.listSlices('/d');
      h.failWhen((c) => c.command === 'ListObjectsV2Command', () => Object.assign(new Error('please reduce your request rate'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } }));
      expect((await failing.next()).done).toBe(false);
      await expect(failing.next()).rejects.toMatchObject({ code: expect.any(String), path: '/d' });
      expect((await failing.next()).done).toBe(true);
    } finally {
      await h.close();
    }
  }, 120_000);

  it('lists a name that is a file and a prefix once, as the file, even when the prefix is pages later', async () => {
    // Scripted pages (s3rver cannot hold both `a` and `a/x`): page 1 ends with the file `a`, page 2 is `a!…` keys,
    // page 3 brings the prefix `a/` (and repeats `c/`, as some stores do), and an empty page 4 ends it.
    const obj = (name: string) => ({ Key: `d/${name}`, Size: name.length, LastModified: new Date(0) });
    const pages: Record<string, { Contents?: object[]; CommonPrefixes?: object[]; IsTruncated: boolean; NextContinuationToken?: string }> = {
      '': { Contents: [obj('0'), obj('a')], IsTruncated: true, NextContinuationToken: 't2' },
      t2: { Contents: [obj('a!1'), obj('a!2')], IsTruncated: true, NextContinuationToken: 't3' },
      t3: { Contents: [obj('a.txt')], CommonPrefixes: [{ Prefix: 'd/a/' }, { Prefix: 'd/c/' }], IsTruncated: true, NextContinuationToken: 't4' },
      t4: { CommonPrefixes: [{ Prefix: 'd/c/' }], IsTruncated: true, NextContinuationToken: 't5' },
      t5: { Contents: [obj('z')], IsTruncated: false },
    };
    const sent: string[] = [];
    const client = {
      send: async (command: ListObjectsV2Command) => {
        const token = command.input.ContinuationToken ?? '';
        sent.push(token);
        return pages[token];
      },
      destroy: () => undefined,
    };
    const { S3Provider } = await import('../src/index.js');
    const p = new S3Provider({ bucket: 'b', client: client as unknown as S3Client });
    const slices: Array<Array<[string, boolean]>> = [];
    for await (const slice of await p.listSlices('/d')) slices.push(slice.map((e) => [e.name, e.stats.isFile()]));
    // Page 4 only repeated `c/`: it gives no slice of its own.
    expect(slices).toEqual([
      [['0', true], ['a', true]],
      [['a!1', true], ['a!2', true]],
      [['a.txt', true], ['c', false]],
      [['z', true]],
    ]);
    expect(sent).toEqual(['', 't2', 't3', 't4', 't5']);
    p.close();
  });
});

describe('paths', () => {
  it('only normalised absolute paths become keys (EINVAL otherwise), so nothing can address keys outside the prefix', async () => {
    const { KeyMapper } = await import('../src/paths.js');
    const keys = new KeyMapper('/users/alice');
    expect(keys.prefix).toBe('users/alice/');
    expect(keys.fileKey('/a/b.txt')).toBe('users/alice/a/b.txt');
    expect(keys.dirKey('/a')).toBe('users/alice/a/');
    expect(keys.dirKey('/')).toBe('users/alice/');
    for (const bad of ['/../bob/secret', '/a/./b', '/a//b', 'relative', '/a/', '/nul\0']) {
      expect(() => keys.fileKey(bad), bad).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
    expect(() => keys.fileKey(`/${'x'.repeat(1100)}`)).toThrow(expect.objectContaining({ code: 'ENAMETOOLONG' }));
    expect(new KeyMapper('').dirKey('/')).toBe('');
  });
});

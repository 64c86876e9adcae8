import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { deterministicBytes, readAll, writeAll } from '@ftp/vfs-conformance';
import { mapLimit } from '../src/concurrency.js';
import { harness, s3ErrorLike, type Harness } from './fixtures/harness.js';
import { startStore } from './fixtures/store.js';

const store = await startStore();
afterAll(() => store.close());

const MiB = 1024 * 1024;

async function allKeys(h: Harness): Promise<string[]> {
  const out = await h.client.send(new ListObjectsV2Command({ Bucket: h.target.bucket, Prefix: h.target.prefix }));
  return (out.Contents ?? []).map((o) => (o.Key ?? '').slice(h.target.prefix.length)).sort();
}

/** /src with 60 files over three levels and an empty directory. */
async function makeTree(h: Harness): Promise<string[]> {
  await h.p.mkdir('/src/a/b', { recursive: true });
  await h.p.mkdir('/src/empty');
  const files = Array.from({ length: 60 }, (_, i) => (i % 3 === 0 ? `/src/f${i}` : i % 3 === 1 ? `/src/a/f${i}` : `/src/a/b/f${i}`));
  await mapLimit(files, 8, (f, i) => writeAll(h.p, f, `content ${i}`));
  return files;
}

describe('rename', () => {
  it('moves a directory tree: every object (markers included), with bounded concurrency, nothing left behind', async () => {
    const h = await harness(store, { renameConcurrency: 4 });
    try {
      const files = await makeTree(h);
      h.calls.length = 0;
      await h.p.rename('/src', '/dst');
      expect(h.maxInFlight('CopyObjectCommand')).toBeLessThanOrEqual(4);
      expect(h.maxInFlight('CopyObjectCommand')).toBeGreaterThan(1);
      await expect(h.p.stat('/src')).rejects.toMatchObject({ code: 'ENOENT' });
      expect((await h.p.readdir('/dst')).sort()).toEqual([...files.filter((f) => /^\/src\/f/.test(f)).map((f) => f.slice(5)), 'a', 'empty'].sort());
      expect(await h.p.readdir('/dst/empty')).toEqual([]);
      for (const [i, f] of files.entries()) expect((await readAll(h.p, f.replace('/src', '/dst'))).toString()).toBe(`content ${i}`);
      expect((await allKeys(h)).filter((k) => k.startsWith('src'))).toEqual([]);
    } finally {
      await h.close();
    }
  }, 60_000);

  it('a directory rename with failed copies moves nothing and says which objects failed', async () => {
    const h = await harness(store);
    try {
      await makeTree(h);
      const before = await allKeys(h);
      h.failWhen(
        (c) => c.command === 'CopyObjectCommand' && /\/(f7|f8)$/.test(String(c.input.CopySource)),
        () => s3ErrorLike('AccessDenied', 403, 'Access Denied'),
      );
      const err = await h.p.rename('/src', '/dst').then(
        () => undefined,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(err?.code).toBe('EIO');
      const total = before.filter((k) => k.startsWith('src/')).length;
      expect(total).toBe(64); // 60 files, 4 directory markers
      expect(err?.message).toContain(`2 of ${total} objects could not be copied, nothing was moved`);
      expect(err?.message).toContain('src/a/f7');
      expect(err?.message).toContain('src/a/b/f8');
      expect(err?.message).toContain('EACCES');
      // The source is whole, and the copies that had succeeded were removed again.
      expect(await allKeys(h)).toEqual(before);
    } finally {
      await h.close();
    }
  }, 60_000);

  it('refuses to rename onto a non-empty directory, a directory onto a file, a file onto a directory', async () => {
    const h = await harness(store);
    try {
      await h.p.mkdir('/d1');
      await writeAll(h.p, '/d1/x', 'x');
      await h.p.mkdir('/d2');
      await writeAll(h.p, '/d2/y', 'y');
      await writeAll(h.p, '/file', 'f');
      await expect(h.p.rename('/d1', '/d2')).rejects.toMatchObject({ code: 'ENOTEMPTY' });
      await expect(h.p.rename('/d1', '/file')).rejects.toMatchObject({ code: 'ENOTDIR' });
      await expect(h.p.rename('/file', '/d1')).rejects.toMatchObject({ code: 'EISDIR' });
      await h.p.mkdir('/empty');
      await h.p.rename('/d1', '/empty');
      expect(await h.p.readdir('/empty')).toEqual(['x']);
    } finally {
      await h.close();
    }
  });

  it('copies objects above the CopyObject limit with multipart UploadPartCopy, metadata kept', async () => {
    const h = await harness(store);
    try {
      // S3's limit is 5 GiB; the test lowers it (and the range size) to exercise the same code in seconds.
      // 15 MiB in ranges of at most 6 MiB: three ranges of 5 MiB + 1 byte (S3 wants >= 5 MiB but the last).
      h.p.setMultipartCopy(6 * MiB, 6 * MiB);
      const data = deterministicBytes(15 * MiB + 3, 9);
      await writeAll(h.p, '/huge.bin', data);
      const sha = (await h.client.send(new HeadObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}huge.bin` }))).Metadata?.sha256;
      expect(sha).toMatch(/^[0-9a-f]{64}$/);
      h.calls.length = 0;
      await h.p.rename('/huge.bin', '/moved.bin');
      expect(h.count('CopyObjectCommand')).toBe(0);
      expect(h.count('UploadPartCopyCommand')).toBe(3);
      expect((await readAll(h.p, '/moved.bin')).equals(data)).toBe(true);
      const head = await h.client.send(new HeadObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}moved.bin` }));
      expect(head.Metadata?.sha256).toBe(sha);
      await expect(h.p.stat('/huge.bin')).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await h.close();
    }
  }, 60_000);

  it('renames names with URL-reserved characters exactly (the copy source is URL-encoded)', async () => {
    const h = await harness(store);
    try {
      const dir = '/répertoire 目录 (1) #%&';
      const name = "a+b ?c=d;e@f:g,h$i [j] 'k' \"l\".txt";
      await h.p.mkdir(dir);
      await writeAll(h.p, `${dir}/${name}`, 'reserved');
      await h.p.rename(`${dir}/${name}`, `${dir}/${name}.moved`);
      expect(await h.p.readdir(dir)).toEqual([`${name}.moved`]);
      await h.p.rename(dir, '/dossier #2 & more+');
      expect(await h.p.readdir('/dossier #2 & more+')).toEqual([`${name}.moved`]);
      expect((await readAll(h.p, `/dossier #2 & more+/${name}.moved`)).toString()).toBe('reserved');
      await expect(h.p.stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await h.close();
    }
  });
});

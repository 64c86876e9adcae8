import { createHash } from 'node:crypto';
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { deterministicBytes, endStream, readAll, startUpload, writeAll } from '@ftp/vfs-conformance';
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

describe('a file or folder an upload of this provider is writing', () => {
  it('is not removed or renamed (EBUSY) until the upload ends: its object, made at its end, would bring it back', async () => {
    // RMD answered 250 and the upload brought the folder back with its file; a renamed folder came back beside the
    // new name, which lacked the file. The other backends refuse both while the upload runs.
    const h = await harness(store);
    try {
      await h.p.mkdir('/solo');
      await h.p.mkdir('/up');
      await writeAll(h.p, '/up/old.bin', 'old');
      // A folder whose only file is being uploaded looks empty: no object yet.
      const fresh = await startUpload(h.p, '/solo/new.bin', {}, Buffer.from('first bytes'));
      const over = await startUpload(h.p, '/up/old.bin', {}, Buffer.from('new version'));
      await expect(h.p.rmdir('/solo')).rejects.toMatchObject({ code: 'EBUSY' });
      await expect(h.p.rename('/up', '/moved')).rejects.toMatchObject({ code: 'EBUSY' });
      await expect(h.p.unlink('/up/old.bin')).rejects.toMatchObject({ code: 'EBUSY' });
      await expect(h.p.rename('/up/old.bin', '/elsewhere.bin')).rejects.toMatchObject({ code: 'EBUSY' });
      await writeAll(h.p, '/other.bin', 'other');
      await expect(h.p.rename('/other.bin', '/solo/new.bin')).rejects.toMatchObject({ code: 'EBUSY' });
      await endStream(fresh);
      await endStream(over);
      await h.p.rename('/up', '/moved');
      expect(await h.p.readdir('/moved')).toEqual(['old.bin']);
      expect((await readAll(h.p, '/moved/old.bin')).toString()).toBe('new version');
      await expect(h.p.stat('/up')).rejects.toMatchObject({ code: 'ENOENT' });
      expect((await readAll(h.p, '/solo/new.bin')).toString()).toBe('first bytes');
    } finally {
      await h.close();
    }
  });
});

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

  it('a failed directory rename whose copies cannot be removed again says they stay under the new name', async () => {
    // It said "nothing was moved" while 1,143 copies stayed under the target (the store died mid-rename).
    const h = await harness(store);
    try {
      await makeTree(h);
      h.failWhen(
        (c) => c.command === 'CopyObjectCommand' && /\/f7$/.test(String(c.input.CopySource)),
        () => s3ErrorLike('AccessDenied', 403, 'Access Denied'),
      );
      h.failWhen(
        (c) => c.command === 'DeleteObjectsCommand' || c.command === 'DeleteObjectCommand',
        () => s3ErrorLike('AccessDenied', 403, 'Access Denied'),
      );
      const err = await h.p.rename('/src', '/dst').then(
        () => undefined,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(err?.code).toBe('EIO');
      expect(err?.message).not.toContain('nothing was moved');
      expect(err?.message).toMatch(/the originals were kept, but \d+ copies could not be removed again and stay under '\/dst'/);
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

describe('rename racing an upload that completes meanwhile: the newer object is never deleted', () => {
  /** Another client's upload completing at `path`. */
  const upload = async (h: Harness, path: string, body: string): Promise<void> => {
    await h.client.send(new PutObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}${path.slice(1)}`, Body: body }));
  };
  const text = async (h: Harness, path: string): Promise<string> => (await readAll(h.p, path)).toString();

  it('a file rename: an upload landing at the old name during the copy stays there (p1 old, p0 new)', async () => {
    const h = await harness(store);
    try {
      await h.p.mkdir('/t');
      await writeAll(h.p, '/t/p0', 'OLD content');
      h.afterCall(
        (c) => c.command === 'CopyObjectCommand',
        () => upload(h, '/t/p0', 'NEW content'),
      );
      await h.p.rename('/t/p0', '/t/p1');
      expect(await text(h, '/t/p1')).toBe('OLD content');
      expect(await text(h, '/t/p0')).toBe('NEW content');
      const copy = h.calls.find((c) => c.command === 'CopyObjectCommand');
      expect(copy?.input.CopySourceIfMatch).toMatch(/^"[0-9a-f]+"$/);
    } finally {
      await h.close();
    }
  });

  it('a file rename: an upload landing after the check, just before the delete, is kept by DeleteObject If-Match', async () => {
    const h = await harness(store);
    try {
      await writeAll(h.p, '/p0', 'OLD');
      let copied = false;
      let landed = false;
      h.afterCall(
        (c) => c.command === 'CopyObjectCommand',
        async () => {
          copied = true;
        },
      );
      h.afterCall(
        (c) => copied && !landed && c.command === 'HeadObjectCommand' && c.input.Key === `${h.target.prefix}p0`,
        async () => {
          landed = true;
          await upload(h, '/p0', 'NEW');
        },
      );
      await h.p.rename('/p0', '/p1');
      expect(landed).toBe(true);
      expect(await text(h, '/p1')).toBe('OLD');
      expect(await text(h, '/p0')).toBe('NEW');
      expect(h.calls.find((c) => c.command === 'DeleteObjectCommand')?.input.IfMatch).toMatch(/^"[0-9a-f]+"$/);
    } finally {
      await h.close();
    }
  });

  it('a file rename whose source was replaced before the copy fails with EBUSY and moves nothing', async () => {
    const h = await harness(store);
    try {
      await writeAll(h.p, '/p0', 'OLD');
      let landed = false;
      h.afterCall(
        (c) => !landed && c.command === 'HeadObjectCommand' && c.input.Key === `${h.target.prefix}p0`,
        async () => {
          landed = true;
          await upload(h, '/p0', 'NEW');
        },
      );
      await expect(h.p.rename('/p0', '/p1')).rejects.toMatchObject({ code: 'EBUSY' });
      expect(await text(h, '/p0')).toBe('NEW');
      await expect(h.p.stat('/p1')).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await h.close();
    }
  });

  it('a store that refuses If-Match on DeleteObject (NotImplemented): the rename completes, and it is not asked again', async () => {
    const h = await harness(store);
    try {
      await writeAll(h.p, '/a', 'A');
      await writeAll(h.p, '/b', 'B');
      h.failWhen(
        (c) => c.command === 'DeleteObjectCommand' && c.input.IfMatch !== undefined,
        () => s3ErrorLike('NotImplemented', 501, 'A header you provided implies functionality that is not implemented'),
      );
      await h.p.rename('/a', '/a2');
      expect(await text(h, '/a2')).toBe('A');
      await expect(h.p.stat('/a')).rejects.toMatchObject({ code: 'ENOENT' });
      h.calls.length = 0;
      await h.p.rename('/b', '/b2');
      await expect(h.p.stat('/b')).rejects.toMatchObject({ code: 'ENOENT' });
      expect(h.calls.filter((c) => c.command === 'DeleteObjectCommand').map((c) => c.input.IfMatch)).toEqual([undefined]);
    } finally {
      await h.close();
    }
  });

  it('a directory rename: files replaced during the copies, or between the check and the delete, stay at the old name', async () => {
    const h = await harness(store, { renameConcurrency: 2 });
    try {
      await h.p.mkdir('/d/sub', { recursive: true });
      for (const f of ['/d/f1', '/d/f2', '/d/sub/f3', '/d/f4']) await writeAll(h.p, f, `old ${f}`);
      let copies = 0;
      let relisted = false;
      h.afterCall(
        (c) => c.command === 'CopyObjectCommand' && String(c.input.CopySource).endsWith('/d/f1'),
        () => upload(h, '/d/f1', 'new f1 (during the copies)'),
      );
      h.afterCall(
        (c) => c.command === 'CopyObjectCommand',
        async () => {
          copies++;
        },
      );
      // The listing made after every copy (the check before deleting): f2 lands right after it.
      h.afterCall(
        (c) => copies === 6 && !relisted && c.command === 'ListObjectsV2Command' && c.input.Delimiter === undefined,
        async () => {
          relisted = true;
          await upload(h, '/d/sub/f3', 'new f3 (before the delete)');
        },
      );
      await h.p.rename('/d', '/e');
      expect(relisted).toBe(true);
      // The moved tree holds what was renamed...
      for (const f of ['/e/f1', '/e/f2', '/e/sub/f3', '/e/f4']) expect(await text(h, f)).toBe(`old ${f.replace('/e/', '/d/')}`);
      // ...and the uploads that completed meanwhile are still where they were written.
      expect(await text(h, '/d/f1')).toBe('new f1 (during the copies)');
      expect(await text(h, '/d/sub/f3')).toBe('new f3 (before the delete)');
      expect((await allKeys(h)).filter((k) => k.startsWith('d/'))).toEqual(['d/f1', 'd/sub/f3']);
      const batch = h.calls.find((c) => c.command === 'DeleteObjectsCommand')?.input as { Delete?: { Objects?: { ETag?: string }[] } };
      expect(batch.Delete?.Objects?.every((o) => typeof o.ETag === 'string')).toBe(true);
    } finally {
      await h.close();
    }
  }, 60_000);

  it('a directory rename on a store that refuses ETags in DeleteObjects (NotImplemented) completes, without them', async () => {
    const h = await harness(store);
    try {
      await h.p.mkdir('/d');
      for (const f of ['/d/x', '/d/y']) await writeAll(h.p, f, f);
      h.failWhen(
        (c) => c.command === 'DeleteObjectsCommand' && JSON.stringify(c.input).includes('"ETag"'),
        () => s3ErrorLike('NotImplemented', 501, 'not implemented'),
      );
      await h.p.rename('/d', '/e');
      expect((await allKeys(h)).sort()).toEqual(['e/', 'e/x', 'e/y']);
    } finally {
      await h.close();
    }
  });
});

describe('deleting the sources of a directory rename (DeleteObjects)', () => {
  it('sends Content-MD5: a store that requires it (400 MissingContentMD5 otherwise) gets the sources deleted', async () => {
    const h = await harness(store);
    try {
      await h.p.mkdir('/src');
      for (const n of ['a', 'b', 'c']) await writeAll(h.p, `/src/${n}`, n);
      const sent: boolean[] = [];
      // As such a store answers, checked on the request as it goes on the wire (after the SDK's checksum headers).
      h.client.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'DeleteObjectsCommand') {
            const headers = (args.request as { headers: Record<string, string> }).headers;
            const md5 = Object.entries(headers).find(([k]) => k.toLowerCase() === 'content-md5')?.[1];
            sent.push(md5 !== undefined);
            if (md5 === undefined) throw s3ErrorLike('MissingContentMD5', 400, 'Missing required header for this request: Content-Md5.');
            const body = (args.request as { body: string | Uint8Array }).body;
            expect(md5).toBe(createHash('md5').update(body).digest('base64'));
          }
          return next(args);
        },
        { step: 'finalizeRequest', name: 'requireContentMd5', priority: 'low' },
      );
      await h.p.rename('/src', '/dst');
      expect(sent.length).toBeGreaterThan(0);
      expect((await allKeys(h)).sort()).toEqual(['dst/', 'dst/a', 'dst/b', 'dst/c']);
    } finally {
      await h.close();
    }
  });

  it('keys the store reports with a transient error (SlowDown, InternalError) are sent again, a bounded number of times', async () => {
    const h = await harness(store);
    try {
      await h.p.mkdir('/src');
      for (const n of ['a', 'b', 'c']) await writeAll(h.p, `/src/${n}`, n);
      // The store answers 200 but deletes `a` only at the third try, and `b` never (a persistent InternalError).
      const refusals = new Map<string, number>([
        [`${h.target.prefix}src/a`, 2],
        [`${h.target.prefix}src/b`, Number.POSITIVE_INFINITY],
      ]);
      let requests = 0;
      h.client.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName !== 'DeleteObjectsCommand') return next(args);
          requests++;
          const input = args.input as { Delete: { Objects: { Key: string }[] } };
          const refused = input.Delete.Objects.filter((o) => (refusals.get(o.Key) ?? 0) > 0).map((o) => o.Key);
          for (const key of refused) refusals.set(key, (refusals.get(key) ?? 0) - 1);
          input.Delete.Objects = input.Delete.Objects.filter((o) => !refused.includes(o.Key));
          const out = (input.Delete.Objects.length > 0 ? await next(args) : { output: { $metadata: {} }, response: {} }) as { output: { Errors?: unknown[] } };
          out.output.Errors = [
            ...(out.output.Errors ?? []),
            ...refused.map((Key) => ({ Key, Code: Key.endsWith('/a') ? 'SlowDown' : 'InternalError', Message: 'try again' })),
          ];
          return out as never;
        },
        { step: 'initialize', name: 'transientKeyErrors', priority: 'low' },
      );
      const err = await h.p.rename('/src', '/dst').then(
        () => undefined,
        (e: unknown) => e as Error & { code?: string },
      );
      // `a` went on the third round; `b` is reported after the last retry, by name.
      expect(err?.code).toBe('EIO');
      expect(err?.message).toMatch(/1 of 4 originals could not be deleted/);
      expect(err?.message).toContain('src/b (InternalError');
      expect(requests).toBe(4);
      expect((await allKeys(h)).sort()).toEqual(['dst/', 'dst/a', 'dst/b', 'dst/c', 'src/b']);
    } finally {
      await h.close();
    }
  }, 30_000);
});

describe('the size of a directory rename', () => {
  it('a tree of more than maxRenameObjects objects is refused (EPERM) before anything is copied; one at the limit moves', async () => {
    const h = await harness(store, { maxRenameObjects: 4 });
    try {
      await h.p.mkdir('/big');
      // The marker and four files: five objects.
      for (const n of ['a', 'b', 'c', 'd']) await writeAll(h.p, `/big/${n}`, n);
      h.calls.length = 0;
      const err = await h.p.rename('/big', '/moved').then(
        () => undefined,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(err?.code).toBe('EPERM');
      expect(err?.message).toMatch(/more than 4 objects \(maxRenameObjects\)/);
      expect(h.count('CopyObjectCommand')).toBe(0);
      expect((await allKeys(h)).sort()).toEqual(['big/', 'big/a', 'big/b', 'big/c', 'big/d']);
      await h.p.unlink('/big/d');
      await h.p.rename('/big', '/moved');
      expect((await allKeys(h)).sort()).toEqual(['moved/', 'moved/a', 'moved/b', 'moved/c']);
    } finally {
      await h.close();
    }
  });

  it('maxRenameObjects defaults to 100,000 and must be a positive integer', async () => {
    const { resolveOptions } = await import('../src/options.js');
    expect(resolveOptions({ bucket: 'b' }).maxRenameObjects).toBe(100_000);
    expect(() => resolveOptions({ bucket: 'b', maxRenameObjects: 0 })).toThrow(RangeError);
  });
});

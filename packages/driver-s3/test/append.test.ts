import { createHash } from 'node:crypto';
import { HeadObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { deterministicBytes, readAll, writeAll } from '@ftp/vfs-conformance';
import { harness, type Harness } from './fixtures/harness.js';
import { S3RVER_ONLY, startStore, useExternal } from './fixtures/store.js';

const MiB = 1024 * 1024;
const PART = 5 * MiB;

// The same cases against a store with UploadPartCopy and one without (stock s3rver answers NotImplemented).
const withCopy = await startStore();
const withoutCopy = useExternal ? undefined : await startStore({ partCopy: false });
afterAll(async () => {
  await withCopy.close();
  await withoutCopy?.close();
});

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function storedSha(h: Harness, name: string): Promise<string | undefined> {
  const head = await h.client.send(new HeadObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}${name}` }));
  return head.Metadata?.sha256;
}

describe('APPE and REST + STOR', () => {
  it('APPE keeps >= 5 MiB server-side (UploadPartCopy): the kept bytes never pass through the driver', async () => {
    const h = await harness(withCopy, { partSize: PART });
    try {
      const a = deterministicBytes(6 * MiB + 7, 1);
      const b = deterministicBytes(300_001, 2);
      await writeAll(h.p, '/f.bin', a);
      h.calls.length = 0;
      await writeAll(h.p, '/f.bin', b, { append: true });
      expect(h.count('UploadPartCopyCommand')).toBe(1);
      expect(h.count('GetObjectCommand')).toBe(0);
      const copy = h.calls.find((c) => c.command === 'UploadPartCopyCommand');
      expect(copy?.input.CopySourceRange).toBe(`bytes=0-${a.length - 1}`);
      const back = await readAll(h.p, '/f.bin');
      expect(back.equals(Buffer.concat([a, b]))).toBe(true);
      // The driver never saw the copied bytes, so it stores no digest; HASH still answers, by streaming.
      expect(await storedSha(h, 'f.bin')).toBeUndefined();
      expect(await h.p.hash('/f.bin', 'SHA-256')).toBe(sha(back));
    } finally {
      await h.close();
    }
  }, 60_000);

  it('REST + STOR at >= 5 MiB keeps the prefix server-side and drops the old tail', async () => {
    const h = await harness(withCopy, { partSize: PART });
    try {
      const a = deterministicBytes(8 * MiB, 3);
      const b = deterministicBytes(MiB, 4);
      await writeAll(h.p, '/f.bin', a);
      h.calls.length = 0;
      await writeAll(h.p, '/f.bin', b, { start: 6 * MiB });
      expect(h.count('UploadPartCopyCommand')).toBe(1);
      const back = await readAll(h.p, '/f.bin');
      expect(back.length).toBe(7 * MiB);
      expect(back.equals(Buffer.concat([a.subarray(0, 6 * MiB), b]))).toBe(true);
    } finally {
      await h.close();
    }
  }, 60_000);

  const fallback = 'without UploadPartCopy (NotImplemented) the kept bytes are re-uploaded from a ranged GET, once asked';
  (withoutCopy === undefined ? it.skip : it)(withoutCopy === undefined ? `${fallback} — ${S3RVER_ONLY}` : fallback, async () => {
    const h = await harness(withoutCopy!, { partSize: PART });
    try {
      const a = deterministicBytes(6 * MiB, 5);
      const b = deterministicBytes(1000, 6);
      await writeAll(h.p, '/f.bin', a);
      h.calls.length = 0;
      await writeAll(h.p, '/f.bin', b, { append: true });
      expect(h.count('UploadPartCopyCommand')).toBe(1);
      expect(h.count('GetObjectCommand')).toBe(1);
      const expected = Buffer.concat([a, b]);
      expect((await readAll(h.p, '/f.bin')).equals(expected)).toBe(true);
      // Every byte passed through: the digest is stored again.
      expect(await storedSha(h, 'f.bin')).toBe(sha(expected));
      // The store's answer is remembered: the next APPE does not ask again.
      h.calls.length = 0;
      await writeAll(h.p, '/f.bin', b, { append: true });
      expect(h.count('UploadPartCopyCommand')).toBe(0);
      expect((await readAll(h.p, '/f.bin')).equals(Buffer.concat([expected, b]))).toBe(true);
      const uploads = await h.client.send(new ListMultipartUploadsCommand({ Bucket: h.target.bucket, Prefix: h.target.prefix }));
      expect(uploads.Uploads ?? []).toEqual([]);
    } finally {
      await h.close();
    }
  }, 60_000);

  it('under 5 MiB the kept bytes are re-uploaded (S3 refuses smaller copied parts), with the digest stored', async () => {
    const h = await harness(withCopy, { partSize: PART });
    try {
      await writeAll(h.p, '/s.txt', 'hello ');
      h.calls.length = 0;
      await writeAll(h.p, '/s.txt', 'world', { append: true });
      expect(h.count('UploadPartCopyCommand')).toBe(0);
      expect(h.count('GetObjectCommand')).toBe(1);
      expect((await readAll(h.p, '/s.txt')).toString()).toBe('hello world');
      expect(await storedSha(h, 's.txt')).toBe(sha(Buffer.from('hello world')));
    } finally {
      await h.close();
    }
  });

  it('REST past the end zero-fills the gap; REST on a missing file creates it', async () => {
    const h = await harness(withCopy, { partSize: PART });
    try {
      await writeAll(h.p, '/z.bin', 'abc');
      await writeAll(h.p, '/z.bin', 'XY', { start: 6 });
      expect((await readAll(h.p, '/z.bin')).equals(Buffer.from('abc\0\0\0XY'))).toBe(true);
      await writeAll(h.p, '/new.bin', 'Q', { start: 2 });
      expect((await readAll(h.p, '/new.bin')).equals(Buffer.from('\0\0Q'))).toBe(true);
    } finally {
      await h.close();
    }
  });

  it('APPE fails (and leaves the file as it was) when the object changes while its bytes are kept', async () => {
    const h = await harness(withCopy, { partSize: PART });
    try {
      await writeAll(h.p, '/c.txt', 'original');
      // Another writer replaces the object between the driver's HEAD and its ranged GET (If-Match then fails).
      let replaced = false;
      h.failWhen(
        (c) => {
          if (c.command === 'GetObjectCommand' && c.input.IfMatch !== undefined && !replaced) {
            replaced = true;
            c.input.IfMatch = '"not-the-current-etag"';
          }
          return false;
        },
        () => new Error('unused'),
      );
      await expect(writeAll(h.p, '/c.txt', ' more', { append: true })).rejects.toMatchObject({ code: expect.stringMatching(/EBUSY|EIO/) });
      expect((await readAll(h.p, '/c.txt')).toString()).toBe('original');
    } finally {
      await h.close();
    }
  });
});

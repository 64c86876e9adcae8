import { createHash } from 'node:crypto';
import { HeadObjectCommand, ListMultipartUploadsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { deterministicBytes, endStream, readAll, startUpload, writeAll } from '@ftp/vfs-conformance';
import { harness, s3ErrorLike, type Harness } from './fixtures/harness.js';
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

describe('APPE and REST + STOR against concurrent writers: no write is lost', () => {
  async function pending(h: Harness): Promise<number> {
    const out = await h.client.send(new ListMultipartUploadsCommand({ Bucket: h.target.bucket, Prefix: h.target.prefix }));
    return (out.Uploads ?? []).length;
  }

  /** Another client's PutObject. */
  const store = (h: Harness, name: string, body: string): Promise<unknown> =>
    h.client.send(new PutObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}${name}`, Body: body }));

  /** The error a stream ends with, or undefined. */
  const outcome = (p: Promise<unknown>): Promise<(Error & { code?: string }) | undefined> =>
    p.then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );

  for (const [what, size] of [
    ['one PutObject each', 10],
    ['multipart uploads', 6 * MiB],
  ] as const) {
    it(`two concurrent APPEs (${what}): the one completing second fails with EBUSY and writes nothing`, async () => {
      const h = await harness(withCopy, { partSize: PART });
      try {
        const base = Buffer.from('base:');
        await writeAll(h.p, '/log.bin', base);
        const a = deterministicBytes(size, 11);
        const b = deterministicBytes(size, 12);
        // Both start from the same version (as curl -a twice, 0.2 s apart); A completes first.
        const wa = await startUpload(h.p, '/log.bin', { append: true }, a);
        const wb = await startUpload(h.p, '/log.bin', { append: true }, b);
        expect(await outcome(endStream(wa))).toBeUndefined();
        const err = await outcome(endStream(wb));
        expect(err?.code).toBe('EBUSY');
        expect(err?.message).toContain('changed by another client');
        expect((await readAll(h.p, '/log.bin')).equals(Buffer.concat([base, a]))).toBe(true);
        expect(await pending(h)).toBe(0); // B's multipart upload was aborted
        // B retried now appends to A's version: nothing lost.
        await writeAll(h.p, '/log.bin', b, { append: true });
        expect((await readAll(h.p, '/log.bin')).equals(Buffer.concat([base, a, b]))).toBe(true);
      } finally {
        await h.close();
      }
    }, 60_000);
  }

  it('an APPE and a STOR that completes first: the APPE fails with EBUSY, the STOR stays', async () => {
    const h = await harness(withCopy, { partSize: PART });
    try {
      await writeAll(h.p, '/f.txt', 'old content');
      const appe = await startUpload(h.p, '/f.txt', { append: true }, Buffer.from(' + tail'));
      await writeAll(h.p, '/f.txt', 'new content from STOR');
      expect((await outcome(endStream(appe)))?.code).toBe('EBUSY');
      expect((await readAll(h.p, '/f.txt')).toString()).toBe('new content from STOR');
      // REST + STOR keeps a prefix of a version the same way.
      // The STOR below may make the kept-prefix read fail before the end: the stream's error is then endStream's.
      const rest = await startUpload(h.p, '/f.txt', { start: 4 }, Buffer.from('XYZ'));
      await writeAll(h.p, '/f.txt', 'newer');
      expect((await outcome(endStream(rest)))?.code).toBe('EBUSY');
      expect((await readAll(h.p, '/f.txt')).toString()).toBe('newer');
    } finally {
      await h.close();
    }
  });

  it('an APPE onto a missing file fails with EBUSY when the file is created meanwhile (If-None-Match)', async () => {
    const h = await harness(withCopy, { partSize: PART });
    try {
      const appe = await startUpload(h.p, '/n.txt', { append: true }, Buffer.from('appended'));
      await writeAll(h.p, '/n.txt', 'created meanwhile');
      expect((await outcome(endStream(appe)))?.code).toBe('EBUSY');
      expect((await readAll(h.p, '/n.txt')).toString()).toBe('created meanwhile');
      // Alone, it creates the file.
      await writeAll(h.p, '/m.txt', 'appended', { append: true });
      expect((await readAll(h.p, '/m.txt')).toString()).toBe('appended');
    } finally {
      await h.close();
    }
  });

  it('the completing request carries the condition; on a store that ignores it the HEAD before completing still catches a change', async () => {
    const h = await harness(withCopy, { partSize: PART });
    try {
      await writeAll(h.p, '/g.txt', 'v1');
      h.calls.length = 0;
      await writeAll(h.p, '/g.txt', '+', { append: true });
      const put = h.calls.find((c) => c.command === 'PutObjectCommand');
      expect(put?.input.IfMatch).toMatch(/^"?[0-9a-f]+"?$/);
      // A store that ignores the headers (as stock s3rver does): strip them before they are sent.
      h.failWhen(
        (c) => {
          if (c.command === 'PutObjectCommand' || c.command === 'CompleteMultipartUploadCommand') {
            delete c.input.IfMatch;
            delete c.input.IfNoneMatch;
          }
          return false;
        },
        () => new Error('unused'),
      );
      const appe = await startUpload(h.p, '/g.txt', { append: true }, Buffer.from('lost?'));
      await writeAll(h.p, '/g.txt', 'v2 by STOR');
      expect((await outcome(endStream(appe)))?.code).toBe('EBUSY');
      expect((await readAll(h.p, '/g.txt')).toString()).toBe('v2 by STOR');
    } finally {
      await h.close();
    }
  });

  for (const [what, size] of [
    ['PutObject', 10],
    ['CompleteMultipartUpload', 6 * MiB],
  ] as const) {
    it(`a change between the last HEAD and the ${what} is refused by the store (If-Match): EBUSY, the change stays`, async () => {
      const h = await harness(withCopy, { partSize: PART });
      try {
        await writeAll(h.p, '/h.bin', 'v1');
        const appe = await startUpload(h.p, '/h.bin', { append: true }, deterministicBytes(size, 3));
        // Another client's STOR lands just after the driver's HEAD before completing.
        let done = false;
        h.afterCall(
          (c) => !done && c.command === 'HeadObjectCommand',
          async () => {
            done = true;
            await store(h, 'h.bin', 'v2 by STOR');
          },
        );
        const err = await outcome(endStream(appe));
        expect(done).toBe(true);
        expect(err?.code).toBe('EBUSY');
        expect((await readAll(h.p, '/h.bin')).toString()).toBe('v2 by STOR');
        expect(await pending(h)).toBe(0);
      } finally {
        await h.close();
      }
    }, 60_000);
  }

  it('a 400 that the request without the headers gets too does not switch conditional writes off', async () => {
    const h = await harness(withCopy, { partSize: PART });
    try {
      await writeAll(h.p, '/r.txt', 'v1');
      // The store fails both tries for another reason (a bad request, a transient fault): the headers are not to blame.
      let failing = 2;
      h.failWhen(
        (c) => c.command === 'PutObjectCommand' && failing-- > 0,
        () => s3ErrorLike('InvalidRequest', 400, 'something else is wrong with this request'),
      );
      await expect(writeAll(h.p, '/r.txt', '+a', { append: true })).rejects.toThrow();
      h.calls.length = 0;
      await writeAll(h.p, '/r.txt', '+b', { append: true });
      expect((await readAll(h.p, '/r.txt')).toString()).toBe('v1+b');
      expect(h.calls.filter((c) => c.command === 'PutObjectCommand').map((c) => c.input.IfMatch !== undefined)).toEqual([true]);
    } finally {
      await h.close();
    }
  });

  it('a store that refuses the condition headers (NotImplemented) gets the request again without them, and is not asked again', async () => {
    const h = await harness(withCopy, { partSize: PART });
    try {
      await writeAll(h.p, '/r.txt', 'v1');
      h.failWhen(
        (c) => c.command === 'PutObjectCommand' && (c.input.IfMatch !== undefined || c.input.IfNoneMatch !== undefined),
        () => s3ErrorLike('NotImplemented', 501, 'A header you provided implies functionality that is not implemented'),
      );
      await writeAll(h.p, '/r.txt', '+a', { append: true });
      expect((await readAll(h.p, '/r.txt')).toString()).toBe('v1+a');
      h.calls.length = 0;
      await writeAll(h.p, '/r.txt', '+b', { append: true });
      expect((await readAll(h.p, '/r.txt')).toString()).toBe('v1+a+b');
      expect(h.calls.filter((c) => c.command === 'PutObjectCommand').map((c) => c.input.IfMatch)).toEqual([undefined]);
    } finally {
      await h.close();
    }
  });
});

/** What an HTTP handler's `handle` takes and gives, as far as these tests look at it. */
interface WireRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  query?: Record<string, unknown>;
}
type Handle = (request: WireRequest, options?: unknown) => Promise<{ response: { statusCode: number; body: NodeJS.ReadableStream } }>;

/**
 * Makes the client lose the response to the next request for which `drop` is true: the store receives and applies
 * it, its answer is read, then the connection "resets" (ECONNRESET), which the SDK retries.
 */
function loseNextResponse(h: Harness, drop: (request: WireRequest) => boolean): { dropped: () => number } {
  const handler = h.client.config.requestHandler as unknown as { handle: Handle };
  const inner = handler.handle.bind(handler);
  let dropped = 0;
  handler.handle = async (request, options) => {
    const out = await inner(request, options);
    if (dropped > 0 || !drop(request)) return out;
    dropped++;
    const body = out.response.body;
    await new Promise<void>((resolve) => {
      body.once('end', resolve);
      body.once('error', () => resolve());
      body.resume();
    });
    throw Object.assign(new Error('socket hang up (the response was lost)'), { code: 'ECONNRESET' });
  };
  return { dropped: () => dropped };
}

describe('an upload whose completing request was applied but whose response was lost (the SDK retried it)', () => {
  const isComplete = (r: WireRequest): boolean => r.method === 'POST' && r.query?.uploadId !== undefined;

  it('APPE (one PutObject with If-Match): the retry meets 412, yet the upload is reported stored and appended once', async () => {
    const h = await harness(withCopy, { partSize: PART });
    try {
      await writeAll(h.p, '/log.txt', 'line1\n');
      const lost = loseNextResponse(h, (r) => r.method === 'PUT' && r.headers['if-match'] !== undefined);
      await writeAll(h.p, '/log.txt', 'line2\n', { append: true });
      expect(lost.dropped()).toBe(1);
      expect((await readAll(h.p, '/log.txt')).toString()).toBe('line1\nline2\n');
      expect(await storedSha(h, 'log.txt')).toBe(sha(Buffer.from('line1\nline2\n')));
    } finally {
      await h.close();
    }
  });

  it('APPE onto a missing file (PutObject with If-None-Match: *) is reported stored', async () => {
    const h = await harness(withCopy, { partSize: PART });
    try {
      const lost = loseNextResponse(h, (r) => r.method === 'PUT' && r.headers['if-none-match'] !== undefined);
      await writeAll(h.p, '/new.txt', 'first', { append: true });
      expect(lost.dropped()).toBe(1);
      expect((await readAll(h.p, '/new.txt')).toString()).toBe('first');
    } finally {
      await h.close();
    }
  });

  it('a multipart STOR whose CompleteMultipartUpload answer is lost is reported stored, with its digest', async () => {
    const h = await harness(withCopy, { partSize: PART });
    try {
      const data = deterministicBytes(6 * MiB, 11);
      const lost = loseNextResponse(h, isComplete);
      await writeAll(h.p, '/big.bin', data);
      expect(lost.dropped()).toBe(1);
      expect((await readAll(h.p, '/big.bin')).equals(data)).toBe(true);
      expect(await storedSha(h, 'big.bin')).toBe(sha(data));
      const uploads = await h.client.send(new ListMultipartUploadsCommand({ Bucket: h.target.bucket, Prefix: h.target.prefix }));
      expect(uploads.Uploads ?? []).toEqual([]);
    } finally {
      await h.close();
    }
  }, 60_000);

  it('a multipart APPE (prefix copied server-side, If-Match) whose CompleteMultipartUpload answer is lost is appended once', async () => {
    const h = await harness(withCopy, { partSize: PART });
    try {
      const a = deterministicBytes(6 * MiB, 12);
      await writeAll(h.p, '/big.bin', a);
      const lost = loseNextResponse(h, isComplete);
      await writeAll(h.p, '/big.bin', 'tail', { append: true });
      expect(lost.dropped()).toBe(1);
      expect((await readAll(h.p, '/big.bin')).equals(Buffer.concat([a, Buffer.from('tail')]))).toBe(true);
    } finally {
      await h.close();
    }
  }, 60_000);

  it('a completing request that was not applied still fails: a real change meanwhile stays EBUSY after the retry', async () => {
    const h = await harness(withCopy, { partSize: PART });
    try {
      await writeAll(h.p, '/c.txt', 'v1');
      // The first attempt fails before it reaches the store; another client writes meanwhile; the retry meets 412.
      const handler = h.client.config.requestHandler as unknown as { handle: Handle };
      const inner = handler.handle.bind(handler);
      let failed = false;
      handler.handle = async (request, options) => {
        if (!failed && request.method === 'PUT' && request.headers['if-match'] !== undefined) {
          failed = true;
          await h.client.send(new PutObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}c.txt`, Body: 'v2 by STOR' }));
          throw Object.assign(new Error('connect ECONNRESET'), { code: 'ECONNRESET' });
        }
        return inner(request, options);
      };
      await expect(writeAll(h.p, '/c.txt', '+', { append: true })).rejects.toMatchObject({ code: 'EBUSY' });
      expect(failed).toBe(true);
      expect((await readAll(h.p, '/c.txt')).toString()).toBe('v2 by STOR');
    } finally {
      await h.close();
    }
  });
});

import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { HeadObjectCommand, ListMultipartUploadsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { hashFile, openWriteStream } from '@ftp/vfs';
import { deterministicBytes, readAll, writeAll, writeChunk } from '@ftp/vfs-conformance';
import type { S3UploadStream } from '../src/index.js';
import { harness, s3ErrorLike, type Harness } from './fixtures/harness.js';
import { startStore } from './fixtures/store.js';

const store = await startStore();
afterAll(() => store.close());

const MiB = 1024 * 1024;
const PART = 5 * MiB;

async function pendingUploads(h: Harness): Promise<string[]> {
  const out = await h.client.send(new ListMultipartUploadsCommand({ Bucket: h.target.bucket, Prefix: h.target.prefix }));
  return (out.Uploads ?? []).map((u) => u.Key ?? '');
}

/** Writes `bytes` of deterministic data in 1 MiB chunks, with backpressure, without ending the stream. */
async function feed(ws: NodeJS.WritableStream, bytes: number, seed: number): Promise<void> {
  for (let off = 0; off < bytes; off += MiB) await writeChunk(ws, deterministicBytes(Math.min(MiB, bytes - off), seed + off));
}

describe('uploads', () => {
  it('a small upload is one PutObject carrying its SHA-256; HASH answers from it without a GET', async () => {
    const h = await harness(store, { partSize: PART });
    try {
      const data = deterministicBytes(300_000, 1);
      await writeAll(h.p, '/small.bin', data);
      expect(h.count('PutObjectCommand')).toBe(1);
      expect(h.count('CreateMultipartUploadCommand')).toBe(0);
      const head = await h.client.send(new HeadObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}small.bin` }));
      const sha = createHash('sha256').update(data).digest('hex');
      expect(head.Metadata?.sha256).toBe(sha);
      h.calls.length = 0;
      expect(await hashFile(h.p, '/small.bin', 'SHA-256')).toBe(sha);
      expect(h.count('GetObjectCommand')).toBe(0);
      // Other algorithms and ranges stream.
      expect(await hashFile(h.p, '/small.bin', 'MD5', 10, 20)).toBe(createHash('md5').update(data.subarray(10, 20)).digest('hex'));
      expect(h.count('GetObjectCommand')).toBe(1);
    } finally {
      await h.close();
    }
  });

  it('a large upload is multipart with bounded parts in flight, then gets its SHA-256 by a self-copy', async () => {
    const h = await harness(store, { partSize: PART, uploadConcurrency: 2 });
    try {
      const size = 3 * PART + 12_345;
      const expected = createHash('sha256');
      const ws = await openWriteStream(h.p, '/multi.bin');
      for (let off = 0; off < size; off += MiB) {
        const chunk = deterministicBytes(Math.min(MiB, size - off), 7 + off);
        expected.update(chunk);
        await writeChunk(ws, chunk);
      }
      ws.end();
      await once(ws, 'finish');
      expect(h.count('UploadPartCommand')).toBe(4);
      expect(h.maxInFlight('UploadPartCommand')).toBeGreaterThanOrEqual(1);
      expect(h.maxInFlight('UploadPartCommand')).toBeLessThanOrEqual(2);
      expect(h.count('CompleteMultipartUploadCommand')).toBe(1);
      const sha = expected.digest('hex');
      const head = await h.client.send(new HeadObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}multi.bin` }));
      expect(head.ContentLength).toBe(size);
      expect(head.Metadata?.sha256).toBe(sha);
      const back = createHash('sha256').update(await readAll(h.p, '/multi.bin')).digest('hex');
      expect(back).toBe(sha);
      expect(await pendingUploads(h)).toEqual([]);
    } finally {
      await h.close();
    }
  }, 60_000);

  it('a multipart upload claims releasesChunks: chunks written from one buffer, reused after each callback, are stored', async () => {
    // The server reads uploads into a few reused buffers for such streams: parts in flight must not hold the chunks.
    const h = await harness(store, { partSize: PART, uploadConcurrency: 2 });
    try {
      const ws = (await openWriteStream(h.p, '/reused.bin')) as S3UploadStream;
      expect(ws.releasesChunks).toBe(true);
      const buffer = Buffer.alloc(MiB);
      const expected = createHash('sha256');
      const sizes = [65_536, 100_003, MiB, 7];
      for (let i = 0, size = 0; size < 2 * PART + 54_321; i++) {
        const chunk = buffer.subarray(0, sizes[i % sizes.length]);
        chunk.set(deterministicBytes(chunk.length, i));
        expected.update(chunk);
        size += chunk.length;
        // Reused as soon as the callback has run, as the server does.
        await new Promise<void>((resolve, reject) => ws.write(chunk, (err) => (err ? reject(err) : resolve())));
        chunk.fill(0x7a);
      }
      ws.end();
      await once(ws, 'finish');
      expect(h.count('UploadPartCommand')).toBe(3);
      expect(createHash('sha256').update(await readAll(h.p, '/reused.bin')).digest('hex')).toBe(expected.digest('hex'));
    } finally {
      await h.close();
    }
  }, 60_000);

  it('an interrupted upload (transferError, then destroy) aborts its multipart upload: no parts left, no object', async () => {
    const h = await harness(store, { partSize: PART });
    try {
      await writeAll(h.p, '/keep.bin', 'the old version');
      const ws = (await openWriteStream(h.p, '/keep.bin')) as S3UploadStream;
      await feed(ws, 2 * PART + MiB, 3);
      // Two parts sent: the multipart upload exists while the transfer runs (so the check below can fail).
      expect(await pendingUploads(h)).toEqual([`${h.target.prefix}keep.bin`]);
      const closed = once(ws, 'close');
      ws.transferError?.(new Error('426 connection closed; transfer aborted'));
      ws.destroy(new Error('426 connection closed; transfer aborted'));
      await closed.catch(() => undefined);
      expect(h.count('AbortMultipartUploadCommand')).toBe(1);
      expect(await pendingUploads(h)).toEqual([]);
      // The old version is untouched: no partial object ever replaced it.
      expect((await readAll(h.p, '/keep.bin')).toString()).toBe('the old version');
      // A new file interrupted the same way never appears.
      const ws2 = await openWriteStream(h.p, '/never.bin');
      await feed(ws2, PART + 1, 4);
      const closed2 = once(ws2, 'close');
      ws2.destroy();
      await closed2;
      await expect(h.p.stat('/never.bin')).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await pendingUploads(h)).toEqual([]);
    } finally {
      await h.close();
    }
  }, 60_000);

  it('a destroy during the digest self-copy, after CompleteMultipartUpload, leaves the stored file alone: no abort, no error', async () => {
    const h = await harness(store, { partSize: PART });
    try {
      const data = deterministicBytes(PART + MiB, 9);
      let copyStarted!: () => void;
      const started = new Promise<void>((resolve) => (copyStarted = resolve));
      // A big object's server-side copy takes a while: long enough for the server's stall limit or a stop.
      h.client.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'CopyObjectCommand') {
            copyStarted();
            await new Promise((resolve) => setTimeout(resolve, 1000));
          }
          return next(args);
        },
        { step: 'initialize', name: 'slowSelfCopy' },
      );
      const ws = await openWriteStream(h.p, '/f.bin');
      const errors: Error[] = [];
      ws.on('error', (e: Error) => errors.push(e));
      const closed = once(ws, 'close');
      ws.end(data);
      await started;
      expect(h.count('CompleteMultipartUploadCommand')).toBe(1);
      ws.destroy();
      await closed;
      expect(errors).toEqual([]);
      expect(h.count('AbortMultipartUploadCommand')).toBe(0);
      expect((await readAll(h.p, '/f.bin')).equals(data)).toBe(true);
      // The digest is missing (the copy was abandoned), which HASH handles by reading the object.
      expect(await h.p.hash('/f.bin', 'SHA-256')).toBe(createHash('sha256').update(data).digest('hex'));
      expect(await pendingUploads(h)).toEqual([]);
    } finally {
      await h.close();
    }
  }, 60_000);

  it('a part that fails fails the upload, which is aborted', async () => {
    const h = await harness(store, { partSize: PART });
    try {
      h.failWhen((c) => c.command === 'UploadPartCommand' && c.input.PartNumber === 2, () => s3ErrorLike('InternalError', 500, 'We encountered an internal error'));
      const ws = await openWriteStream(h.p, '/fails.bin');
      const errored = once(ws, 'error');
      const closed = once(ws, 'close').catch(() => undefined);
      const writing = feed(ws, 4 * PART, 5).then(() => ws.end()).catch(() => undefined);
      const [err] = (await errored) as [Error & { code?: string }];
      await writing;
      await closed;
      expect(err.code).toBe('EIO');
      expect(err.message).toContain('internal error');
      expect(await pendingUploads(h)).toEqual([]);
      await expect(h.p.stat('/fails.bin')).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await h.close();
    }
  }, 60_000);

  it('many small uploads at once hold small buffers, not a part buffer each', async () => {
    const h = await harness(store, { partSize: 8 * MiB });
    try {
      const n = 40;
      const streams = await Promise.all(Array.from({ length: n }, (_, i) => openWriteStream(h.p, `/s${i}.txt`)));
      const before = process.memoryUsage().arrayBuffers;
      for (const [i, ws] of streams.entries()) await writeChunk(ws, Buffer.from(`small file ${i}`));
      const held = process.memoryUsage().arrayBuffers - before;
      // 40 part buffers of 8 MiB would be 320 MiB; 40 first buffers of 64 KiB are 2.5 MiB.
      expect(held).toBeLessThan(16 * MiB);
      await Promise.all(streams.map(async (ws) => {
        ws.end();
        await once(ws, 'finish');
      }));
      expect((await readAll(h.p, '/s7.txt')).toString()).toBe('small file 7');
      expect(h.count('PutObjectCommand')).toBe(n);
    } finally {
      await h.close();
    }
  }, 60_000);

  it('rejects a part size below S3\'s 5 MiB minimum', async () => {
    const { S3Provider } = await import('../src/index.js');
    expect(() => new S3Provider({ bucket: 'b', partSize: MiB })).toThrow(RangeError);
    expect(() => new S3Provider({ bucket: '' })).toThrow(RangeError);
  });

  it('setTimes keeps a modification time in the metadata, and other metadata with it', async () => {
    const h = await harness(store);
    try {
      await writeAll(h.p, '/t.txt', 'timed');
      const when = new Date('2020-01-02T03:04:05.678Z');
      await h.p.setTimes('/t.txt', when);
      expect((await h.p.stat('/t.txt')).mtimeMs).toBe(when.getTime());
      expect(await h.p.hash('/t.txt', 'SHA-256')).toBe(createHash('sha256').update('timed').digest('hex'));
      const head = await h.client.send(new HeadObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}t.txt` }));
      expect(head.Metadata?.sha256).toBe(createHash('sha256').update('timed').digest('hex'));
      await expect(h.p.setTimes('/missing', when)).rejects.toMatchObject({ code: 'ENOENT' });
      // Rename keeps it (CopyObject copies metadata).
      await h.p.rename('/t.txt', '/u.txt');
      expect((await h.p.stat('/u.txt')).mtimeMs).toBe(when.getTime());
      expect(await h.p.availableSpace('/')).toBe(Infinity);
    } finally {
      await h.close();
    }
  });

  it('setTimes keeps times before 1970 and far in the future; stat gives them back exactly', async () => {
    const h = await harness(store);
    try {
      await writeAll(h.p, '/old.txt', 'old');
      const metaOf = async (name: string): Promise<string | undefined> =>
        (await h.client.send(new HeadObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}${name}` }))).Metadata?.mtime;
      const times = [
        -1000, // 1969-12-31T23:59:59Z (MFMT 19691231235959)
        Date.UTC(1900, 0, 1),
        new Date("0001-01-01T00:00:00Z").getTime(), // MFMT's earliest
        0,
        Date.UTC(9999, 11, 31, 23, 59, 59), // MFMT's latest
        8.64e15, // a Date's latest (16 digits)
        -8.64e15,
        Date.UTC(2020, 0, 2, 3, 4, 5, 678),
      ];
      for (const t of times) {
        await h.p.setTimes('/old.txt', new Date(t));
        expect(await metaOf('old.txt')).toBe(String(t));
        expect((await h.p.stat('/old.txt')).mtimeMs).toBe(t);
      }
      await h.p.setTimes('/old.txt', new Date(-1000));
      await expect(h.p.setTimes('/old.txt', new Date(Number.NaN))).rejects.toMatchObject({ code: 'EINVAL' });
      expect((await h.p.stat('/old.txt')).mtimeMs).toBe(-1000);
    } finally {
      await h.close();
    }
  });

  it('reads the times stored by earlier versions, and ignores values that are no time', async () => {
    const h = await harness(store);
    try {
      const put = (name: string, mtime: string): Promise<unknown> =>
        h.client.send(new PutObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}${name}`, Body: 'x', Metadata: { mtime } }));
      await put('earlier.txt', '1577934245678');
      expect((await h.p.stat('/earlier.txt')).mtimeMs).toBe(1577934245678);
      await put('zero.txt', '0');
      expect((await h.p.stat('/zero.txt')).mtimeMs).toBe(0);
      for (const bad of ['abc', '1e3', '12.5', '--1', '', '99999999999999999', '8640000000000001']) {
        await put('bad.txt', bad);
        const { mtimeMs } = await h.p.stat('/bad.txt');
        expect(Math.abs(mtimeMs - Date.now()), `"${bad}" is ignored`).toBeLessThan(120_000);
      }
    } finally {
      await h.close();
    }
  });
});

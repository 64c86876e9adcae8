// Growing part sizes against a real store. S3's limits (10,000 parts, doubling every 800, 5 TiB) would take
// terabytes to reach, so each test lowers them with the provider's test hook (`setPartSchedule`) to a handful of
// parts of 5 MiB and up: the same code paths, with megabytes.
import { createHash } from 'node:crypto';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { openWriteStream } from '@ftp/vfs';
import { deterministicBytes, readAll, writeAll } from '@ftp/vfs-conformance';
import type { S3UploadStream } from '../src/index.js';
import { partSizeFor, S3_PART_SCHEDULE, type PartSchedule } from '../src/parts.js';
import { harness, type Harness } from './fixtures/harness.js';
import { startStore } from './fixtures/store.js';

const store = await startStore();
afterAll(() => store.close());

const MiB = 1024 * 1024;
const PART = 5 * MiB;
/** Five parts, doubling every two: 5, 5, 10, 10, 20 MiB = 50 MiB, where fixed 5 MiB parts hold 25 MiB. */
const SMALL: Partial<PartSchedule> = { maxParts: 5, partsPerDoubling: 2, growthCeiling: 20 * MiB, maxPartSize: 20 * MiB };
const SMALL_CAPACITY = 50 * MiB;

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function pendingUploads(h: Harness): Promise<string[]> {
  const out = await h.client.send(new ListMultipartUploadsCommand({ Bucket: h.target.bucket, Prefix: h.target.prefix }));
  return (out.Uploads ?? []).map((u) => u.Key ?? '');
}

/** Resolves once the write's callback ran (the chunk is in a part buffer), rejects with the write's error. */
function write(ws: NodeJS.WritableStream, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => ws.write(chunk, (err) => (err ? reject(err) : resolve())));
}

/** Records the bodies of UploadPart requests and the most body bytes in flight at once. */
function watchParts(h: Harness, onSend?: () => void): { sizes: number[]; maxInFlightBytes: () => number } {
  const sizes: number[] = [];
  let now = 0;
  let max = 0;
  h.client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'UploadPartCommand') return next(args);
      const n = ((args.input as { Body: Buffer }).Body).length;
      sizes.push(n);
      now += n;
      max = Math.max(max, now);
      onSend?.();
      try {
        return await next(args);
      } finally {
        now -= n;
      }
    },
    { step: 'initialize', name: 'watchParts' },
  );
  return { sizes, maxInFlightBytes: () => max };
}

/** Chunks of an awkward size (parts fill mid-chunk), deterministic, `total` bytes in all. */
function* chunks(total: number, seed: number): Generator<Buffer> {
  const size = MiB + 4099;
  for (let off = 0; off < total; off += size) yield deterministicBytes(Math.min(size, total - off), seed + off);
}

describe('growing part sizes (S3 limits lowered by the test hook)', () => {
  it('an upload larger than the part limit allows at a fixed part size succeeds: parts grow, memory stays bounded, bytes intact', async () => {
    const h = await harness(store, { partSize: PART, uploadConcurrency: 2 });
    try {
      h.p.setPartSchedule(SMALL);
      const schedule = { ...S3_PART_SCHEDULE, ...SMALL };
      const budget = PART * 2;
      let ws: S3UploadStream | undefined;
      // The bound documented on `partSize`: max(partSize × uploadConcurrency, P) + P, P the part being filled.
      const bound = (written: number): number => {
        let n = 1;
        for (let end = partSizeFor(1, PART, schedule); end <= written && n < schedule.maxParts; end += partSizeFor(n, PART, schedule)) n++;
        const p = partSizeFor(n, PART, schedule);
        return Math.max(budget, p) + p;
      };
      let worst = 0;
      const sample = (): void => {
        if (ws === undefined) return;
        worst = Math.max(worst, ws.bufferedBytes - bound(ws.bytesWritten));
      };
      const parts = watchParts(h, sample);
      // The first part waits (at most 5 s) for the second to be sent: two parts are in flight at once however fast
      // the store answers (the upload gives the event loop turns while it fills a part, time for a part to complete).
      let secondSent = (): void => undefined;
      const second = new Promise<void>((resolve) => (secondSent = resolve));
      let sent = 0;
      h.client.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName !== 'UploadPartCommand') return next(args);
          const n = ++sent;
          if (n === 2) secondSent();
          if (n === 1) await Promise.race([second, new Promise((resolve) => setTimeout(resolve, 5000))]);
          return next(args);
        },
        { step: 'initialize', name: 'holdFirstPart' },
      );
      ws = (await openWriteStream(h.p, '/grown.bin')) as S3UploadStream;
      const expected = createHash('sha256');
      let peakFirstParts = 0;
      // Exactly what five growing parts hold: twice what five fixed 5 MiB parts could.
      for (const chunk of chunks(SMALL_CAPACITY, 11)) {
        expected.update(chunk);
        await write(ws, chunk);
        sample();
        if (ws.bytesWritten <= 2 * PART) peakFirstParts = Math.max(peakFirstParts, ws.bufferedBytes);
      }
      await new Promise<void>((resolve, reject) => ws.end((err?: Error | null) => (err ? reject(err) : resolve())));
      expect(parts.sizes).toEqual([5 * MiB, 5 * MiB, 10 * MiB, 10 * MiB, 20 * MiB]);
      // Bytes in flight: at most partSize × uploadConcurrency, or one part when a part is larger.
      expect(parts.maxInFlightBytes()).toBeLessThanOrEqual(20 * MiB);
      expect(h.maxInFlight('UploadPartCommand')).toBe(2); // two 5 MiB parts at once, then one at a time
      // Never more than the documented bound; while parts are partSize, the fixed-size bound partSize × (c + 1).
      expect(worst).toBeLessThanOrEqual(0);
      expect(peakFirstParts).toBeLessThanOrEqual(PART * 3);
      expect(ws.bufferedBytes).toBe(0);
      const back = await readAll(h.p, '/grown.bin');
      expect(back.length).toBe(SMALL_CAPACITY);
      const digest = expected.digest('hex');
      expect(sha(back)).toBe(digest);
      expect(await h.p.hash('/grown.bin', 'SHA-256')).toBe(digest);
      expect(await pendingUploads(h)).toEqual([]);
    } finally {
      await h.close();
    }
  }, 120_000);

  it('an upload past what the grown parts hold fails with ENOSPC at the write that crosses it: no object, no multipart upload left', async () => {
    const h = await harness(store, { partSize: PART, uploadConcurrency: 2 });
    try {
      await writeAll(h.p, '/full.bin', 'the old version');
      h.p.setPartSchedule(SMALL);
      const ws = (await openWriteStream(h.p, '/full.bin')) as S3UploadStream;
      const failed = new Promise<Error & { code?: string }>((resolve) => ws.on('error', resolve));
      const closed = new Promise((resolve) => ws.on('close', resolve));
      const data = deterministicBytes(MiB, 5);
      let accepted = 0;
      let refused: (Error & { code?: string }) | undefined;
      for (let i = 0; i < SMALL_CAPACITY / MiB + 5; i++) {
        try {
          await write(ws, data);
          accepted += data.length;
        } catch (err) {
          refused = err as Error & { code?: string };
          break;
        }
      }
      // Every byte up to the limit was taken; the first write past it failed, not a later one.
      expect(accepted).toBe(SMALL_CAPACITY);
      expect(refused?.code).toBe('ENOSPC');
      expect(refused?.message).toMatch(/ENOSPC: '\/full\.bin' is too large: .*52428800 bytes/);
      expect((await failed).code).toBe('ENOSPC');
      await closed;
      expect(h.count('AbortMultipartUploadCommand')).toBe(1);
      expect(await pendingUploads(h)).toEqual([]);
      expect((await readAll(h.p, '/full.bin')).toString()).toBe('the old version');
      // A new file the same way never appears.
      await expect(writeAll(h.p, '/never.bin', chunks(SMALL_CAPACITY + 1, 6))).rejects.toMatchObject({ code: 'ENOSPC' });
      await expect(h.p.stat('/never.bin')).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await pendingUploads(h)).toEqual([]);
    } finally {
      await h.close();
    }
  }, 120_000);

  it("S3's object limit (lowered) fails the write that passes it, and a REST offset past it is refused before the upload starts", async () => {
    const h = await harness(store, { partSize: PART });
    try {
      // 10,000 parts could hold far more: the object limit is what stops this upload.
      h.p.setPartSchedule({ maxObjectSize: 12 * MiB });
      await expect(writeAll(h.p, '/big.bin', chunks(12 * MiB + 1, 3))).rejects.toMatchObject({
        code: 'ENOSPC',
        message: expect.stringContaining('an S3 object holds at most 12582912 bytes'),
      });
      await expect(h.p.stat('/big.bin')).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await pendingUploads(h)).toEqual([]);
      await writeAll(h.p, '/exact.bin', chunks(12 * MiB, 4));
      expect((await h.p.stat('/exact.bin')).size).toBe(12 * MiB);
      // REST + STOR past the limit: no stream, no multipart upload, no zero-filling of 12 MiB first.
      h.calls.length = 0;
      await expect(h.p.createWriteStream('/far.bin', { start: 12 * MiB + 1 })).rejects.toMatchObject({ code: 'ENOSPC' });
      await expect(h.p.createWriteStream('/exact.bin', { start: 13 * MiB })).rejects.toMatchObject({ code: 'ENOSPC' });
      expect(h.count('CreateMultipartUploadCommand')).toBe(0);
      expect(h.count('PutObjectCommand')).toBe(0);
    } finally {
      await h.close();
    }
  }, 120_000);

  it('APPE over a large object: copied parts count against the limit, the appended parts grow after them', async () => {
    const h = await harness(store, { partSize: PART, uploadConcurrency: 2 });
    try {
      const old = deterministicBytes(25 * MiB, 21);
      await writeAll(h.p, '/log.bin', old);
      h.p.setPartSchedule(SMALL);
      h.calls.length = 0;
      const parts = watchParts(h);
      // 25 MiB kept in two copied parts (ranges of at most 20 MiB here, 5 GiB on S3), then parts 3–5: 10, 10 and
      // 20 MiB: 65 MiB in all, where fixed 5 MiB parts after the copy would stop at 45.
      await writeAll(h.p, '/log.bin', chunks(35 * MiB, 22), { append: true });
      expect(h.calls.filter((c) => c.command === 'UploadPartCopyCommand').map((c) => c.input.CopySourceRange)).toEqual([
        `bytes=0-${12.5 * MiB - 1}`,
        `bytes=${12.5 * MiB}-${25 * MiB - 1}`,
      ]);
      expect(parts.sizes).toEqual([10 * MiB, 10 * MiB, 15 * MiB]);
      const expected = Buffer.concat([old, ...chunks(35 * MiB, 22)]);
      const back = await readAll(h.p, '/log.bin');
      expect(back.length).toBe(60 * MiB);
      expect(sha(back)).toBe(sha(expected));
      expect(await pendingUploads(h)).toEqual([]);

      // Over the 60 MiB object: three copied parts of 20 MiB, then 10 + 20 MiB: 90 MiB at most, so the APPE fails
      // once it passes 30 MiB, and the object stays as it was.
      h.calls.length = 0;
      const ws = (await openWriteStream(h.p, '/log.bin', { append: true })) as S3UploadStream;
      ws.on('error', () => undefined);
      let accepted = 0;
      let refused: (Error & { code?: string }) | undefined;
      const data = deterministicBytes(MiB, 23);
      for (let i = 0; i < 40; i++) {
        try {
          await write(ws, data);
          accepted += data.length;
          // What the server's stall check reads: the copied 60 MiB count as stored.
          if (i === 0) expect(ws.storedBytes).toBe(61 * MiB);
        } catch (err) {
          refused = err as Error & { code?: string };
          break;
        }
      }
      expect(h.count('UploadPartCopyCommand')).toBe(3);
      expect(accepted).toBe(30 * MiB);
      expect(ws.bytesWritten).toBe(90 * MiB);
      expect(refused?.code).toBe('ENOSPC');
      await new Promise((resolve) => (ws.closed ? resolve(undefined) : ws.on('close', resolve)));
      expect(h.count('AbortMultipartUploadCommand')).toBe(1);
      expect(await pendingUploads(h)).toEqual([]);
      expect(sha(await readAll(h.p, '/log.bin'))).toBe(sha(expected));
    } finally {
      await h.close();
    }
  }, 120_000);

  it('a rename of an object that would need more copy ranges than the part limit uses larger ranges', async () => {
    const h = await harness(store, { partSize: PART });
    try {
      const data = deterministicBytes(30 * MiB + 3, 31);
      await writeAll(h.p, '/huge.bin', data);
      // Multipart copy above 10 MiB in 5 MiB ranges (S3: 5 GiB, 512 MiB), at most 4 parts (S3: 10,000): seven
      // 5 MiB ranges would be refused by S3 (as a 5 TiB object in 512 MiB ranges, 10,240 parts, was).
      h.p.setMultipartCopy(10 * MiB, 5 * MiB);
      h.p.setPartSchedule({ maxParts: 4 });
      h.calls.length = 0;
      await h.p.rename('/huge.bin', '/moved.bin');
      const numbers = h.calls.filter((c) => c.command === 'UploadPartCopyCommand').map((c) => c.input.PartNumber as number);
      expect(numbers.sort((a, b) => a - b)).toEqual([1, 2, 3, 4]);
      expect((await readAll(h.p, '/moved.bin')).equals(data)).toBe(true);
      await expect(h.p.stat('/huge.bin')).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await h.close();
    }
  }, 120_000);
});

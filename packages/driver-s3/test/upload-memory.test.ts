// The memory budget shared by uploads: part buffers of all uploads of a provider (or of several providers) stay within
// it; uploads wait for buffers instead of failing, in turn, and a destroyed waiting upload withdraws cleanly.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { openWriteStream } from '@ftp/vfs';
import { deterministicBytes, readAll } from '@ftp/vfs-conformance';
import { UploadMemoryBudget, type S3UploadStream } from '../src/index.js';
import { harness, type Harness } from './fixtures/harness.js';
import { startStore } from './fixtures/store.js';

const store = await startStore();
afterAll(() => store.close());

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const FIRST_BUFFER = 64 * 1024;

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Resolves once the write's callback ran (the chunk is in a part buffer), rejects with the write's error. */
function write(ws: NodeJS.WritableStream, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => ws.write(chunk, (err) => (err ? reject(err) : resolve())));
}

/** Writes `data` in chunks of an awkward size (parts fill mid-chunk), each after the previous callback, then ends. */
async function upload(ws: NodeJS.WritableStream, data: Buffer): Promise<void> {
  for (let off = 0; off < data.length; off += MiB + 4099) await write(ws, data.subarray(off, Math.min(data.length, off + MiB + 4099)));
  ws.end();
  await once(ws, 'finish');
}

/** The most UploadPart body bytes in flight at once, over every upload of the harness's client. */
function watchInFlight(h: Harness, gate?: () => Promise<void>): { maxBytes: () => number; now: () => number } {
  let now = 0;
  let max = 0;
  h.client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'UploadPartCommand') return next(args);
      const n = (args.input as { Body: Buffer }).Body.length;
      now += n;
      max = Math.max(max, now);
      try {
        if (gate !== undefined) await gate();
        return await next(args);
      } finally {
        now -= n;
      }
    },
    { step: 'initialize', name: 'watchInFlight' },
  );
  return { maxBytes: () => max, now: () => now };
}

/** Polls `cond` every 10 ms, at most `ms`. */
async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !cond(); ) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('UploadMemoryBudget (unit)', () => {
  it('serves requests in order, gives a part larger than the budget the whole idle budget, withdraws aborted requests, releases once', async () => {
    const b = new UploadMemoryBudget(10 * MiB);
    expect(() => new UploadMemoryBudget(1000)).toThrow(RangeError);
    const a = await b.acquire(6 * MiB);
    expect(b.held).toBe(6 * MiB);
    const order: string[] = [];
    const big = b.acquire(20 * MiB).then((buf) => (order.push('big'), buf));
    const small = b.acquire(MiB).then((buf) => (order.push('small'), buf));
    const ac = new AbortController();
    const aborted = b.acquire(MiB, ac.signal);
    expect(b.waiting).toBe(3);
    ac.abort(new Error('gone'));
    await expect(aborted).rejects.toThrow('gone');
    expect(b.waiting).toBe(2);
    // FIFO: the small request fits, but waits behind the big one, which waits for the budget to be idle.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(order).toEqual([]);
    expect(b.release(a)).toBe(true);
    expect(b.release(a)).toBe(false);
    const bigBuf = await big;
    expect(bigBuf.length).toBe(20 * MiB);
    expect(b.held).toBe(20 * MiB);
    expect(b.waiting).toBe(1);
    b.release(bigBuf);
    const smallBuf = await small;
    expect(order).toEqual(['big', 'small']);
    expect(b.held).toBe(MiB);
    b.release(smallBuf);
    expect(b.held).toBe(0);
    expect(b.peak).toBe(20 * MiB);
  });
});

describe('UploadMemoryBudget (spare buffers)', () => {
  it('reuses a released buffer while uploads go on, and lets every spare go once nothing is held (an idle server keeps none)', async () => {
    const MiB = 1024 * 1024;
    const budget = new UploadMemoryBudget(8 * MiB);
    const a = await budget.acquire(MiB);
    const b = await budget.acquire(MiB);
    expect(budget.release(a)).toBe(true);
    // `b` is still held: `a`'s memory serves the next part of its size.
    const c = await budget.acquire(MiB);
    expect(c).toBe(a);
    expect(budget.release(c)).toBe(true);
    expect(budget.release(b)).toBe(true);
    expect(budget.held).toBe(0);
    // Nothing held: the spares were let go, so the next part gets new memory.
    const d = await budget.acquire(MiB);
    expect(d).not.toBe(a);
    expect(d).not.toBe(b);
    budget.release(d);
  });
});

describe('uploads share a memory budget', () => {
  it('several concurrent uploads with a budget of two parts: part buffers never exceed it, every upload completes byte-exact', async () => {
    const budget = new UploadMemoryBudget(2 * PART);
    const h = await harness(store, { partSize: PART, uploadConcurrency: 2, uploadMemory: budget });
    try {
      const inFlight = watchInFlight(h, () => new Promise((resolve) => setTimeout(resolve, 20)));
      const n = 4;
      const data = Array.from({ length: n }, (_, i) => deterministicBytes(3 * PART + 123_457 * (i + 1), 100 + i));
      const streams = (await Promise.all(data.map((_, i) => openWriteStream(h.p, `/u${i}.bin`)))) as S3UploadStream[];
      // Sampled independently of the budget's own count: the buffers the uploads hold (the first 64 KiB ones aside).
      let worst = 0;
      let sampled = 0;
      const sampler = setInterval(() => {
        worst = Math.max(worst, streams.reduce((sum, ws) => sum + ws.bufferedBytes, 0));
        sampled++;
      }, 2);
      try {
        await Promise.all(streams.map((ws, i) => upload(ws, data[i] as Buffer)));
      } finally {
        clearInterval(sampler);
      }
      expect(sampled).toBeGreaterThan(0);
      expect(inFlight.maxBytes()).toBeLessThanOrEqual(budget.capacity);
      expect(worst).toBeLessThanOrEqual(budget.capacity + n * FIRST_BUFFER);
      expect(h.p.uploadMemory).toBe(budget);
      expect(budget.peak).toBeGreaterThan(0);
      expect(budget.peak).toBeLessThanOrEqual(budget.capacity);
      expect(budget.held).toBe(0);
      expect(budget.waiting).toBe(0);
      for (const [i, d] of data.entries()) expect(sha(await readAll(h.p, `/u${i}.bin`))).toBe(sha(d));
    } finally {
      await h.close();
    }
  }, 120_000);

  it('a budget shared by two providers bounds both; a part larger than the budget still goes when it is idle', async () => {
    const budget = new UploadMemoryBudget(PART + MiB);
    const h1 = await harness(store, { partSize: PART, uploadConcurrency: 3, uploadMemory: budget });
    const h2 = await harness(store, { partSize: PART, uploadConcurrency: 3, uploadMemory: budget });
    try {
      // Parts grow to 10 MiB from the third: larger than the whole budget.
      h2.p.setPartSchedule({ maxParts: 6, partsPerDoubling: 2, growthCeiling: 10 * MiB, maxPartSize: 10 * MiB });
      const a = deterministicBytes(3 * PART + 777, 1);
      const b = deterministicBytes(2 * PART + 10 * MiB + 999, 2);
      const [wa, wb] = [(await openWriteStream(h1.p, '/a.bin')) as S3UploadStream, (await openWriteStream(h2.p, '/b.bin')) as S3UploadStream];
      let worst = 0;
      const sampler = setInterval(() => (worst = Math.max(worst, wa.bufferedBytes + wb.bufferedBytes)), 2);
      try {
        await Promise.all([upload(wa, a), upload(wb, b)]);
      } finally {
        clearInterval(sampler);
      }
      expect(worst).toBeLessThanOrEqual(10 * MiB + 2 * FIRST_BUFFER);
      expect(budget.peak).toBeGreaterThan(PART);
      expect(budget.peak).toBeLessThanOrEqual(10 * MiB);
      expect(budget.held).toBe(0);
      expect(sha(await readAll(h1.p, '/a.bin'))).toBe(sha(a));
      expect(sha(await readAll(h2.p, '/b.bin'))).toBe(sha(b));
    } finally {
      await h1.close();
      await h2.close();
    }
  }, 120_000);

  it('a destroyed waiting upload withdraws its request and gives nothing back twice; the others go on', async () => {
    const budget = new UploadMemoryBudget(2 * PART);
    const h = await harness(store, { partSize: PART, uploadConcurrency: 1, uploadMemory: budget });
    try {
      let open!: () => void;
      const opened = new Promise<void>((resolve) => (open = resolve));
      const inFlight = watchInFlight(h, () => opened);
      // A: one part in flight (held by the gate), the next full and waiting for room: the whole budget.
      const a = deterministicBytes(2 * PART + 4321, 7);
      const wa = (await openWriteStream(h.p, '/a.bin')) as S3UploadStream;
      const aDone = upload(wa, a);
      await until(() => budget.held === 2 * PART);
      // B and C need a part buffer each: they wait, their write callbacks pending (backpressure).
      const wb = (await openWriteStream(h.p, '/b.bin')) as S3UploadStream;
      const bErrors: unknown[] = [];
      wb.on('error', (e) => bErrors.push(e));
      let bWritten = false;
      const bWrite = write(wb, deterministicBytes(MiB, 8)).then(
        () => (bWritten = true),
        () => undefined,
      );
      await until(() => budget.waiting === 1);
      const c = deterministicBytes(PART + 999, 9);
      const wc = (await openWriteStream(h.p, '/c.bin')) as S3UploadStream;
      const cDone = upload(wc, c);
      await until(() => budget.waiting === 2);
      expect(budget.held).toBe(2 * PART);
      expect(bWritten).toBe(false);
      // B is destroyed while it waits: its request goes, it held no part buffer, the budget's count is unchanged.
      const bClosed = new Promise((resolve) => wb.once('close', resolve));
      wb.destroy(new Error('426 connection closed; transfer aborted'));
      await bClosed;
      await bWrite;
      expect(bWritten).toBe(false);
      expect(budget.waiting).toBe(1);
      expect(budget.held).toBe(2 * PART);
      // The parts go: A completes, then C gets buffers and completes.
      open();
      await Promise.all([aDone, cDone]);
      expect(inFlight.maxBytes()).toBeLessThanOrEqual(budget.capacity);
      expect(budget.peak).toBeLessThanOrEqual(budget.capacity);
      expect(budget.held).toBe(0);
      expect(budget.waiting).toBe(0);
      expect(sha(await readAll(h.p, '/a.bin'))).toBe(sha(a));
      expect(sha(await readAll(h.p, '/c.bin'))).toBe(sha(c));
      await expect(h.p.stat('/b.bin')).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await h.close();
    }
  }, 120_000);

  it('an upload destroyed with parts in flight gives each buffer back exactly once', async () => {
    const budget = new UploadMemoryBudget(3 * PART);
    const h = await harness(store, { partSize: PART, uploadConcurrency: 2, uploadMemory: budget });
    try {
      let open!: () => void;
      const opened = new Promise<void>((resolve) => (open = resolve));
      watchInFlight(h, () => opened);
      const ws = (await openWriteStream(h.p, '/x.bin')) as S3UploadStream;
      ws.on('error', () => undefined);
      const data = deterministicBytes(3 * PART + MiB, 3);
      const writing = upload(ws, data).catch(() => undefined);
      await until(() => budget.held === 3 * PART);
      const closed = new Promise((resolve) => ws.once('close', resolve));
      ws.destroy(new Error('aborted'));
      open();
      await closed;
      await writing;
      expect(budget.held).toBe(0);
      // The budget is whole again: another upload takes all of it.
      const other = deterministicBytes(3 * PART, 4);
      await upload(await openWriteStream(h.p, '/y.bin'), other);
      expect(budget.held).toBe(0);
      expect(sha(await readAll(h.p, '/y.bin'))).toBe(sha(other));
    } finally {
      await h.close();
    }
  }, 120_000);
});

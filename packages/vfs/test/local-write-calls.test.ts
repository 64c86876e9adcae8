import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { LocalProvider } from '../src/index.js';
import { WRITER_TAKEOVER_IDLE_MS } from '../src/providers/local-writers.js';
import type { UploadStream } from '../src/index.js';

/**
 * Uploads reach the kernel in write calls of at most 512 KiB: writes of 1 MiB or more fill large page-cache folios,
 * which a VM that returns freed memory to its host faults in again (1 GiB in 1 MiB chunks through this provider:
 * ~1,550 MiB/s and 0.65 s of CPU uncapped, ~4,800 MiB/s and 0.22 s capped at 512 KiB).
 */
const MAX_CALL = 512 * 1024;
const MiB = 1024 * 1024;

let root: string;
beforeAll(() => {
  root = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), 'vfs-write-calls-')));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed) & 0xff;
  return b;
}

/** Every call was at most MAX_CALL bytes, and together they wrote `total` bytes (so the spies saw them all). */
function expectCalls(calls: number[], total: number): void {
  expect(calls.reduce((n, c) => n + c, 0)).toBe(total);
  expect(Math.max(...calls)).toBeLessThanOrEqual(MAX_CALL);
}

/** The byte count of every positional write call the provider makes. */
function recordWriteCalls(): number[] {
  const calls: number[] = [];
  const write = fs.write;
  const writev = fs.writev;
  vi.spyOn(fs, 'write').mockImplementation(((fd: number, buffer: Buffer, offset: number, length: number, position: number | null, cb: never) => {
    calls.push(length);
    return write(fd, buffer, offset, length, position, cb);
  }) as typeof fs.write);
  vi.spyOn(fs, 'writev').mockImplementation(((fd: number, buffers: Buffer[], position: number | null, cb: never) => {
    calls.push(buffers.reduce((n, b) => n + b.length, 0));
    return writev(fd, buffers, position, cb);
  }) as typeof fs.writev);
  return calls;
}

function end(ws: UploadStream, last?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.end(last, () => resolve());
  });
}

describe.each([false, true])('LocalProvider uploads (syncMetadata: %s) write in calls of at most 512 KiB', (syncMetadata) => {
  const provider = (): LocalProvider => new LocalProvider(root, { syncMetadata });

  it('splits one big chunk, and the file holds every byte in order', async () => {
    const data = bytes(3 * MiB + 12345, 1);
    const calls = recordWriteCalls();
    const ws = await provider().createWriteStream(`/one-${syncMetadata}.bin`);
    await end(ws, data);
    expectCalls(calls, data.length);
    expect(fs.readFileSync(join(root, `one-${syncMetadata}.bin`)).equals(data)).toBe(true);
  });

  it('splits chunks batched together (writev), keeping their order across the split', async () => {
    const parts = [bytes(300 * 1024, 2), bytes(700 * 1024, 3), bytes(90 * 1024, 4), bytes(1100 * 1024, 5)];
    const calls = recordWriteCalls();
    const ws = await provider().createWriteStream(`/batched-${syncMetadata}.bin`);
    // Written without waiting: all but the first are buffered while it runs, and go down together.
    for (const part of parts.slice(0, -1)) ws.write(part);
    await end(ws, parts.at(-1));
    expectCalls(calls, 2190 * 1024);
    expect(fs.readFileSync(join(root, `batched-${syncMetadata}.bin`)).equals(Buffer.concat(parts))).toBe(true);
  });

  it('keeps the offset of a REST upload across the split, and truncates to its end', async () => {
    const name = `rest-${syncMetadata}.bin`;
    const old = bytes(4 * MiB, 6);
    fs.writeFileSync(join(root, name), old);
    const data = bytes(2 * MiB + 7, 7);
    const calls = recordWriteCalls();
    const ws = await provider().createWriteStream(`/${name}`, { start: 1000 });
    await end(ws, data);
    expectCalls(calls, data.length);
    expect(fs.readFileSync(join(root, name)).equals(Buffer.concat([old.subarray(0, 1000), data]))).toBe(true);
  });

  it('appends a big chunk whole after what the file held', async () => {
    const name = `append-${syncMetadata}.bin`;
    const old = bytes(5000, 8);
    fs.writeFileSync(join(root, name), old);
    const data = bytes(MiB + 3, 9);
    const calls = recordWriteCalls();
    const ws = await provider().createWriteStream(`/${name}`, { append: true });
    await end(ws, data);
    expectCalls(calls, data.length);
    expect(fs.readFileSync(join(root, name)).equals(Buffer.concat([old, data]))).toBe(true);
  });

  it('a destroy between the calls of a split chunk writes nothing more (the descriptor may already be reused)', async () => {
    const name = `destroyed-${syncMetadata}.bin`;
    const calls: number[] = [];
    const write = fs.write;
    let ws: UploadStream | undefined;
    vi.spyOn(fs, 'write').mockImplementation(((fd: number, buffer: Buffer, offset: number, length: number, position: number | null, cb: never) => {
      calls.push(length);
      // The client goes away while the first part is in the kernel.
      if (calls.length === 1) ws!.destroy(new Error('client gone'));
      return write(fd, buffer, offset, length, position, cb);
    }) as typeof fs.write);
    ws = await provider().createWriteStream(`/${name}`);
    const closed = new Promise<void>((resolve) => ws!.once('close', () => resolve()));
    ws.on('error', () => undefined);
    ws.write(bytes(2 * MiB, 10));
    await closed;
    // Give a wrongly continued write time to show.
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toEqual([MAX_CALL]);
    expect(fs.statSync(join(root, name)).size).toBe(MAX_CALL);
  });
});

describe('LocalProvider: an upload that replaces a small file (syncMetadata)', () => {
  it('overwrites it in place (no emptying first: its blocks are reused) and cuts it to the new length at the end', async () => {
    const p = new LocalProvider(root, { syncMetadata: true });
    for (const [old, next, cuts] of [
      [16 * 1024, 16 * 1024, []],
      [16 * 1024, 100 * 1024, []],
      [64 * 1024, 4 * 1024, [4 * 1024]],
    ] as const) {
      fs.writeFileSync(join(root, 'small.bin'), bytes(old, 1));
      const calls = recordTruncates();
      const ws = await p.createWriteStream('/small.bin');
      await end(ws, bytes(next, 2));
      expect(calls, `${old} → ${next}`).toEqual(cuts);
      expect(fs.readFileSync(join(root, 'small.bin')).equals(bytes(next, 2))).toBe(true);
      vi.restoreAllMocks();
    }
  });

  it('interrupted, leaves what was received and no more of the old file (as if it had been emptied first)', async () => {
    const p = new LocalProvider(root, { syncMetadata: true });
    for (const received of [0, 1000]) {
      fs.writeFileSync(join(root, 'cut.bin'), bytes(32 * 1024, 3));
      const ws = await p.createWriteStream('/cut.bin');
      if (received > 0) await new Promise<void>((resolve, reject) => ws.write(bytes(received, 4), (err) => (err ? reject(err) : resolve())));
      ws.on('error', () => {});
      ws.destroy(new Error('client gone'));
      await finished(ws).catch(() => undefined);
      expect(fs.readFileSync(join(root, 'cut.bin')).equals(bytes(received, 4)), `${received} received`).toBe(true);
    }
  });

  it('a cut that fails leaves the old file whole (the new content, all held, is not written over it)', async () => {
    const p = new LocalProvider(root, { syncMetadata: true });
    fs.writeFileSync(join(root, 'eio.bin'), bytes(32 * 1024, 7));
    const ws = await p.createWriteStream('/eio.bin');
    const ftruncate = fs.ftruncate;
    vi.spyOn(fs, 'ftruncate').mockImplementation(((_fd: number, _len: number, cb: (err: Error) => void) =>
      setImmediate(() => cb(Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO' })))) as unknown as typeof fs.ftruncate);
    ws.on('error', () => {});
    const ended = new Promise<unknown>((resolve) => ws.end(bytes(1000, 8), (err?: Error | null) => resolve(err)));
    expect(await ended).toMatchObject({ code: 'EIO' });
    vi.spyOn(fs, 'ftruncate').mockImplementation(ftruncate);
    expect(fs.readFileSync(join(root, 'eio.bin')).equals(bytes(32 * 1024, 7))).toBe(true);
  });

  it('destroyed while a write is in flight, keeps what that write put on disk', async () => {
    const p = new LocalProvider(root, { syncMetadata: true });
    fs.writeFileSync(join(root, 'busy.bin'), bytes(60 * 1024, 9));
    const ws = await p.createWriteStream('/busy.bin');
    ws.on('error', () => {});
    // The first 8 KiB are held; the next write sends both, 16 KiB, to the thread pool.
    await new Promise<void>((resolve, reject) => ws.write(bytes(8 * 1024, 10), (err) => (err ? reject(err) : resolve())));
    ws.write(bytes(8 * 1024, 11));
    // At once: the write is in the thread pool now.
    ws.destroy(new Error('client gone'));
    await finished(ws).catch(() => undefined);
    const onDisk = fs.readFileSync(join(root, 'busy.bin'));
    expect(onDisk.equals(Buffer.concat([bytes(8 * 1024, 10), bytes(8 * 1024, 11)]))).toBe(true);
  });

  it('taking the file over from an idle upload decides on its size after that upload wrote out what it held', async () => {
    const p = new LocalProvider(root, { syncMetadata: true });
    fs.writeFileSync(join(root, 'taken.bin'), bytes(1024, 12));
    const idle = await p.createWriteStream('/taken.bin');
    idle.on('error', () => {});
    // 10 KiB held by the first upload, whose client then goes quiet.
    await new Promise<void>((resolve, reject) => idle.write(bytes(10 * 1024, 13), (err) => (err ? reject(err) : resolve())));
    const clock = vi.spyOn(performance, 'now').mockReturnValue(performance.now() + WRITER_TAKEOVER_IDLE_MS + 1);
    const next = await p.createWriteStream('/taken.bin');
    clock.mockRestore();
    await end(next, bytes(2048, 14));
    // The newcomer's 2 KiB, not followed by the idle upload's tail.
    expect(fs.readFileSync(join(root, 'taken.bin')).equals(bytes(2048, 14))).toBe(true);
  });

  it('a bigger old file is still emptied before the upload writes (a killed process leaves only what was received)', async () => {
    const p = new LocalProvider(root, { syncMetadata: true });
    fs.writeFileSync(join(root, 'big.bin'), bytes(SMALL_PLUS, 5));
    const calls = recordTruncates();
    const ws = await p.createWriteStream('/big.bin');
    expect(calls).toEqual([0]);
    expect(fs.statSync(join(root, 'big.bin')).size).toBe(0);
    await end(ws, bytes(10, 6));
    expect(fs.readFileSync(join(root, 'big.bin')).equals(bytes(10, 6))).toBe(true);
  });
});

const SMALL_PLUS = 64 * 1024 + 1;

describe.each([true, false])('LocalProvider: an interrupted REST upload (syncMetadata: %s)', (syncMetadata) => {
  const provider = (): LocalProvider => new LocalProvider(root, { syncMetadata });

  /** Opens a REST upload of `name` at `start`, writes `received` (one chunk), then the client goes away. */
  async function interrupted(name: string, start: number, received: Buffer | null): Promise<void> {
    const ws = await provider().createWriteStream(`/${name}`, { start });
    if (received !== null) await new Promise<void>((resolve, reject) => ws.write(received, (err) => (err ? reject(err) : resolve())));
    ws.on('error', () => {});
    ws.destroy(Object.assign(new Error('connection reset'), { code: 'ECONNRESET' }));
    await finished(ws).catch(() => undefined);
  }

  it('below the old end, keeps the bytes before its start and what was received, not the old tail past them', async () => {
    // The bug: the old tail stayed, SIZE reported the old length, and a client resuming from it left a stretch of
    // the old file inside the new one. A small chunk (held in sync mode) and a big one (written at once).
    for (const [old, start, received] of [
      [100, 10, bytes(20, 21)],
      [MiB, 1000, bytes(128 * 1024, 22)],
      [5000, 700, null],
    ] as const) {
      const name = `rest-cut-${syncMetadata}.bin`;
      fs.writeFileSync(join(root, name), bytes(old, 20));
      await interrupted(name, start, received);
      const expected = Buffer.concat([bytes(old, 20).subarray(0, start), received ?? Buffer.alloc(0)]);
      expect(fs.readFileSync(join(root, name)).equals(expected), `${old} bytes, REST ${start}`).toBe(true);
    }
  });

  it('at or past the old end, cuts nothing (no extra call), and a completed REST upload still ends where it stopped', async () => {
    const name = `rest-end-${syncMetadata}.bin`;
    fs.writeFileSync(join(root, name), bytes(3000, 23));
    const calls = recordTruncates();
    await interrupted(name, 3000, bytes(500, 24));
    expect(calls).toEqual([]);
    expect(fs.readFileSync(join(root, name)).equals(Buffer.concat([bytes(3000, 23), bytes(500, 24)]))).toBe(true);
    vi.restoreAllMocks();
    fs.writeFileSync(join(root, name), bytes(3000, 23));
    const ws = await provider().createWriteStream(`/${name}`, { start: 100 });
    await end(ws, bytes(200, 25));
    expect(fs.readFileSync(join(root, name)).equals(Buffer.concat([bytes(100, 23), bytes(200, 25)]))).toBe(true);
  });

  it('is cut in the thread pool, the file registered until the cut has landed; ended by a newcomer, at once', async () => {
    const name = `rest-pool-${syncMetadata}.bin`;
    fs.writeFileSync(join(root, name), bytes(MiB, 26));
    const onLoop = vi.spyOn(fs, 'ftruncateSync');
    const pool: string[] = [];
    const ftruncate = fs.ftruncate;
    let landed: () => void = () => undefined;
    vi.spyOn(fs, 'ftruncate').mockImplementation(((fd: number, len: number, cb: never) => {
      pool.push(`${len}`);
      landed = () => ftruncate(fd, len, cb);
    }) as typeof fs.ftruncate);
    const ws = await provider().createWriteStream(`/${name}`, { start: 100 });
    await new Promise<void>((resolve, reject) => ws.write(bytes(100 * 1024, 27), (err) => (err ? reject(err) : resolve())));
    ws.on('error', () => {});
    const closed = new Promise((r) => ws.once('close', r));
    ws.destroy(new Error('client gone'));
    expect(pool).toEqual([`${100 + 100 * 1024}`]);
    // Neither a resume nor a download may look at the file before the cut lands, even an idle upload's newcomer.
    const clock = vi.spyOn(performance, 'now').mockReturnValue(performance.now() + WRITER_TAKEOVER_IDLE_MS + 1);
    await expect(provider().createWriteStream(`/${name}`, { start: 10 })).rejects.toMatchObject({ code: 'EBUSY' });
    clock.mockRestore();
    landed();
    await closed;
    expect(fs.statSync(join(root, name)).size).toBe(100 + 100 * 1024);
    expect(onLoop).not.toHaveBeenCalled();
    vi.restoreAllMocks();

    // An idle REST upload a newcomer ends is cut before the newcomer goes on: it decides on the size it finds.
    fs.writeFileSync(join(root, name), bytes(4000, 26));
    const idle = await provider().createWriteStream(`/${name}`, { start: 100 });
    idle.on('error', () => {});
    await new Promise<void>((resolve, reject) => idle.write(bytes(100, 28), (err) => (err ? reject(err) : resolve())));
    const later = vi.spyOn(performance, 'now').mockReturnValue(performance.now() + WRITER_TAKEOVER_IDLE_MS + 1);
    const append = await provider().createWriteStream(`/${name}`, { append: true });
    later.mockRestore();
    await end(append, bytes(10, 29));
    expect(fs.readFileSync(join(root, name)).equals(Buffer.concat([bytes(100, 26), bytes(100, 28), bytes(10, 29)]))).toBe(true);
  });
});

/** The lengths given to every ftruncate (async and sync) the provider makes. */
function recordTruncates(): number[] {
  const calls: number[] = [];
  const ftruncate = fs.ftruncate;
  const ftruncateSync = fs.ftruncateSync;
  vi.spyOn(fs, 'ftruncate').mockImplementation(((fd: number, len: number, cb: never) => {
    calls.push(len);
    return ftruncate(fd, len, cb);
  }) as typeof fs.ftruncate);
  vi.spyOn(fs, 'ftruncateSync').mockImplementation(((fd: number, len?: number) => {
    calls.push(len ?? 0);
    return ftruncateSync(fd, len);
  }) as typeof fs.ftruncateSync);
  return calls;
}

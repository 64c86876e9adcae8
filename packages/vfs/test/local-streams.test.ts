import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkReaderOf, LocalProvider, openReadStream, openWriteStream } from '../src/index.js';

let root: string;
let p: LocalProvider;
const data = Buffer.from(Array.from({ length: 700_000 }, (_, i) => (i * 7) & 0xff));

beforeAll(() => {
  root = fs.mkdtempSync(join(tmpdir(), 'vfs-local-streams-'));
  fs.writeFileSync(join(root, 'f.bin'), data);
  p = new LocalProvider(root);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Reads all a chunk reader gives into buffers of `size`, as the server does. */
async function readAll(path: string, size: number, options: { start?: number; end?: number } = {}): Promise<Buffer> {
  return readAllFrom(p, path, size, options);
}

/** {@link readAll} from `provider`. */
async function readAllFrom(provider: LocalProvider, path: string, size: number, options: { start?: number; end?: number } = {}): Promise<Buffer> {
  const stream = await openReadStream(provider, path, options);
  const reader = chunkReaderOf(stream);
  expect(reader).toBeTypeOf('function');
  const parts: Buffer[] = [];
  const into = Buffer.alloc(size);
  for (let n = await reader!(into); n > 0; n = await reader!(into)) parts.push(Buffer.from(into.subarray(0, n)));
  stream.destroy();
  return Buffer.concat(parts);
}

describe('local read streams', () => {
  it('give a chunk reader that reads the whole file, or the REST/range asked for, into the caller’s buffers', async () => {
    expect((await readAll('/f.bin', 65536)).equals(data)).toBe(true);
    expect((await readAll('/f.bin', 100_000, { start: 123_457 })).equals(data.subarray(123_457))).toBe(true);
    expect((await readAll('/f.bin', 4096, { start: 10, end: 20_000 })).equals(data.subarray(10, 20_001))).toBe(true);
    expect((await readAll('/f.bin', 4096, { start: 800_000 })).length).toBe(0);
  });

  it('close the file when destroyed after chunk reads', async () => {
    const before = fs.readdirSync('/proc/self/fd').length;
    for (let i = 0; i < 20; i++) await readAll('/f.bin', 1 << 20);
    await new Promise((r) => setTimeout(r, 50));
    expect(fs.readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(before + 1);
  });

  it('still stream as plain Readables, and uploads land byte for byte through the 1 MiB buffer', async () => {
    const chunks: Buffer[] = [];
    for await (const c of await openReadStream(p, '/f.bin')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    const ws = await openWriteStream(p, '/copy.bin');
    await new Promise<void>((resolve, reject) => {
      ws.on('error', reject);
      for (let off = 0; off < data.length; off += 10_000) ws.write(data.subarray(off, off + 10_000));
      ws.end(() => resolve());
    });
    expect(fs.readFileSync(join(root, 'copy.bin')).equals(data)).toBe(true);
  });
});

describe('local uploads', () => {
  it('close the descriptor only after a write in progress has returned, when destroyed mid-write', async () => {
    const events: string[] = [];
    let inFlight = 0;
    const { write, writev, close, closeSync } = fs;
    const patched = fs as unknown as Record<string, unknown>;
    patched.write = (...args: unknown[]) => {
      inFlight++;
      const cb = args.pop() as (...r: unknown[]) => void;
      return (write as unknown as (...a: unknown[]) => void)(...args, (...r: unknown[]) => {
        inFlight--;
        events.push('write done');
        cb(...r);
      });
    };
    patched.writev = writev;
    patched.close = (fd: number, cb: (err: Error | null) => void) => {
      events.push(`close with ${inFlight} in flight`);
      return close(fd, cb);
    };
    // With syncMetadata (the default) the upload closes synchronously.
    patched.closeSync = (fd: number) => {
      events.push(`close with ${inFlight} in flight`);
      return closeSync(fd);
    };
    try {
      const ws = await openWriteStream(p, '/destroyed.bin');
      ws.on('error', () => undefined);
      ws.write(Buffer.alloc(32 * 1024 * 1024, 1));
      ws.destroy(new Error('client went away'));
      await new Promise((r) => ws.once('close', r));
      expect(events).toContain('write done');
      expect(events.filter((e) => e.startsWith('close'))).toEqual(['close with 0 in flight']);
    } finally {
      Object.assign(patched, { write, writev, close, closeSync });
    }
  });
});

/** Calls to the thread-pool variants of `fs` functions while `fn` runs. */
async function poolCalls(names: ('read' | 'write' | 'writev' | 'close')[], fn: () => Promise<void>): Promise<string[]> {
  const calls: string[] = [];
  const patched = fs as unknown as Record<string, (...a: unknown[]) => unknown>;
  const saved = Object.fromEntries(names.map((n) => [n, patched[n]!]));
  for (const n of names) patched[n] = (...args: unknown[]) => (calls.push(n), saved[n]!(...args));
  try {
    await fn();
  } finally {
    Object.assign(patched, saved);
  }
  return calls;
}

function upload(provider: LocalProvider, path: string, parts: Buffer[], options: { start?: number } = {}): Promise<void> {
  return openWriteStream(provider, path, options).then(
    (ws) =>
      new Promise<void>((resolve, reject) => {
        ws.on('error', reject);
        for (const part of parts) ws.write(part);
        ws.end(() => resolve());
      }),
  );
}

describe('small files (syncMetadata)', () => {
  it('a small upload and a small download make no thread-pool round trip; with syncMetadata false they do', async () => {
    const small = data.subarray(0, 16 * 1024);
    const asyncProvider = new LocalProvider(root, { syncMetadata: false });
    for (const provider of [p, asyncProvider]) {
      const calls = await poolCalls(['read', 'write', 'writev', 'close'], async () => {
        await upload(provider, '/small.bin', [small]);
        const stream = await openReadStream(provider, '/small.bin');
        // 256 KiB, as the server reads: the size left in the file decides, not the buffer.
        const into = Buffer.alloc(256 * 1024);
        const reader = chunkReaderOf(stream)!;
        expect(await reader(into)).toBe(small.length);
        expect(into.subarray(0, small.length).equals(small)).toBe(true);
        expect(await reader(into)).toBe(0);
        stream.destroy();
        await new Promise((r) => stream.once('close', r));
      });
      expect(fs.readFileSync(join(root, 'small.bin')).equals(small)).toBe(true);
      if (provider === p) expect(calls).toEqual([]);
      else expect([...new Set(calls)].sort()).toEqual(['close', 'read', 'write']);
    }
  });

  it('a download of a file up to 1 MiB makes no thread-pool read; a bigger one, and any without syncMetadata, do', async () => {
    const mib = Buffer.from(Array.from({ length: 1024 * 1024 }, (_, i) => (i * 13) & 0xff));
    fs.writeFileSync(join(root, 'mib.bin'), mib);
    fs.writeFileSync(join(root, 'mib1.bin'), Buffer.concat([mib, Buffer.from('!')]));
    const reads = async (provider: LocalProvider, path: string, want: Buffer): Promise<number> => {
      const calls = await poolCalls(['read'], async () => {
        const stream = await openReadStream(provider, path);
        const reader = chunkReaderOf(stream)!;
        const into = Buffer.alloc(256 * 1024);
        const got: Buffer[] = [];
        for (let n = await reader(into); n > 0; n = await reader(into)) got.push(Buffer.from(into.subarray(0, n)));
        expect(Buffer.concat(got).equals(want)).toBe(true);
        stream.destroy();
        await new Promise((r) => stream.once('close', r));
      });
      return calls.length;
    };
    expect(await reads(p, '/mib.bin', mib)).toBe(0);
    expect(await reads(p, '/mib1.bin', Buffer.concat([mib, Buffer.from('!')]))).toBeGreaterThan(0);
    expect(await reads(new LocalProvider(root, { syncMetadata: false }), '/mib.bin', mib)).toBeGreaterThan(0);
  });

  it('a download that reads short has reached the end: the file is not read again to be told so', async () => {
    const small = data.subarray(0, 16 * 1024);
    fs.writeFileSync(join(root, 'once.bin'), small);
    for (const provider of [p, new LocalProvider(root, { syncMetadata: false })]) {
      const reads: string[] = [];
      const patched = fs as unknown as Record<string, (...a: unknown[]) => unknown>;
      const saved = { read: patched.read!, readSync: patched.readSync! };
      patched.read = (...args: unknown[]) => (reads.push('read'), saved.read(...args));
      patched.readSync = (...args: unknown[]) => (reads.push('readSync'), saved.readSync(...args));
      try {
        const stream = await openReadStream(provider, '/once.bin');
        const reader = chunkReaderOf(stream)!;
        const into = Buffer.alloc(256 * 1024);
        expect(await reader(into)).toBe(small.length);
        expect(await reader(into)).toBe(0);
        expect(await reader(into)).toBe(0);
        stream.destroy();
        await new Promise((r) => stream.once('close', r));
      } finally {
        Object.assign(patched, saved);
      }
      expect(reads).toHaveLength(1);
    }
  });

  it('a read that comes back short before the end of the file (a FUSE mount with direct I/O) is followed by another', async () => {
    const whole = Buffer.concat([data, data]).subarray(0, 1_000_000);
    fs.writeFileSync(join(root, 'direct.bin'), whole);
    for (const provider of [p, new LocalProvider(root, { syncMetadata: false })]) {
      const patched = fs as unknown as Record<string, (...a: unknown[]) => unknown>;
      const saved = { read: patched.read!, readSync: patched.readSync! };
      // At most 128 KiB a call, as such a mount may answer.
      patched.read = (fd: unknown, buf: unknown, off: unknown, len: unknown, ...rest: unknown[]) => saved.read(fd, buf, off, Math.min(len as number, 131_072), ...rest);
      patched.readSync = (fd: unknown, buf: unknown, off: unknown, len: unknown, ...rest: unknown[]) => saved.readSync(fd, buf, off, Math.min(len as number, 131_072), ...rest);
      try {
        expect((await readAllFrom(provider, '/direct.bin', 256 * 1024)).equals(whole)).toBe(true);
      } finally {
        Object.assign(patched, saved);
      }
    }
  });

  it('a small first chunk followed by more lands in order, also after REST', async () => {
    const parts = [data.subarray(0, 100), data.subarray(100, 200_000), data.subarray(200_000, 200_010)];
    await upload(p, '/order.bin', parts);
    expect(fs.readFileSync(join(root, 'order.bin')).equals(data.subarray(0, 200_010))).toBe(true);
    fs.writeFileSync(join(root, 'rest.bin'), Buffer.alloc(50, 0x61));
    await upload(p, '/rest.bin', [Buffer.from('xyz')], { start: 10 });
    expect(fs.readFileSync(join(root, 'rest.bin')).toString()).toBe('a'.repeat(10) + 'xyz');
  });

  it('an upload destroyed after a small first chunk keeps that chunk (REST can resume from it)', async () => {
    const ws = await openWriteStream(p, '/cut.bin');
    ws.on('error', () => undefined);
    await new Promise<void>((resolve) => ws.write(data.subarray(0, 1000), () => resolve()));
    ws.destroy(new Error('client went away'));
    await new Promise((r) => ws.once('close', r));
    expect(fs.readFileSync(join(root, 'cut.bin')).equals(data.subarray(0, 1000))).toBe(true);
  });
});

describe('FIFOs never block the event loop (syncMetadata)', () => {
  it('open() of a FIFO waits in the thread pool for the other end, and uploads to a FIFO fail with EINVAL', async () => {
    const { execFileSync, spawn } = await import('node:child_process');
    const fifo = join(root, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // Opens the FIFO at both ends after 2 s: an open that blocks this process is freed then, so a regression
    // fails the time checks below instead of hanging the run.
    const helper = spawn('sh', ['-c', 'sleep 2; exec 3<>"$1"; sleep 5', 'sh', fifo], { stdio: 'ignore' });
    try {
      const started = Date.now();
      for (const provider of [p, new LocalProvider(root, { syncMetadata: false })]) {
        await expect(openWriteStream(provider, '/fifo')).rejects.toMatchObject({ code: 'EINVAL' });
        await expect(openWriteStream(provider, '/fifo', { append: true })).rejects.toMatchObject({ code: 'EINVAL' });
        const opening = provider.open('/fifo', 'r');
        // Still running: a timer fires while the open waits for a writer.
        await new Promise((r) => setTimeout(r, 20));
        expect(Date.now() - started).toBeLessThan(1500);
        // ENXIO until the reader's open is under way: retried, bounded.
        let writer = -1;
        for (let i = 0; writer < 0 && i < 100; i++) {
          try {
            writer = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
          } catch {
            await new Promise((r) => setTimeout(r, 10));
          }
        }
        expect(writer).toBeGreaterThanOrEqual(0);
        const handle = await opening;
        fs.closeSync(writer);
        await handle.close();
      }
      expect(Date.now() - started).toBeLessThan(1500);
    } finally {
      helper.kill();
    }
  });
});

describe('refused ranges', () => {
  it('a start past the end rejects and leaves no descriptor open, in both modes', async () => {
    fs.writeFileSync(join(root, 'ten.bin'), '0123456789');
    for (const provider of [p, new LocalProvider(root, { syncMetadata: false })]) {
      const before = fs.readdirSync('/proc/self/fd').length;
      for (let i = 0; i < 20; i++) await expect(openReadStream(provider, '/ten.bin', { start: 10, end: 9 })).rejects.toMatchObject({ code: 'EINVAL' });
      expect(fs.readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(before + 1);
    }
  });
});

describe('big folders (syncMetadata)', () => {
  it('list() lets other work run while it reads a folder of 5,000 entries, and returns them all', async () => {
    const dir = join(root, 'many');
    fs.mkdirSync(dir);
    for (let i = 0; i < 5000; i++) fs.writeFileSync(join(dir, `e${i}`), '');
    let listed = false;
    let ranDuring = 0;
    const tick = (): void => {
      if (listed) return;
      ranDuring++;
      setImmediate(tick);
    };
    setImmediate(tick);
    const entries = await p.list('/many');
    listed = true;
    expect(entries).toHaveLength(5000);
    expect(new Set(entries.map((e) => e.name)).size).toBe(5000);
    expect(entries.every((e) => e.stats.isFile())).toBe(true);
    // One yield per 1,000 entries at least.
    expect(ranDuring).toBeGreaterThanOrEqual(4);
  });
});

describe('uploads over an existing file', () => {
  type Patched = Record<string, (...a: unknown[]) => unknown>;

  /** Runs `fn` with `fs.ftruncate` (thread pool) and `fs.ftruncateSync` (event loop) recorded, or replaced by `pool`. */
  async function truncations(fn: () => Promise<void>, pool?: (real: (...a: unknown[]) => unknown, args: unknown[]) => unknown): Promise<string[]> {
    const calls: string[] = [];
    const patched = fs as unknown as Patched;
    const { ftruncate, ftruncateSync } = patched;
    patched.ftruncate = (...args: unknown[]) => (calls.push('pool'), pool ? pool(ftruncate!, args) : ftruncate!(...args));
    patched.ftruncateSync = (...args: unknown[]) => (calls.push('event loop'), ftruncateSync!(...args));
    try {
      await fn();
    } finally {
      Object.assign(patched, { ftruncate, ftruncateSync });
    }
    return calls;
  }

  it('are emptied in the thread pool, never on the event loop, before the first byte lands, in both modes', async () => {
    for (const provider of [p, new LocalProvider(root, { syncMetadata: false })]) {
      fs.writeFileSync(join(root, 'old.bin'), data);
      // A small first chunk (held in sync mode), then more: all of it after the truncation, in order.
      const calls = await truncations(() => upload(provider, '/old.bin', [Buffer.from('new'), Buffer.from(' content')]));
      expect(calls).toEqual(['pool']);
      expect(fs.readFileSync(join(root, 'old.bin')).toString()).toBe('new content');
    }
  });

  it('an empty upload leaves the old file empty; a new file or APPE is not truncated at all', async () => {
    fs.writeFileSync(join(root, 'old.bin'), data);
    expect(await truncations(() => upload(p, '/old.bin', []))).toEqual(['pool']);
    expect(fs.statSync(join(root, 'old.bin')).size).toBe(0);
    fs.rmSync(join(root, 'fresh.bin'), { force: true });
    expect(await truncations(() => upload(p, '/fresh.bin', [Buffer.from('x')]))).toEqual([]);
    fs.writeFileSync(join(root, 'appe.bin'), 'abc');
    const appended = await truncations(async () => {
      const ws = await openWriteStream(p, '/appe.bin', { append: true });
      await new Promise<void>((resolve, reject) => (ws.on('error', reject), ws.end(Buffer.from('def'), () => resolve())));
    });
    expect(appended).toEqual([]);
    expect(fs.readFileSync(join(root, 'appe.bin')).toString()).toBe('abcdef');
  });

  it('a truncation that fails fails the open with its error, leaves the old file and closes the descriptor', async () => {
    // Above 64 KiB: a smaller file is overwritten in place, not emptied first (local-write-calls.test.ts).
    fs.writeFileSync(join(root, 'eio.bin'), data);
    const before = fs.readdirSync('/proc/self/fd').length;
    let failure: unknown;
    await truncations(
      async () => {
        await openWriteStream(p, '/eio.bin').catch((e: unknown) => (failure = e));
      },
      (_real, args) => setImmediate(() => (args.at(-1) as (e: Error) => void)(Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO' }))),
    );
    expect((failure as NodeJS.ErrnoException | undefined)?.code).toBe('EIO');
    expect(fs.readFileSync(join(root, 'eio.bin')).equals(data)).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(fs.readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(before);
  });

  it('hand out the stream only once the file is empty, however long the truncation takes', async () => {
    // An upload that could be aborted, or a quota recounted, before a late truncation landed would have that
    // truncation wipe whatever came next (an APPE, a REST + STOR).
    for (const provider of [p, new LocalProvider(root, { syncMetadata: false })]) {
      fs.writeFileSync(join(root, 'slow.bin'), data);
      let sizeWhenOpened = -1;
      await truncations(
        async () => {
          const ws = await openWriteStream(provider, '/slow.bin');
          sizeWhenOpened = fs.statSync(join(root, 'slow.bin')).size;
          ws.destroy();
          await new Promise((r) => ws.once('close', r));
        },
        (real, args) => setTimeout(() => real(...args), 50),
      );
      expect(sizeWhenOpened).toBe(0);
    }
  });
});

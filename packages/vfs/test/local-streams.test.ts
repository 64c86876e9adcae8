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
  const stream = await openReadStream(p, path, options);
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

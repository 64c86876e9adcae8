import type { Socket } from 'node:net';
import { constants as zlibConstants, deflateSync } from 'node:zlib';
import { MemoryProvider } from '@ftp/vfs';
import { afterEach, describe, expect, it } from 'vitest';
import { FtpServer, RateLimiter, type ServerSettings } from '../src/index.js';
import { RawClient, USER, PASSWORD, pattern, writeAndClose } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function session(settings: Partial<ServerSettings> = {}, limits?: { download?: RateLimiter; upload?: RateLimiter }, fs = new MemoryProvider()) {
  const server = new FtpServer({
    settings: { failedLoginDelay: 0, ...settings },
    driver: { authenticate: (_s, u, p) => (u === USER && p === PASSWORD ? { fs, ...(limits ? { rateLimits: limits } : {}) } : null) },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close(), () => server.close());
  await c.login();
  expect((await c.cmd('TYPE I')).code).toBe(200);
  return { c, fs };
}

/** Reads a data connection to its end, noting the longest time with nothing arriving (from the first byte). */
function readTimed(socket: Socket): Promise<{ data: Buffer; longestGap: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let last = 0;
    let longestGap = 0;
    socket.on('data', (chunk: Buffer) => {
      const now = Date.now();
      if (last !== 0) longestGap = Math.max(longestGap, now - last);
      last = now;
      chunks.push(chunk);
    });
    socket.on('end', () => resolve({ data: Buffer.concat(chunks), longestGap }));
    socket.on('error', reject);
  });
}

/** Writes `data` in small pieces as the server takes them, noting the longest wait for the socket to drain. */
async function writeTimed(socket: Socket, data: Buffer): Promise<number> {
  let longestGap = 0;
  for (let offset = 0; offset < data.length; offset += 1024) {
    const t0 = Date.now();
    if (!socket.write(data.subarray(offset, offset + 1024))) await new Promise((r) => socket.once('drain', r));
    longestGap = Math.max(longestGap, Date.now() - t0);
  }
  await writeAndClose(socket, Buffer.alloc(0));
  return longestGap;
}

/** Data that breaks mid-stream: 40 bytes flipped in the middle of a deflate stream (about 3 KB for the tests' text). */
function corruptDeflate(data: Buffer): Buffer {
  // Bytes flipped mid-stream: zlib refuses them (Z_DATA_ERROR) or decodes garbage from them on and finds the stream
  // unfinished at the end (Z_BUF_ERROR), like a stream the connection ended inside; which, depends on zlib's output.
  const bad = Buffer.from(deflateSync(data));
  for (let i = bad.length >> 1; i < (bad.length >> 1) + 40; i++) bad[i]! ^= 0x55;
  return bad;
}

/** All of `data`, flushed, then a block of the reserved type: zlib hands on every byte of `data`, then refuses it. */
function refusedDeflate(data: Buffer): Buffer {
  return Buffer.concat([deflateSync(data, { finishFlush: zlibConstants.Z_SYNC_FLUSH }), Buffer.from([0x07, 0, 0, 0])]);
}

// 25,000 B/s with a stall timeout of 1 s: a 64 KiB burst followed by a 64 KiB slice (2.6 s with nothing moving) was
// taken for a stall. 128 KiB takes about 5 s here.
const RATE = 25_000;
const SIZE = 128 * 1024;

describe('slow bandwidth limits', () => {
  it('a download at a rate below 64 KiB per stall timeout completes (226) with bytes arriving steadily', { timeout: 20000 }, async () => {
    const { c } = await session({ downloadRate: RATE, dataStallTimeout: 1 });
    const data = pattern(SIZE, 1);
    await c.store('slow', data);
    const socket = await c.passive();
    const read = readTimed(socket);
    expect((await c.cmd('RETR slow')).code).toBe(150);
    const { data: got, longestGap } = await read;
    expect((await c.next(10000)).code).toBe(226);
    expect(got.equals(data)).toBe(true);
    expect(longestGap).toBeLessThan(1000);
  });

  it('an upload at a rate below 64 KiB per stall timeout completes (226), taken steadily', { timeout: 20000 }, async () => {
    const { c, fs } = await session({ uploadRate: RATE, dataStallTimeout: 1 });
    const data = pattern(SIZE, 2);
    const socket = await c.passive();
    expect((await c.cmd('STOR slow')).code).toBe(150);
    // The kernel's socket buffers take some of it at once; what is left waits for the server.
    const longestGap = await writeTimed(socket, data);
    expect((await c.next(10000)).code).toBe(226);
    expect(Buffer.from(await fs.readFile('/slow')).equals(data)).toBe(true);
    expect(longestGap).toBeLessThan(1000);
  });
});

describe('rate changes while a transfer runs', () => {
  it('a limiter waiting at 1,000 B/s follows a raise at once (it would otherwise wait about 65 s)', async () => {
    const limiter = new RateLimiter(1000);
    await limiter.take(64 * 1024);
    const t0 = Date.now();
    setTimeout(() => (limiter.rate = 100_000_000), 300);
    await limiter.take(64 * 1024);
    expect(Date.now() - t0).toBeLessThan(1500);
    const unlimited = new RateLimiter(1000);
    await unlimited.take(64 * 1024);
    const t1 = Date.now();
    setTimeout(() => (unlimited.rate = 0), 300);
    await unlimited.take(64 * 1024);
    expect(Date.now() - t1).toBeLessThan(1500);
  });

  it('a download at 1,000 B/s finishes promptly once its user limiter is raised to unlimited', { timeout: 20000 }, async () => {
    const download = new RateLimiter(1000);
    const { c, fs } = await session({}, { download });
    const data = pattern(200 * 1024, 3);
    await fs.writeFile('/big', data);
    const socket = await c.passive();
    const read = readTimed(socket);
    expect((await c.cmd('RETR big')).code).toBe(150);
    const t0 = Date.now();
    setTimeout(() => (download.rate = 0), 500);
    expect((await read).data.equals(data)).toBe(true);
    expect((await c.next(10000)).code).toBe(226);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('a user limiter created at 0 and raised during an upload throttles that upload', { timeout: 20000 }, async () => {
    const upload = new RateLimiter(0);
    const { c } = await session({}, { upload });
    const socket = await c.passive();
    expect((await c.cmd('STOR later')).code).toBe(150);
    const t0 = Date.now();
    upload.rate = 50_000;
    setTimeout(() => (upload.rate = 0), 1500);
    await writeAndClose(socket, pattern(400 * 1024, 4));
    expect((await c.next(10000)).code).toBe(226);
    // 400 KB at 50,000 B/s would take 8 s: the limit held until it was lifted at 1.5 s.
    expect(Date.now() - t0).toBeGreaterThan(1200);
  });
});

describe('MODE Z uploads of data that is not one valid deflate stream', () => {
  const text = Buffer.concat([pattern(200_000, 5), Buffer.from('hello world\n'.repeat(60000))]);

  async function modeZ(fs?: MemoryProvider) {
    const s = await session({ modeZ: true }, undefined, fs);
    expect((await s.c.cmd('MODE Z')).code).toBe(200);
    return s;
  }

  async function upload(c: RawClient, command: string, wire: Buffer) {
    const socket = await c.passive();
    expect((await c.cmd(command)).code).toBe(150);
    await writeAndClose(socket, wire);
    return c.next(10000);
  }

  it('a corrupt stream stores nothing, even with partialUploads keep (the default)', async () => {
    const { c, fs } = await modeZ();
    // (zlib may read this corruption as a stream that ends early: see corruptDeflate.)
    expect(await upload(c, 'STOR zk', corruptDeflate(text))).toMatchObject({ code: 426, text: expect.stringMatching(/MODE Z/) });
    expect((await c.cmd('SIZE zk')).code).toBe(550);
    await expect(fs.stat('/zk')).rejects.toThrow();
  });

  it('a corrupt APPE or REST + STOR leaves the file as it was before', async () => {
    const { c, fs } = await modeZ();
    const before = pattern(5000, 6);
    await fs.writeFile('/base', before);
    expect(await upload(c, 'APPE base', corruptDeflate(text))).toMatchObject({ code: 426 });
    expect(Buffer.from(await fs.readFile('/base')).equals(before)).toBe(true);
    expect((await c.cmd('REST 1000')).code).toBe(350);
    expect(await upload(c, 'STOR base', corruptDeflate(text))).toMatchObject({ code: 426 });
    expect(Buffer.from(await fs.readFile('/base')).equals(before.subarray(0, 1000))).toBe(true);
  });

  it('storage that cannot cut the file back keeps it, with the bytes it held before the APPE (not deleted)', async () => {
    // Handles whose truncate fails (EIO), and handles without one: the undo cannot cut, and deleting would lose `before`.
    class UncuttableTruncate extends MemoryProvider {
      override async open(path: string, flags?: string | number, mode?: number) {
        const handle = await super.open(path, flags, mode);
        if (flags === 'r+') handle.truncate = () => Promise.reject(Object.assign(new Error('EIO'), { code: 'EIO' }));
        return handle;
      }
    }
    class NoTruncate extends MemoryProvider {
      override async open(path: string, flags?: string | number, mode?: number) {
        const handle = await super.open(path, flags, mode);
        if (flags === 'r+') Object.defineProperty(handle, 'truncate', { value: undefined });
        return handle;
      }
    }
    for (const fs of [new UncuttableTruncate(), new NoTruncate()]) {
      const { c } = await modeZ(fs);
      const before = pattern(5000, 7);
      await fs.writeFile('/kept', before);
      expect(await upload(c, 'APPE kept', corruptDeflate(text))).toMatchObject({ code: 426 });
      const after = Buffer.from(await fs.readFile('/kept'));
      expect(after.subarray(0, before.length).equals(before)).toBe(true);
      // An APPE that created the file held nothing before it: the file goes, as after a corrupt STOR.
      expect(await upload(c, 'APPE created', corruptDeflate(text))).toMatchObject({ code: 426 });
      await expect(fs.stat('/created')).rejects.toThrow();
    }
  });

  it('a stream the connection ends inside is said to be cut, and is not kept either: corrupt data ends that way too', async () => {
    const { c, fs } = await modeZ();
    // Flushed but unfinished: what a client killed midway leaves on the wire before its FIN.
    const cut = deflateSync(text, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    expect(await upload(c, 'STOR cut', cut)).toMatchObject({ code: 426, text: expect.stringMatching(/before the end of the MODE Z .*not kept/) });
    await expect(fs.stat('/cut')).rejects.toThrow();
    // Corrupt data: zlib refuses it, or (as often) decodes garbage from the fault on and finds the stream unfinished.
    expect(await upload(c, 'STOR flipped', corruptDeflate(text))).toMatchObject({ code: 426, text: expect.stringMatching(/MODE Z/) });
    await expect(fs.stat('/flipped')).rejects.toThrow();
    // An APPE is cut back to what the file held, not left with what inflated.
    const before = pattern(5000, 8);
    await fs.writeFile('/appended', before);
    expect(await upload(c, 'APPE appended', corruptDeflate(text))).toMatchObject({ code: 426 });
    expect(Buffer.from(await fs.readFile('/appended')).equals(before)).toBe(true);
  });

  it('data zlib refuses after inflating all that came before it is removed too (Z_DATA_ERROR)', async () => {
    const { c, fs } = await modeZ();
    expect(await upload(c, 'STOR refused', refusedDeflate(text))).toMatchObject({ code: 426, text: expect.stringMatching(/not valid MODE Z/) });
    await expect(fs.stat('/refused')).rejects.toThrow();
  });

  it('two concatenated streams, or a stream followed by junk, fail with 426 and store nothing', async () => {
    const { c, fs } = await modeZ();
    const two = Buffer.concat([deflateSync(Buffer.from('first\n')), deflateSync(Buffer.from('second\n'))]);
    expect(await upload(c, 'STOR two', two)).toMatchObject({ code: 426, text: expect.stringMatching(/not valid MODE Z/) });
    await expect(fs.stat('/two')).rejects.toThrow();
    const junk = Buffer.concat([deflateSync(text), Buffer.from('junk after the end')]);
    expect(await upload(c, 'STOR junk', junk)).toMatchObject({ code: 426, text: expect.stringMatching(/not valid MODE Z/) });
    await expect(fs.stat('/junk')).rejects.toThrow();
    // A valid stream still works.
    expect(await upload(c, 'STOR good', deflateSync(text))).toMatchObject({ code: 226 });
    expect(Buffer.from(await fs.readFile('/good')).equals(text)).toBe(true);
  });
});

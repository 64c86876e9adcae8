// The buffers uploads are read into (receive-pooled.ts) are shared with every other transfer: these check that none
// is reused while storage may still write from it, whatever ends the upload, that the pool's count of big buffers
// comes back, that idle uploads hold none of them, and that a busy upload recycles its own.
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as netServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { formatHostPort } from '@ftp/protocol';
import { LocalProvider, MemoryProvider, type UploadStream } from '@ftp/vfs';
import { afterEach, expect, it } from 'vitest';
import { BIG_CHUNK_SIZE, MAX_BIG_IN_USE, releaseBuffer, takeBuffer } from '../src/data/buffer-pool.js';
import { receiveFromSocket, Transfer } from '../src/data/transfer.js';
import { RawClient, startServer, writeAndClose, pattern, sha } from './helpers.js';
import { makeCertificate } from './tls-fixture.js';

const certificate = makeCertificate();

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How many big buffers the pool would still hand out. */
function bigAvailable(): number {
  const got: Buffer[] = [];
  for (let i = 0; i < MAX_BIG_IN_USE + 1; i++) {
    const b = takeBuffer(true);
    got.push(b);
    if (b.length !== BIG_CHUNK_SIZE) break;
  }
  const n = got.filter((b) => b.length === BIG_CHUNK_SIZE).length;
  for (const b of got) releaseBuffer(b);
  return n;
}

const corruptions: string[] = [];
/** Storage that claims releasesChunks, keeps each chunk "in flight" for `delay` ms (even past destroy), checks it is untouched. */
class CheckingUpload extends Writable implements UploadStream {
  readonly releasesChunks = true;
  readonly stored: Buffer[] = [];
  written = 0;
  constructor(
    private readonly delay: number,
    private readonly failAfter = Infinity,
    private readonly neverCallBack = false,
  ) {
    super();
  }
  override _write(chunk: Buffer, _e: BufferEncoding, cb: (err?: Error | null) => void): void {
    const before = sha(chunk);
    const copy = Buffer.from(chunk);
    setTimeout(() => {
      if (sha(chunk) !== before) corruptions.push(`chunk of ${chunk.length} changed while in flight`);
      if (this.neverCallBack) return;
      this.written += chunk.length;
      if (this.written > this.failAfter) return cb(Object.assign(new Error('ENOSPC: no space left'), { code: 'ENOSPC' }));
      this.stored.push(copy);
      cb();
    }, this.delay);
  }
}


async function setup(make: () => CheckingUpload, settings = {}) {
  const fs = new MemoryProvider();
  const uploads: CheckingUpload[] = [];
  Object.assign(fs, {
    createWriteStream: async () => {
      const u = make();
      uploads.push(u);
      return u;
    },
  });
  const ctx = await startServer({ fs, settings: { dataStallTimeout: 2, ...settings } });
  cleanups.push(() => ctx.close());
  const c = await RawClient.connect(ctx.port);
  cleanups.push(() => c.close());
  await c.login();
  await c.cmd('TYPE I');
  return { ctx, c, uploads };
}

/** Churns the pool (as other transfers would) while storage still holds chunks. */
async function churn(ms: number) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const bufs = Array.from({ length: 8 }, () => takeBuffer(true));
    for (const b of bufs) b.fill(0xee);
    for (const b of bufs) releaseBuffer(b);
    await sleep(1);
  }
}

for (const how of ['ABOR', 'reset', 'ENOSPC', 'stall'] as const) {
  it(`${how} mid-upload: no buffer reused while in flight, pool not leaked`, async () => {
    corruptions.length = 0;
    const before = bigAvailable();
    const { c } = await setup(() => new CheckingUpload(150, how === 'ENOSPC' ? 3_000_000 : Infinity));
    const data = pattern(12_000_000, 3);
    const socket = await c.passive();
    socket.on('error', () => {});
    c.send('STOR x.bin');
    expect((await c.next()).code).toBe(150);
    socket.write(data.subarray(0, 6_000_000));
    await sleep(200);
    if (how === 'ABOR') c.send('ABOR');
    if (how === 'reset') socket.resetAndDestroy();
    const churning = churn(600);
    const r = await c.next(8000);
    expect([426, 451, 452, 552]).toContain(r.code);
    await churning;
    await sleep(400);
    socket.destroy();
    expect(corruptions).toEqual([]);
    expect(bigAvailable()).toBe(before);
  }, 20_000);
}


class Recording extends Writable implements UploadStream {
  readonly releasesChunks = true;
  readonly memory = new Set<ArrayBufferLike>();
  readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _e: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.memory.add(chunk.buffer);
    this.chunks.push(Buffer.from(chunk));
    setImmediate(cb);
  }
}

it('active mode (PORT): fast path engages and bytes are intact', async () => {
  const fs = new MemoryProvider();
  const ups: Recording[] = [];
  Object.assign(fs, { createWriteStream: async () => { const u = new Recording(); ups.push(u); return u; } });
  const ctx = await startServer({ fs });
  cleanups.push(() => ctx.close());
  const c = await RawClient.connect(ctx.port);
  cleanups.push(() => c.close());
  await c.login();
  await c.cmd('TYPE I');
  const srv = netServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => srv.close());
  const accepted = once(srv, 'connection').then(([s]) => s as Socket);
  expect((await c.cmd(`PORT ${formatHostPort('127.0.0.1', (srv.address() as { port: number }).port)}`)).code).toBe(200);
  c.send('STOR a.bin');
  expect((await c.next()).code).toBe(150);
  const s = await accepted;
  const data = pattern(9_000_000, 4);
  for (let off = 0; off < data.length; off += 500_000) {
    await new Promise<void>((r) => s.write(data.subarray(off, off + 500_000), () => r()));
    await sleep(1);
  }
  await new Promise<void>((r) => s.end(() => r()));
  expect((await c.next()).code).toBe(226);
  expect(sha(Buffer.concat(ups[0]!.chunks))).toBe(sha(data));
  // Its own first buffer, then a few recycled pool buffers (a fresh buffer per read would be ~100).
  expect(ups[0]!.memory.size).toBeLessThanOrEqual(6);
});

async function local(syncMetadata: boolean) {
  const root = await mkdtemp(join(tmpdir(), 'rv-'));
  const ctx = await startServer({ fs: new LocalProvider(root, { syncMetadata }), settings: { dataStallTimeout: 5 } });
  cleanups.push(() => rm(root, { recursive: true, force: true }), () => ctx.close());
  const c = await RawClient.connect(ctx.port);
  cleanups.push(() => c.close());
  await c.login();
  await c.cmd('TYPE I');
  return { root, c };
}
async function stor(c: RawClient, cmd: string, data: Buffer, early = false) {
  const s = await c.passive();
  if (early) { await new Promise<void>((r) => s.end(data, () => r())); await sleep(50); }
  c.send(cmd);
  expect((await c.next()).code).toBe(150);
  if (!early) await writeAndClose(s, data);
  const r = await c.next();
  expect(r.code).toBe(226);
}
for (const sync of [true, false]) {
  it(`REST+STOR, APPE, empty, tiny, early (sync ${sync})`, async () => {
    const before = bigAvailable();
    const { root, c } = await local(sync);
    const a = pattern(3_000_000, 1);
    await stor(c, 'STOR f', a);
    expect((await c.cmd('REST 1000000')).code).toBe(350);
    const b = pattern(500_000, 2);
    await stor(c, 'STOR f', b);
    expect(sha(await readFile(join(root, 'f')))).toBe(sha(Buffer.concat([a.subarray(0, 1_000_000), b])));
    const d = pattern(10, 3);
    await stor(c, 'APPE f', d);
    expect(sha(await readFile(join(root, 'f')))).toBe(sha(Buffer.concat([a.subarray(0, 1_000_000), b, d])));
    await stor(c, 'STOR e', Buffer.alloc(0));
    expect((await readFile(join(root, 'e'))).length).toBe(0);
    await stor(c, 'STOR e2', Buffer.alloc(0), true);
    expect((await readFile(join(root, 'e2'))).length).toBe(0);
    await stor(c, 'STOR t', Buffer.from('x'), true);
    expect((await readFile(join(root, 't'))).toString()).toBe('x');
    await stor(c, 'STOR t2', pattern(100_000, 5), true);
    expect(sha(await readFile(join(root, 't2')))).toBe(sha(pattern(100_000, 5)));
    await sleep(100);
    expect(bigAvailable()).toBe(before);
  });
}

for (const sync of [true, false]) {
  it(`stress: uploads with random ABOR/reset, downloads alongside (sync ${sync})`, async () => {
    const before = bigAvailable();
    const root = await mkdtemp(join(tmpdir(), 'rvs-'));
    const ctx = await startServer({ fs: new LocalProvider(root, { syncMetadata: sync }), settings: { dataStallTimeout: 5 } });
    cleanups.push(() => rm(root, { recursive: true, force: true }), () => ctx.close());
    const big = pattern(20_000_000, 77);
    await writeFile(join(root, 'big'), big);
    const deadline = Date.now() + 4_000;
    const problems: string[] = [];
    const worker = async (w: number) => {
      const c = await RawClient.connect(ctx.port);
      cleanups.push(() => c.close());
      await c.login();
      await c.cmd('TYPE I');
      let round = 0;
      while (Date.now() < deadline) {
        round++;
        if (w % 4 === 3) {
          const s = await c.passive();
          const chunks: Buffer[] = [];
          s.on('data', (b: Buffer) => chunks.push(b));
          const closed = once(s, 'close');
          c.send('RETR big');
          const r1 = await c.next(10000);
          await closed;
          const r2 = await c.next(10000);
          if (r1.code !== 150 || r2.code !== 226 || sha(Buffer.concat(chunks)) !== sha(big)) problems.push(`download ${w}/${round} ${r1.code} ${r2.code}`);
          continue;
        }
        const size = [0, 1, 70_000, 1_500_000, 6_000_000][(w + round) % 5]!;
        const data = pattern(size, w * 1000 + round);
        const name = `u${w}`;
        const s = await c.passive();
        s.on('error', () => {});
        const cut = round % 3 === 0 && size > 1_000_000 ? (round % 2 ? 'ABOR' : 'reset') : null;
        c.send(`STOR ${name}`);
        const r1 = await c.next(10000);
        if (!cut) {
          await writeAndClose(s, data);
          const r2 = await c.next(10000);
          const got = await readFile(join(root, name));
          if (r1.code !== 150 || r2.code !== 226 || sha(got) !== sha(data)) problems.push(`upload ${w}/${round} size ${size} ${r2.code} got ${got.length}`);
        } else {
          s.write(data.subarray(0, size / 2));
          await sleep(Math.floor(Math.random() * 30));
          if (cut === 'ABOR') c.send('ABOR');
          else s.resetAndDestroy();
          const r2 = await c.next(10000);
          if (cut === 'ABOR') await c.next(10000);
          s.destroy();
          const got = await readFile(join(root, name));
          if (![426, 451].includes(r2.code) || sha(got) !== sha(data.subarray(0, got.length))) problems.push(`cut ${w}/${round} ${r2.code} got ${got.length}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 10 }, (_, w) => worker(w)));
    await sleep(300);
    expect(problems).toEqual([]);
    expect(bigAvailable()).toBe(before);
  }, 60_000);
}

it('idle uploads (STOR sent, data connection open, nothing sent) do not take the big transfer buffers', async () => {
  const before = bigAvailable();
  expect(before).toBe(MAX_BIG_IN_USE);
  const root = await mkdtemp(join(tmpdir(), 'rvi-'));
  const ctx = await startServer({ fs: new LocalProvider(root), settings: { dataStallTimeout: 0 } });
  cleanups.push(() => rm(root, { recursive: true, force: true }), () => ctx.close());
  const sockets: Socket[] = [];
  await Promise.all(Array.from({ length: 70 }, async (_, i) => {
    const c = await RawClient.connect(ctx.port);
    cleanups.push(() => c.close());
    await c.login();
    await c.cmd('TYPE I');
    const s = await c.passive();
    sockets.push(s);
    c.send(`STOR idle${i}`);
    expect((await c.next()).code).toBe(150);
  }));
  await sleep(300);
  const during = bigAvailable();
  for (const s of sockets) s.destroy();
  await sleep(300);
  // A download of a big file started meanwhile would have got 256 KiB buffers instead of 1 MiB ones.
  expect(during).toBe(before);
  expect(bigAvailable()).toBe(before);
}, 30_000);

it('concurrent uploads recycle their own big buffers instead of allocating new ones', async () => {
  const root = await mkdtemp(join(tmpdir(), 'rva-'));
  const ctx = await startServer({ fs: new LocalProvider(root), settings: { dataStallTimeout: 5 } });
  cleanups.push(() => rm(root, { recursive: true, force: true }), () => ctx.close());
  const orig = Buffer.allocUnsafeSlow;
  let fresh = 0;
  Buffer.allocUnsafeSlow = ((n: number) => { if (n === BIG_CHUNK_SIZE) fresh++; return orig(n); }) as typeof Buffer.allocUnsafeSlow;
  try {
    for (const n of [1, 2, 4, 8]) {
      fresh = 0;
      const data = pattern(32_000_000, 1);
      await Promise.all(Array.from({ length: n }, async (_, i) => {
        const c = await RawClient.connect(ctx.port);
        cleanups.push(() => c.close());
        await c.login();
        await c.cmd('TYPE I');
        const s = await c.passive();
        c.send(`STOR c${i}`);
        expect((await c.next()).code).toBe(150);
        await writeAndClose(s, data);
        expect((await c.next(20000)).code).toBe(226);
      }));
      // At most a read buffer, two waiting on storage and two spares each; ~15 per upload without the spares.
      expect(fresh).toBeLessThanOrEqual(5 * n);
    }
  } finally {
    Buffer.allocUnsafeSlow = orig;
  }
}, 60_000);

it('storage that never calls back: ABOR still ends the upload (no stall timer)', async () => {
  const before = bigAvailable();
  const { c } = await setup(() => new CheckingUpload(5, Infinity, true), { dataStallTimeout: 0 });
  const socket = await c.passive();
  socket.on('error', () => {});
  c.send('STOR n.bin');
  expect((await c.next()).code).toBe(150);
  socket.write(pattern(8_000_000, 1));
  await sleep(300);
  c.send('ABOR');
  expect((await c.next(3000)).code).toBe(426);
  expect((await c.next(3000)).code).toBe(226);
  socket.destroy();
  await sleep(100);
  expect(bigAvailable()).toBe(before);
});

/** Storage that takes `limit` bytes, then fails every write at once, inside `_write` (as SQLite's full disk does). */
class FailsAtOnce extends Writable implements UploadStream {
  readonly releasesChunks = true;
  written = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _write(chunk: Buffer, _e: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.written += chunk.length;
    if (this.written > this.limit) return cb(Object.assign(new Error('ENOSPC: no space left'), { code: 'ENOSPC' }));
    cb();
  }
}

it('TLS uploads the storage fails at once: the records decrypted after the failure take no buffer (pool not leaked)', async () => {
  const before = bigAvailable();
  const { key, cert } = certificate;
  let round = 0;
  const server = createTlsServer({ key, cert }, (socket) => {
    const t = new Transfer('upload', '/x');
    t.attach(socket, 0);
    // A different failing point each round: the late records fall at different places of the buffers.
    const upload = new FailsAtOnce(1_010_000 + (round++ % 7) * 3000);
    void receiveFromSocket(t, upload, { ascii: false, deflateLevel: null, limiters: [] } as never, { waitForStorage: false })
      .catch(() => undefined)
      .finally(() => setTimeout(() => socket.destroy(), 20));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as { port: number };
  const chunk = Buffer.alloc(10_000, 7);
  for (let i = 0; i < 21; i++) {
    const c = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    c.on('error', () => undefined);
    const closed = new Promise((resolve) => c.once('close', resolve));
    await Promise.race([new Promise((resolve) => c.once('secureConnect', resolve)), closed]);
    for (let n = 0; n < 300 && !c.destroyed; n++) if (!c.write(chunk)) await Promise.race([new Promise((resolve) => c.once('drain', resolve)), closed]);
    await closed;
  }
  await sleep(300);
  expect(bigAvailable()).toBe(before);
}, 60_000);

/** Fast storage that records the size of each write it gets (and copies the bytes: the chunks are reused). */
class CountingUpload extends Writable implements UploadStream {
  readonly releasesChunks = true;
  readonly sizes: number[] = [];
  readonly stored: Buffer[] = [];
  override _write(chunk: Buffer, _e: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.sizes.push(chunk.length);
    this.stored.push(Buffer.from(chunk));
    // Done before the next socket read, as a fast disk's write through the thread pool is.
    cb();
  }
}

it('a TLS upload (16 KiB records) reaches fast storage in writes of about 256 KiB, not one per record', async () => {
  const { key, cert } = certificate;
  const upload = new CountingUpload();
  let stored!: Promise<void>;
  const server = createTlsServer({ key, cert }, (socket) => {
    const t = new Transfer('upload', '/x');
    t.attach(socket, 0);
    stored = receiveFromSocket(t, upload, { ascii: false, deflateLevel: null, limiters: [] } as never, { waitForStorage: false });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as { port: number };
  const data = pattern(4 * 1024 * 1024 + 777, 21);
  const c = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false });
  c.on('error', () => undefined);
  await once(c, 'secureConnect');
  // Written in pieces with pauses, as a client's writes come: the server reads each record as it arrives.
  for (let at = 0; at < data.length; at += 64 * 1024) {
    c.write(data.subarray(at, at + 64 * 1024));
    if (at % (512 * 1024) === 0) await sleep(2);
  }
  c.end();
  await stored;
  expect(sha(Buffer.concat(upload.stored))).toBe(sha(data));
  // A write per 16 KiB record would be 257; about one per 256 KiB is 17 (a few more where a buffer ends).
  expect(upload.sizes.length).toBeLessThanOrEqual(32);
  c.destroy();
});

// Plain uploads to storage that lets chunk memory be reused (`releasesChunks`, the local-disk provider's) are read
// straight into the shared transfer buffers: these check every byte lands, in order, whatever the timing, and that
// a buffer is never reused while storage may still write from it.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { Client } from 'basic-ftp';
import { LocalProvider, MemoryProvider, type UploadStream } from '@ftp/vfs';
import { afterEach, expect, it } from 'vitest';
import { pooledReadsAvailable } from '../src/data/pooled-reads.js';
import { PASSWORD, RawClient, startServer, USER, writeAndClose, pattern, sha } from './helpers.js';
import { makeCertificate } from './tls-fixture.js';

const certificate = makeCertificate();

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});



async function localServer(syncMetadata: boolean) {
  const root = await mkdtemp(join(tmpdir(), 'local-receive-'));
  const ctx = await startServer({ fs: new LocalProvider(root, { syncMetadata }), settings: { dataStallTimeout: 5 } });
  cleanups.push(() => rm(root, { recursive: true, force: true }), () => ctx.close());
  return { ...ctx, root };
}

const client = (port: number): Promise<RawClient> => RawClient.binarySession(port, cleanups);

const upload = (c: RawClient, name: string, data: Buffer): Promise<void> => c.store(name, data);
const download = (c: RawClient, name: string): Promise<Buffer> => c.retrieve(`RETR ${name}`);

it('this Node lets uploads read into reused buffers (else they still work, with a fresh buffer per read)', () => {
  // Fails loudly when a Node upgrade drops the socket fields the fast path sets: uploads would cost ~2x the CPU.
  expect(pooledReadsAvailable()).toBe(true);
});

for (const syncMetadata of [true, false]) {
  it(`parallel uploads and downloads each keep their own bytes (syncMetadata: ${syncMetadata})`, async () => {
    const ctx = await localServer(syncMetadata);
    const sizes = [0, 1, 16 * 1024, 65_536, 65_537, 1_048_576, 1_048_577, 3_333_333, 9_000_001];
    const files = sizes.map((size, i) => ({ name: `u${i}.bin`, data: pattern(size, i + 1) }));
    // Downloads running at the same time take buffers from the same pool.
    await writeFile(join(ctx.root, 'down.bin'), pattern(5_000_000, 99));
    await Promise.all([
      ...files.map(async ({ name, data }) => {
        const c = await client(ctx.port);
        await upload(c, name, data);
        expect(sha(await readFile(join(ctx.root, name)))).toBe(sha(data));
      }),
      ...[0, 1].map(async () => {
        const c = await client(ctx.port);
        for (let round = 0; round < 3; round++) expect(sha(await download(c, 'down.bin'))).toBe(sha(pattern(5_000_000, 99)));
      }),
    ]);
    // Again on the same connections' pool, now warm: reused buffers must not carry bytes of earlier uploads.
    const c = await client(ctx.port);
    for (const { name, data } of files.slice().reverse()) {
      await upload(c, name, data);
      expect(sha(await readFile(join(ctx.root, name)))).toBe(sha(data));
    }
  }, 60_000);
}

it('bytes the client sent before STOR come first in the file', async () => {
  const ctx = await localServer(true);
  const c = await client(ctx.port);
  const data = pattern(2_500_000, 5);
  const socket = await c.passive();
  // The server reads these before the transfer starts: they wait in the socket's own buffer.
  await new Promise<void>((resolve) => socket.write(data.subarray(0, 40_000), () => resolve()));
  await new Promise((r) => setTimeout(r, 100));
  c.send('STOR early.bin');
  expect((await c.next()).code).toBe(150);
  await writeAndClose(socket, data.subarray(40_000));
  expect((await c.next()).code).toBe(226);
  expect(sha(await readFile(join(ctx.root, 'early.bin')))).toBe(sha(data));
});

it('an upload that ends before STOR is stored whole', async () => {
  const ctx = await localServer(true);
  const c = await client(ctx.port);
  const data = pattern(30_000, 6);
  const socket = await c.passive();
  await writeAndClose(socket, data);
  await new Promise((r) => setTimeout(r, 100));
  c.send('STOR before.bin');
  expect((await c.next()).code).toBe(150);
  expect((await c.next()).code).toBe(226);
  expect(sha(await readFile(join(ctx.root, 'before.bin')))).toBe(sha(data));
});

it('an aborted upload keeps a prefix of what was sent, and the next uploads are intact', async () => {
  const ctx = await localServer(true);
  const c = await client(ctx.port);
  const data = pattern(8_000_000, 7);
  const socket = await c.passive();
  socket.on('error', () => {});
  c.send('STOR cut.bin');
  expect((await c.next()).code).toBe(150);
  await new Promise<void>((resolve) => socket.write(data.subarray(0, 3_000_000), () => resolve()));
  await new Promise((r) => setTimeout(r, 50));
  socket.resetAndDestroy();
  expect([426, 451]).toContain((await c.next()).code);
  const kept = await readFile(join(ctx.root, 'cut.bin'));
  expect(kept.length).toBeLessThanOrEqual(3_000_000);
  expect(sha(kept)).toBe(sha(data.subarray(0, kept.length)));
  for (let i = 0; i < 3; i++) {
    const next = pattern(2_000_000 + i, 8 + i);
    await upload(c, `after${i}.bin`, next);
    expect(sha(await readFile(join(ctx.root, `after${i}.bin`)))).toBe(sha(next));
  }
});

for (const syncMetadata of [true, false]) {
  it(`ABOR or a reset keeps every byte that arrived, not only what had been handed to the disk (syncMetadata: ${syncMetadata})`, async () => {
    const ctx = await localServer(syncMetadata);
    const c = await client(ctx.port);
    // Less than one write's worth (gathered for 256 KiB), past one, and past the first MiB (the kernel's hand-off).
    for (const [i, size] of [10_000, 100_000, 300_000, 1_300_000].entries()) {
      for (const stop of ['ABOR', 'reset'] as const) {
        const name = `${stop}-${i}.bin`;
        const data = pattern(size, 30 + i);
        const socket = await c.passive();
        socket.on('error', () => {});
        expect((await c.cmd(`STOR ${name}`)).code).toBe(150);
        await new Promise<void>((resolve) => socket.write(data, () => resolve()));
        // Loopback: the bytes are in the server's socket at once; it reads them within a turn or two.
        await new Promise((r) => setTimeout(r, 300));
        if (stop === 'ABOR') {
          c.send('ABOR');
          expect((await c.next()).code).toBe(426);
          expect((await c.next()).code).toBe(226);
        } else {
          socket.resetAndDestroy();
          expect((await c.next()).code).toBe(426);
        }
        const size2 = await c.cmd(`SIZE ${name}`);
        expect(size2.text.trim(), `${name}`).toBe(String(size));
        expect(sha(await readFile(join(ctx.root, name))), name).toBe(sha(data));
      }
    }
  });
}

/** An upload that keeps a copy of each chunk and notes the memory each one came in; `delayMs` per write. */
class RecordingUpload extends Writable implements UploadStream {
  readonly releasesChunks: boolean;
  readonly chunks: Buffer[] = [];
  readonly memory = new Set<ArrayBufferLike>();

  constructor(
    releasesChunks: boolean,
    private readonly delayMs = 0,
  ) {
    super();
    this.releasesChunks = releasesChunks;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.memory.add(chunk.buffer);
    this.chunks.push(Buffer.from(chunk));
    if (this.delayMs > 0) setTimeout(cb, this.delayMs);
    else setImmediate(cb);
  }
}

/** A memory provider whose uploads are {@link RecordingUpload}s. */
function recordingProvider(releasesChunks: boolean, delayMs = 0): { fs: MemoryProvider; uploads: RecordingUpload[] } {
  const fs = new MemoryProvider();
  const uploads: RecordingUpload[] = [];
  Object.assign(fs, {
    createWriteStream: async () => {
      const u = new RecordingUpload(releasesChunks, delayMs);
      uploads.push(u);
      return u;
    },
  });
  return { fs, uploads };
}

async function tlsClient(port: number): Promise<Client> {
  const c = new Client(20_000);
  cleanups.push(() => c.close());
  await c.access({ host: '127.0.0.1', port, user: USER, password: PASSWORD, secure: true, secureOptions: { rejectUnauthorized: false } });
  return c;
}

const tlsDriver = (fs: MemoryProvider | LocalProvider) => ({
  authenticate: (_s: unknown, user: string, pass: string) => (user === USER && pass === PASSWORD ? { fs } : null),
  tlsOptions: () => certificate,
});

it('PROT P uploads to local disk keep every byte, in order', async () => {
  const root = await mkdtemp(join(tmpdir(), 'local-receive-tls-'));
  const fs = new LocalProvider(root, { syncMetadata: true });
  const ctx = await startServer({ fs, driver: tlsDriver(fs) });
  cleanups.push(() => rm(root, { recursive: true, force: true }), () => ctx.close());
  const c = await tlsClient(ctx.port);
  for (const [i, size] of [0, 5, 16_384, 16_385, 1_000_000, 6_000_001].entries()) {
    const data = pattern(size, 40 + i);
    await c.uploadFrom(Readable.from([data]), `t${i}.bin`);
    expect(sha(await readFile(join(root, `t${i}.bin`)))).toBe(sha(data));
  }
});

it('PROT P uploads read into reused buffers, and a slow disk gets the records in big writes', async () => {
  const { fs, uploads } = recordingProvider(true, 3);
  const ctx = await startServer({ fs, driver: tlsDriver(fs) });
  cleanups.push(() => ctx.close());
  const c = await tlsClient(ctx.port);
  const data = pattern(8 * 1024 * 1024, 41);
  await c.uploadFrom(Readable.from([data]), 'slow.bin');
  const u = uploads[0]!;
  expect(sha(Buffer.concat(u.chunks))).toBe(sha(data));
  expect(u.memory.size).toBeLessThanOrEqual(4);
  // TLS hands over 16 KiB records; one write per record would be 512 writes.
  expect(u.chunks.length).toBeLessThan(128);
});

for (const [releasesChunks, reuseUploadBuffers] of [
  [true, true],
  [false, true],
  [true, false],
] as const) {
  const reused = releasesChunks && reuseUploadBuffers;
  it(`a ${releasesChunks ? 'releasesChunks' : 'plain'} upload (reuseUploadBuffers: ${reuseUploadBuffers}) gets ${reused ? 'a few reused buffers' : 'a fresh buffer per read'}`, async () => {
    const { fs, uploads } = recordingProvider(releasesChunks);
    const ctx = await startServer({ fs, settings: { reuseUploadBuffers } });
    cleanups.push(() => ctx.close());
    const c = await client(ctx.port);
    const data = pattern(16 * 1024 * 1024, 9);
    const socket = await c.passive();
    c.send('STOR rec.bin');
    expect((await c.next()).code).toBe(150);
    // In pieces with pauses, so that the server reads many times.
    for (let off = 0; off < data.length; off += 1024 * 1024) {
      await new Promise<void>((resolve) => socket.write(data.subarray(off, off + 1024 * 1024), () => resolve()));
      await new Promise((r) => setImmediate(r));
    }
    await writeAndClose(socket, Buffer.alloc(0));
    expect((await c.next()).code).toBe(226);
    const u = uploads[0]!;
    expect(sha(Buffer.concat(u.chunks))).toBe(sha(data));
    expect(u.chunks.length).toBeGreaterThan(16);
    if (reused) expect(u.memory.size).toBeLessThanOrEqual(6);
    else expect(u.memory.size).toBeGreaterThan(16);
  });
}

/**
 * RFC 959 §5.4: once a transfer command has said 150, its final reply is one of 226, 250, 425, 426, 451 (and 551,
 * 552 for uploads). Refusals that can only come after the 150 (an upload's file opens once its data connection is
 * up; the disk fills during it) keep their text and whether they are worth retrying, in that set.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvider, MemoryProvider, quota, vfsError, type UploadStream, type WriteStreamOptions } from '@ftp/vfs';
import { afterPreliminary } from '../src/errors.js';
import { RawClient, startServer, writeAndClose } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('afterPreliminary', () => {
  const text = 'x: why';
  it.each([
    // [code before, direction, code after]
    [450, 'upload', 451],
    [452, 'upload', 552],
    [550, 'upload', 551],
    [553, 'upload', 551],
    [552, 'upload', 552],
    [551, 'upload', 551],
    [450, 'download', 451],
    [550, 'download', 451],
    [552, 'download', 451],
    [550, 'listing', 451],
    [501, 'listing', 451],
  ] as const)('%i on a %s becomes %i, with its text', (code, direction, expected) => {
    expect(afterPreliminary({ code, text }, direction)).toEqual({ code: expected, text });
  });

  it.each([421, 425, 426, 451, 522])('%i stays as it is in every direction', (code) => {
    for (const direction of ['upload', 'download', 'listing'] as const) expect(afterPreliminary({ code, text }, direction)).toEqual({ code, text });
  });
});

/** A memory provider whose uploads are refused at open with `code`, as a disk's permissions or a busy file would. */
class RefusingUploads extends MemoryProvider {
  constructor(private readonly code: 'EACCES' | 'EBUSY') {
    super();
  }
  override createWriteStream(path: string, _options?: WriteStreamOptions): Promise<UploadStream> {
    return Promise.reject(vfsError(this.code, undefined, path));
  }
}

async function storAfter150(fs: MemoryProvider): Promise<{ code: number; text: string }> {
  const ctx = await startServer({ fs });
  cleanups.push(() => ctx.close());
  const c = await RawClient.connect(ctx.port);
  cleanups.push(() => c.close());
  await c.login();
  const data = await c.passive();
  data.on('error', () => undefined); // the server may cut it first
  expect((await c.cmd('STOR f.bin')).code).toBe(150);
  await writeAndClose(data, Buffer.alloc(100_000, 1)).catch(() => undefined);
  return c.next(5000);
}

describe('a transfer refused after its 150', () => {
  it('a permanent refusal at the open (permission denied) is 551, with the reason', async () => {
    const reply = await storAfter150(new RefusingUploads('EACCES'));
    expect(reply.code).toBe(551);
    expect(reply.text).toMatch(/f\.bin: Permission denied/);
  });

  it('a busy file is 451 (transient), with the reason', async () => {
    const reply = await storAfter150(new RefusingUploads('EBUSY'));
    expect(reply.code).toBe(451);
    expect(reply.text).toMatch(/busy/i);
  });

  it('a disk that fills during the upload is 552 (permanent: lftp does not send it again), not 452', async () => {
    const reply = await storAfter150(new MemoryProvider({ capacity: 10 }));
    expect(reply.code).toBe(552);
    expect(reply.text).toMatch(/storage space/i);
  });

  it('an upload the storage fails: the reply first, the data connection cut a moment after (lftp reads why)', async () => {
    const ctx = await startServer({ fs: new MemoryProvider({ capacity: 10 }) });
    cleanups.push(() => ctx.close());
    const c = await RawClient.connect(ctx.port);
    cleanups.push(() => c.close());
    await c.login();
    const data = await c.passive();
    data.on('error', () => undefined); // the reset that ends it
    const closed = new Promise<number>((resolve) => data.once('close', () => resolve(performance.now())));
    expect((await c.cmd('STOR f.bin')).code).toBe(150);
    data.write(Buffer.alloc(4 * 1024 * 1024, 1));
    expect((await c.next(5000)).code).toBe(552);
    const repliedAt = performance.now();
    // The session goes on meanwhile.
    expect((await c.cmd('NOOP')).code).toBe(200);
    // Cut at the failure, the connection closed before the reply came; now it is held (unread) ~500 ms after it.
    expect((await closed) - repliedAt).toBeGreaterThan(250);
  });

  /** The local disk (its uploads read into the shared transfer buffers) full after 1 MiB of an upload. */
  class FullDisk extends LocalProvider {
    override async createWriteStream(path: string, options?: WriteStreamOptions): Promise<UploadStream> {
      const upload = await super.createWriteStream(path, options);
      let written = 0;
      const full = (bytes: number, go: () => void, cb: (err?: Error | null) => void): void => {
        written += bytes;
        if (written > 1024 * 1024) cb(vfsError('ENOSPC', 'no space left on device', path));
        else go();
      };
      const write = upload._write.bind(upload);
      const writev = upload._writev?.bind(upload);
      upload._write = (chunk: Buffer, enc: BufferEncoding, cb: (err?: Error | null) => void) => full(chunk.length, () => write(chunk, enc, cb), cb);
      if (writev) upload._writev = (chunks: { chunk: Buffer; encoding: BufferEncoding }[], cb: (err?: Error | null) => void) => full(chunks.reduce((n, c) => n + c.chunk.length, 0), () => writev(chunks, cb), cb);
      return upload;
    }
  }

  // A full memory store and a quota are fed chunks; the local disk reads into the shared transfer buffers (pooled
  // reads, which the refusal's reading-on must take back from the pool's buffers).
  it.each([
    ['a full store', () => new MemoryProvider({ capacity: 10 })],
    ['a quota', () => quota(new MemoryProvider(), { bytes: 1000 })],
    [
      'a full local disk',
      () => {
        const dir = mkdtempSync(join(tmpdir(), 'ftp-full-'));
        cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
        return new FullDisk(dir);
      },
    ],
  ])('an upload refused midway (%s) is read to its end and dropped: its client finishes sending, then reads the 552 (curl, ftplib)', async (_name, make) => {
    const ctx = await startServer({ fs: make(), settings: { kernelReceive: false } });
    cleanups.push(() => ctx.close());
    // TYPE I: in TYPE A the bytes go through a decoder, never into the shared buffers.
    const c = await RawClient.binarySession(ctx.port, cleanups);
    const data = await c.passive();
    let failed: Error | null = null;
    data.on('error', (err) => (failed = err));
    const closed = new Promise<void>((resolve) => data.once('close', () => resolve()));
    expect((await c.cmd('STOR f.bin')).code).toBe(150);
    // As curl and ftplib send: everything, then the end, and only then a look at the control connection.
    await new Promise<void>((resolve) => data.end(Buffer.alloc(8 * 1024 * 1024, 1), () => resolve()));
    await closed;
    // Cut while sending, the client got a reset (curl: "Send failure: Connection reset by peer").
    expect(failed).toBeNull();
    expect((await c.next(5000)).code).toBe(552);
    expect((await c.cmd('NOOP')).code).toBe(200);
  });
});

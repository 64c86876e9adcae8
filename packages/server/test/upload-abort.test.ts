import nodefs from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { LocalProvider, MemoryProvider, quota, SqliteProvider, type FsProvider } from '@ftp/vfs';
import { afterEach, expect, it } from 'vitest';
import { RawClient, serverLogging, startServer, writeAndClose } from './helpers.js';
import type { ServerSettings } from '../src/index.js';

// An aborted upload may still have a write (or the local provider's truncation of the old file) running in storage.
// Its 426 must wait for it: else it lands under the client's next command on the same file (here an APPE, which then
// loses its bytes). And a truncation that fails must not turn into the loss of the old file.

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Patched = Record<string, (...a: unknown[]) => unknown>;

/** STOR `name` with `body` on the data connection, then ABOR `waitMs` later: 426, then 226. */
async function abortedStor(c: RawClient, name: string, body: Buffer | string, waitMs: number, events?: string[]): Promise<void> {
  const socket = await c.passive();
  // The server resets a data connection it stops reading: expected here.
  socket.on('error', () => undefined);
  c.send(`STOR ${name}`);
  expect((await c.next()).code).toBe(150);
  socket.write(body);
  await new Promise((r) => setTimeout(r, waitMs));
  c.send('ABOR');
  const code = (await c.next()).code;
  events?.push(`reply ${code}`);
  expect(code).toBe(426);
  expect((await c.next()).code).toBe(226);
  socket.destroy();
}

/** APPE `text` to `name`; the file's content right after the 226, and again once anything late has landed. */
async function appendAndSettle(c: RawClient, file: string, name: string, text: string): Promise<{ right: string; later: string }> {
  const s2 = await c.passive();
  c.send(`APPE ${name}`);
  expect((await c.next()).code).toBe(150);
  await writeAndClose(s2, text);
  expect((await c.next()).code).toBe(226);
  const right = (await readFile(file)).toString('latin1');
  await new Promise((r) => setTimeout(r, 400));
  return { right, later: (await readFile(file)).toString('latin1') };
}

for (const wrapped of [false, true]) {
  it(`an APPE right after an aborted STOR keeps its bytes, though the STOR's last write was still running${wrapped ? ' (quota wrapper)' : ''}`, async () => {
    const root = await mkdtemp(join(tmpdir(), 'upload-abort-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    await writeFile(join(root, 'f.bin'), 'old');
    const local = new LocalProvider(root, { syncMetadata: false });
    const ctx = await startServer({ fs: wrapped ? quota(local, { bytes: 64 << 20 }) : local });
    cleanups.push(() => ctx.close());
    const c = await RawClient.binarySession(ctx.port, cleanups);
    const patched = nodefs as unknown as Patched;
    const { write, writev } = patched;
    // The STOR's first write takes 200 ms in the thread pool; later ones (the APPE's) are immediate.
    let delayed = false;
    const slow = (real: (...a: unknown[]) => unknown) => (...args: unknown[]) => {
      if (delayed) return real(...args);
      delayed = true;
      // The bytes reach the file only when the call does: a storage that is slow to take them.
      setTimeout(() => real(...args), 200);
    };
    patched.write = slow(write!);
    patched.writev = slow(writev!);
    cleanups.push(() => Object.assign(patched, { write, writev }));
    // More than one transfer buffer: a 1 MiB write starts in storage while more data arrives.
    await abortedStor(c, 'f.bin', Buffer.alloc(3 << 20, 0x78), 50);
    const { right, later } = await appendAndSettle(c, join(root, 'f.bin'), 'f.bin', 'appended');
    expect(right.endsWith('appended')).toBe(true);
    expect(right.slice(0, -'appended'.length)).toMatch(/^x*$/);
    expect(later).toBe(right);
  });
}

it('file-handle fallback (a provider with open() only): the 426 waits for the write in flight, whose descriptor stays open until it returned', async () => {
  const req = createRequire(import.meta.resolve('@ftp/vfs'));
  const { RealFSProvider } = (await import(req.resolve('@platformatic/vfs'))) as { RealFSProvider: new (root: string) => FsProvider };
  const root = await mkdtemp(join(tmpdir(), 'upload-abort-handle-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  await writeFile(join(root, 'f.bin'), 'old');
  const ctx = await startServer({ fs: new RealFSProvider(root) });
  cleanups.push(() => ctx.close());
  const c = await RawClient.binarySession(ctx.port, cleanups);
  const events: string[] = [];
  const patched = nodefs as unknown as Patched;
  const { write, close } = patched;
  let slowFd = -1;
  const closedEarly = new Set<number>();
  // The first write takes 200 ms; a descriptor closed meanwhile is not written through (its number may be reused).
  patched.write = (...args: unknown[]) => {
    if (slowFd !== -1) return write!(...args);
    slowFd = args[0] as number;
    setTimeout(() => {
      if (closedEarly.has(slowFd)) {
        events.push('write ran on a closed descriptor');
        (args.at(-1) as (e: Error) => void)(Object.assign(new Error('EBADF'), { code: 'EBADF' }));
        return;
      }
      write!(...args.slice(0, -1), (err: unknown, n: unknown) => {
        events.push('write done');
        (args.at(-1) as (e: unknown, n: unknown) => void)(err, n);
      });
    }, 200);
  };
  patched.close = (...args: unknown[]) => {
    if (args[0] === slowFd) {
      events.push('close');
      closedEarly.add(slowFd);
    }
    return close!(...args);
  };
  cleanups.push(() => Object.assign(patched, { write, close }));
  await abortedStor(c, 'f.bin', Buffer.alloc(3 << 20, 0x78), 50, events);
  await new Promise((r) => setTimeout(r, 300));
  expect(events).toEqual(['write done', 'close', 'reply 426']);
});

/**
 * A session whose `STOR f.bin` has had its 150, on storage that shows an upload only once complete and whose uploads
 * are the writable `upload` makes.
 */
async function storStarted(upload: () => Writable, settings: Partial<ServerSettings> = {}): Promise<{ c: RawClient; socket: Socket; logs: Array<Record<string, unknown>> }> {
  const fs = Object.assign(Object.create(new MemoryProvider()) as FsProvider, { uploadsVisibleWhenComplete: true, createWriteStream: async () => upload() });
  const ctx = await serverLogging('warn', fs, settings);
  cleanups.push(() => ctx.close());
  const c = await RawClient.binarySession(ctx.port, cleanups);
  const socket = await c.passive();
  socket.on('error', () => undefined);
  c.send('STOR f.bin');
  expect((await c.next()).code).toBe(150);
  return { c, socket, logs: ctx.lines };
}

it('storage that shows an upload only once complete is not waited for: its slow clean-up does not hold the 426', async () => {
  /** An upload to a temporary object whose clean-up (an aborted multipart upload, say) takes 3 s. */
  class SlowCleanup extends Writable {
    override _write(_chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
      cb();
    }
    override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
      setTimeout(() => cb(err), 3000).unref();
    }
  }
  const { c, socket } = await storStarted(() => new SlowCleanup());
  socket.write('some bytes');
  await new Promise((r) => setTimeout(r, 50));
  const asked = Date.now();
  c.send('ABOR');
  expect((await c.next()).code).toBe(426);
  expect(Date.now() - asked).toBeLessThan(1500);
  expect((await c.next()).code).toBe(226);
});

/** Makes every ftruncate (thread pool and event loop) fail with EIO, until the returned function (or the cleanup) restores them. */
function failTruncations(): () => void {
  const patched = nodefs as unknown as Patched;
  const { ftruncate, ftruncateSync } = patched;
  const eio = () => Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO', errno: -5, syscall: 'ftruncate' });
  patched.ftruncate = (...args: unknown[]) => void setImmediate(() => (args.at(-1) as (e: Error) => void)(eio()));
  patched.ftruncateSync = () => {
    throw eio();
  };
  const restore = (): void => void Object.assign(patched, { ftruncate, ftruncateSync });
  cleanups.push(restore);
  return restore;
}

for (const syncMetadata of [true, false]) {
  it(`a STOR whose truncation fails leaves the old file, even with partialUploads: 'discard' (syncMetadata: ${syncMetadata})`, async () => {
    const root = await mkdtemp(join(tmpdir(), 'upload-abort-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    // Above 64 KiB: a smaller file is overwritten in place and cut at the end, not emptied when opened.
    const precious = 'precious old content '.repeat(5000);
    await writeFile(join(root, 'precious.txt'), precious);
    const ctx = await startServer({ fs: new LocalProvider(root, { syncMetadata }), settings: { partialUploads: 'discard' } });
    cleanups.push(() => ctx.close());
    const c = await RawClient.binarySession(ctx.port, cleanups);
    const restore = failTruncations();
    const socket = await c.passive();
    c.send('STOR precious.txt');
    // The file is opened once the data connection is up (after the 150), and the open fails: nothing was written,
    // so there is no partial upload to discard and the old content must stay.
    expect((await c.next()).code).toBe(150);
    await writeAndClose(socket, 'new').catch(() => undefined);
    expect((await c.next()).code).toBe(451);
    restore();
    expect(await readFile(join(root, 'precious.txt'), 'utf8')).toBe(precious);
  });

  it(`a STOR over a small file whose cut fails leaves the old file whole (syncMetadata: ${syncMetadata})`, async () => {
    const root = await mkdtemp(join(tmpdir(), 'upload-abort-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    await writeFile(join(root, 'small.txt'), 'small old content, longer than the new');
    const ctx = await startServer({ fs: new LocalProvider(root, { syncMetadata }) });
    cleanups.push(() => ctx.close());
    const c = await RawClient.binarySession(ctx.port, cleanups);
    const restore = failTruncations();
    const socket = await c.passive();
    c.send('STOR small.txt');
    expect((await c.next()).code).toBe(150);
    await writeAndClose(socket, 'new').catch(() => undefined);
    expect((await c.next()).code).toBe(451);
    restore();
    expect(await readFile(join(root, 'small.txt'), 'utf8')).toBe('small old content, longer than the new');
  });
}

it('an APPE right after an aborted STOR is not wiped by the STOR\'s late truncation (slow truncation, e.g. a big old file)', async () => {
  const root = await mkdtemp(join(tmpdir(), 'upload-abort-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  await writeFile(join(root, 'f.bin'), Buffer.alloc(100_000, 7));
  const ctx = await startServer({ fs: new LocalProvider(root) });
  cleanups.push(() => ctx.close());
  const c = await RawClient.binarySession(ctx.port, cleanups);
  const patched = nodefs as unknown as Patched;
  const { ftruncate } = patched;
  // Freeing the blocks of a big old file takes a while: the real call starts 200 ms late.
  patched.ftruncate = (...args: unknown[]) => void setTimeout(() => ftruncate!(...args), 200);
  cleanups.push(() => Object.assign(patched, { ftruncate }));
  await abortedStor(c, 'f.bin', 'x', 30);
  // The client appends to what the server kept (an empty file, or the old one): its bytes must stay.
  const { right, later } = await appendAndSettle(c, join(root, 'f.bin'), 'f.bin', 'appended');
  expect(right.endsWith('appended')).toBe(true);
  expect(later).toBe(right);
});

for (const partialUploads of ['keep', 'discard'] as const) {
  it(`storage that shows only complete uploads: an interrupted overwrite ${partialUploads === 'keep' ? 'keeps what arrived, so a resume from SIZE gives the whole file' : 'keeps the previous version (partialUploads: discard)'}`, async () => {
    const fs = new SqliteProvider();
    expect(fs.uploadsVisibleWhenComplete).toBe(true);
    const ctx = await startServer({ fs, settings: { partialUploads } });
    cleanups.push(() => ctx.close());
    const c = await RawClient.binarySession(ctx.port, cleanups);
    const old = Buffer.alloc(1000, 'o');
    const body = Buffer.from(Array.from({ length: 600_000 }, (_, i) => i % 251));
    const first = await c.passive();
    c.send('STOR f.bin');
    expect((await c.next()).code).toBe(150);
    await writeAndClose(first, old);
    expect((await c.next()).code).toBe(226);
    // The overwrite breaks off (a reset) after 400,000 bytes have gone out.
    const socket = await c.passive();
    socket.on('error', () => undefined);
    c.send('STOR f.bin');
    expect((await c.next()).code).toBe(150);
    await new Promise<void>((r) => socket.write(body.subarray(0, 400_000), () => r()));
    await new Promise((r) => setTimeout(r, 200));
    socket.resetAndDestroy();
    expect((await c.next()).code).toBe(426);
    const size = Number((await c.cmd('SIZE f.bin')).text);
    if (partialUploads === 'discard') {
      expect(size).toBe(1000);
      return;
    }
    expect(size).toBeGreaterThan(0);
    expect(size).toBeLessThanOrEqual(400_000);
    // What a client does next: REST at the size the server reports, and the rest of the file.
    expect((await c.cmd(`REST ${size}`)).code).toBe(350);
    const rest = await c.passive();
    c.send('STOR f.bin');
    expect((await c.next()).code).toBe(150);
    await writeAndClose(rest, body.subarray(size));
    expect((await c.next()).code).toBe(226);
    const back = await c.passive();
    c.send('RETR f.bin');
    expect((await c.next()).code).toBe(150);
    const got = await new Promise<Buffer>((resolve) => {
      const parts: Buffer[] = [];
      back.on('data', (d: Buffer) => parts.push(d));
      back.on('end', () => resolve(Buffer.concat(parts)));
    });
    expect((await c.next()).code).toBe(226);
    expect(got.equals(body)).toBe(true);
  });
}

it('storage that stops answering during an upload is the storage\'s stall: 451, and what arrived is not stored as the file (partialUploads: keep)', async () => {
  /** A temporary object whose storage freezes (a paused database, a partition) after the first write. */
  const events: string[] = [];
  class Freezing extends Writable {
    #writes = 0;
    override _write(_chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
      if (this.#writes++ === 0) cb();
    }
    override _final(cb: () => void): void {
      events.push('committed');
      cb();
    }
    override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
      events.push('discarded');
      cb(err);
    }
  }
  const { c, socket, logs } = await storStarted(() => new Freezing({ highWaterMark: 1024 }), { dataStallTimeout: 0.5, partialUploads: 'keep' });
  // More than the kernel buffers hold: the client is held back by the frozen storage, not silent by choice.
  socket.write(Buffer.alloc(8 << 20, 0x61));
  const t0 = Date.now();
  const final = await c.next(10000);
  expect(final.code).toBe(451);
  expect(final.text).toMatch(/Storage took none of the upload's data for 1 s; upload abandoned/);
  expect(Date.now() - t0).toBeLessThan(5000);
  expect(events).toEqual(['discarded']);
  expect((await c.cmd('NOOP')).code).toBe(200);
  // The operator hears of it (a refusal the client caused would be in the transfer's own line only).
  expect(logs.find((l) => l.msg === 'transfer failed')).toMatchObject({ level: 40, path: '/f.bin' });
});

it('storage that copies the kept part of a file for longer than the stall timeout, saying so (storedBytes), is not stalled', async () => {
  /** An upload that copies for 2.5 s before it takes data (a REST over a big file on SQL or S3), its count growing. */
  class Copying extends Writable {
    storedBytes = 0;
    readonly received: Buffer[] = [];
    override _construct(cb: () => void): void {
      const timer = setInterval(() => (this.storedBytes += 1 << 20), 100);
      setTimeout(() => (clearInterval(timer), cb()), 2500);
    }
    override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
      this.received.push(Buffer.from(chunk));
      cb();
    }
  }
  let upload: Copying | undefined;
  const { c, socket } = await storStarted(() => (upload = new Copying({ highWaterMark: 1024 })), { dataStallTimeout: 1 });
  // More than the kernel buffers hold: the client is held back while the storage copies.
  const body = Buffer.alloc(8 << 20, 0x62);
  socket.end(body);
  const final = await c.next(10000);
  expect(final.code).toBe(226);
  expect(Buffer.concat(upload!.received).equals(body)).toBe(true);
});

/** A server over a fresh folder (holding `files`) behind a 1,000-byte quota, and a logged-in binary session. */
async function quotaSession(files: Record<string, string>, settings: Partial<ServerSettings> = {}): Promise<{ root: string; port: number; c: RawClient }> {
  const root = await mkdtemp(join(tmpdir(), 'upload-abort-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  for (const [name, content] of Object.entries(files)) await writeFile(join(root, name), content);
  const ctx = await startServer({ fs: quota(new LocalProvider(root, { syncMetadata: false }), { bytes: 1000 }), settings });
  cleanups.push(() => ctx.close());
  return { root, port: ctx.port, c: await RawClient.binarySession(ctx.port, cleanups) };
}

/** STOR `name` with 5,000 bytes, more than the quota's 1,000: refused (552) at its first chunk. */
async function storPastQuota(c: RawClient, name: string): Promise<void> {
  const socket = await c.passive();
  socket.on('error', () => undefined);
  c.send(`STOR ${name}`);
  expect((await c.next()).code).toBe(150);
  socket.write(Buffer.alloc(5000, 1));
  expect((await c.next()).code).toBe(552);
  socket.destroy();
}

/**
 * A second session, logged in and ready beforehand, stores f.bin ('small') at once after `refusal` (another session's
 * upload of it refused): 150 and 226, not 450, so the hold is back before the refusal's reply.
 */
async function storesRightAfter(port: number, refusal: () => Promise<void>): Promise<void> {
  const second = await RawClient.binarySession(port, cleanups);
  const data = await second.passive();
  await refusal();
  second.send('STOR f.bin');
  expect((await second.next()).code).toBe(150);
  await writeAndClose(data, 'small');
  expect((await second.next()).code).toBe(226);
}

// The quota wrapper opens its file at the first byte it lets through: an upload refused there, or ended before its
// first byte, never replaced the old file, and discarding that "partial upload" must not delete it.
it("a STOR through the quota wrapper refused at its first chunk, or aborted before it, keeps the old file, even with partialUploads: 'discard'", async () => {
  const { root, c } = await quotaSession({ 'precious.txt': 'precious old content' }, { partialUploads: 'discard' });
  const file = join(root, 'precious.txt');
  await storPastQuota(c, 'precious.txt');
  expect(await readFile(file, 'utf8')).toBe('precious old content');
  await abortedStor(c, 'precious.txt', '', 100);
  expect(await readFile(file, 'utf8')).toBe('precious old content');
  // One that fits replaces it, as ever.
  const s3 = await c.passive();
  c.send('STOR precious.txt');
  expect((await c.next()).code).toBe(150);
  await writeAndClose(s3, 'new');
  expect((await c.next()).code).toBe(226);
  expect(await readFile(file, 'utf8')).toBe('new');
});

// The hold a STOR's ask took before its 150 goes with the upload's open. One that never opened (refused at its first
// byte by a quota) gave it back only when it expired (3 s): a client retrying at once on a new connection, as curl
// does, was told 450 "File busy".
for (const existing of [false, true]) {
  it(`another session may store a file right after an upload of it was refused at its first byte (${existing ? 'an existing file' : 'a new name'})`, async () => {
    const { root, port, c: first } = await quotaSession(existing ? { 'f.bin': 'old' } : {});
    await storesRightAfter(port, () => storPastQuota(first, 'f.bin'));
    expect(await readFile(join(root, 'f.bin'), 'utf8')).toBe('small');
    // The session's own download of the file is not refused either (it was: 450, the hold counting as a writer).
    if (existing) expect((await first.retrieve('RETR f.bin')).toString()).toBe('small');
  });
}

it('another session may store a file right after an upload of it whose data connection never came', async () => {
  const root = await mkdtemp(join(tmpdir(), 'upload-abort-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const ctx = await startServer({ fs: new LocalProvider(root, { syncMetadata: false }), settings: { dataConnectTimeout: 1 } });
  cleanups.push(() => ctx.close());
  const first = await RawClient.binarySession(ctx.port, cleanups);
  // Logged in and ready beforehand: its STOR follows the 425 at once.
  const second = await RawClient.binarySession(ctx.port, cleanups);
  const s2 = await second.passive();
  first.send('PASV');
  expect((await first.next()).code).toBe(227);
  first.send('STOR g.bin');
  // Never connected: the 425 (or 150 then 425) comes once the server stops waiting.
  let code = (await first.next()).code;
  if (code === 150) code = (await first.next()).code;
  expect(code).toBe(425);
  second.send('STOR g.bin');
  expect((await second.next()).code).toBe(150);
  await writeAndClose(s2, 'here');
  expect((await second.next()).code).toBe(226);
});

it('the hold is back before the refusal is told: storage slow to give it back holds the 552, not the next upload', async () => {
  const root = await mkdtemp(join(tmpdir(), 'upload-abort-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const q = quota(new LocalProvider(root, { syncMetadata: false }), { bytes: 1000 });
  // A release that takes 300 ms (a lookup in a slow database, say).
  const fs: FsProvider = { ...q, releaseUploadHold: async (path, owner) => {
    await new Promise((r) => setTimeout(r, 300));
    await q.releaseUploadHold!(path, owner);
  } };
  const ctx = await startServer({ fs });
  cleanups.push(() => ctx.close());
  const first = await RawClient.binarySession(ctx.port, cleanups);
  await storesRightAfter(ctx.port, () => storPastQuota(first, 'f.bin'));
});

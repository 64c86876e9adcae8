// Uploads whose rest goes from the socket into the file on @ftp/native's threads (receive-file.ts): which uploads
// take that path, that they are byte-exact (whole, REST, APPE, over a longer file), that progress is counted while
// the event loop sees none of the bytes, and that ABOR, a stall, a client's reset and a file that cannot grow end
// them with the right reply, keep what arrived and never hold the connection open.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, constants, openSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createServer as netServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { receiveUnavailableReason } from '@ftp/native';
import { attachFileDescriptorSink, LocalProvider, quota, type UploadStream } from '@ftp/vfs';
import { afterEach, describe, expect, it } from 'vitest';
import { KERNEL_RECEIVE_AFTER } from '../src/data/receive-file.js';
import { receiveFromSocket, Transfer } from '../src/data/transfer.js';
import type { ServerSettings, TransferEvent } from '../src/index.js';
import { pattern, RawClient, sha, startServer, writeAndClose } from './helpers.js';

const unavailable = receiveUnavailableReason();
// CI builds the addon on a machine that can: its absence there is a failure, not a reason to skip.
if (process.env.CI === 'true' && unavailable !== null) throw new Error(`@ftp/native is not available in CI: ${unavailable}`);
if (unavailable !== null) console.warn(`SKIPPING kernel receive tests: ${unavailable}`);

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const MiB = 1 << 20;

async function setup(settings: Partial<ServerSettings> = {}, wrap: (p: LocalProvider) => LocalProvider | ReturnType<typeof quota> = (p) => p) {
  const root = await mkdtemp(join(tmpdir(), 'kernel-receive-'));
  const ctx = await startServer({ fs: wrap(new LocalProvider(root)), settings: { dataStallTimeout: 2, ...settings } });
  const events: TransferEvent[] = [];
  ctx.server.on('transfer', (e) => events.push(e));
  cleanups.push(() => rm(root, { recursive: true, force: true }), () => ctx.close());
  const c = await RawClient.binarySession(ctx.port, cleanups);
  return { ...ctx, root, events, c };
}

/** The event of transfer number `count`, once emitted (it follows the final reply). */
async function eventNumber(events: TransferEvent[], count: number): Promise<TransferEvent> {
  for (let i = 0; i < 200 && events.length < count; i++) await wait(10);
  expect(events.length).toBe(count);
  return events[count - 1]!;
}

/**
 * Descriptors of this process on TCP sockets that are not listening: both ends of each connection, and the addon's
 * copy of a socket it still receives from (a copy shares the socket, so descriptors are counted, not sockets).
 */
async function connectedSockets(): Promise<number> {
  const listening = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = (await readFile(table, 'latin1').catch(() => '')).split('\n').slice(1);
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A') listening.add(f[9]!);
    }
  }
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m && !listening.has(m[1]!)) count++;
    } catch {
      // closed meanwhile
    }
  }
  return count;
}

/** An upload command whose data the test sends itself: the data socket, once the 150 came. */
async function startUpload(c: RawClient, command: string, before: string[] = []): Promise<Socket> {
  for (const line of before) expect((await c.cmd(line)).code).toBe(350);
  const socket = await c.passive();
  c.send(command);
  expect((await c.next()).code).toBe(150);
  return socket;
}

async function upload(c: RawClient, command: string, data: Buffer, before: string[] = []): Promise<void> {
  const socket = await startUpload(c, command, before);
  await writeAndClose(socket, data);
  const reply = await c.next(20_000);
  expect(`${reply.code} ${reply.text}`).toMatch(/^226 /);
}

/** Writes `bytes` to the socket and waits until the kernel took them (the server is reading). */
function send(socket: Socket, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => socket.write(data, (err) => (err ? reject(err) : resolve())));
}

describe.skipIf(unavailable !== null)('uploads received on the addon threads', () => {
  it('a big STOR arrives byte-exact through the kernel path; a small one and one with the setting off do not take it', async () => {
    const { c, root, events } = await setup();
    const big = pattern(9 * MiB + 4_321, 3);
    await upload(c, 'STOR big.bin', big);
    expect(sha(await readFile(join(root, 'big.bin')))).toBe(sha(big));
    const first = await eventNumber(events, 1);
    expect(first.kernelReceive).toBe(true);
    expect(first.bytes).toBe(big.length);
    const small = pattern(KERNEL_RECEIVE_AFTER - 1, 4);
    await upload(c, 'STOR small.bin', small);
    expect((await readFile(join(root, 'small.bin'))).equals(small)).toBe(true);
    expect((await eventNumber(events, 2)).kernelReceive).toBeUndefined();

    const off = await setup({ kernelReceive: false });
    await upload(off.c, 'STOR big.bin', big);
    expect(sha(await readFile(join(off.root, 'big.bin')))).toBe(sha(big));
    const event = await eventNumber(off.events, 1);
    expect(event.kernelReceive).toBeUndefined();
    expect(event.bytes).toBe(big.length);
  });

  it('STOR over a longer file leaves no old tail; REST + STOR writes from its offset and cuts the rest; APPE appends', async () => {
    const { c, root, events } = await setup();
    const file = join(root, 'f.bin');
    await writeFile(file, pattern(20 * MiB, 9));
    const replacement = pattern(5 * MiB + 7, 10);
    await upload(c, 'STOR f.bin', replacement);
    expect(sha(await readFile(file))).toBe(sha(replacement));

    const tail = pattern(3 * MiB + 1, 11);
    await upload(c, 'STOR f.bin', tail, ['REST 1000']);
    const afterRest = await readFile(file);
    expect(afterRest.length).toBe(1000 + tail.length);
    expect(afterRest.subarray(0, 1000).equals(replacement.subarray(0, 1000))).toBe(true);
    expect(sha(afterRest.subarray(1000))).toBe(sha(tail));

    const more = pattern(2 * MiB + 3, 12);
    await upload(c, 'APPE f.bin', more);
    const appended = await readFile(file);
    expect(appended.length).toBe(afterRest.length + more.length);
    expect(sha(appended.subarray(afterRest.length))).toBe(sha(more));
    await eventNumber(events, 3);
    expect(events.map((e) => [e.kernelReceive, e.bytes])).toEqual([
      [true, replacement.length],
      [true, tail.length],
      [true, more.length],
    ]);
  });

  it('an upload under a quota is counted by the quota: it keeps the ordinary path', async () => {
    const { c, root, events } = await setup({}, (p) => quota(p, { bytes: 64 * MiB }));
    const big = pattern(4 * MiB, 5);
    await upload(c, 'STOR q.bin', big);
    expect(sha(await readFile(join(root, 'q.bin')))).toBe(sha(big));
    expect((await eventNumber(events, 1)).kernelReceive).toBeUndefined();
  });

  it('a slow but steady upload is not taken for a stall: the kernel path counts its progress', async () => {
    const { c, root, events } = await setup({ dataStallTimeout: 1 });
    const socket = await startUpload(c, 'STOR slow.bin');
    const piece = pattern(256 * 1024, 6);
    // 2 MiB at once (the hand-off), then a piece every 400 ms for 2.8 s: well past the 1 s stall limit in all.
    await send(socket, pattern(2 * MiB, 7));
    for (let i = 0; i < 7; i++) {
      await wait(400);
      await send(socket, piece);
    }
    await writeAndClose(socket, Buffer.alloc(0));
    const reply = await c.next(10_000);
    expect(`${reply.code} ${reply.text}`).toMatch(/^226 /);
    expect((await stat(join(root, 'slow.bin'))).size).toBe(2 * MiB + 7 * piece.length);
    const event = await eventNumber(events, 1);
    expect(event.kernelReceive).toBe(true);
    expect(event.bytes).toBe(2 * MiB + 7 * piece.length);
  });

  it('a client that stops sending mid-upload is stalled out, and the receive lets go of the connection', async () => {
    const { c, root, events } = await setup({ dataStallTimeout: 1 });
    // The control connection's two ends: what must be left once the data connection went.
    const before = await connectedSockets();
    const socket = await startUpload(c, 'STOR stalled.bin');
    await send(socket, pattern(3 * MiB, 8));
    const reply = await c.next(10_000);
    expect(reply.code).toBe(426);
    expect((await eventNumber(events, 1)).kernelReceive).toBe(true);
    // What arrived is kept (REST can resume it); the data connection is closed by the server.
    await within(new Promise((r) => (socket.destroyed ? r(null) : socket.once('close', r))), 5000, 'the data connection to close');
    expect((await stat(join(root, 'stalled.bin'))).size).toBe(3 * MiB);
    expect((await c.cmd('NOOP')).code).toBe(200);
    // Its two ends and the receive's own copy of the server's end are gone.
    for (let i = 0; i < 100 && (await connectedSockets()) > before; i++) await wait(20);
    expect(await connectedSockets()).toBe(before);
  });

  it('ABOR during the kernel receive: 426 then 226, what was written is kept, and the next upload works', async () => {
    const { c, root, events } = await setup();
    const socket = await startUpload(c, 'STOR aborted.bin');
    const data = pattern(4 * MiB, 13);
    await send(socket, data);
    // Until the server has written it all (the file says so): the size after ABOR is then known.
    for (let i = 0; i < 200 && ((await stat(join(root, 'aborted.bin')).catch(() => null))?.size ?? 0) < data.length; i++) await wait(10);
    c.send('ABOR');
    expect((await c.next()).code).toBe(426);
    expect((await c.next()).code).toBe(226);
    const kept = await readFile(join(root, 'aborted.bin'));
    expect(sha(kept)).toBe(sha(data));
    expect((await eventNumber(events, 1)).kernelReceive).toBe(true);
    const again = pattern(3 * MiB, 14);
    await upload(c, 'STOR aborted.bin', again);
    expect(sha(await readFile(join(root, 'aborted.bin')))).toBe(sha(again));
  });

  it("a client's reset mid-upload is the connection's failure (426), not a complete file", async () => {
    // A stall limit far off: the 426 can only come from the reset itself.
    const { c, events } = await setup({ partialUploads: 'keep', dataStallTimeout: 60 });
    const socket = await startUpload(c, 'STOR reset.bin');
    await send(socket, pattern(3 * MiB, 15));
    await wait(100);
    socket.resetAndDestroy();
    const reply = await c.next(5000);
    expect(reply.code).toBe(426);
    const event = await eventNumber(events, 1);
    expect(event.outcome).not.toBe('ok');
    expect(event.kernelReceive).toBe(true);
    expect((await c.cmd('NOOP')).code).toBe(200);
  });

  it('a file that cannot grow (the file size limit: EFBIG) fails the upload as storage’s, with a clear reply', async () => {
    const { c, events } = await setup();
    // This test process's own limit (each test file runs in a process of its own), given back right after.
    const limit = spawnSync('prlimit', ['--pid', String(process.pid), `--fsize=${2 * MiB}:`]);
    if (limit.status !== 0) throw new Error(`prlimit failed: ${limit.stderr}`);
    try {
      const socket = await startUpload(c, 'STOR limited.bin');
      // A storage failure leaves the data connection open until its reply is out: cut first, a client takes the
      // reset for a network failure and never reads why.
      let replied = false;
      let cutBeforeReply = false;
      socket.once('close', () => (cutBeforeReply = !replied));
      socket.write(pattern(6 * MiB, 16));
      const reply = await c.next(10_000);
      replied = true;
      expect(cutBeforeReply).toBe(false);
      // EFBIG, like ENOSPC and EDQUOT, is the storage allocation exceeded: 552.
      expect(`${reply.code} ${reply.text}`).toBe('552 /limited.bin: Insufficient storage space.');
    } finally {
      spawnSync('prlimit', ['--pid', String(process.pid), '--fsize=unlimited:']);
    }
    expect((await c.cmd('NOOP')).code).toBe(200);
    // The limit was hit by the kernel path's writes (past the first MiB), not by the buffered ones.
    expect((await eventNumber(events, 1)).kernelReceive).toBe(true);
  });

  it('a write that waits on storage is storage’s stall (451), not the client’s (426)', async () => {
    // Storage whose file is a FIFO nobody reads: the receive's write waits in it, as on a disk that takes nothing.
    const dir = await mkdtemp(join(tmpdir(), 'kernel-receive-fifo-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const fifo = join(dir, 'slow-disk');
    execFileSync('mkfifo', [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writerFd = openSync(fifo, 'w');
    // Closing the reader makes the stuck write fail (EPIPE): the receive's thread is free again.
    cleanups.push(() => closeSync(writerFd), () => closeSync(reader));
    const upload = new LendingUpload(writerFd);
    const outcome = new Promise<unknown>((resolve) => {
      const server = netServer((socket) => {
        socket.on('error', () => {});
        const t = new Transfer('upload', '/slow');
        t.attach(socket, 1000);
        receiveFromSocket(t, upload, { ascii: false, deflateLevel: null, limiters: [] } as never, { kernelReceive: true, waitForStorage: false }).then(
          () => resolve('stored'),
          (err: unknown) => resolve(err),
        );
      });
      cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
      server.listen(0, '127.0.0.1', () => {
        const client = connect((server.address() as { port: number }).port, '127.0.0.1');
        client.on('error', () => {});
        cleanups.push(() => client.destroy());
        client.write(pattern(3 * MiB, 17));
      });
    });
    const err = (await within(outcome, 10_000, 'the upload to stall')) as { reply?: { code: number; text: string }; message?: string };
    expect(upload.lent).toBe(true);
    expect(String((err as Error).message ?? err)).toMatch(/Storage took none of the upload's data/);
  });
});

/** Storage whose uploads take their first bytes through `write()` and lend `fd` for the rest (a FIFO, here). */
class LendingUpload extends Writable implements UploadStream {
  readonly releasesChunks = true;
  lent = false;
  constructor(fd: number) {
    super();
    attachFileDescriptorSink(this, {
      lend: (write) => {
        this.lent = true;
        return (write(fd, null, () => {}), true);
      },
      progressed: () => {},
    });
  }
  override _write(_chunk: Buffer, _e: BufferEncoding, cb: (err?: Error | null) => void): void {
    cb();
  }
}

/** Rejects after `ms` naming what was awaited. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

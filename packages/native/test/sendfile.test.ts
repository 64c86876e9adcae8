// sendfile(2) through the addon, over real loopback sockets and real files. Imports the built package (dist/):
// the wrapper loads the addon relative to itself (./native.node), which only dist/ has. The test task runs after
// the build (turbo), and so does `pnpm test`.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { sendFile, sendfileUnavailableReason, socketDescriptorOf, type FileSend } from '../src/index.js';
import { openSockets, rejection, sleep, until, within } from './waits.js';

const MiB = 1 << 20;
const unavailable = sendfileUnavailableReason();
const onCI = process.env.CI === 'true';

if (unavailable !== null && !onCI) {
  console.warn(
    `\n*** @ftp/native: SKIPPING the sendfile tests: ${unavailable}.\n` +
      '*** Build the addon (`pnpm build`, or `node src/native/build.mjs` in packages/native) to run them.\n',
  );
}

// Elsewhere the tests below skip when it is missing, saying why (the warning above); on CI it must be there.
test.runIf(onCI)('the addon is available on CI (CI=true)', () => {
  expect(unavailable, 'on CI the addon must be built and load').toBeNull();
});

// ---- helpers ----

/** Everything the client reads, and when its connection ends (end, close or error). */
interface Reader {
  bytes(): Buffer;
  length(): number;
  ended: Promise<string>;
}

function reader(client: Socket): Reader {
  const chunks: Buffer[] = [];
  let length = 0;
  client.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    length += chunk.length;
  });
  const ended = new Promise<string>((resolve) => {
    client.once('end', () => resolve('end'));
    client.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    client.once('close', () => resolve('close'));
  });
  return { bytes: () => Buffer.concat(chunks, length), length: () => length, ended };
}

const servers: Server[] = [];
const sockets: Socket[] = [];
const descriptors: number[] = [];
const sends: FileSend[] = [];

interface Pair {
  /** The accepted socket: the one the file is sent to (as a server's data connection). */
  server: Socket;
  /** The connecting side: reads what was sent. */
  client: Socket;
  received: Reader;
}

/**
 * A loopback connection on a port the OS chose. The client starts paused when asked (it reads nothing); with
 * `serverReads: false` Node never reads the accepted socket (so it does not notice a reset either).
 */
async function pair(options: { paused?: boolean; serverReads?: boolean } = {}): Promise<Pair> {
  const listener = createServer({ pauseOnConnect: options.serverReads === false });
  servers.push(listener);
  await within(new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve)), 5_000, 'listen');
  const accepted = new Promise<Socket>((resolve) => listener.once('connection', resolve));
  const { port } = listener.address() as { port: number };
  const client = connect(port, '127.0.0.1');
  sockets.push(client);
  if (options.paused) client.pause();
  const received = reader(client);
  const server = await within(accepted, 5_000, 'the connection to be accepted');
  sockets.push(server);
  server.on('error', () => {}); // a client's reset reaches the server socket too: the tests look at `done`
  listener.close();
  return { server, client, received };
}

/** Starts a send and remembers it (cancelled after the test if it is still going). */
function send(socket: Socket, fileFd: number, range: Parameters<typeof sendFile>[2]): FileSend {
  const fd = socketDescriptorOf(socket);
  if (fd === null) throw new Error('no descriptor for a plain accepted socket');
  const started = sendFile(fd, fileFd, range);
  started.done.catch(() => {});
  sends.push(started);
  return started;
}

/** Sends, waits for `done`, ends the socket and checks that the client got `expected` exactly. */
async function sendAndCheck(fileFd: number, range: Parameters<typeof sendFile>[2], expected: Buffer) {
  const { server, received } = await pair();
  const result = await within(send(server, fileFd, range).done, 20_000, 'done');
  server.end();
  await within(received.ended, 10_000, 'the client to see the end');
  expect(received.length()).toBe(expected.length);
  expect(received.bytes().equals(expected)).toBe(true);
  return result;
}

let dir: string;
let bigPath: string;
let big: Buffer; // 8 MiB of random bytes
let hugePath: string;
let huge: Buffer; // 32 MiB: more than a paused client's socket buffers take (about 4 MiB here)

function open(path: string): number {
  const fd = openSync(path, 'r');
  descriptors.push(fd);
  return fd;
}

function file(name: string, bytes: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ftp-sendfile-'));
  big = randomBytes(8 * MiB);
  bigPath = file('big', big);
  huge = randomBytes(32 * MiB);
  hugePath = file('huge', huge);
});

afterEach(() => {
  for (const started of sends.splice(0)) started.cancel();
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const listener of servers.splice(0)) listener.close();
  for (const fd of descriptors.splice(0)) {
    try {
      closeSync(fd);
    } catch {
      // closed by the test itself
    }
  }
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---- the sends ----

describe.skipIf(unavailable !== null)('sendFile', () => {
  describe('a whole file', () => {
    test('several MiB arrive byte-exact, all from a background thread', async () => {
      const result = await sendAndCheck(open(bigPath), { start: 0 }, big);
      expect(result).toEqual({ sent: big.length, atEnd: true });
    });

    test('with inlineBytes: the first bytes on the calling thread, the rest in the background', async () => {
      const { server, received } = await pair();
      const started = send(server, open(bigPath), { start: 0, inlineBytes: 256 * 1024 });
      // Inline bytes are counted before sendFile returns.
      expect(started.sent()).toBeGreaterThan(0);
      const result = await within(started.done, 20_000, 'done');
      expect(result).toEqual({ sent: big.length, atEnd: true });
      expect(started.sent()).toBe(big.length);
      server.end();
      await within(received.ended, 10_000, 'the end');
      expect(received.bytes().equals(big)).toBe(true);
    });

    test('with end: Infinity, the same as no end', async () => {
      const result = await sendAndCheck(open(bigPath), { start: 0, end: Infinity, inlineBytes: 64 * 1024 }, big);
      expect(result).toEqual({ sent: big.length, atEnd: true });
    });

    test('a small file goes entirely inline: done has settled when sendFile returns', async () => {
      const small = randomBytes(10_000);
      const { server, received } = await pair();
      const started = send(server, open(file('small', small)), { start: 0, inlineBytes: 64 * 1024 });
      expect(started.sent()).toBe(small.length);
      // Settled already: it wins a race against a promise resolved after it, without a turn of the event loop.
      const first = await Promise.race([started.done, Promise.resolve('pending')]);
      expect(first).toEqual({ sent: small.length, atEnd: true });
      server.end();
      await within(received.ended, 10_000, 'the end');
      expect(received.bytes().equals(small)).toBe(true);
    });

    test('inlineBytes is a limit: what is past it goes to the background, even a few KiB', async () => {
      const { server, received } = await pair();
      const started = send(server, open(bigPath), { start: 0, end: 5000, inlineBytes: 1000 });
      // Not settled yet: a background send's result comes in a later turn of the event loop.
      expect(await Promise.race([started.done, Promise.resolve('pending')])).toBe('pending');
      expect(await within(started.done, 10_000, 'done')).toEqual({ sent: 5000, atEnd: false });
      server.end();
      await within(received.ended, 10_000, 'the end');
      expect(received.bytes().equals(big.subarray(0, 5000))).toBe(true);
    });

    test('an empty file sends nothing and is at its end, inline or not', async () => {
      const empty = open(file('empty', Buffer.alloc(0)));
      expect(await sendAndCheck(empty, { start: 0 }, Buffer.alloc(0))).toEqual({ sent: 0, atEnd: true });
      expect(await sendAndCheck(empty, { start: 0, inlineBytes: 1024 }, Buffer.alloc(0))).toEqual({ sent: 0, atEnd: true });
    });

    test("the descriptor's own position is neither used nor moved", async () => {
      const fd = open(bigPath);
      const head = Buffer.alloc(100);
      // readSync with a null position reads at the descriptor's position and moves it.
      readSync(fd, head, 0, 100, null);
      expect(await sendAndCheck(fd, { start: 0, inlineBytes: 4096 }, big)).toEqual({ sent: big.length, atEnd: true });
      readSync(fd, head, 0, 100, null);
      expect(head.equals(big.subarray(100, 200))).toBe(true);
    });
  });

  describe('a range', () => {
    test('start and end (exclusive) arrive exactly', async () => {
      const start = 1000;
      const end = 3 * MiB + 7;
      const result = await sendAndCheck(open(bigPath), { start, end }, big.subarray(start, end));
      expect(result).toEqual({ sent: end - start, atEnd: false });
    });

    test('a range begun inline and finished in the background continues at the right offset', async () => {
      const start = 12_345;
      const end = start + 2 * MiB + 3;
      const result = await sendAndCheck(open(bigPath), { start, end, inlineBytes: 100_000 }, big.subarray(start, end));
      expect(result).toEqual({ sent: end - start, atEnd: false });
    });

    test('a small range sent entirely inline', async () => {
      const result = await sendAndCheck(open(bigPath), { start: 10, end: 5000, inlineBytes: MiB }, big.subarray(10, 5000));
      expect(result).toEqual({ sent: 4990, atEnd: false });
    });

    test('end exactly at the end of the file: all of it, and the file did not end first', async () => {
      const start = big.length - 70_000;
      expect(await sendAndCheck(open(bigPath), { start, end: big.length }, big.subarray(start))).toEqual({ sent: 70_000, atEnd: false });
    });

    test('end beyond the file: the bytes to its end, and atEnd', async () => {
      const start = big.length - 5000;
      const fd = open(bigPath);
      expect(await sendAndCheck(fd, { start, end: big.length + 100_000 }, big.subarray(start))).toEqual({ sent: 5000, atEnd: true });
      expect(await sendAndCheck(fd, { start, end: big.length + 100_000, inlineBytes: 1024 }, big.subarray(start))).toEqual({
        sent: 5000,
        atEnd: true,
      });
      expect(await sendAndCheck(fd, { start, end: big.length + 100_000, inlineBytes: MiB }, big.subarray(start))).toEqual({
        sent: 5000,
        atEnd: true,
      });
    });

    test('offsets past 4 GiB (a sparse file)', async () => {
      const at = 4.5 * 1024 * MiB + 12_345;
      const tail = big.subarray(0, MiB);
      const path = join(dir, 'sparse');
      const fd = openSync(path, 'w+');
      descriptors.push(fd);
      writeSync(fd, tail, 0, tail.length, at);
      const expected = Buffer.concat([Buffer.alloc(1000), tail]);
      expect(await sendAndCheck(fd, { start: at - 1000, inlineBytes: 4096 }, expected)).toEqual({ sent: expected.length, atEnd: true });
      expect(await sendAndCheck(fd, { start: at + 1, end: at + 500_001 }, tail.subarray(1, 500_001))).toEqual({ sent: 500_000, atEnd: false });
    });

    test('start == end sends nothing', async () => {
      const fd = open(bigPath);
      expect(await sendAndCheck(fd, { start: 4096, end: 4096 }, Buffer.alloc(0))).toEqual({ sent: 0, atEnd: false });
      expect(await sendAndCheck(fd, { start: 4096, end: 4096, inlineBytes: 1024 }, Buffer.alloc(0))).toEqual({ sent: 0, atEnd: false });
    });

    test('start at or past the end of the file sends nothing, at its end', async () => {
      const fd = open(bigPath);
      expect(await sendAndCheck(fd, { start: big.length }, Buffer.alloc(0))).toEqual({ sent: 0, atEnd: true });
      expect(await sendAndCheck(fd, { start: big.length + 10, inlineBytes: 1024 }, Buffer.alloc(0))).toEqual({ sent: 0, atEnd: true });
    });
  });

  describe('slow and many clients', () => {
    test('a paused client: the send goes to the background, the event loop runs, sent() grows, all arrives', async () => {
      const { server, client, received } = await pair({ paused: true });
      const before = performance.now();
      // Even an unlimited inline budget returns once the socket takes no more: the client never holds the thread.
      const started = send(server, open(hugePath), { start: 0, inlineBytes: Infinity });
      expect(performance.now() - before).toBeLessThan(2_000);
      let settled = false;
      started.done.then(
        () => (settled = true),
        () => (settled = true),
      );
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 10);
      try {
        await sleep(300);
        expect(settled).toBe(false);
        expect(ticks).toBeGreaterThan(5);
        const stalled = started.sent();
        expect(stalled).toBeGreaterThan(0);
        expect(stalled).toBeLessThan(huge.length);

        // Now read slowly: a few ms' pause after every chunk. sent() follows the client.
        client.on('data', () => {
          client.pause();
          setTimeout(() => client.resume(), 2);
        });
        client.resume();
        const seen = [stalled];
        const sampler = setInterval(() => {
          const now = started.sent();
          if (now !== seen.at(-1)) seen.push(now);
        }, 20);
        let result;
        try {
          result = await within(started.done, 25_000, 'done');
        } finally {
          clearInterval(sampler);
        }
        expect(result).toEqual({ sent: huge.length, atEnd: true });
        expect(started.sent()).toBe(huge.length);
        // sent() moved in steps while the client read, never backwards.
        expect(seen.length).toBeGreaterThan(3);
        for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]!);
      } finally {
        clearInterval(ticker);
      }
      server.end();
      await within(received.ended, 10_000, 'the end');
      expect(received.bytes().equals(huge)).toBe(true);
    });

    test('20 sockets × 4 MiB at once, some clients paused for a while: all byte-exact', async () => {
      const fd = open(bigPath);
      const pairs = await Promise.all(Array.from({ length: 20 }, (_, i) => pair({ paused: i % 3 === 0 })));
      const ranges = pairs.map((_, i) => {
        const start = (i * 197_413) % (big.length - 4 * MiB);
        return { start, end: start + 4 * MiB, inlineBytes: i % 2 === 0 ? 128 * 1024 : 0 };
      });
      const started = pairs.map(({ server }, i) => send(server, fd, ranges[i]!));
      await sleep(200);
      for (const { client } of pairs) client.resume();
      const results = await within(Promise.all(started.map((s) => s.done)), 30_000, 'all 20 sends');
      for (const result of results) expect(result).toEqual({ sent: 4 * MiB, atEnd: false });
      for (const { server } of pairs) server.end();
      await within(Promise.all(pairs.map(({ received }) => received.ended)), 15_000, 'all 20 clients to see the end');
      pairs.forEach(({ received }, i) => {
        const { start, end } = ranges[i]!;
        expect(received.length(), `socket ${i}`).toBe(end - start);
        expect(received.bytes().equals(big.subarray(start, end)), `socket ${i}`).toBe(true);
      });
    });
  });

  describe('cancel', () => {
    test('while the client does not read: done rejects with ECANCELED at once', async () => {
      const { server } = await pair({ paused: true });
      const started = send(server, open(hugePath), { start: 0, inlineBytes: 64 * 1024 });
      await until(() => started.sent() > 64 * 1024, 5_000, 'the background send to start');
      await sleep(100);
      const before = performance.now();
      started.cancel();
      const err = await rejection(started.done, 2_000, 'done after cancel');
      expect(performance.now() - before).toBeLessThan(1_000);
      expect(err.code).toBe('ECANCELED');
      expect(err.syscall).toBe('sendfile');
      expect(started.sent()).toBeGreaterThan(0);
      expect(started.sent()).toBeLessThan(huge.length);
      started.cancel(); // again: nothing happens
    });

    test('right after sendFile returns, before its thread has picked the send up', async () => {
      const { server } = await pair({ paused: true });
      const started = send(server, open(hugePath), { start: 0 });
      started.cancel();
      expect((await rejection(started.done, 2_000, 'done after cancel')).code).toBe('ECANCELED');
    });

    test('20 sends cancelled at once all reject with ECANCELED', async () => {
      const fd = open(hugePath);
      const pairs = await Promise.all(Array.from({ length: 20 }, () => pair({ paused: true })));
      const started = pairs.map(({ server }) => send(server, fd, { start: 0 }));
      await sleep(50);
      for (const s of started) s.cancel();
      const errors = await Promise.all(started.map((s, i) => rejection(s.done, 3_000, `send ${i}`)));
      for (const err of errors) expect(err.code).toBe('ECANCELED');
    });

    test("the socket destroyed, then cancel (on 'close'): the client sees its connection end after what was sent", async () => {
      const { server, client, received } = await pair({ paused: true });
      const sockets0 = openSockets();
      const started = send(server, open(hugePath), { start: 0 });
      expect(openSockets()).toBe(sockets0 + 1); // the addon's copy
      server.once('close', () => started.cancel());
      await until(() => started.sent() > 0, 5_000, 'the send to start');
      await sleep(100);
      server.destroy();
      expect((await rejection(started.done, 2_000, 'done after cancel')).code).toBe('ECANCELED');
      await until(() => openSockets() === sockets0 - 1, 2_000, "the addon's copy and Node's to be closed");
      const sent = started.sent();
      expect(sent).toBeLessThan(huge.length);
      client.resume();
      // The addon's own copy of the descriptor was the last one open: closing it ends the connection.
      expect(['end', 'close', 'ECONNRESET']).toContain(await within(received.ended, 5_000, 'the client to see the connection end'));
      // Nothing after the cancel: the client got exactly what the kernel had taken, and nothing more.
      expect(received.length()).toBeLessThanOrEqual(sent);
      expect(received.bytes().equals(huge.subarray(0, received.length()))).toBe(true);
    });
  });

  describe('failures', () => {
    test('the client resets mid-send: done rejects with ECONNRESET or EPIPE, no hang', async () => {
      const { server, client } = await pair({ paused: true });
      const started = send(server, open(hugePath), { start: 0 });
      await until(() => started.sent() > 0, 5_000, 'the send to start');
      await sleep(100);
      client.resetAndDestroy();
      const err = await rejection(started.done, 5_000, 'done after the reset');
      expect(['ECONNRESET', 'EPIPE']).toContain(err.code);
      expect(err.syscall).toBe('sendfile');
      expect(started.sent()).toBeLessThan(huge.length);
    });

    test('the client resets while a send is being read: the same', async () => {
      const { server, client } = await pair();
      const started = send(server, open(hugePath), { start: 0 });
      let seen = 0;
      client.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (seen > 2 * MiB && !client.destroyed) client.resetAndDestroy();
      });
      const err = await rejection(started.done, 5_000, 'done after the reset');
      expect(['ECONNRESET', 'EPIPE']).toContain(err.code);
    });

    test('a client reset before an inline send: done rejects with ECONNRESET or EPIPE, nothing throws', async () => {
      const { server, client } = await pair({ serverReads: false });
      const fd = socketDescriptorOf(server)!;
      expect(fd).not.toBeNull();
      client.resetAndDestroy();
      await within(new Promise((resolve) => client.once('close', resolve)), 5_000, 'the client to close');
      await sleep(50);
      const started = sendFile(fd, open(bigPath), { start: 0, inlineBytes: MiB });
      const err = await rejection(started.done, 5_000, 'done after the reset');
      expect(['ECONNRESET', 'EPIPE']).toContain(err.code);
      expect(err.syscall).toBe('sendfile');
    });

    test('a file descriptor not open for reading: done rejects with EBADF', async () => {
      const fd = openSync(join(dir, 'write-only'), 'w');
      descriptors.push(fd);
      for (const inlineBytes of [0, 1024]) {
        const { server } = await pair();
        const err = await rejection(send(server, fd, { start: 0, inlineBytes }).done, 5_000, 'done');
        expect(err.code).toBe('EBADF');
      }
    });
  });

  describe('descriptors', () => {
    test('a file growing after the send started is sent to the end it has when reached', async () => {
      const path = file('growing', huge.subarray(0, 16 * MiB));
      const { server, client, received } = await pair({ paused: true });
      const started = send(server, open(path), { start: 0 });
      await until(() => started.sent() > 0, 5_000, 'the send to start');
      await sleep(200);
      // Still waiting for the client, well before the file's first end.
      expect(started.sent()).toBeLessThan(12 * MiB);
      appendFileSync(path, huge.subarray(16 * MiB, 20 * MiB));
      client.resume();
      expect(await within(started.done, 20_000, 'done')).toEqual({ sent: 20 * MiB, atEnd: true });
      server.end();
      await within(received.ended, 10_000, 'the end');
      expect(received.bytes().equals(huge.subarray(0, 20 * MiB))).toBe(true);
    });

    test("a file descriptor closed by the caller right after the start still sends its file (the addon's own copy)", async () => {
      const { server, client, received } = await pair({ paused: true });
      const fd = openSync(bigPath, 'r');
      const started = send(server, fd, { start: 0 });
      closeSync(fd);
      // The number is free again: the next open most likely takes it. That file must not be what is sent.
      const other = open(file('other', Buffer.alloc(MiB, 0x55)));
      expect(other).toBe(fd);
      client.resume();
      expect(await within(started.done, 20_000, 'done')).toEqual({ sent: big.length, atEnd: true });
      server.end();
      await within(received.ended, 10_000, 'the end');
      expect(received.bytes().equals(big)).toBe(true);
    });

    test('a bad file descriptor: done rejects with EBADF', async () => {
      const { server } = await pair();
      const fd = 999_999; // never open here (a number just closed may be reused by the runner at once)
      for (const inlineBytes of [0, 1024]) {
        const err = await rejection(send(server, fd, { start: 0, inlineBytes }).done, 5_000, 'done');
        expect(err.code).toBe('EBADF');
      }
    });
  });

  describe('worker threads', () => {
    // A worker thread that loaded the addon and ends with a send in flight: Node unloads the addon with it and frees
    // its memory, while the addon's threads still hold the send. It must not crash the process, write into the
    // worker's freed memory, nor keep the connection open (or go on sending) for nobody.
    const workerScript = `
      import { connect } from 'node:net';
      import { openSync } from 'node:fs';
      import { parentPort, workerData } from 'node:worker_threads';
      const { sendFile, socketDescriptorOf } = await import(workerData.module);
      const socket = connect(workerData.port, '127.0.0.1');
      socket.on('error', () => {});
      await new Promise((resolve) => socket.once('connect', resolve));
      const send = sendFile(socketDescriptorOf(socket), openSync(workerData.path, 'r'), { start: 0 });
      send.done.catch(() => {});
      const poll = setInterval(() => {
        if (send.sent() > 0) {
          clearInterval(poll);
          parentPort.postMessage('sending');
        }
      }, 5);
    `;

    test('a worker ended mid-send: its sends end with it (the client sees the end), the process and its own sends go on', async () => {
      const script = join(dir, 'worker.mjs');
      writeFileSync(script, workerScript);
      const module = new URL('../dist/index.js', import.meta.url).href;
      // A send of this thread's own, held up meanwhile, goes on after the workers end.
      const mine = await pair({ paused: true });
      const own = send(mine.server, open(bigPath), { start: 0 });
      for (let round = 0; round < 6; round++) {
        const sockets0 = openSockets();
        const listener = createServer();
        servers.push(listener);
        await within(new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve)), 5_000, 'listen');
        const accepted = new Promise<Socket>((resolve) => listener.once('connection', resolve));
        const worker = new Worker(script, { workerData: { module, port: (listener.address() as { port: number }).port, path: hugePath } });
        const failed = new Promise<never>((_, reject) => worker.once('error', reject));
        const client = await within(Promise.race([accepted, failed]), 10_000, 'the worker to connect');
        sockets.push(client);
        listener.close();
        const slow = round % 2 === 1;
        if (slow) {
          // Reading all along, so the addon is busy sending (and counting) while the worker goes.
          client.on('data', () => {
            client.pause();
            setTimeout(() => client.resume(), 1);
          });
        } else {
          client.pause();
        }
        const received = reader(client);
        await within(Promise.race([new Promise((resolve) => worker.once('message', resolve)), failed]), 10_000, 'the worker to start its send');
        await within(worker.terminate(), 10_000, 'the worker to end');
        if (!slow) {
          // The client still reads nothing, so nothing wakes the send up: the addon must drop its copy of the
          // socket all the same (the listener's and the worker's own are gone too; the client's is left).
          await until(() => openSockets() === sockets0 + 1, 5_000, "the addon to close the ended worker's socket");
        }
        client.resume();
        expect(['end', 'close', 'ECONNRESET'], `round ${round}`).toContain(await within(received.ended, 5_000, 'the connection to end'));
        expect(received.length(), `round ${round}`).toBeLessThan(huge.length);
        expect(received.bytes().equals(huge.subarray(0, received.length())), `round ${round}`).toBe(true);
        client.destroy();
      }
      mine.client.resume();
      expect(await within(own.done, 20_000, "this thread's own send")).toEqual({ sent: big.length, atEnd: true });
      mine.server.end();
      await within(mine.received.ended, 10_000, 'the end');
      expect(mine.received.bytes().equals(big)).toBe(true);
    });
  });

  describe('socketDescriptorOf', () => {
    let tls: { key: Buffer; cert: Buffer };

    beforeAll(() => {
      const certDir = mkdtempSync(join(tmpdir(), 'ftp-sendfile-cert-'));
      try {
        execFileSync(
          'openssl',
          ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'],
          { stdio: 'ignore' },
        );
        tls = { key: readFileSync(join(certDir, 'key.pem')), cert: readFileSync(join(certDir, 'cert.pem')) };
      } finally {
        rmSync(certDir, { recursive: true, force: true });
      }
    });

    test("a plain socket, accepted or connected: its descriptor (the handle's)", async () => {
      const { server, client } = await pair();
      await within(new Promise((resolve) => (client.connecting ? client.once('connect', resolve) : resolve(null))), 5_000, 'connect');
      const fd = socketDescriptorOf(server);
      expect(typeof fd).toBe('number');
      expect(fd).toBe((server as unknown as { _handle: { fd: number } })._handle.fd);
      expect(typeof socketDescriptorOf(client)).toBe('number');
      expect(socketDescriptorOf(client)).not.toBe(fd);
    });

    test('a TLS socket, either side: null', async () => {
      const listener = createTlsServer(tls);
      servers.push(listener as unknown as Server);
      await within(new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve)), 5_000, 'listen');
      const accepted = new Promise<TLSSocket>((resolve) => listener.once('secureConnection', resolve));
      const client = tlsConnect({ port: (listener.address() as { port: number }).port, host: '127.0.0.1', rejectUnauthorized: false });
      sockets.push(client);
      client.on('error', () => {});
      await within(new Promise((resolve) => client.once('secureConnect', resolve)), 10_000, 'the TLS handshake');
      const server = await within(accepted, 10_000, 'the TLS connection');
      sockets.push(server);
      expect(socketDescriptorOf(server)).toBeNull();
      expect(socketDescriptorOf(client)).toBeNull();
    });

    test('null while writes are queued on the socket', async () => {
      const { server } = await pair({ paused: true });
      expect(socketDescriptorOf(server)).not.toBeNull();
      // More than the socket buffers take while the client reads nothing: the rest waits in Node.
      server.write(Buffer.alloc(32 * MiB));
      expect(server.writableLength).toBeGreaterThan(0);
      expect(socketDescriptorOf(server)).toBeNull();
    });

    test('null once ended or destroyed', async () => {
      const first = await pair();
      first.server.end();
      expect(socketDescriptorOf(first.server)).toBeNull();
      const second = await pair();
      expect(socketDescriptorOf(second.server)).not.toBeNull();
      second.server.destroy();
      expect(socketDescriptorOf(second.server)).toBeNull();
    });
  });
});

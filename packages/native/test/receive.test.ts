// Receiving a socket into a file on the addon's threads, over real loopback sockets and real files.
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { receiveToFile, receiveUnavailableReason, sendFile, socketDescriptorOf } from '../src/index.js';
import { openSockets, rejection as rejected, within } from './waits.js';

const rejection = (promise: Promise<unknown>, what: string) => rejected<ReceiveFailure>(promise, 10_000, what);

const MiB = 1 << 20;
const unavailable = receiveUnavailableReason();
const onCI = process.env.CI === 'true';

if (unavailable !== null && !onCI) {
  console.warn(
    `\n*** @ftp/native: SKIPPING the receive tests: ${unavailable}.\n` +
      '*** Build the addon (`pnpm build`, or `node src/native/build.mjs` in packages/native) to run them.\n',
  );
}

test.runIf(onCI)('receiving into a file is available on CI (CI=true)', () => {
  expect(unavailable, 'on CI the addon must be built and load').toBeNull();
});

type ReceiveFailure = NodeJS.ErrnoException & { fileFailed?: boolean };

describe.skipIf(unavailable !== null)('receiveToFile', () => {
  let server: Server;
  let port = 0;
  let dir = '';
  /** Accepted sockets by the client's port, and who waits for one. */
  const accepted = new Map<number, Socket>();
  const waiting = new Map<number, (s: Socket) => void>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ftp-native-receive-'));
    server = createServer({ pauseOnConnect: true }, (socket) => {
      socket.on('error', () => {});
      const clientPort = socket.remotePort!;
      const waiter = waiting.get(clientPort);
      waiting.delete(clientPort);
      if (waiter) waiter(socket);
      else accepted.set(clientPort, socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  /** Every socket of the tests, destroyed at the end (the server closes once its connections have). */
  const opened: Socket[] = [];
  afterAll(async () => {
    for (const socket of opened) socket.destroy();
    await within(new Promise<void>((resolve) => server.close(() => resolve())), 5000, 'the server to close');
    rmSync(dir, { recursive: true, force: true });
  });

  /** A connected pair: the client's socket and the server's (paused: nothing read by Node). */
  async function pair(): Promise<{ client: Socket; serverSide: Socket }> {
    const client = connect(port, '127.0.0.1');
    client.on('error', () => {});
    await within(new Promise<void>((resolve) => client.once('connect', () => resolve())), 5000, 'connect');
    const own = client.localPort!;
    const accept = new Promise<Socket>((resolve) => {
      const early = accepted.get(own);
      accepted.delete(own);
      if (early) resolve(early);
      else waiting.set(own, resolve);
    });
    const serverSide = await within(accept, 5000, 'accept');
    opened.push(client, serverSide);
    return { client, serverSide };
  }

  test('writes everything the client sends, in order, until its end; Node then reads the end itself', async () => {
    const { client, serverSide } = await pair();
    const data = randomBytes(24 * MiB + 12345);
    const file = join(dir, 'whole.bin');
    const fd = openSync(file, 'w');
    const receive = receiveToFile(socketDescriptorOf(serverSide)!, fd, 0);
    closeSync(fd); // the receive has its own copy
    client.end(data);
    expect(await within(receive.done, 30_000, 'the receive')).toBe(data.length);
    expect(receive.written()).toBe(data.length);
    expect(readFileSync(file).equals(data)).toBe(true);
    // The FIN is still there for Node: resumed, the socket ends without data.
    let extra = 0;
    serverSide.on('data', (chunk: Buffer) => (extra += chunk.length));
    const ended = new Promise<void>((resolve) => serverSide.once('end', () => resolve()));
    serverSide.resume();
    await within(ended, 5000, "Node's end of the socket");
    expect(extra).toBe(0);
    serverSide.destroy();
  });

  test('writes from the position given, leaving the bytes before it alone', async () => {
    const { client, serverSide } = await pair();
    const file = join(dir, 'rest.bin');
    writeFileSync(file, 'HEAD-and-an-old-tail');
    const fd = openSync(file, 'r+');
    const receive = receiveToFile(socketDescriptorOf(serverSide)!, fd, 5);
    closeSync(fd);
    client.end('new');
    expect(await within(receive.done, 10_000, 'the receive')).toBe(3);
    expect(readFileSync(file, 'latin1')).toBe('HEAD-new-an-old-tail');
    serverSide.destroy();
  });

  test('with no position, appends to a file opened for appending', async () => {
    const { client, serverSide } = await pair();
    const file = join(dir, 'append.bin');
    writeFileSync(file, 'old;');
    const fd = openSync(file, 'a');
    const receive = receiveToFile(socketDescriptorOf(serverSide)!, fd, null);
    closeSync(fd);
    client.end(Buffer.alloc(3 * MiB, 'x'));
    expect(await within(receive.done, 10_000, 'the receive')).toBe(3 * MiB);
    const content = readFileSync(file);
    expect(content.length).toBe(4 + 3 * MiB);
    expect(content.subarray(0, 4).toString()).toBe('old;');
  });

  test("a client's reset fails it as the socket's error, with what arrived before it in the file", async () => {
    const { client, serverSide } = await pair();
    const file = join(dir, 'reset.bin');
    const fd = openSync(file, 'w');
    const receive = receiveToFile(socketDescriptorOf(serverSide)!, fd, 0);
    closeSync(fd);
    client.write(Buffer.alloc(64 * 1024, 'y'));
    // Wait for the bytes to be written before the reset, so the figure below is known.
    const deadline = Date.now() + 5000;
    while (receive.written() < 64 * 1024 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    client.resetAndDestroy();
    const err = await rejection(receive.done, 'the receive after a reset');
    expect(err.code).toBe('ECONNRESET');
    expect(err.syscall).toBe('recv');
    expect(err.fileFailed).toBe(false);
    expect(receive.written()).toBe(64 * 1024);
    expect(readFileSync(file).length).toBe(64 * 1024);
    serverSide.destroy();
  });

  test("a file that cannot be written fails it as the file's error (a full disk: /dev/full)", async () => {
    const { client, serverSide } = await pair();
    const fd = openSync('/dev/full', 'w');
    const receive = receiveToFile(socketDescriptorOf(serverSide)!, fd, null);
    closeSync(fd);
    client.write('some bytes');
    const err = await rejection(receive.done, 'the receive into /dev/full');
    expect(err.code).toBe('ENOSPC');
    expect(err.syscall).toBe('write');
    expect(err.fileFailed).toBe(true);
    expect(receive.written()).toBe(0);
    client.destroy();
    serverSide.destroy();
  });

  test('cancel ends a receive waiting for data, and its copy of the socket closes', async () => {
    const { client, serverSide } = await pair();
    const before = openSockets();
    const fd = openSync(join(dir, 'cancel.bin'), 'w');
    const receive = receiveToFile(socketDescriptorOf(serverSide)!, fd, 0);
    closeSync(fd);
    expect(openSockets()).toBe(before + 1);
    client.write('partial');
    const deadline = Date.now() + 5000;
    while (receive.written() < 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    receive.cancel();
    const err = await rejection(receive.done, 'the cancelled receive');
    expect(err.code).toBe('ECANCELED');
    expect(receive.written()).toBe(7);
    expect(openSockets()).toBe(before);
    receive.cancel(); // after the end: nothing
    client.destroy();
    serverSide.destroy();
  });

  test('many receives at once each get their own bytes', async () => {
    const pairs = await Promise.all(Array.from({ length: 8 }, () => pair()));
    const runs = pairs.map(({ client, serverSide }, i) => {
      const data = randomBytes(2 * MiB + i * 1000);
      const file = join(dir, `many-${i}.bin`);
      const fd = openSync(file, 'w');
      const receive = receiveToFile(socketDescriptorOf(serverSide)!, fd, 0);
      closeSync(fd);
      client.end(data);
      return { receive, data, file, serverSide };
    });
    for (const { receive, data, file, serverSide } of runs) {
      expect(await within(receive.done, 30_000, 'a receive')).toBe(data.length);
      expect(readFileSync(file).equals(data)).toBe(true);
      serverSide.destroy();
    }
  });

  test('arguments that are not numbers, and positions that are not byte offsets, are refused', () => {
    expect(() => receiveToFile('3' as unknown as number, 4, 0)).toThrow(/must be numbers/);
    for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 60]) expect(() => receiveToFile(3, 4, bad)).toThrow(RangeError);
  });

  test('a receive far into a file (past 4 GiB) writes there', async () => {
    const { client, serverSide } = await pair();
    const file = join(dir, 'far.bin');
    const fd = openSync(file, 'w+');
    const at = 5 * 1024 * MiB + 3;
    const receive = receiveToFile(socketDescriptorOf(serverSide)!, fd, at);
    client.end('far away');
    expect(await within(receive.done, 10_000, 'the receive')).toBe(8);
    const tail = Buffer.alloc(8);
    readSync(fd, tail, 0, 8, at);
    closeSync(fd);
    expect(tail.toString()).toBe('far away');
    rmSync(file);
  });

  test('a write waiting on storage says so (writing), and downloads on the send threads are not held up by it', async () => {
    // FIFOs nobody reads stand for a disk that does not take the data: each receive's write waits in one. Two of
    // them, started one after the other, occupy both receive threads.
    const stuck = [0, 1].map((i) => {
      const fifo = join(dir, `slow-disk-${i}`);
      execFileSync('mkfifo', [fifo]);
      const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
      const writer = openSync(fifo, 'w');
      return { reader, writer };
    });
    const receives = [];
    for (const { writer } of stuck) {
      const { client, serverSide } = await pair();
      const receive = receiveToFile(socketDescriptorOf(serverSide)!, writer, null);
      closeSync(writer);
      client.write(Buffer.alloc(2 * MiB, 'z')); // more than the pipe holds (64 KiB)
      receives.push({ client, receive });
    }
    const deadline = Date.now() + 5000;
    while (!receives.every((r) => r.receive.writing()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(receives.map((r) => r.receive.writing())).toEqual([true, true]);
    // Meanwhile sends run on their own threads: two, so both send threads are tried.
    const source = join(dir, 'send-source.bin');
    const data = randomBytes(4 * MiB);
    writeFileSync(source, data);
    for (let i = 0; i < 2; i++) {
      const down = await pair();
      const fileFd = openSync(source, 'r');
      const send = sendFile(socketDescriptorOf(down.serverSide)!, fileFd, { start: 0 });
      closeSync(fileFd);
      const got: Buffer[] = [];
      down.client.on('data', (chunk: Buffer) => got.push(chunk));
      await within(send.done, 10_000, 'a send while receives wait on storage');
      down.serverSide.end();
      await within(new Promise((r) => down.client.once('end', r)), 5000, 'the download to end');
      expect(Buffer.concat(got).equals(data)).toBe(true);
    }
    // Storage takes the data again: the receives go on and end.
    const drain = setInterval(() => {
      for (const { reader } of stuck) {
        try {
          while (readSync(reader, Buffer.alloc(1 << 16)) > 0);
        } catch {
          // EAGAIN: empty for now
        }
      }
    }, 5);
    try {
      for (const { client, receive } of receives) {
        client.end();
        expect(await within(receive.done, 10_000, 'a receive once storage takes data')).toBe(2 * MiB);
        expect(receive.writing()).toBe(false);
      }
    } finally {
      clearInterval(drain);
      for (const { reader } of stuck) closeSync(reader);
    }
  });
});

test('FTP_KERNEL_RECEIVE=0 turns it off, saying so', () => {
  const saved = process.env.FTP_KERNEL_RECEIVE;
  process.env.FTP_KERNEL_RECEIVE = '0';
  try {
    expect(receiveUnavailableReason()).toMatch(/FTP_KERNEL_RECEIVE=0/);
    expect(() => receiveToFile(1, 2, 0)).toThrow(/not available/);
  } finally {
    if (saved === undefined) delete process.env.FTP_KERNEL_RECEIVE;
    else process.env.FTP_KERNEL_RECEIVE = saved;
  }
});

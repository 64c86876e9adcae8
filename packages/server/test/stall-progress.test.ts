import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { afterEach, expect, it, vi } from 'vitest';
import { Transfer } from '../src/data/transfer.js';

afterEach(() => {
  vi.useRealTimers();
});

/** A socket as the stall timer sees it: a handle whose write queue the test moves, and destroy(). */
function fakeSocket(queue: { bytes: number }): Socket {
  return { _handle: { get writeQueueSize() { return queue.bytes; } }, destroy() {}, destroyed: false } as unknown as Socket;
}

it('a big socket write that drains slowly is progress for the stall timer; one that stops draining stalls', () => {
  vi.useFakeTimers();
  const queue = { bytes: 1024 * 1024 };
  const draining = new Transfer('download', '/big');
  draining.attach(fakeSocket(queue), 300);
  // One write of 1 MiB taking 3 s, ten times the stall timeout: the queue shrinks at every check.
  for (let t = 0; t < 3_000; t += 100) {
    queue.bytes -= 30_000;
    vi.advanceTimersByTime(100);
  }
  expect(draining.reason).toBeNull();
  // The client stops reading: the queue no longer moves, and the transfer stalls within the timeout and a check.
  vi.advanceTimersByTime(700);
  expect(draining.reason).toBe('stalled');
});

it("Node's handle reports the write queue live while a slow reader drains it (what the stall timer relies on)", async () => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = connect((server.address() as { port: number }).port, '127.0.0.1');
  const [socket] = (await accepted) as [Socket];
  socket.write(Buffer.alloc(32 * 1024 * 1024));
  const sizes: number[] = [];
  client.on('data', () => {
    client.pause();
    setTimeout(() => client.resume(), 2);
  });
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 150));
    sizes.push((socket as unknown as { _handle: { writeQueueSize: number } })._handle.writeQueueSize);
  }
  client.destroy();
  socket.destroy();
  server.close();
  expect(sizes.every((n) => typeof n === 'number')).toBe(true);
  expect(new Set(sizes).size).toBeGreaterThan(1);
});


it('under TLS, the connection under the TLS socket reports its write queue live (what attach is given as `tcp`)', async () => {
  const { TLSSocket, connect: tlsConnect, createSecureContext } = await import('node:tls');
  const { makeCertificate } = await import('./tls-fixture.js');
  const secureContext = createSecureContext(makeCertificate());
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = tlsConnect({ port: (server.address() as { port: number }).port, host: '127.0.0.1', rejectUnauthorized: false });
  client.on('error', () => {});
  const [tcp] = (await accepted) as [Socket];
  const secure = new TLSSocket(tcp, { isServer: true, secureContext });
  secure.on('error', () => {});
  await once(secure, 'secure');
  secure.write(Buffer.alloc(16 * 1024 * 1024));
  client.on('data', () => {
    client.pause();
    setTimeout(() => client.resume(), 3);
  });
  const sizes: unknown[] = [];
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 150));
    sizes.push((tcp as unknown as { _handle: { writeQueueSize: unknown } | null })._handle?.writeQueueSize);
  }
  client.destroy();
  secure.destroy();
  server.close();
  expect(sizes.every((n) => typeof n === 'number')).toBe(true);
  expect(new Set(sizes).size).toBeGreaterThan(1);
});

for (const sendfile of [true, false]) {
  it(`a download a slow client reads steadily is not stalled while the kernel's send buffer drains (sendfile: ${sendfile})`, async () => {
    const { startServer, RawClient } = await import('./helpers.js');
    const { MemoryProvider, LocalProvider } = await import('@ftp/vfs');
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const root = mkdtempSync(join(tmpdir(), 'stall-slow-'));
    const size = 24 * 1024 * 1024;
    writeFileSync(join(root, 'big.bin'), Buffer.alloc(size, 7));
    const memory = new MemoryProvider();
    if (!sendfile) await memory.writeFile('/big.bin', Buffer.alloc(size, 7));
    const ctx = await startServer({ fs: sendfile ? new LocalProvider(root) : memory, settings: { dataStallTimeout: 2, sendfile } });
    const cleanups: Array<() => unknown> = [() => ctx.close(), () => rmSync(root, { recursive: true, force: true })];
    try {
      const c = await RawClient.binarySession(ctx.port, cleanups);
      const data = await c.passive();
      data.pause();
      expect((await c.cmd('RETR big.bin')).code).toBe(150);
      // Let the server fill the kernel's buffers, then read 64 KiB every 100 ms for 6 s (three stall timeouts):
      // too slowly for the server to be handed room for more, steadily enough that nothing stalls.
      await new Promise((r) => setTimeout(r, 500));
      let got = 0;
      const replies: number[] = [];
      const early = c.next(7000).then((r) => replies.push(r.code), () => undefined);
      for (let i = 0; i < 60; i++) {
        for (let chunk: Buffer | null; got < (i + 1) * 65536 && (chunk = data.read() as Buffer | null) !== null; ) got += chunk.length;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(replies, 'no reply (426) while the client reads').toEqual([]);
      // Then at full speed: the whole file, and 226.
      data.on('data', (chunk: Buffer) => (got += chunk.length));
      data.resume();
      await once(data, 'end');
      await early;
      expect(replies).toEqual([226]);
      expect(got).toBe(size);
    } finally {
      for (const cleanup of cleanups.reverse()) await cleanup();
    }
  }, 30_000);
}

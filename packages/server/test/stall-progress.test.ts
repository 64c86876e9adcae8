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

// unackedBytes: what a TCP socket holds that its peer has not acknowledged (SIOCOUTQ), as the stall check reads it.
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { expect, test } from 'vitest';
import { sendfileUnavailableReason, unackedBytes } from '../src/index.js';

const unavailable = sendfileUnavailableReason();
if (unavailable !== null && process.env.CI !== 'true') console.warn(`\n*** @ftp/native: SKIPPING the unackedBytes tests: ${unavailable}.\n`);

test.skipIf(unavailable !== null && process.env.CI !== 'true')('counts what a paused reader has not taken, down to 0 once it read everything; null for a file', async () => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = connect((server.address() as { port: number }).port, '127.0.0.1');
  client.pause();
  const [socket] = (await accepted) as [Socket];
  try {
    const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
    expect(unackedBytes(fd)).toBe(0);
    socket.write(Buffer.alloc(16 * 1024 * 1024));
    await new Promise((r) => setTimeout(r, 200));
    const held = unackedBytes(fd)!;
    expect(held).toBeGreaterThan(256 * 1024);
    let got = 0;
    client.on('data', (chunk: Buffer) => (got += chunk.length));
    client.resume();
    for (let i = 0; i < 100 && got < 16 * 1024 * 1024; i++) await new Promise((r) => setTimeout(r, 50));
    expect(got).toBe(16 * 1024 * 1024);
    for (let i = 0; i < 20 && unackedBytes(fd) !== 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(unackedBytes(fd)).toBe(0);
    const file = openSync(new URL(import.meta.url).pathname, 'r');
    expect(unackedBytes(file)).toBeNull();
    closeSync(file);
    expect(unackedBytes(-1)).toBeNull();
  } finally {
    client.destroy();
    socket.destroy();
    server.close();
  }
});

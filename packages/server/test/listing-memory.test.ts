// A listing is sent a group of lines at a time so that a big folder is never all in hand: a group already written to
// the data socket must be collectable while the listing goes on, not held until the data connection closes.
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, expect, it } from 'vitest';
import { sendLines, Transfer } from '../src/data/transfer.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A connected pair of loopback sockets: the server's end (the data connection) and the client's. */
async function socketPair(): Promise<{ server: Socket; client: Socket }> {
  const listener = createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const port = (listener.address() as { port: number }).port;
  const accepted = once(listener, 'connection');
  const client = connect(port, '127.0.0.1');
  const [server] = (await accepted) as [Socket];
  listener.close();
  cleanups.push(() => {
    server.destroy();
    client.destroy();
  });
  return { server, client };
}

it('a group of lines already sent can be collected while the listing waits for the next group', async () => {
  const { server, client } = await socketPair();
  let received = 0;
  client.on('data', (chunk: Buffer) => (received += chunk.length));
  const transfer = new Transfer('listing', '/big');
  transfer.socket = server;

  let sent: WeakRef<string[]> | null = null;
  let releaseLast!: () => void;
  const lastMayCome = new Promise<void>((resolve) => (releaseLast = resolve));
  let waiting!: () => void;
  const listingWaits = new Promise<void>((resolve) => (waiting = resolve));
  const firstGroup = (): string[] => {
    const lines = Array.from({ length: 1000 }, (_, i) => `-rw-r--r--   1 ftp      ftp             ${i} Jan 02 15:04 file-${i}`);
    sent = new WeakRef(lines);
    return lines;
  };
  async function* groups(): AsyncGenerator<string[]> {
    yield firstGroup();
    waiting();
    await lastMayCome; // a slice still on its way from storage
    yield ['last'];
  }

  const done = sendLines(transfer, groups(), 256, { ascii: false, deflateLevel: null, limiters: [] });
  done.catch(() => undefined); // a failed assertion below destroys the sockets: its rejection is then no one's
  await listingWaits;
  // The group's full batches (three of 256 lines; the rest waits for the next group) reach the client, then collect.
  const sentBytes = Array.from({ length: 3 * 256 }, (_, i) => `-rw-r--r--   1 ftp      ftp             ${i} Jan 02 15:04 file-${i}\r\n`).join('').length;
  for (let i = 0; i < 300 && received < sentBytes; i++) await new Promise((r) => setTimeout(r, 10));
  expect(received).toBe(sentBytes);
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  expect(sent).not.toBeNull();
  expect(sent!.deref()).toBeUndefined();

  releaseLast();
  await done;
  await once(client, 'end');
});

it('a data connection closed while the listing waits for a group ends it at once with the connection error', async () => {
  const { server, client } = await socketPair();
  const transfer = new Transfer('listing', '/slow');
  transfer.socket = server;
  async function* groups(): AsyncGenerator<string[]> {
    yield ['first'];
    await new Promise(() => undefined); // storage never answers
  }
  // One line a batch: the first line is on the wire while the second group is awaited.
  const done = sendLines(transfer, groups(), 1, { ascii: false, deflateLevel: null, limiters: [] });
  done.catch(() => undefined);
  await once(client, 'data');
  const started = Date.now();
  server.destroy();
  await expect(done).rejects.toThrow();
  expect(Date.now() - started).toBeLessThan(5000);
});

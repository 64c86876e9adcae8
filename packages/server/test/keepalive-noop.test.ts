// NOOP while a transfer runs is answered at once: clients send it as a keepalive during long transfers (Apache Commons
// Net's setControlKeepAliveTimeout, one a second) and wait a moment for each reply. Queued until the transfer's end,
// every NOOP held the client's copy loop up for its reply timeout, and past the command queue's bound (64 queued,
// 1,000 dropped: ~18 minutes of keepalives) the session ended with 421 after a transfer that had succeeded.
import type { Socket } from 'node:net';
import { MemoryProvider } from '@ftp/vfs';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { RawClient, readAll, startServer, writeAndClose } from './helpers.js';

let ctx: Awaited<ReturnType<typeof startServer>>;
let fs: MemoryProvider;
let c: RawClient;

beforeEach(async () => {
  fs = new MemoryProvider();
  ctx = await startServer({ fs, settings: { dataStallTimeout: 10 } });
  c = await RawClient.connect(ctx.port);
  await c.login();
  expect((await c.cmd('TYPE I')).code).toBe(200);
});
afterEach(async () => {
  c.close();
  await ctx.close();
});

it('1,500 keepalive NOOPs during an upload are each answered at once; the upload ends 226 whole and the session goes on', async () => {
  const data = await c.passive();
  expect((await c.cmd('STOR kept.bin')).code).toBe(150);
  const piece = Buffer.alloc(1000, 'k');
  for (let i = 0; i < 1500; i++) {
    if (i % 10 === 0) data.write(piece);
    // Answered while the upload runs: it waited for the transfer's end (and this wait timed out).
    const r = await c.cmd('NOOP', 2000);
    expect(r.code, `NOOP ${i}: ${r.text}`).toBe(200);
  }
  await writeAndClose(data, piece);
  expect((await c.next()).code).toBe(226);
  expect((await c.cmd('SIZE kept.bin')).text).toBe(String(151 * 1000));
  expect((await c.cmd('NOOP')).code).toBe(200);
});

/** RETR of a 16 MiB file whose data connection is not read: the transfer runs until it is stopped. */
async function stuckDownload(): Promise<Socket> {
  await fs.writeFile('/big', Buffer.alloc(16 * 1024 * 1024, 1));
  const data = await c.passive();
  data.pause();
  expect((await c.cmd('RETR big')).code).toBe(150);
  return data;
}

/** The codes of the next `count` replies. */
async function nextCodes(count: number): Promise<number[]> {
  const codes: number[] = [];
  for (let i = 0; i < count; i++) codes.push((await c.next(3000)).code);
  return codes;
}

it('a NOOP behind another command during a transfer waits its turn: replies stay in the order of the commands', async () => {
  const data = await stuckDownload();
  c.send('PWD\r\nNOOP');
  await new Promise((r) => setTimeout(r, 200));
  // The PWD waits for the transfer to end (it is no out-of-band command), and the NOOP behind it waits its turn.
  c.send('ABOR');
  expect(await nextCodes(4)).toEqual([426, 226, 257, 200]);
  data.destroy();
});

it('a NOOP right behind an ABOR waits for the ABOR\'s 426 and 226 (it was answered before them)', async () => {
  const data = await stuckDownload();
  c.send('ABOR\r\nNOOP');
  expect(await nextCodes(3)).toEqual([426, 226, 200]);
  data.destroy();
});

it('a keepalive NOOP during a shutdown\'s grace does not end the transfer the grace lets finish', async () => {
  const data = await c.passive();
  expect((await c.cmd('STOR graced.bin')).code).toBe(150);
  data.write(Buffer.alloc(10_000, 'g'));
  const closing = ctx.server.close(5000);
  c.send('NOOP');
  await new Promise((r) => setTimeout(r, 100));
  await writeAndClose(data, Buffer.alloc(10_000, 'h'));
  // The transfer ends whole (226); the NOOP, queued behind it, is refused as the server stops (421).
  expect(await nextCodes(2)).toEqual([226, 421]);
  await closing;
  expect((await fs.stat('/graced.bin')).size).toBe(20_000);
});

// Downloads the kernel sends from the file (sendfile, @ftp/native's addon): which downloads take that path, that
// they are byte-exact (whole, REST, RANG, slow readers, many at once), that progress is counted, and that ABOR, a
// stall, a client's reset and a file cut short end them with the right reply and never hold the connection open.
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { sendfileUnavailableReason } from '@ftp/native';
import { LocalProvider } from '@ftp/vfs';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerSettings, TransferEvent } from '../src/index.js';
import { RawClient, readAll, startServer, pattern, sha } from './helpers.js';

const unavailable = sendfileUnavailableReason();
// CI builds the addon on a machine that can: its absence there is a failure, not a reason to skip.
if (process.env.CI === 'true' && unavailable !== null) throw new Error(`@ftp/native is not available in CI: ${unavailable}`);
if (unavailable !== null) console.warn(`SKIPPING sendfile download tests: ${unavailable}`);

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function setup(files: Record<string, Buffer>, settings: Partial<ServerSettings> = {}) {
  const root = await mkdtemp(join(tmpdir(), 'sendfile-'));
  for (const [name, data] of Object.entries(files)) await writeFile(join(root, name), data);
  const ctx = await startServer({ fs: new LocalProvider(root), settings: { dataStallTimeout: 5, ...settings } });
  const events: TransferEvent[] = [];
  ctx.server.on('transfer', (e) => events.push(e));
  cleanups.push(() => ctx.close(), () => rm(root, { recursive: true, force: true }));
  return { ...ctx, root, events };
}

const client = (port: number): Promise<RawClient> => RawClient.binarySession(port, cleanups);

async function download(c: RawClient, command: string, before: string[] = []): Promise<Buffer> {
  for (const line of before) expect((await c.cmd(line)).code).toBe(350);
  const socket = await c.passive();
  c.send(command);
  expect((await c.next()).code).toBe(150);
  const got = await readAll(socket);
  expect((await c.next()).code).toBe(226);
  return got;
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** RETR f.bin over a fresh data connection read at full speed, once its 150 came: what arrived so far, and its close. */
async function startedDownload(c: RawClient) {
  const socket = await c.passive();
  const got = { bytes: 0 };
  socket.on('data', (chunk: Buffer) => (got.bytes += chunk.length));
  socket.on('error', () => {});
  const closed = new Promise((r) => socket.once('close', r));
  c.send('RETR f.bin');
  expect((await c.next()).code).toBe(150);
  return { got, closed };
}

/** A 64 MiB download the client does not read yet, 200 ms in: the kernel's buffers full, the rest waiting. */
async function heldDownload(files: Record<string, Buffer>, name: string) {
  const ctx = await setup(files);
  const c = await client(ctx.port);
  const socket = await c.passive();
  socket.pause();
  c.send(`RETR ${name}`);
  expect((await c.next()).code).toBe(150);
  await wait(200);
  return { ctx, c, socket };
}

/** Sockets this process has open (client and server sides alike). */
function openSockets(): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false;
    }
  }).length;
}

/** The event of the last transfer, once the server has emitted it (it follows the final reply). */
async function lastEvent(events: TransferEvent[], count: number): Promise<TransferEvent> {
  for (let i = 0; i < 100 && events.length < count; i++) await wait(10);
  expect(events.length).toBe(count);
  return events[count - 1]!;
}

describe.skipIf(unavailable !== null)('downloads sent by the kernel', () => {
  it('whole files, REST and RANG arrive byte-exact, and the transfer event says sendfile', async () => {
    const big = pattern(6 * 1024 * 1024 + 4_321, 1);
    const small = pattern(16 * 1024, 2);
    const ctx = await setup({ 'big.bin': big, 'small.bin': small, 'empty.bin': Buffer.alloc(0) });
    const c = await client(ctx.port);
    expect(sha(await download(c, 'RETR big.bin'))).toBe(sha(big));
    expect((await lastEvent(ctx.events, 1)).sendfile).toBe(true);
    expect(ctx.events[0]!.bytes).toBe(big.length);
    expect((await download(c, 'RETR small.bin')).equals(small)).toBe(true);
    expect((await download(c, 'RETR empty.bin')).length).toBe(0);
    expect(sha(await download(c, 'RETR big.bin', ['REST 1000001']))).toBe(sha(big.subarray(1_000_001)));
    expect((await download(c, 'RETR big.bin', ['RANG 10 5000000']))).toEqual(big.subarray(10, 5_000_001));
    const events = ctx.events.slice(0, 5);
    await lastEvent(ctx.events, 5);
    // A file of at most 64 KiB is sent from a copy: an upload may rewrite it in place (see @ftp/vfs's local provider)
    // while the client has yet to read the pages sendfile left in the socket.
    expect(events.map((e) => e.sendfile)).toEqual([true, undefined, undefined, true, true]);
    expect(ctx.events.map((e) => e.bytes)).toEqual([big.length, small.length, 0, big.length - 1_000_001, 4_999_991]);
  });

  it('TYPE A, MODE Z, a rate limit and the setting turned off send through buffers, with the same bytes', async () => {
    const data = pattern(300_000, 3);
    const ctx = await setup({ 'f.bin': data }, { modeZ: true });
    const c = await client(ctx.port);
    expect((await c.cmd('TYPE A')).code).toBe(200);
    await download(c, 'RETR f.bin');
    expect((await c.cmd('TYPE I')).code).toBe(200);
    expect((await c.cmd('MODE Z')).code).toBe(200);
    await download(c, 'RETR f.bin');
    expect((await c.cmd('MODE S')).code).toBe(200);
    expect((await download(c, 'RETR f.bin')).equals(data)).toBe(true);
    await lastEvent(ctx.events, 3);
    expect(ctx.events.map((e) => e.sendfile ?? false)).toEqual([false, false, true]);

    const off = await setup({ 'f.bin': data }, { sendfile: false });
    const d = await client(off.port);
    expect((await download(d, 'RETR f.bin')).equals(data)).toBe(true);
    expect((await lastEvent(off.events, 1)).sendfile).toBeUndefined();

    const limited = await setup({ 'f.bin': data }, { downloadRate: 50_000_000 });
    const e = await client(limited.port);
    expect((await download(e, 'RETR f.bin')).equals(data)).toBe(true);
    expect((await lastEvent(limited.events, 1)).sendfile).toBeUndefined();
  });

  it('STAT right after the first bytes arrived counts them (it said 0 until the next quarter-second count)', async () => {
    const big = pattern(64 * 1024 * 1024, 7);
    const ctx = await setup({ 'big.bin': big });
    const c = await client(ctx.port);
    const socket = await c.passive();
    socket.pause();
    c.send('RETR big.bin');
    expect((await c.next()).code).toBe(150);
    await new Promise((r) => socket.once('readable', r));
    const status = await c.cmd('STAT');
    const bytes = Number(/(\d+) bytes/.exec(status.text)?.[1]);
    expect(bytes, status.text).toBeGreaterThan(0);
    socket.destroy();
    expect((await c.next()).code).toBe(426);
  });

  it('a slow reader gets every byte, STAT shows the bytes going meanwhile, and 20 parallel downloads each get their own', async () => {
    const files = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f${i}.bin`, pattern(3 * 1024 * 1024 + i * 1_001, i)]));
    // Far more than loopback's socket buffers hold: the send has to wait for the reader.
    const slow = pattern(96 * 1024 * 1024, 99);
    const ctx = await setup({ ...files, 'slow.bin': slow });
    const c = await client(ctx.port);
    const socket = await c.passive();
    socket.pause();
    c.send('RETR slow.bin');
    expect((await c.next()).code).toBe(150);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // Reads a little at a time: the send waits on the socket in the addon's thread, and goes on as it drains.
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      socket.resume();
      await wait(5);
      socket.pause();
      await wait(300);
      const status = await c.cmd('STAT');
      const bytes = /(\d+) bytes/.exec(status.text)?.[1];
      if (bytes !== undefined) seen.push(Number(bytes));
    }
    socket.resume();
    await new Promise((r) => socket.once('end', r));
    expect((await c.next()).code).toBe(226);
    expect(sha(Buffer.concat(chunks))).toBe(sha(slow));
    // Counted while it went, not only at the end: STAT saw it grow.
    expect(seen.length).toBe(6);
    expect(seen[0]).toBeGreaterThan(0);
    expect(seen[5]).toBeGreaterThan(seen[0]!);
    expect(seen[5]).toBeLessThan(slow.length);

    await Promise.all(
      Object.entries(files).map(async ([name, data]) => {
        const d = await client(ctx.port);
        expect(sha(await download(d, `RETR ${name}`))).toBe(sha(data));
      }),
    );
  });

  it('ABOR while the client reads nothing: 426 then 226, the connection reset at once, and the session goes on', async () => {
    const data = pattern(64 * 1024 * 1024, 4);
    const { ctx, c, socket } = await heldDownload({ 'big.bin': data }, 'big.bin');
    const closed = new Promise<string>((resolve) => {
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      socket.once('close', () => resolve('close'));
    });
    c.send('ABOR');
    expect((await c.next()).code).toBe(426);
    expect((await c.next()).code).toBe(226);
    socket.resume();
    // The addon held a copy of the socket: the reset reaches the client only once that copy is closed too.
    const outcome = await Promise.race([closed, wait(3000).then(() => 'still open')]);
    expect(outcome).not.toBe('still open');
    expect((await lastEvent(ctx.events, 1)).outcome).toBe('aborted');
    expect((await download(c, 'RETR big.bin', ['REST 67108000'])).equals(data.subarray(67_108_000))).toBe(true);
  });

  it.each([true, false])('ABOR at any moment of a download read at full speed: a 226 for the transfer always means every byte arrived (sendfile %s)', async (sendfile) => {
    const data = pattern(5 * 1024 * 1024 + 17, 8);
    const ctx = await setup({ 'f.bin': data }, { sendfile });
    const c = await client(ctx.port);
    // After one download: what a session keeps between transfers (its passive listener) is in the baseline.
    expect(sha(await download(c, 'RETR f.bin'))).toBe(sha(data));
    await wait(300);
    const sockets0 = openSockets();
    const short: string[] = [];
    for (let i = 0; i < 300; i++) {
      const { got, closed } = await startedDownload(c);
      // From at once to past the end (a 5 MiB download takes a few ms here): ABOR lands before, during and after.
      await wait(Math.random() * 12);
      c.send('ABOR');
      const final = await c.next();
      const abor = await c.next();
      await closed;
      expect([225, 226]).toContain(abor.code);
      if (final.code === 226 && got.bytes !== data.length) short.push(`#${i}: 226 "${final.text}" with ${got.bytes} of ${data.length} bytes`);
    }
    expect(short).toEqual([]);
    // Every data connection closed: a reset of a socket already ended fails in libuv and Node then never closed it.
    for (let i = 0; i < 350 && openSockets() > sockets0; i++) await wait(20);
    expect(openSockets()).toBeLessThanOrEqual(sockets0);
  }, 60_000);

  // Deterministic form of the race above: ABOR read in the same turn as the end of the send (a busy event loop).
  it.each([true, false])('ABOR read in the turn the last bytes went to the kernel: 426, never 226 with a part of the file (sendfile %s)', async (sendfile) => {
    const data = pattern(512 * 1024, 9);
    const root = await mkdtemp(join(tmpdir(), 'sendfile-'));
    await writeFile(join(root, 'f.bin'), data);
    // Without synchronous metadata nothing is sent inline: the whole file goes while the loop is held up.
    const ctx = await startServer({ fs: new LocalProvider(root, { syncMetadata: false }), settings: { sendfile } });
    cleanups.push(() => ctx.close(), () => rm(root, { recursive: true, force: true }));
    const c = await client(ctx.port);
    for (let i = 0; i < 8; i++) {
      const { got, closed } = await startedDownload(c);
      c.send('ABOR');
      const until = performance.now() + 300;
      while (performance.now() < until); // the loop held up; the kernel and the addon's threads are not
      const final = await c.next();
      expect((await c.next()).code).toBeOneOf([225, 226]);
      await closed;
      if (final.code === 226) expect(got.bytes).toBe(data.length);
    }
  });

  it('a client that stops reading is cut at the stall timeout with 426, and one that resets gets 426', async () => {
    const data = pattern(64 * 1024 * 1024, 5);
    const ctx = await setup({ 'big.bin': data }, { dataStallTimeout: 1 });
    const c = await client(ctx.port);
    let socket: Socket = await c.passive();
    socket.pause();
    c.send('RETR big.bin');
    expect((await c.next()).code).toBe(150);
    const stalled = await c.next(10_000);
    expect(stalled.code).toBe(426);
    expect(stalled.text).toMatch(/stalled/i);
    socket.destroy();

    socket = await c.passive();
    c.send('RETR big.bin');
    expect((await c.next()).code).toBe(150);
    await new Promise((r) => socket.once('data', r));
    socket.resetAndDestroy();
    expect((await c.next(10_000)).code).toBe(426);
    expect((await c.cmd('NOOP')).code).toBe(200);
    await lastEvent(ctx.events, 2);
    expect(ctx.events.map((e) => [e.outcome, e.sendfile])).toEqual([
      ['failed', true],
      ['failed', true],
    ]);
  });

  it('a file cut short while it is sent ends with 451, not 226', async () => {
    const data = pattern(64 * 1024 * 1024, 6);
    const { ctx, c, socket } = await heldDownload({ 'big.bin': data }, 'big.bin');
    await truncate(join(ctx.root, 'big.bin'), 8 * 1024 * 1024);
    socket.resume();
    const got = await readAll(socket);
    const reply = await c.next(10_000);
    expect(reply.code).toBe(451);
    expect(reply.text).toMatch(/ended the file after \d+ of 67108864 bytes/);
    expect(got.length).toBeLessThan(data.length);
    expect(got.equals(data.subarray(0, got.length))).toBe(true);
  });
});

import { MemoryProvider } from '@ftp/vfs';
import { afterEach, expect, it, vi } from 'vitest';
import type { ServerSettings } from '../src/index.js';
import { pattern, RawClient, readAll, startServer } from './helpers.js';

// The wall clock moves when NTP steps it or an operator sets it; the server's timers must not. Each test moves
// Date.now() by hours while the server runs in this process.

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0)) await c();
});

async function session(settings: Partial<ServerSettings>) {
  const fs = new MemoryProvider();
  const ctx = await startServer({ settings, fs });
  cleanups.push(() => ctx.close());
  const c = await RawClient.binarySession(ctx.port, cleanups);
  return { server: ctx.server, c, fs };
}

/** Moves the wall clock by `ms` from now on (Date.now only: the monotonic clock goes on as it is). */
function moveWallClock(ms: number): void {
  const real = Date.now.bind(Date);
  vi.spyOn(Date, 'now').mockImplementation(() => real() + ms);
}

const HOUR = 3_600_000;

it('a wall clock set back an hour does not hold a rate-limited download for an hour', { timeout: 20000 }, async () => {
  const { c, fs } = await session({ downloadRate: 100_000 });
  const data = pattern(400_000, 1);
  await fs.writeFile('/limited', data);
  const socket = await c.passive();
  const got = readAll(socket);
  expect((await c.cmd('RETR limited')).code).toBe(150);
  await new Promise((r) => setTimeout(r, 500));
  moveWallClock(-HOUR);
  // About 4 s at 100,000 B/s; with the wall clock in the limiter it waited an hour from here.
  expect((await c.next(10000)).code).toBe(226);
  expect((await got).equals(data)).toBe(true);
});

it('a wall clock set forward two hours does not end sessions as idle', async () => {
  const { c } = await session({ idleTimeout: 2 });
  moveWallClock(2 * HOUR);
  // The idle sweep runs every half second here; a session silent for "two hours" got 421 at its next run.
  await new Promise((r) => setTimeout(r, 1200));
  expect((await c.cmd('NOOP')).code).toBe(200);
});

it('a wall clock set back an hour does not keep an idle session an hour longer', { timeout: 15000 }, async () => {
  const { c } = await session({ idleTimeout: 1 });
  moveWallClock(-HOUR);
  expect((await c.next(5000)).code).toBe(421);
});

it('a shutdown grace ends on time when the wall clock is set back', { timeout: 20000 }, async () => {
  const { server, c, fs } = await session({ downloadRate: 10_000 });
  await fs.writeFile('/slow', pattern(1_000_000, 2));
  const socket = await c.passive();
  socket.resume();
  socket.on('error', () => {}); // the transfer cut at the end of the grace resets it
  const dataClosed = new Promise((resolve) => socket.once('close', resolve));
  expect((await c.cmd('RETR slow')).code).toBe(150);
  const started = performance.now();
  // 100 s at 10,000 B/s: the grace of 1 s ends it; with the wall clock set back during the grace, it ran until the
  // clock caught up again (or the transfer ended).
  const closing = server.close(1000);
  await new Promise((r) => setTimeout(r, 200));
  moveWallClock(-HOUR);
  await closing;
  expect(performance.now() - started).toBeLessThan(5000);
  // The cut transfer's 426, then the session's 421.
  expect((await c.next(5000)).code).toBe(426);
  expect((await c.next(5000)).code).toBe(421);
  await dataClosed;
});

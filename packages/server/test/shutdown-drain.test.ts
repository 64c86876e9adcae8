import { MemoryProvider } from '@ftp/vfs';
import { afterEach, expect, it } from 'vitest';
import { pattern, RawClient, readAll, startServer } from './helpers.js';

// FtpServer.close(grace): what runs may finish within the grace; nothing new starts, and sessions with nothing
// running end at once (they held the process for the whole grace, and could start new transfers in it).

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

it('a shutdown ends waiting sessions at once, lets a running download finish, and starts nothing new', { timeout: 20000 }, async () => {
  const fs = new MemoryProvider();
  const ctx = await startServer({ settings: { downloadRate: 200_000 }, fs });
  cleanups.push(() => ctx.close());
  const data = pattern(300_000, 7);
  await fs.writeFile('/file', data);
  const downloading = await RawClient.binarySession(ctx.port, cleanups);
  const waiting = await RawClient.binarySession(ctx.port, cleanups);
  const notLoggedIn = await RawClient.connect(ctx.port);
  cleanups.push(() => notLoggedIn.close());
  expect((await notLoggedIn.next()).code).toBe(220);

  const socket = await downloading.passive();
  const got = readAll(socket);
  expect((await downloading.cmd('RETR file')).code).toBe(150);
  const started = performance.now();
  const closing = ctx.server.close(15_000);

  // Waiting for a command: 421 and gone, not kept for the grace (nor able to log in or start a transfer in it).
  expect((await waiting.next(2000)).code).toBe(421);
  expect(await waiting.waitClosed(2000)).toBe(true);
  expect((await notLoggedIn.next(2000)).code).toBe(421);
  expect(await notLoggedIn.waitClosed(2000)).toBe(true);

  // The download's session still answers STAT, and its download ends whole.
  expect((await downloading.cmd('STAT')).code).toBe(211);
  // A command sent behind the download: refused once it ends, not run.
  downloading.send('MKD after-shutdown');
  expect((await downloading.next(10_000)).code).toBe(226);
  expect((await got).equals(data)).toBe(true);
  expect((await downloading.next(2000)).code).toBe(421);
  expect(await downloading.waitClosed(2000)).toBe(true);
  expect(fs.existsSync('/after-shutdown')).toBe(false);

  // Nothing left running: the server is closed long before its grace of 15 s.
  await closing;
  expect(performance.now() - started).toBeLessThan(8000);
});

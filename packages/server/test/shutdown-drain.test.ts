import { once } from 'node:events';
import { connect } from 'node:net';
import { MemoryProvider } from '@ftp/vfs';
import { afterEach, expect, it } from 'vitest';
import { FtpServer } from '../src/index.js';
import { pattern, PASSWORD, RawClient, readAll, startServer, USER } from './helpers.js';
import { makeCertificate } from './tls-fixture.js';

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

it('a download still running at the end of the grace is told 426 before the 421', { timeout: 20000 }, async () => {
  const fs = new MemoryProvider();
  const ctx = await startServer({ settings: { downloadRate: 100_000 }, fs });
  cleanups.push(() => ctx.close());
  await fs.writeFile('/file', pattern(1_000_000, 3));
  const c = await RawClient.binarySession(ctx.port, cleanups);
  const socket = await c.passive();
  const got = readAll(socket).catch(() => Buffer.alloc(0));
  expect((await c.cmd('RETR file')).code).toBe(150);
  await ctx.server.close(500);
  const cut = await c.next(2000);
  expect(cut.code).toBe(426);
  expect(cut.text).toMatch(/shutting down/);
  expect((await c.next(2000)).code).toBe(421);
  expect(await c.waitClosed(2000)).toBe(true);
  // Nothing after the 421: the transfer's own ending says nothing more.
  expect((await got).length).toBeLessThan(1_000_000);
});

it('a client that reads no replies does not hold the stop for its grace', { timeout: 20000 }, async () => {
  const ctx = await startServer();
  cleanups.push(() => ctx.close());
  const c = await RawClient.binarySession(ctx.port, cleanups);
  // Replies it never reads pile up in the server's socket until the session waits on one.
  c.socket.pause();
  // One write each: the server stops reading while they wait (a chunk of thousands would be refused as a flood).
  // 30,000 replies of HELP: more than loopback's socket buffers hold (~8,000), so the session waits on one.
  for (let i = 0; i < 30_000; i++) c.send('HELP');
  await new Promise((r) => setTimeout(r, 1500));
  const started = performance.now();
  await ctx.server.close(15_000);
  // Not the grace: the session ends at once; its socket, full of replies, is destroyed 2 s after its end.
  expect(performance.now() - started).toBeLessThan(6000);
});

it('logins waiting for their check when the stop begins are not checked, and do not hold it', { timeout: 20000 }, async () => {
  const fs = new MemoryProvider();
  let checks = 0;
  const server = new FtpServer({
    settings: { failedLoginDelay: 0, maxConcurrentLogins: 1 },
    driver: {
      authenticate: async (_s, user, pass) => {
        checks++;
        await new Promise((r) => setTimeout(r, 1000));
        return user === USER && pass === PASSWORD ? { fs } : null;
      },
    },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  cleanups.push(() => server.close());
  const clients = await Promise.all([0, 1, 2, 3].map(() => RawClient.connect(port)));
  for (const c of clients) {
    cleanups.push(() => c.close());
    expect((await c.next()).code).toBe(220);
    expect((await c.cmd(`USER ${USER}`)).code).toBe(331);
    c.send(`PASS ${PASSWORD}`);
  }
  await new Promise((r) => setTimeout(r, 100));
  expect(checks).toBe(1);
  const started = performance.now();
  await server.close(15_000);
  expect(performance.now() - started).toBeLessThan(1500);
  // The one check running was not waited for, and none of the three waiting ran.
  await new Promise((r) => setTimeout(r, 1200));
  expect(checks).toBe(1);
  for (const c of clients) {
    expect((await c.next(2000)).code).toBe(421);
    expect(await c.waitClosed(2000)).toBe(true);
  }
});

it('a stop says nothing in clear text to an implicit FTPS connection before its handshake, or inside an AUTH TLS one', { timeout: 20000 }, async () => {
  const fs = new MemoryProvider();
  const server = new FtpServer({
    settings: { failedLoginDelay: 0 },
    driver: { authenticate: () => ({ fs }), tlsOptions: () => makeCertificate() },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  const { port: implicitPort } = await server.listenImplicitTls(0, '127.0.0.1');
  cleanups.push(() => server.close());
  const implicit = connect({ port: implicitPort, host: '127.0.0.1' });
  implicit.on('error', () => {});
  await once(implicit, 'connect');
  const explicit = await RawClient.connect(port);
  cleanups.push(() => explicit.close());
  expect((await explicit.next()).code).toBe(220);
  expect((await explicit.cmd('AUTH TLS')).code).toBe(234);
  // From here the server waits for a ClientHello on both: any byte it sends is read as TLS by the client.
  const received: Buffer[] = [];
  implicit.on('data', (d: Buffer) => received.push(d));
  explicit.socket.removeAllListeners('data');
  explicit.socket.on('data', (d: Buffer) => received.push(d));
  await new Promise((r) => setTimeout(r, 100));
  await server.close(2000);
  await Promise.all([once(implicit, 'close'), explicit.waitClosed(3000)]);
  expect(Buffer.concat(received).toString('latin1')).toBe('');
});

import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, expect, it } from 'vitest';
import { FtpError, FtpServer } from '../src/index.js';
import { RawClient, startServer } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

it('closes an idle control connection with 421', async () => {
  const ctx = await startServer({ settings: { idleTimeout: 0.3 } });
  cleanups.push(() => ctx.close());
  const c = await RawClient.connect(ctx.port);
  cleanups.push(() => c.close());
  await c.login();
  expect((await c.next(3000)).code).toBe(421);
  expect(await c.waitClosed()).toBe(true);
});

it('refuses sessions past maxSessions and maxSessionsPerIp with 421', async () => {
  const ctx = await startServer({ settings: { maxSessions: 2 } });
  cleanups.push(() => ctx.close());
  const a = await RawClient.connect(ctx.port);
  const b = await RawClient.connect(ctx.port);
  cleanups.push(() => a.close(), () => b.close());
  expect((await a.next()).code).toBe(220);
  expect((await b.next()).code).toBe(220);
  const c = await RawClient.connect(ctx.port);
  cleanups.push(() => c.close());
  expect((await c.next()).code).toBe(421);
  expect(await c.waitClosed()).toBe(true);
  a.close();
  await new Promise((r) => setTimeout(r, 100));
  const d = await RawClient.connect(ctx.port);
  cleanups.push(() => d.close());
  expect((await d.next()).code).toBe(220);

  const perIp = await startServer({ settings: { maxSessionsPerIp: 1 } });
  cleanups.push(() => perIp.close());
  const e = await RawClient.connect(perIp.port);
  cleanups.push(() => e.close());
  expect((await e.next()).code).toBe(220);
  const f = await RawClient.connect(perIp.port);
  cleanups.push(() => f.close());
  expect((await f.next()).code).toBe(421);
});

it('rejects contradictory settings in the constructor', async () => {
  await expect(startServer({ settings: { passivePortRange: [5000, 4000] } })).rejects.toThrow(/passivePortRange/);
  await expect(startServer({ settings: { maxLineLength: 10 } })).rejects.toThrow(/maxLineLength/);
});

it('a driver whose onConnect throws refuses the client with 421: its FtpError text, or a fixed one for any other error', async () => {
  const logged: string[] = [];
  let failure: Error = new FtpError(421, 'Closed for maintenance.');
  const server = new FtpServer({
    logger: pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, cb) => (logged.push(chunk.toString()), cb()) })),
    driver: {
      onConnect: () => {
        throw failure;
      },
      authenticate: () => null,
    },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  cleanups.push(() => server.close());
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close());
  expect(await c.next()).toMatchObject({ code: 421, text: 'Closed for maintenance.' });
  expect(await c.waitClosed()).toBe(true);

  // A failure behind the driver: its text is for the log, not for a client that has not logged in.
  failure = new Error('connect ECONNREFUSED 10.0.0.5:6379');
  const d = await RawClient.connect(port);
  cleanups.push(() => d.close());
  expect(await d.next()).toMatchObject({ code: 421, text: 'Service not available.' });
  expect(await d.waitClosed()).toBe(true);
  expect(logged.join('')).toContain('ECONNREFUSED 10.0.0.5:6379');
});

it('close() tells every client 421 and ends the sessions', async () => {
  const ctx = await startServer();
  const c = await RawClient.connect(ctx.port);
  cleanups.push(() => c.close());
  await c.login();
  await ctx.close();
  expect((await c.next()).code).toBe(421);
  expect(await c.waitClosed()).toBe(true);
  expect(ctx.server.sessionCount).toBe(0);
});

it('disabledCommands answers 502 and hides the commands from FEAT and HELP', async () => {
  const ctx = await startServer({ settings: { disabledCommands: ['mlsd', 'MLST', 'HASH'] } });
  cleanups.push(() => ctx.close());
  const c = await RawClient.connect(ctx.port);
  cleanups.push(() => c.close());
  await c.login();
  expect((await c.cmd('MLST /')).code).toBe(502);
  expect((await c.cmd('HASH x')).code).toBe(502);
  const feat = await c.cmd('FEAT');
  expect(feat.lines.some((l) => l.startsWith(' MLST') || l.startsWith(' HASH'))).toBe(false);
  expect((await c.cmd('HELP')).text).not.toMatch(/\bMLSD\b/);
  await expect(startServer({ settings: { disabledCommands: ['USER'] } })).rejects.toThrow(/USER cannot be disabled/);
});

import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { formatEprt, formatHostPort, parseEpsvReply, parsePasvReply } from '@ftp/protocol';
import { RawClient, readAll, startServer } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A listener the client offers for active mode; resolves with the server's data connection. */
async function activeListener(host: string): Promise<{ port: number; accepted: Promise<Socket> }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  cleanups.push(() => server.close());
  const accepted = once(server, 'connection').then(([s]) => s as Socket);
  return { port: (server.address() as { port: number }).port, accepted };
}

async function session(host = '127.0.0.1', settings = {}) {
  const ctx = await startServerOn(host, settings);
  const c = await RawClient.connect(ctx.port, host);
  cleanups.push(() => ctx.close(), () => c.close());
  await c.login();
  return { ctx, c };
}

async function startServerOn(host: string, settings: object) {
  if (host === '127.0.0.1') return startServer({ settings });
  const ctx = await startServer({ settings });
  await ctx.close();
  // Re-listen on the requested address with the same configuration.
  const { FtpServer } = await import('../src/index.js');
  const server = new FtpServer({ ...ctx.server.options, settings: { ...ctx.server.options.settings, ...settings } });
  const { port } = await server.listen(0, host);
  return { server, port, fs: ctx.fs, close: () => server.close() };
}

describe('active mode', () => {
  it('PORT: the server connects back and sends the file', async () => {
    const { c } = await session();
    await upload(c, 'a.txt', 'active data');
    const { port, accepted } = await activeListener('127.0.0.1');
    expect((await c.cmd(`PORT ${formatHostPort('127.0.0.1', port)}`)).code).toBe(200);
    c.send('RETR a.txt');
    expect((await c.next()).code).toBe(150);
    expect((await readAll(await accepted)).toString()).toBe('active data');
    expect((await c.next()).code).toBe(226);
  });

  it('EPRT over IPv6 (::1) and EPSV on an IPv6 control connection', async () => {
    const { c } = await session('::1');
    await upload(c, 'six.txt', 'over ipv6', '::1');
    const { port, accepted } = await activeListener('::1');
    expect((await c.cmd(`EPRT ${formatEprt(6, '::1', port)}`)).code).toBe(200);
    c.send('RETR six.txt');
    expect((await c.next()).code).toBe(150);
    expect((await readAll(await accepted)).toString()).toBe('over ipv6');
    expect((await c.next()).code).toBe(226);
    expect((await c.cmd('PASV')).code).toBe(425);
    expect((await c.cmd('EPSV 1')).code).toBe(522);
  });

  it('425 when the client does not accept the connection', async () => {
    const { c } = await session();
    const { port } = await activeListener('127.0.0.1');
    // A port nobody listens on: the listener above is closed right away.
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
    const deadPort = (dead.address() as { port: number }).port;
    await new Promise<void>((r) => dead.close(() => r()));
    expect(port).toBeGreaterThan(0);
    await upload(c, 'x', 'x');
    expect((await c.cmd(`PORT ${formatHostPort('127.0.0.1', deadPort)}`)).code).toBe(200);
    c.send('RETR x');
    expect((await c.next()).code).toBe(150);
    expect((await c.next()).code).toBe(425);
  });

  it('can be disabled', async () => {
    const { c } = await session('127.0.0.1', { activeMode: false });
    expect((await c.cmd('PORT 127,0,0,1,200,0')).code).toBe(502);
  });
});

describe('passive mode', () => {
  it('uses ports from the configured range and advertises publicHost', async () => {
    const { c } = await session('127.0.0.1', { passivePortRange: [45100, 45109], publicHost: '203.0.113.7' });
    for (let i = 0; i < 12; i++) {
      const r = await c.cmd('PASV');
      const { host, port } = parsePasvReply(r.text);
      expect(host).toBe('203.0.113.7');
      expect(port).toBeGreaterThanOrEqual(45100);
      expect(port).toBeLessThanOrEqual(45109);
    }
  });

  it('425 and the port freed when nobody connects within dataConnectTimeout', async () => {
    const { c } = await session('127.0.0.1', { dataConnectTimeout: 0.3 });
    await upload(c, 'x', 'x');
    const r = await c.cmd('EPSV');
    const port = parseEpsvReply(r.text);
    c.send('RETR x');
    expect((await c.next()).code).toBe(150);
    expect((await c.next(3000)).code).toBe(425);
    const probe = connect({ port, host: '127.0.0.1' });
    const [err] = (await once(probe, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
  });

  it('a new PASV replaces the previous listener', async () => {
    const { c } = await session();
    const first = parseEpsvReply((await c.cmd('EPSV')).text);
    const second = parseEpsvReply((await c.cmd('EPSV')).text);
    expect(second).not.toBe(first);
    const probe = connect({ port: first, host: '127.0.0.1' });
    const [err] = (await once(probe, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
  });
});

async function upload(c: RawClient, name: string, data: string, host = '127.0.0.1'): Promise<void> {
  const r = await c.cmd('EPSV');
  const socket = connect({ port: parseEpsvReply(r.text), host });
  await once(socket, 'connect');
  c.send(`STOR ${name}`);
  expect((await c.next()).code).toBe(150);
  await new Promise<void>((resolve) => socket.end(data, () => resolve()));
  expect((await c.next()).code).toBe(226);
}

import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { formatEprt, formatHostPort, parseEpsvReply, parsePasvReply } from '@ftp/protocol';
import { FtpServer } from '../src/index.js';
import { freePortRange, RawClient, readAll, startServer } from './helpers.js';

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
    // Any spelling of the client's IPv6 address is the client's (RFC 2428 §2).
    for (const spelling of ['0:0:0:0:0:0:0:1', '0::1', '0000:0000:0000:0000:0000:0000:0000:0001']) {
      const again = await activeListener('::1');
      expect((await c.cmd(`EPRT |2|${spelling}|${again.port}|`)).code, spelling).toBe(200);
      c.send('RETR six.txt');
      expect((await c.next()).code).toBe(150);
      expect((await readAll(await again.accepted)).toString()).toBe('over ipv6');
      expect((await c.next()).code).toBe(226);
    }
    // An unknown network protocol is 522 (RFC 2428 §2, §3), not 504, naming the protocols that work here: EPSV opens
    // a port on this connection's family only (IPv6), EPRT can name either.
    expect(await c.cmd('EPSV 3')).toMatchObject({ code: 522, text: expect.stringContaining('(2)') });
    expect(await c.cmd('EPSV 1')).toMatchObject({ code: 522, text: expect.stringContaining('(2)') });
    expect(await c.cmd(`EPRT |3|x|${port}|`)).toMatchObject({ code: 522, text: expect.stringContaining('(1,2)') });
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
    // The reservation is gone: the (shared, lingering) port drops a late connection at once.
    expect(await dropped(port)).toBe(true);
    expect((await c.cmd('NOOP')).code).toBe(200);
  });

  it('an ABOR sent right behind the RETR (pipelined) stops it at once, not at dataConnectTimeout', async () => {
    const { c } = await session('127.0.0.1', { dataConnectTimeout: 30 });
    await upload(c, 'x', 'x');
    await c.cmd('EPSV');
    const started = Date.now();
    // One write: the ABOR is read while RETR still looks the file up, before any transfer exists.
    c.socket.write('RETR x\r\nABOR\r\n');
    const codes = [(await c.next(5000)).code, (await c.next(5000)).code, (await c.next(5000)).code];
    expect(codes).toEqual([150, 426, 226]);
    expect(Date.now() - started).toBeLessThan(3000);
    expect((await c.cmd('NOOP')).code).toBe(200);
  });

  it('a new PASV replaces the previous listener', async () => {
    const { c } = await session();
    const first = parseEpsvReply((await c.cmd('EPSV')).text);
    const second = parseEpsvReply((await c.cmd('EPSV')).text);
    expect(second).not.toBe(first);
    expect(await dropped(first)).toBe(true);
  });

  it('one transfer after another reuses the open port; a PASV replacing an unused one moves on unless no other port is left', async () => {
    const { ctx, c } = await session();
    const ports = new Set<number>();
    for (let i = 0; i < 3; i++) {
      const port = parseEpsvReply((await c.cmd('EPSV')).text);
      ports.add(port);
      const socket = connect({ port, host: '127.0.0.1' });
      await once(socket, 'connect');
      c.send(`STOR f${i}`);
      expect((await c.next()).code).toBe(150);
      await new Promise<void>((resolve) => socket.end('x', () => resolve()));
      expect((await c.next()).code).toBe(226);
    }
    expect(ports.size).toBe(1);
    expect(ctx.server.passivePortsOpen).toBe(1);

    const single = await session('127.0.0.1', { passivePortRange: await freePortRange(1) });
    const first = parseEpsvReply((await single.c.cmd('EPSV')).text);
    const again = await single.c.cmd('EPSV');
    expect(again.code).toBe(229);
    expect(parseEpsvReply(again.text)).toBe(first);
  });

  it('ports are shared between clients of different addresses and reused without a listen per transfer', async () => {
    const ctx = await startServer({ settings: { passivePortRange: await freePortRange(2) } });
    cleanups.push(() => ctx.close());
    const login = async (from: string): Promise<RawClient> => {
      const c = await RawClient.connect(ctx.port, '127.0.0.1', from);
      cleanups.push(() => c.close());
      await c.login();
      return c;
    };
    const [a1, a2, a3, b1] = [await login('127.0.0.1'), await login('127.0.0.1'), await login('127.0.0.1'), await login('127.0.0.2')];
    const pa1 = parseEpsvReply((await a1.cmd('EPSV')).text);
    const pa2 = parseEpsvReply((await a2.cmd('EPSV')).text);
    const pb1 = parseEpsvReply((await b1.cmd('EPSV')).text);
    // Two ports for three waiting sessions: a port is never shared by one address, but is by two.
    expect(pa1).not.toBe(pa2);
    expect([pa1, pa2]).toContain(pb1);
    // A third session of 127.0.0.1 finds both ports taken for its address.
    expect((await a3.cmd('EPSV')).code).toBe(425);
    // Each client's data connection reaches its own session on the shared port.
    const store = async (c: RawClient, port: number, from: string, name: string, data: string): Promise<void> => {
      const socket = connect({ port, host: '127.0.0.1', localAddress: from });
      await once(socket, 'connect');
      c.send(`STOR ${name}`);
      expect((await c.next()).code).toBe(150);
      await new Promise<void>((resolve) => socket.end(data, () => resolve()));
      expect((await c.next()).code).toBe(226);
    };
    await store(b1, pb1, '127.0.0.2', 'b', 'from .2');
    await store(a1, pa1, '127.0.0.1', 'a', 'from .1');
    const text = async (path: string): Promise<string> => {
      let out = '';
      for await (const chunk of await ctx.fs.createReadStream!(path)) out += String(chunk);
      return out;
    };
    expect(await text('/b')).toBe('from .2');
    expect(await text('/a')).toBe('from .1');
    // The ports stay open for the next transfers instead of a listen() and close() each.
    expect(ctx.server.passivePortsOpen).toBe(2);
    expect((await a3.cmd('EPSV')).code).toBe(229);
  });
});

/** Whether a connection to `port` is refused or closed by the server without a byte. */
async function dropped(port: number): Promise<boolean> {
  const probe = connect({ port, host: '127.0.0.1' });
  let bytes = 0;
  probe.on('data', (d: Buffer) => (bytes += d.length));
  const outcome = await Promise.race([
    once(probe, 'close').then(() => 'closed'),
    once(probe, 'error').then(([e]) => ((e as NodeJS.ErrnoException).code === 'ECONNREFUSED' ? 'refused' : 'error')),
    new Promise((r) => setTimeout(() => r('open'), 2000)),
  ]);
  probe.destroy();
  return (outcome === 'closed' || outcome === 'refused') && bytes === 0;
}

async function upload(c: RawClient, name: string, data: string, host = '127.0.0.1'): Promise<void> {
  const r = await c.cmd('EPSV');
  const socket = connect({ port: parseEpsvReply(r.text), host });
  await once(socket, 'connect');
  c.send(`STOR ${name}`);
  expect((await c.next()).code).toBe(150);
  await new Promise<void>((resolve) => socket.end(data, () => resolve()));
  expect((await c.next()).code).toBe(226);
}

describe('what PASV and EPSV advertise (NAT, containers, load balancers)', () => {
  it('the address by client network first, then the listener\'s, then publicHost', async () => {
    const ctx = await startServer({
      settings: { publicHost: '203.0.113.1', publicHosts: [{ network: '127.0.0.2/32', host: '10.9.9.9' }], passivePortRange: [47300, 47309] },
    });
    cleanups.push(() => ctx.close());
    const viaListener = await ctx.server.listen(0, '127.0.0.1', { publicHost: '198.51.100.7' });
    const pasvHost = async (port: number, from: string): Promise<string> => {
      const c = await RawClient.connect(port, '127.0.0.1', from);
      cleanups.push(() => c.close());
      await c.login();
      return parsePasvReply((await c.cmd('PASV')).text).host;
    };
    expect(await pasvHost(ctx.port, '127.0.0.2')).toBe('10.9.9.9');
    expect(await pasvHost(ctx.port, '127.0.0.1')).toBe('203.0.113.1');
    expect(await pasvHost(viaListener.port, '127.0.0.1')).toBe('198.51.100.7');
    expect(await pasvHost(viaListener.port, '127.0.0.2')).toBe('10.9.9.9');
  });

  it('ports mapped by a NAT are advertised as the outside sees them', async () => {
    const { c } = await session('127.0.0.1', { passivePortRange: [47310, 47319], passivePortsAdvertised: [57310, 57319] });
    const advertised = parseEpsvReply((await c.cmd('EPSV')).text);
    expect(advertised).toBeGreaterThanOrEqual(57310);
    expect(advertised).toBeLessThanOrEqual(57319);
    expect(parsePasvReply((await c.cmd('PASV')).text).port).toBeGreaterThanOrEqual(57310);
    // The data connection goes to the port actually listened on (where the NAT forwards it).
    const listening = parseEpsvReply((await c.cmd('EPSV')).text) - 10000;
    const data = connect({ port: listening, host: '127.0.0.1' });
    await once(data, 'connect');
    c.send('NLST');
    expect((await c.next()).code).toBe(150);
    await readAll(data);
    expect((await c.next()).code).toBe(226);
  });

  it('rejects a bad network, a non-IPv4 public host and a mapped range of another size', () => {
    expect(() => new FtpServer({ driver: { authenticate: () => null }, settings: { publicHosts: [{ network: '10.0.0.0/33', host: '1.2.3.4' }] } })).toThrow(/prefix/);
    expect(() => new FtpServer({ driver: { authenticate: () => null }, settings: { publicHost: '::1' } })).toThrow(/IPv4/);
    expect(() => new FtpServer({ driver: { authenticate: () => null }, settings: { passivePortRange: [30000, 30009], passivePortsAdvertised: [40000, 40008] } })).toThrow(/spanning/);
  });
});

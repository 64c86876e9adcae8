import { EventEmitter, once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { formatHostPort, parseEpsvReply } from '@ftp/protocol';
import { MemoryProvider } from '@ftp/vfs';
import { foreignPeerLog } from '../src/data/foreign-peer-log.js';
import { PortListener } from '../src/data/passive.js';
import { FtpServer } from '../src/index.js';
import { freePortRange, PASSWORD, RawClient, readAll, serverLogging, USER } from './helpers.js';

// RFC 2577's abuses of the data channel, from a client's side: theft on passive ports, bounces (here: aimed at
// this very server), and setups RFC 2428's EPSV ALL rules out.

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function client(port: number, host = '127.0.0.1', from?: string): Promise<RawClient> {
  const c = await RawClient.connect(port, host, from);
  cleanups.push(() => c.close());
  await c.login();
  return c;
}

/** A listener the client offers for active mode: whether the server connected to it. */
async function activeListener(host = '127.0.0.1'): Promise<{ port: number; accepted: Promise<Socket>; connections(): number }> {
  const server = createServer();
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  cleanups.push(() => server.close());
  const accepted = once(server, 'connection').then(([s]) => s as Socket);
  return { port: (server.address() as { port: number }).port, accepted, connections: () => connections };
}

async function closedByServer(port: number, from: string): Promise<void> {
  const probe = connect({ port, host: '127.0.0.1', localAddress: from });
  probe.on('error', () => {});
  await once(probe, 'close');
}

describe('passive ports: connections from foreign addresses', () => {
  it('are logged once per connection, not once per session waiting on the port, and a flood at most once per interval', async () => {
    const ctx = await serverLogging('warn', new MemoryProvider(), { passivePortRange: await freePortRange(1) });
    cleanups.push(() => ctx.close());
    // Six sessions of six addresses share the one port (ports are shared between addresses).
    const ports = new Set<number>();
    for (let i = 0; i < 6; i++) {
      const c = await client(ctx.port, '127.0.0.1', `127.0.0.${31 + i}`);
      ports.add(parseEpsvReply((await c.cmd('EPSV')).text));
    }
    expect(ports.size).toBe(1);
    const [port] = [...ports];
    // Connecting needs no login: twenty of them from an address nobody waits for.
    for (let i = 0; i < 20; i++) await closedByServer(port!, '127.0.0.9');
    const refused = ctx.lines.filter((l) => l.msg === 'passive data connection from a foreign address refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ address: '127.0.0.9', port, refused: 1 });
    expect(refused[0]).not.toHaveProperty('session');
  });

  it('a connection reset before it was accepted (no address left) is closed quietly: no foreign-address warning', () => {
    // Seen under load: the warning named an empty address, for a client that had reset its own data connection.
    const server = new EventEmitter() as unknown as Server;
    const foreign: string[] = [];
    new PortListener(server, '127.0.0.1', 1, () => {}, 1000, null, (address) => void foreign.push(address));
    let destroyed = 0;
    const gone = { remoteAddress: undefined, on: () => gone, destroy: () => void destroyed++ };
    server.emit('connection', gone);
    expect(destroyed).toBe(1);
    expect(foreign).toEqual([]);
    // One with an address nobody waits for is still a foreign one.
    server.emit('connection', { ...gone, remoteAddress: '127.0.0.9' });
    expect(foreign).toEqual(['127.0.0.9']);
  });

  it("a connected client's own late connection (after ABOR) is no foreign one: a debug line, no warning", async () => {
    const ctx = await serverLogging('debug', new MemoryProvider(), { passivePortRange: await freePortRange(1) });
    cleanups.push(() => ctx.close());
    const c = await client(ctx.port, '127.0.0.1', '127.0.0.41');
    const port = parseEpsvReply((await c.cmd('EPSV')).text);
    const first = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.41' });
    first.on('error', () => {});
    await once(first, 'connect');
    expect((await c.cmd('NLST')).code).toBe(150);
    expect((await c.next()).code).toBe(226);
    // A second connection to the port, from the same client, with no transfer waiting.
    await closedByServer(port, '127.0.0.41');
    const lines = ctx.lines.filter((l) => typeof l.msg === 'string' && (l.msg as string).startsWith('passive data connection'));
    expect(lines.map((l) => l.msg)).toEqual(['passive data connection from a connected client with no transfer waiting for it closed']);
    expect(lines[0]).toMatchObject({ level: 20, address: '127.0.0.41', port });
    // A foreign address still gets its warning.
    await closedByServer(port, '127.0.0.42');
    expect(ctx.lines.filter((l) => l.msg === 'passive data connection from a foreign address refused')).toHaveLength(1);
  });

  it('the log line after a quiet interval says how many were refused since the one before', () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = { warn: (o: Record<string, unknown>) => lines.push(o) } as unknown as Parameters<typeof foreignPeerLog>[0];
    let now = 0;
    const log = foreignPeerLog(logger, 10_000, () => now);
    for (let i = 0; i < 5; i++) log('192.0.2.1', 30000);
    now = 9_999;
    log('192.0.2.1', 30000);
    expect(lines).toEqual([{ address: '192.0.2.1', port: 30000, refused: 1 }]);
    now = 10_000;
    log('192.0.2.2', 30001);
    expect(lines[1]).toEqual({ address: '192.0.2.2', port: 30001, refused: 6 });
  });
});

describe('PASV on an IPv6 control connection', () => {
  it('from an IPv4 client behind a PROXY-protocol balancer still advertises the IPv4 public address', async () => {
    const fs = new MemoryProvider();
    const server = new FtpServer({
      settings: { failedLoginDelay: 0, publicHost: '127.0.0.1', passiveProxyProtocol: true },
      driver: { authenticate: (_s, user, pass) => (user === USER && pass === PASSWORD ? { fs } : null) },
    });
    const { port } = await server.listen(0, '::1', { proxyProtocol: true });
    cleanups.push(() => server.close());
    const c = await RawClient.connect(port, '::1');
    cleanups.push(() => c.close());
    c.send(Buffer.from('PROXY TCP4 198.51.100.9 127.0.0.1 5555 21\r\n'));
    await c.login();
    expect(await c.cmd('PASV')).toMatchObject({ code: 227, text: expect.stringContaining('(127,0,0,1,') });
  });

  it('is refused at once with 425, even when an IPv4 public address is set (no IPv4 address reaches the port)', async () => {
    const fs = new MemoryProvider();
    const server = new FtpServer({
      settings: { failedLoginDelay: 0, publicHost: '203.0.113.7' },
      driver: { authenticate: (_s, user, pass) => (user === USER && pass === PASSWORD ? { fs } : null) },
    });
    const { port } = await server.listen(0, '::1');
    cleanups.push(() => server.close());
    const c = await client(port, '::1');
    expect(await c.cmd('PASV')).toMatchObject({ code: 425, text: expect.stringContaining('EPSV') });
    expect((await c.cmd('EPSV')).code).toBe(229);
  });
});

describe('active mode aimed at this server', () => {
  it('PORT and EPRT to its control port or an open passive port are refused; another port of the client is not', async () => {
    const ctx = await serverLogging('warn', new MemoryProvider(), { passivePortRange: await freePortRange(2) });
    cleanups.push(() => ctx.close());
    const c = await client(ctx.port);
    // A RETR would otherwise send a file of commands into a new session of this machine's address.
    expect((await c.cmd(`PORT ${formatHostPort('127.0.0.1', ctx.port)}`)).code).toBe(500);
    expect((await c.cmd(`EPRT |1|127.0.0.1|${ctx.port}|`)).code).toBe(500);
    const other = await client(ctx.port, '127.0.0.1', '127.0.0.2');
    const passive = parseEpsvReply((await other.cmd('EPSV')).text);
    expect(await c.cmd(`PORT ${formatHostPort('127.0.0.1', passive)}`)).toMatchObject({ code: 500, text: expect.stringContaining('own') });
    expect(ctx.lines.filter((l) => l.msg === 'active data connection to this server refused')).toHaveLength(3);
    const { port, accepted } = await activeListener();
    expect((await c.cmd(`PORT ${formatHostPort('127.0.0.1', port)}`)).code).toBe(200);
    c.send('LIST');
    expect((await c.next()).code).toBe(150);
    await readAll(await accepted);
    expect((await c.next()).code).toBe(226);
  });
});

describe('active mode aimed at this server, checked again when the transfer starts', () => {
  it('a passive port opened after the PORT at the address it names is refused then (425), and nothing connects', async () => {
    const range = await freePortRange(1);
    const ctx = await serverLogging('warn', new MemoryProvider(), { passivePortRange: range });
    cleanups.push(() => ctx.close());
    const c = await client(ctx.port);
    // Not open yet: accepted.
    expect((await c.cmd(`PORT ${formatHostPort('127.0.0.1', range[0])}`)).code).toBe(200);
    const other = await client(ctx.port, '127.0.0.1', '127.0.0.2');
    expect(parseEpsvReply((await other.cmd('EPSV')).text)).toBe(range[0]);
    expect(await c.cmd('LIST')).toMatchObject({ code: 425, text: expect.stringContaining('own') });
    expect((await c.cmd('NOOP')).code).toBe(200);
  });

  it('a port this server listens on at another address is not its own at this one', async () => {
    const ctx = await serverLogging('warn');
    cleanups.push(() => ctx.close());
    // A client at 127.0.0.3 listens on the number of the control port (bound to 127.0.0.1), at its own address.
    const server = createServer();
    const accepted = once(server, 'connection');
    await new Promise<void>((r) => server.listen(ctx.port, '127.0.0.3', () => r()));
    cleanups.push(() => server.close());
    const c = await client(ctx.port, '127.0.0.1', '127.0.0.3');
    expect((await c.cmd(`EPRT |1|127.0.0.3|${ctx.port}|`)).code).toBe(200);
    c.send('LIST');
    expect((await c.next()).code).toBe(150);
    const [socket] = (await accepted) as [Socket];
    await readAll(socket);
    expect((await c.next()).code).toBe(226);
  });
});

describe('EPRT with an IPv4-mapped IPv6 address', () => {
  it('is the IPv4 client itself: accepted, and the server connects to it', async () => {
    const ctx = await serverLogging('warn');
    cleanups.push(() => ctx.close());
    const c = await client(ctx.port);
    const { port, accepted } = await activeListener();
    expect((await c.cmd(`EPRT |2|::ffff:127.0.0.1|${port}|`)).code).toBe(200);
    c.send('LIST');
    expect((await c.next()).code).toBe(150);
    await readAll(await accepted);
    expect((await c.next()).code).toBe(226);
    // Another address, mapped, is still another address.
    expect((await c.cmd(`EPRT |2|::ffff:127.0.0.2|${port}|`)).code).toBe(500);
  });

  it('the unspecified address (lftp sends `EPRT |2|::|port|` over IPv6) is the client itself: accepted and connected to', async () => {
    const ctx = await serverLogging('warn');
    cleanups.push(() => ctx.close());
    const c = await client(ctx.port);
    for (const line of ['EPRT |1|0.0.0.0|PORT|', 'EPRT |2|::|PORT|', 'EPRT |2|0:0:0:0:0:0:0:0|PORT|', 'PORT 0,0,0,0,HI,LO']) {
      const { port, accepted } = await activeListener();
      const command = line.replace('PORT|', `${port}|`).replace('HI,LO', `${port >> 8},${port & 255}`);
      expect((await c.cmd(command)).code, command).toBe(200);
      c.send('LIST');
      expect((await c.next()).code, command).toBe(150);
      await readAll(await accepted);
      expect((await c.next()).code, command).toBe(226);
    }
    // Not refused as a bounce, so nothing was warned of.
    expect(ctx.lines.filter((l) => String(l.msg).includes('refused'))).toEqual([]);
  });

  it('an IPv6 address from an IPv4 client is a protocol its data cannot use: 522 naming IPv4 (RFC 2428 §2)', async () => {
    const ctx = await serverLogging('warn');
    cleanups.push(() => ctx.close());
    const c = await client(ctx.port);
    for (const address of ['::1', '2001:db8::1']) expect(await c.cmd(`EPRT |2|${address}|50000|`)).toMatchObject({ code: 522, text: 'Network protocol not supported, use (1).' });
    // With active mode off, that comes first: no 522 suggesting an IPv4 EPRT would do.
    const off = await serverLogging('warn', undefined, { activeMode: false });
    cleanups.push(() => off.close());
    const d = await client(off.port);
    // 502 before anything about the argument: an unknown protocol (522) or a malformed one (501).
    for (const line of ['EPRT |2|::1|50000|', 'EPRT |3|x|50000|', 'EPRT garbage', 'PORT 1,2,3']) expect((await d.cmd(line)).code, line).toBe(502);
    // Nor offered: FEAT has no EPRT, HELP neither PORT nor EPRT.
    expect((await d.cmd('FEAT')).lines).not.toContain(' EPRT');
    expect((await d.cmd('HELP')).text).not.toMatch(/\b(PORT|EPRT)\b/);
  });
});

describe('EPSV ALL', () => {
  it('drops a PORT given before it: the next transfer has no data connection set up, and nothing connects out', async () => {
    const ctx = await serverLogging('warn');
    cleanups.push(() => ctx.close());
    const c = await client(ctx.port);
    const listener = await activeListener();
    expect((await c.cmd(`PORT ${formatHostPort('127.0.0.1', listener.port)}`)).code).toBe(200);
    expect((await c.cmd('EPSV ALL')).code).toBe(200);
    expect((await c.cmd('LIST')).code).toBe(425);
    await new Promise((r) => setTimeout(r, 100));
    expect(listener.connections()).toBe(0);
  });
});

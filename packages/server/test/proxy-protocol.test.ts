import { once } from 'node:events';
import { connect } from 'node:net';
import { parseEpsvReply } from '@ftp/protocol';
import { MemoryProvider } from '@ftp/vfs';
import { afterEach, describe, expect, it } from 'vitest';
import { FtpServer, type ServerSettings } from '../src/index.js';
import { PASSWORD, RawClient, USER } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

function v2(src: string, sport: number): Buffer {
  const body = Buffer.alloc(12);
  src.split('.').forEach((o, i) => (body[i] = Number(o)));
  [127, 0, 0, 1].forEach((o, i) => (body[4 + i] = o));
  body.writeUInt16BE(sport, 8);
  body.writeUInt16BE(21, 10);
  return Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0, 12]), body]);
}

async function proxied(settings: Partial<ServerSettings> = {}) {
  const fs = new MemoryProvider();
  const events: Array<{ user: string; remoteAddress: string }> = [];
  const server = new FtpServer({
    settings: { failedLoginDelay: 0, passivePortRange: [47400, 47420], ...settings },
    driver: { authenticate: (_s, user, pass) => (user === USER && pass === PASSWORD ? { fs } : null) },
  });
  server.on('login', (e) => events.push(e));
  const { port } = await server.listen(0, '127.0.0.1', { proxyProtocol: true });
  cleanups.push(() => server.close());
  return { server, port, fs, events };
}

/** A control connection through a "proxy" that says the client is `client`. */
async function via(port: number, header: string | Buffer): Promise<RawClient> {
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close());
  c.send(typeof header === 'string' ? Buffer.from(header) : header);
  return c;
}

describe('PROXY protocol on control connections', () => {
  it('takes the client address from a v1 or v2 header, with the first command in the same segment', async () => {
    const { port, events } = await proxied();
    const c = await RawClient.connect(port);
    cleanups.push(() => c.close());
    c.send(Buffer.from(`PROXY TCP4 203.0.113.9 127.0.0.1 5555 21\r\nUSER ${USER}\r\n`));
    expect((await c.next()).code).toBe(220);
    expect((await c.next()).code).toBe(331);
    expect((await c.cmd(`PASS ${PASSWORD}`)).code).toBe(230);
    expect((await c.cmd('STAT')).lines.join('\n')).toContain('Connected from 203.0.113.9');
    const c2 = await via(port, v2('198.51.100.20', 4444));
    await c2.login();
    expect(events.map((e) => e.remoteAddress)).toEqual(['203.0.113.9', '198.51.100.20']);
  });

  it('closes a connection without a header, and one from outside proxyProtocolFrom', async () => {
    const { port } = await proxied();
    const c = await via(port, `USER ${USER}\r\n`);
    expect(await c.waitClosed(3000)).toBe(true);
    const strict = await proxied({ proxyProtocolFrom: ['10.0.0.0/8'] });
    const c2 = await via(strict.port, 'PROXY TCP4 203.0.113.9 127.0.0.1 5555 21\r\n');
    expect(await c2.waitClosed(3000)).toBe(true);
  });

  it('lets go at once of a connection that hangs up before its header (a load balancer health check)', async () => {
    const { port, server } = await proxied();
    const c = await RawClient.connect(port);
    cleanups.push(() => c.close());
    c.socket.end();
    const start = Date.now();
    expect(await c.waitClosed(3000)).toBe(true);
    expect(Date.now() - start).toBeLessThan(1000);
    expect(server.sessionCount).toBe(0);
  });

  it('bans the real client, not the load balancer', async () => {
    const { port } = await proxied({ maxLoginFailures: 2 });
    for (let i = 0; i < 2; i++) {
      const c = await via(port, 'PROXY TCP4 203.0.113.66 127.0.0.1 5555 21\r\n');
      expect((await c.next()).code).toBe(220);
      await c.cmd(`USER ${USER}`);
      await c.cmd('PASS wrong');
    }
    const banned = await via(port, 'PROXY TCP4 203.0.113.66 127.0.0.1 5556 21\r\n');
    expect((await banned.next()).code).toBe(421);
    const other = await via(port, 'PROXY TCP4 203.0.113.67 127.0.0.1 5557 21\r\n');
    await other.login();
  });

  it('maxSessionsPerIp counts an IPv6 client by its /64, however the header spells the address', async () => {
    const { port } = await proxied({ maxSessionsPerIp: 2 });
    const codes = async (header: string): Promise<number> => (await (await via(port, header)).next()).code;
    expect(await codes('PROXY TCP6 2001:db8:1:2::1 ::1 5555 21\r\n')).toBe(220);
    expect(await codes('PROXY TCP6 2001:db8:1:2:0:0:0:1 ::1 5556 21\r\n')).toBe(220);
    // Another address of the same /64: the same subscriber.
    expect(await codes('PROXY TCP6 2001:DB8:1:2::99 ::1 5557 21\r\n')).toBe(421);
    expect(await codes('PROXY TCP6 2001:db8:1:3::1 ::1 5558 21\r\n')).toBe(220);
    // An IPv4 client is counted by its address, also when the header gives it IPv4-mapped.
    expect(await codes('PROXY TCP4 198.51.100.9 127.0.0.1 5559 21\r\n')).toBe(220);
    expect(await codes('PROXY TCP6 0:0:0:0:0:ffff:198.51.100.9 ::1 5560 21\r\n')).toBe(220);
    expect(await codes('PROXY TCP6 ::FFFF:C633:6409 ::1 5561 21\r\n')).toBe(421);
    expect(await codes('PROXY TCP4 198.51.100.10 127.0.0.1 5562 21\r\n')).toBe(220);
  });

  it('bans a client however the header spells its address (IPv4-mapped, upper case, zeros written out)', async () => {
    const { port, events } = await proxied({ maxLoginFailures: 2 });
    for (const address of ['198.51.100.9', '0:0:0:0:0:ffff:198.51.100.9']) {
      const c = await via(port, `PROXY ${address.includes(':') ? 'TCP6' : 'TCP4'} ${address} ${address.includes(':') ? '::1' : '127.0.0.1'} 5555 21\r\n`);
      expect((await c.next()).code).toBe(220);
      await c.cmd(`USER ${USER}`);
      await c.cmd('PASS wrong');
    }
    expect((await (await via(port, 'PROXY TCP4 198.51.100.9 127.0.0.1 5556 21\r\n')).next()).code).toBe(421);
    expect((await (await via(port, 'PROXY TCP6 ::ffff:198.51.100.9 ::1 5557 21\r\n')).next()).code).toBe(421);
    const six = await via(port, 'PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 5558 21\r\n');
    await six.login();
    expect(events.map((e) => e.remoteAddress)).toEqual(['2001:db8::1']);
  });
});

describe('PROXY protocol on passive data connections (passiveProxyProtocol)', () => {
  it('routes a data connection by the client in its header and drops one for another client', async () => {
    const { port, fs } = await proxied({ passiveProxyProtocol: true });
    const c = await via(port, 'PROXY TCP4 203.0.113.9 127.0.0.1 5555 21\r\n');
    await c.login();
    const dataPort = parseEpsvReply((await c.cmd('EPSV')).text);
    // An intruder's connection (another client behind the same proxy) reaches nothing.
    const intruder = connect({ port: dataPort, host: '127.0.0.1' });
    intruder.on('error', () => {});
    intruder.write(v2('198.51.100.1', 1));
    await once(intruder, 'close');
    const data = connect({ port: dataPort, host: '127.0.0.1' });
    await once(data, 'connect');
    data.write(Buffer.concat([v2('203.0.113.9', 6000), Buffer.from('through the balancer')]));
    c.send('STOR up.txt');
    expect((await c.next()).code).toBe(150);
    data.end();
    expect((await c.next()).code).toBe(226);
    let text = '';
    for await (const chunk of await fs.createReadStream('/up.txt')) text += String(chunk);
    expect(text).toBe('through the balancer');
  });
});

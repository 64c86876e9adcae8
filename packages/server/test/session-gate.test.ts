import { platform } from 'node:os';
import { afterEach, expect, it } from 'vitest';
import { MemoryProvider } from '@ftp/vfs';
import { FtpServer, SessionCounts, type SessionGate, type SessionGateVerdict } from '../src/index.js';
import { PASSWORD, RawClient, USER } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A gate over one SessionCounts that records its calls (what a supervisor process does for its workers). */
function countingGate(maxSessions: number, maxSessionsPerIp: number): SessionGate & { counts: SessionCounts; calls: string[] } {
  const counts = new SessionCounts(maxSessions, maxSessionsPerIp);
  const calls: string[] = [];
  return {
    counts,
    calls,
    enter(ip) {
      const verdict = counts.enter(ip);
      calls.push(`enter ${verdict}`);
      return verdict;
    },
    leave(ip) {
      calls.push('leave');
      counts.leave(ip);
    },
  };
}

async function start(gate: SessionGate, port = 0): Promise<{ server: FtpServer; port: number }> {
  const fs = new MemoryProvider();
  const server = new FtpServer({
    sessionGate: gate,
    settings: { failedLoginDelay: 0, passivePortRange: [40000, 44999] },
    driver: { authenticate: (_s, user, pass) => (user === USER && pass === PASSWORD ? { fs } : null) },
  });
  const address = await server.listen(port, '127.0.0.1', { reusePort: port !== 0 || undefined });
  cleanups.push(() => server.close());
  return { server, port: address.port };
}

async function connect(port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close());
  return c;
}

const until = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
};

it('two servers sharing a gate keep maxSessionsPerIp together, and give sessions back when they end', async () => {
  const gate = countingGate(0, 1);
  const a = await start(gate);
  const b = await start(gate);
  const refused: string[] = [];
  b.server.on('session:refused', (e) => refused.push(e.reason));
  const first = await connect(a.port);
  expect((await first.next()).code).toBe(220);
  const second = await connect(b.port);
  const reply = await second.next();
  expect(reply.code).toBe(421);
  expect(reply.lines.join(' ')).toMatch(/your address/);
  expect(await second.waitClosed()).toBe(true);
  expect(refused).toEqual(['max-sessions-per-ip']);
  first.close();
  await until(() => gate.counts.size === 0);
  expect(gate.counts.size).toBe(0);
  const third = await connect(b.port);
  await third.login();
  expect(gate.calls).toEqual(['enter ok', 'enter max-sessions-per-ip', 'leave', 'enter ok']);
});

it('maxSessions through the gate: 421 with the server-wide text', async () => {
  const gate = countingGate(1, 0);
  const a = await start(gate);
  const b = await start(gate);
  const first = await connect(a.port);
  expect((await first.next()).code).toBe(220);
  const second = await connect(b.port);
  const reply = await second.next();
  expect(reply.code).toBe(421);
  expect(reply.lines.join(' ')).toMatch(/Too many connections, try again later/);
});

it('a session that ends before the gate answers is given back at once', async () => {
  let release!: (v: SessionGateVerdict) => void;
  const counts = new SessionCounts(0, 0);
  let leaves = 0;
  const gate: SessionGate = {
    enter: (ip) =>
      new Promise((resolve) => {
        release = (v) => {
          counts.enter(ip);
          resolve(v);
        };
      }),
    leave: (ip) => {
      leaves++;
      counts.leave(ip);
    },
  };
  const a = await start(gate);
  const c = await connect(a.port);
  await until(() => release !== undefined && a.server.sessionCount === 1);
  c.close();
  await until(() => a.server.sessionCount === 0);
  expect(a.server.sessionCount).toBe(0);
  release('ok');
  await until(() => leaves === 1);
  expect(leaves).toBe(1);
  expect(counts.size).toBe(0);
});

it('a gate that fails admits the session (a coordinator that is down must not lock clients out)', async () => {
  const gate: SessionGate = {
    enter: () => Promise.reject(new Error('supervisor gone')),
    leave: () => {
      throw new Error('must not be called for a session the gate did not count');
    },
  };
  const a = await start(gate);
  const c = await connect(a.port);
  await c.login();
  c.close();
  await until(() => a.server.sessionCount === 0);
  expect(a.server.sessionCount).toBe(0);
});

const reusePortWorks = platform() === 'linux';
it.skipIf(!reusePortWorks)('reusePort: two servers listen on one port and the kernel gives both of them connections (SKIPPED: SO_REUSEPORT balancing is tested on Linux only)', async () => {
  const gate = countingGate(0, 0);
  const a = await start(gate);
  await a.server.close();
  // The port a free one a moment ago; both bind it with reusePort.
  const one = await start(gate, a.port);
  const two = await start(gate, a.port);
  expect(two.port).toBe(one.port);
  const served = { one: 0, two: 0 };
  one.server.on('session:open', () => served.one++);
  two.server.on('session:open', () => served.two++);
  for (let i = 0; i < 40 && (served.one === 0 || served.two === 0); i++) {
    const c = await connect(one.port);
    expect((await c.next()).code).toBe(220);
    c.close();
  }
  expect(served.one).toBeGreaterThan(0);
  expect(served.two).toBeGreaterThan(0);
});

it('SessionCounts: limits in total and per address, gives back only what it counted', () => {
  const counts = new SessionCounts(3, 2);
  expect(counts.enter('a')).toBe('ok');
  expect(counts.enter('a')).toBe('ok');
  expect(counts.enter('a')).toBe('max-sessions-per-ip');
  expect(counts.enter('b')).toBe('ok');
  expect(counts.enter('c')).toBe('max-sessions');
  expect([...counts.byAddress()]).toEqual([
    ['a', 2],
    ['b', 1],
  ]);
  expect(counts.leave('a', 5)).toBe(2);
  expect(counts.leave('nobody')).toBe(0);
  expect(counts.size).toBe(1);
  expect(counts.enter('c')).toBe('ok');
});

it('SessionCounts: an IPv6 address counts under its /64, an IPv4 address on its own', () => {
  const counts = new SessionCounts(0, 2);
  expect(counts.enter('2001:db8:1:2::1')).toBe('ok');
  expect(counts.enter('2001:db8:1:2:aaaa::2')).toBe('ok');
  expect(counts.enter('2001:db8:1:2::3')).toBe('max-sessions-per-ip');
  expect(counts.enter('2001:db8:1:3::1')).toBe('ok');
  expect(counts.enter('198.51.100.1')).toBe('ok');
  expect(counts.enter('198.51.100.2')).toBe('ok');
  expect([...counts.byAddress()]).toEqual([
    ['2001:db8:1:2::/64', 2],
    ['2001:db8:1:3::/64', 1],
    ['198.51.100.1', 1],
    ['198.51.100.2', 1],
  ]);
  // Given back by any address of the /64, or by the key byAddress gave (as a supervisor does for a lost worker).
  expect(counts.leave('2001:db8:1:2::ffff')).toBe(1);
  expect(counts.leave('2001:db8:1:2::/64', 5)).toBe(1);
  expect(counts.enter('2001:db8:1:2::3')).toBe('ok');
});

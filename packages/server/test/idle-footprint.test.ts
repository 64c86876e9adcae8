import { createServer, Socket, type AddressInfo, type Server } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { afterEach, expect, it } from 'vitest';
import { MemoryProvider } from '@ftp/vfs';
import { FtpServer } from '../src/index.js';
import type { Session } from '../src/session.js';
import { PASSWORD, RawClient, USER } from './helpers.js';

// What an idle logged-in session keeps alive: each test would fail were the session to keep it.

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A server logging at `level` that counts the child loggers made, and hands out its sessions as they log in. */
async function server(level: string): Promise<{ port: number; children: () => number; sessions: Session[]; lines: string[] }> {
  const lines: string[] = [];
  const logger = pino({ level }, new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(chunk.toString()), cb()) }));
  let children = 0;
  const child = logger.child.bind(logger);
  logger.child = ((...args: Parameters<Logger['child']>) => (children++, child(...args))) as Logger['child'];
  const fs = new MemoryProvider();
  const sessions: Session[] = [];
  const ftp = new FtpServer({
    logger,
    settings: { failedLoginDelay: 0, modeZ: true },
    driver: {
      authenticate: (s, user, pass) => {
        if (user !== USER || pass !== PASSWORD) return null;
        sessions.push(s as Session);
        return { fs };
      },
    },
  });
  const { port } = await ftp.listen(0, '127.0.0.1');
  cleanups.push(() => ftp.close());
  return { port, children: () => children, sessions, lines };
}

async function loggedIn(port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close());
  await c.login();
  expect((await c.cmd('NOOP')).code).toBe(200);
  return c;
}

it('a session whose server logs only warnings and worse makes no child logger', async () => {
  const { port, children } = await server('warn');
  await loggedIn(port);
  expect(children()).toBe(0);
});

it('an idle session drops the loggers it made for its log lines, and makes them again when it logs', async () => {
  const { port, sessions, lines } = await server('info');
  const c = await loggedIn(port);
  const [s] = sessions;
  const held = s as unknown as { logger: Logger | null };
  expect(held.logger).toBeNull();
  // A line logged after the drop still carries the session's bindings and the user's.
  expect((await c.cmd('USER nobody')).code).toBe(331);
  expect((await c.cmd('PASS wrong')).code).toBe(530);
  const failed = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'login failed');
  expect(failed).toMatchObject({ session: s!.id, remote: '127.0.0.1', user: 'nobody' });
});

it('a session socket has one error listener, not one per layer', async () => {
  const { port, sessions } = await server('silent');
  await loggedIn(port);
  expect(sessions[0]!.socket.listenerCount('error')).toBe(1);
});

/** What a session holds, for the tests below (private fields read on purpose: they are what costs memory). */
interface Held {
  state: object;
  logUser: unknown;
  conn: { reader: unknown };
}
const held = (s: Session): Held => s as unknown as Held;

it('idle logged-in sessions share one frozen state of defaults instead of a copy each', async () => {
  const { port, sessions } = await server('silent');
  await loggedIn(port);
  await loggedIn(port);
  const [a, b] = sessions.map(held);
  expect(typeof a!.state).toBe('object');
  expect(Object.isFrozen(a!.state)).toBe(true);
  expect(a!.state).toBe(b!.state);
  expect(sessions[0]!.authenticated).toBe(true);
});

it('TYPE I, which most clients send at login, switches to the shared state of that type, not to a copy', async () => {
  const { port, sessions } = await server('silent');
  const c = await loggedIn(port);
  const d = await loggedIn(port);
  const [a, b] = sessions;
  expect(a!.transferType).toBe('A');
  expect((await c.cmd('TYPE I')).code).toBe(200);
  expect((await d.cmd('TYPE I')).code).toBe(200);
  expect(a!.transferType).toBe('I');
  expect(Object.isFrozen(held(a!).state)).toBe(true);
  expect(held(a!).state).toBe(held(b!).state);
  expect((await c.cmd('TYPE A')).code).toBe(200);
  expect(held(a!).state).not.toBe(held(b!).state);
  expect(Object.isFrozen(held(a!).state)).toBe(true);
});

it('a session gets its own state at its first change, which no other session sees', async () => {
  const { port, sessions } = await server('silent');
  const c = await loggedIn(port);
  await loggedIn(port);
  expect((await c.cmd('TYPE I')).code).toBe(200);
  expect((await c.cmd('MODE Z')).code).toBe(200);
  const [a, b] = sessions;
  expect(held(a!).state).not.toBe(held(b!).state);
  expect(Object.isFrozen(held(a!).state)).toBe(false);
  expect(a!.transferType).toBe('I');
  expect(b!.transferType).toBe('A');
  expect(a!.mode).toBe('Z');
  expect(b!.mode).toBe('S');
  // Back to the defaults of its type: once idle, the session shares them again.
  expect((await c.cmd('MODE S')).code).toBe(200);
  expect(Object.isFrozen(held(a!).state)).toBe(true);
  expect((await c.cmd('TYPE A')).code).toBe(200);
  expect(held(a!).state).toBe(held(b!).state);
});

it('after a passive listing the idle session shares the defaults again (no data setup, no rate limiter kept)', async () => {
  const { port, sessions } = await server('silent');
  const c = await loggedIn(port);
  const data = await c.passive();
  const closed = new Promise((r) => data.on('close', r));
  data.resume();
  expect((await c.cmd('LIST')).code).toBe(150);
  expect((await c.next()).code).toBe(226);
  await closed;
  expect((await c.cmd('NOOP')).code).toBe(200);
  expect(Object.isFrozen(held(sessions[0]!).state)).toBe(true);
});

it('a logged-in session keeps its user for log lines as a name, not as a bindings object', async () => {
  const { port, sessions, lines } = await server('info');
  await loggedIn(port);
  expect(held(sessions[0]!).logUser).toBe(USER);
  const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'logged in');
  expect(logged).toMatchObject({ session: sessions[0]!.id, remote: '127.0.0.1', user: USER });
});

it('an idle control connection has no line reader of its own; a partial line gets one until it is complete', async () => {
  const { port, sessions } = await server('silent');
  const c = await loggedIn(port);
  const conn = held(sessions[0]!).conn;
  expect(conn.reader).toBeNull();
  c.send(Buffer.from('NO'));
  await new Promise((r) => setTimeout(r, 50));
  expect(conn.reader).not.toBeNull();
  expect((await c.cmd('OP')).code).toBe(200);
  expect(conn.reader).toBeNull();
});

it('a Telnet sub-negotiation spanning chunks is still skipped (the reader that saw it is kept)', async () => {
  const { port, sessions } = await server('silent');
  const c = await loggedIn(port);
  // IAC SB … IAC SE sent in three chunks: none of it is a command. (A line end would end it: FTP negotiates no
  // options, and one left open must not swallow every later command.)
  c.send(Buffer.from([0xff, 0xfa, 0x18, ...Buffer.from('DELE x')]));
  await new Promise((r) => setTimeout(r, 50));
  c.send(Buffer.from('RMD y'));
  await new Promise((r) => setTimeout(r, 50));
  expect(held(sessions[0]!).conn.reader).not.toBeNull();
  c.send(Buffer.from([0xff, 0xf0]));
  expect((await c.cmd('NOOP')).code).toBe(200);
});

it('sessions of a listener bound to one address do not ask their sockets for the local address', async () => {
  const sessions: Session[] = [];
  const ftp = new FtpServer({
    driver: { authenticate: (s, user, pass) => (user === USER && pass === PASSWORD ? (sessions.push(s as Session), { fs: new MemoryProvider() }) : null) },
  });
  const { port } = await ftp.listen(0, '127.0.0.1');
  cleanups.push(() => ftp.close());
  // Counts the reads of each accepted socket's local address (Node caches the address on the socket once read).
  let asked = 0;
  const [listener] = (ftp as unknown as { sockets: Array<{ server: Server }> }).sockets;
  listener!.server.prependListener('connection', (socket: Socket) => {
    const read = Object.getOwnPropertyDescriptor(Socket.prototype, 'localAddress')!.get!;
    Object.defineProperty(socket, 'localAddress', { get: () => (asked++, read.call(socket)) });
  });
  const c = await loggedIn(port);
  expect(asked).toBe(0);
  expect(sessions[0]!.localAddress).toBe('127.0.0.1');
  // PASV still advertises it.
  expect((await c.cmd('PASV')).text).toMatch(/\(127,0,0,1,\d+,\d+\)/);
});

it('a connection handed to handle() takes its local address from its socket', async () => {
  const sessions: Session[] = [];
  const ftp = new FtpServer({
    driver: { authenticate: (s, user, pass) => (user === USER && pass === PASSWORD ? (sessions.push(s as Session), { fs: new MemoryProvider() }) : null) },
  });
  const outer = createServer((socket) => ftp.handle(socket));
  await new Promise<void>((r) => outer.listen(0, '127.0.0.1', r));
  cleanups.push(() => ftp.close(), () => new Promise((r) => outer.close(r)));
  const c = await loggedIn((outer.address() as AddressInfo).port);
  expect(sessions[0]!.localAddress).toBe('127.0.0.1');
  expect((await c.cmd('EPSV')).code).toBe(229);
});

it('sessions that start after a settings change start with the changed defaults, as before the state was shared', async () => {
  const sessions: Session[] = [];
  const ftp = new FtpServer({
    driver: { authenticate: (s, user, pass) => (user === USER && pass === PASSWORD ? (sessions.push(s as Session), { fs: new MemoryProvider() }) : null) },
  });
  const { port } = await ftp.listen(0, '127.0.0.1');
  cleanups.push(() => ftp.close());
  await loggedIn(port);
  (ftp.settings as { defaultTransferType: 'A' | 'I' }).defaultTransferType = 'I';
  await loggedIn(port);
  expect(sessions.map((s) => s.transferType)).toEqual(['A', 'I']);
});

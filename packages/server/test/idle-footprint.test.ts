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
    settings: { failedLoginDelay: 0 },
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
  const held = s as unknown as { logger: Logger | null; baseLogger: Logger | null };
  expect(held.logger).toBeNull();
  expect(held.baseLogger).toBeNull();
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

import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, expect, it } from 'vitest';
import { MemoryProvider } from '@ftp/vfs';
import { FtpServer } from '../src/index.js';
import { PASSWORD, RawClient, USER } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serverLogging(level: string): Promise<{ port: number; lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const fs = new MemoryProvider();
  const server = new FtpServer({
    logger: pino({ level }, sink),
    settings: { failedLoginDelay: 0 },
    driver: { authenticate: (_s, user, pass) => (user === USER && pass === PASSWORD ? { fs } : null) },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  cleanups.push(() => server.close());
  return { port, lines };
}

it('session log lines carry the session, the remote address and, once known, the user (loggers made at first use)', async () => {
  const { port, lines } = await serverLogging('debug');
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close());
  await c.login();
  expect((await c.cmd('NOOP')).code).toBe(200);
  await c.cmd('QUIT');
  await new Promise((r) => setTimeout(r, 50));
  const connected = lines.find((l) => l.msg === 'connected');
  expect(connected).toMatchObject({ remote: '127.0.0.1' });
  expect(typeof connected?.session).toBe('number');
  expect(lines.find((l) => l.msg === 'logged in')).toMatchObject({ session: connected?.session, remote: '127.0.0.1', user: USER });
  const commands = lines.filter((l) => l.msg === 'command').map((l) => l.cmd);
  expect(commands).toContain('NOOP');
  // The password never reaches the log.
  expect(commands).toContain('PASS ****');
  expect(JSON.stringify(lines)).not.toContain(PASSWORD);
});

it('a server that logs nothing still serves sessions (no session logger is made)', async () => {
  const { port, lines } = await serverLogging('silent');
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close());
  await c.login();
  expect((await c.cmd('PWD')).code).toBe(257);
  expect(lines).toEqual([]);
});

it('after REIN, log lines no longer name the user who was logged in', async () => {
  const { port, lines } = await serverLogging('debug');
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close());
  await c.login();
  expect((await c.cmd('REIN')).code).toBe(220);
  expect((await c.cmd('NOOP')).code).toBe(200);
  await c.cmd('QUIT');
  await new Promise((r) => setTimeout(r, 50));
  const noop = lines.find((l) => l.msg === 'command' && l.cmd === 'NOOP');
  expect(noop).toBeDefined();
  expect(noop).not.toHaveProperty('user');
  expect(typeof noop?.session).toBe('number');
});

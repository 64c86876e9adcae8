import { afterEach, expect, it } from 'vitest';
import { MemoryProvider, quota, vfsError, type FsProvider } from '@ftp/vfs';
import { FtpServer, type ChangeEvent } from '../src/index.js';
import { PASSWORD, RawClient, serverLogging as loggingServer, USER, writeAndClose } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serverLogging(level: string, fs?: FsProvider): Promise<{ port: number; lines: Array<Record<string, unknown>> }> {
  const logging = await loggingServer(level, fs);
  cleanups.push(() => logging.close());
  return logging;
}

it('session log lines carry the session, the remote address and, once known, the user (loggers made at first use)', async () => {
  const { port, lines } = await serverLogging('debug');
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close());
  await c.login();
  expect((await c.cmd('NOOP')).code).toBe(200);
  // ACCT's argument is an account's password as often as not (RFC 959): never logged either.
  expect((await c.cmd('ACCT acct-secret-7')).code).toBe(202);
  // A password typed without its space is no command, and still a password.
  expect((await c.cmd('PASSglued-secret-8')).code).toBe(500);
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
  expect(commands).toContain('ACCT ****');
  expect(JSON.stringify(lines)).not.toContain('acct-secret-7');
  expect(JSON.stringify(lines)).not.toContain('glued-secret-8');
});

it('a command with bytes that are not UTF-8 is logged with them as \\xNN, as its path is', async () => {
  const { port, lines } = await serverLogging('debug');
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close());
  await c.login();
  c.send(Buffer.from([...Buffer.from('MKD bad_'), 0xe9, ...Buffer.from('_dir\r\n')]));
  expect((await c.next()).code).toBe(257);
  await c.cmd('QUIT');
  await new Promise((r) => setTimeout(r, 50));
  // JSON made the byte U+FFFD: `bad_\xE9_dir` and `bad_\xE8_dir` read alike.
  expect(lines.filter((l) => l.msg === 'command').map((l) => l.cmd)).toContain('MKD bad_\\xE9_dir');
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

/** STOR of 100 kB that the storage refuses after the 150: the final reply's code. */
async function refusedStor(c: RawClient): Promise<number> {
  const data = await c.passive();
  // The server drops the data connection at the refusal: the reset is expected.
  data.on('error', () => undefined);
  c.send('STOR big');
  expect((await c.next()).code).toBe(150);
  await writeAndClose(data, Buffer.alloc(100_000, 1)).catch(() => undefined);
  return (await c.next()).code;
}

it('a transfer the client caused to fail (over quota, a missing file) is no warning; its transfer line says why', async () => {
  const { port, lines } = await serverLogging('info', quota(new MemoryProvider(), { bytes: 10 }));
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close());
  await c.login();
  expect(await refusedStor(c)).toBe(552);
  await c.passive();
  expect((await c.cmd('RETR missing-file')).code).toBe(550);
  await c.cmd('QUIT');
  await new Promise((r) => setTimeout(r, 50));
  expect(lines.find((l) => l.msg === 'transfer' && l.direction === 'upload')).toMatchObject({ outcome: 'failed', error: expect.stringMatching(/quota/i) });
  expect(lines.filter((l) => (l.level as number) >= 40)).toEqual([]);
});

it('a transfer the storage failed (a full disk) is a warning with its cause', async () => {
  const { port, lines } = await serverLogging('info', new MemoryProvider({ capacity: 10 }));
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close());
  await c.login();
  expect(await refusedStor(c)).toBeGreaterThanOrEqual(450);
  await new Promise((r) => setTimeout(r, 50));
  expect(lines.find((l) => l.msg === 'transfer failed')).toMatchObject({ level: 40, err: { code: 'ENOSPC' } });
});

/** The `changed` lines an info-level server over `fs` logs while `commands` run in a logged-in session. */
async function changesLogged(fs: FsProvider, commands: (c: RawClient) => Promise<void>): Promise<Array<Record<string, unknown>>> {
  const { port, lines } = await serverLogging('info', fs);
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close());
  await c.login();
  await commands(c);
  await c.cmd('QUIT');
  await new Promise((r) => setTimeout(r, 50));
  return lines.filter((l) => l.msg === 'changed');
}

it('changes made by commands are logged at info level and emitted as `change` events, with who made them', async () => {
  const fs = new MemoryProvider();
  await fs.writeFile('/old.txt', 'x');
  await fs.writeFile('/gone.txt', 'y');
  const lines = await changesLogged(fs, async (c) => {
    expect((await c.cmd('MKD made')).code).toBe(257);
    expect((await c.cmd('RNFR old.txt')).code).toBe(350);
    expect((await c.cmd('RNTO made/new.txt')).code).toBe(250);
    expect((await c.cmd('DELE gone.txt')).code).toBe(250);
    expect((await c.cmd('MFMT 20200102030405 made/new.txt')).code).toBe(213);
    expect((await c.cmd('DELE made/new.txt')).code).toBe(250);
    expect((await c.cmd('RMD made')).code).toBe(250);
    // Refused: nothing changed, nothing said at info level.
    expect((await c.cmd('DELE missing.txt')).code).toBe(550);
  });
  expect(lines.map(({ action, path, to, timeSet, user }) => ({ action, path, to, timeSet, user }))).toEqual([
    { action: 'make-folder', path: '/made', to: undefined, timeSet: undefined, user: USER },
    { action: 'rename', path: '/old.txt', to: '/made/new.txt', timeSet: undefined, user: USER },
    { action: 'delete', path: '/gone.txt', to: undefined, timeSet: undefined, user: USER },
    { action: 'set-modified', path: '/made/new.txt', to: undefined, timeSet: '2020-01-02T03:04:05.000Z', user: USER },
    { action: 'delete', path: '/made/new.txt', to: undefined, timeSet: undefined, user: USER },
    { action: 'remove-folder', path: '/made', to: undefined, timeSet: undefined, user: USER },
  ]);
});

it('the `change` event carries the session and the user', async () => {
  const fs = new MemoryProvider();
  const server = new FtpServer({
    settings: { failedLoginDelay: 0 },
    driver: { authenticate: (_s, user, pass) => (user === USER && pass === PASSWORD ? { fs } : null) },
  });
  const events: ChangeEvent[] = [];
  server.on('change', (e) => events.push(e));
  const { port } = await server.listen(0, '127.0.0.1');
  cleanups.push(() => server.close());
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close());
  await c.login();
  expect((await c.cmd('MKD d')).code).toBe(257);
  expect(events).toEqual([{ session: expect.any(Number), user: USER, action: 'make-folder', path: '/d' }]);
});

it('a rename over a file says it replaced one; a COMB whose part cannot be deleted still reports the target it wrote', async () => {
  class StuckPart extends MemoryProvider {
    override async unlink(path: string): Promise<void> {
      if (path === '/p2') throw vfsError('EACCES', 'permission denied', path);
      return super.unlink(path);
    }
  }
  const fs = new StuckPart();
  for (const name of ['a', 'b', 'p1', 'p2']) await fs.writeFile(`/${name}`, name);
  const lines = await changesLogged(fs, async (c) => {
    expect((await c.cmd('RNFR a')).code).toBe(350);
    expect((await c.cmd('RNTO b')).code).toBe(250);
    expect((await c.cmd('COMB t p1 p2')).code).toBe(550);
  });
  expect(lines.map(({ action, path, to, replaced, parts }) => ({ action, path, to, replaced, parts }))).toEqual([
    { action: 'rename', path: '/a', to: '/b', replaced: true, parts: undefined },
    { action: 'combine', path: '/t', to: undefined, replaced: undefined, parts: ['/p1', '/p2'] },
  ]);
});

it('a name that is not UTF-8 is logged with its bytes written out, not as U+FFFD', async () => {
  const fs = new MemoryProvider();
  // Names as a client with an 8-bit charset sends them (byte escapes: see @ftp/protocol's byte-escapes).
  await fs.writeFile('/caf\udce9', 'x');
  await fs.writeFile('/caf\udce8', 'y');
  const lines = await changesLogged(fs, async (c) => {
    for (const byte of [0xe9, 0xe8]) {
      c.send(Buffer.concat([Buffer.from('DELE caf'), Buffer.from([byte]), Buffer.from('\r\n')]));
      expect((await c.next()).code).toBe(250);
    }
  });
  expect(lines.map((l) => l.path)).toEqual(['/caf\\xE9', '/caf\\xE8']);
});

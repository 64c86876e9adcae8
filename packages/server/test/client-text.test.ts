import { Writable } from 'node:stream';
import { pino } from 'pino';
import { MemoryProvider } from '@ftp/vfs';
import { afterEach, describe, expect, it } from 'vitest';
import { FtpServer } from '../src/index.js';
import { PASSWORD, RawClient, serverLogging, USER } from './helpers.js';

/** Found by fuzzing the server from outside (what a client's own bytes can make the server say or log). */
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('words the client sent, quoted in replies', () => {
  it('OPTS and SITE quote an unknown name with its control characters as ? (no terminal escapes)', async () => {
    const s = await serverLogging('silent');
    cleanups.push(() => s.close());
    const c = await RawClient.connect(s.port);
    cleanups.push(() => c.close());
    await c.login();
    expect(await c.cmd('OPTS \x1b]0;pwned\x07 ON')).toMatchObject({ code: 501, text: 'Option ?]0;PWNED? not understood.' });
    expect(await c.cmd('SITE \x1b]0;pwned\x07ZZ')).toMatchObject({ code: 500, text: 'SITE ?]0;PWNED?ZZ not understood.' });
  });
});

describe('a Telnet sub-negotiation never closed (IAC SB without IAC SE)', () => {
  it('ends at the line end: the commands after it are answered, not swallowed until the idle timeout', async () => {
    const s = await serverLogging('silent');
    cleanups.push(() => s.close());
    const c = await RawClient.connect(s.port);
    cleanups.push(() => c.close());
    await c.login();
    c.send(Buffer.from([...Buffer.from('NOOP '), 0xff, 0xfa, 0x18, ...Buffer.from('junk\r\n')]));
    expect((await c.next()).code).toBe(200);
    expect((await c.cmd('NOOP')).code).toBe(200);
    expect((await c.cmd('QUIT')).code).toBe(221);
  });
});

describe('warnings a client can cause as often as it likes', () => {
  it('a line too long is a warning once a session, then a debug line (it is answered 500 every time)', async () => {
    const s = await serverLogging('debug');
    cleanups.push(() => s.close());
    const c = await RawClient.connect(s.port);
    cleanups.push(() => c.close());
    expect((await c.next()).code).toBe(220);
    // Before login: nothing to lose for a client that wants the log filled.
    for (let i = 0; i < 5; i++) expect((await c.cmd(`NOOP ${'x'.repeat(5000)}`)).code).toBe(500);
    const tooLong = s.lines.filter((l) => String(l.msg).startsWith('command line too long'));
    expect(tooLong.map((l) => l.level)).toEqual([40, 20, 20, 20, 20]);
  });
});

describe('ALLO from a user who may store nothing', () => {
  it('is answered 202 without asking storage, so no warning is logged however often it comes', async () => {
    const logged: string[] = [];
    const server = new FtpServer({
      logger: pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, cb) => (logged.push(chunk.toString()), cb()) })),
      settings: { failedLoginDelay: 0 },
      anonymous: { fs: new MemoryProvider() },
      driver: { authenticate: (_s, u, p) => (u === USER && p === PASSWORD ? { fs: new MemoryProvider() } : null) },
    });
    const { port } = await server.listen(0, '127.0.0.1');
    cleanups.push(() => server.close());
    const c = await RawClient.connect(port);
    cleanups.push(() => c.close());
    await c.login('anonymous', 'guest@example.org');
    for (let i = 0; i < 20; i++) expect((await c.cmd('ALLO 1')).code).toBe(202);
    expect(logged.filter((l) => l.includes('"level":40'))).toEqual([]);
  });
});

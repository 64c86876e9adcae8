// Names that are not UTF-8 (a client's 8-bit charset): kept byte for byte where storage keeps raw names, read as
// Latin-1 where it keeps UTF-8 text only.
import type { Socket } from 'node:net';
import { MemoryProvider, SqliteProvider, type FsProvider } from '@ftp/vfs';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerSettings } from '../src/index.js';
import { RawClient, readAll, startServer, writeAndClose } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** `text` with `\xNN` written as raw bytes (Latin-1), the way an 8-bit client sends it. */
const raw = (text: string): Buffer => Buffer.from(text, 'latin1');

async function session(fs: FsProvider, settings: Partial<ServerSettings> = {}): Promise<{ c: RawClient; control: Buffer[] }> {
  const ctx = await startServer({ fs, settings });
  cleanups.push(() => ctx.close());
  const c = await RawClient.binarySession(ctx.port, cleanups);
  // What the server writes on the control connection, as bytes.
  const control: Buffer[] = [];
  c.socket.on('data', (d: Buffer) => control.push(d));
  return { c, control };
}

async function store(c: RawClient, name: Buffer, body: string): Promise<void> {
  const socket = await c.passive();
  c.send(Buffer.concat([raw('STOR '), name, raw('\r\n')]));
  expect((await c.next()).code).toBe(150);
  await writeAndClose(socket, body);
  expect((await c.next()).code).toBe(226);
}

async function download(c: RawClient, command: Buffer): Promise<Buffer> {
  const socket: Socket = await c.passive();
  c.send(Buffer.concat([command, raw('\r\n')]));
  expect((await c.next()).code).toBe(150);
  const data = await readAll(socket);
  expect((await c.next()).code).toBe(226);
  return data;
}

describe('names that are not UTF-8, on storage that keeps raw names', () => {
  it('are stored, listed and found by the very bytes the client sent', async () => {
    const fs = new MemoryProvider();
    const { c, control } = await session(fs);
    await store(c, raw('caf\xe9.txt'), 'first');
    await store(c, raw('caf\xe8.txt'), 'second');
    expect((await fs.stat('/caf\udce9.txt')).size).toBe(5);
    expect((await fs.stat('/caf\udce8.txt')).size).toBe(6);

    const names = (await download(c, raw('NLST'))).toString('latin1').split('\r\n').filter(Boolean).sort();
    expect(names).toEqual(['caf\xe8.txt', 'caf\xe9.txt']);
    expect((await download(c, raw('LIST'))).includes(raw(' caf\xe9.txt\r\n'))).toBe(true);
    expect((await download(c, raw('MLSD'))).includes(raw('; caf\xe9.txt\r\n'))).toBe(true);
    expect((await download(c, raw('RETR caf\xe9.txt'))).toString()).toBe('first');

    // Replies name it by the same bytes; 0xFF goes as IAC IAC on the control connection.
    c.send(raw('MKD d\xff\xff\r\n'));
    expect(await c.next()).toMatchObject({ code: 257, text: '"/d\udcff" created.' });
    expect(Buffer.concat(control).includes(raw('257 "/d\xff\xff"'))).toBe(true);
    c.send(raw('CWD d\xff\xff\r\n'));
    expect((await c.next()).code).toBe(250);
    c.send(raw('PWD\r\n'));
    expect((await c.next()).text).toMatch(/^"\/d\udcff"/);
    c.send(raw('MLST /caf\xe9.txt\r\n'));
    expect((await c.next()).code).toBe(250);
    expect(Buffer.concat(control).includes(raw(' /caf\xe9.txt\r\n'))).toBe(true);
  });
});

describe('names that are not UTF-8, on storage that keeps UTF-8 text', () => {
  it('are stored as their bytes read as Latin-1, and two such names stay two', async () => {
    const fs = new SqliteProvider();
    cleanups.push(() => fs.close());
    const { c } = await session(fs);
    await store(c, raw('caf\xe9.txt'), 'first');
    await store(c, raw('caf\xe8.txt'), 'second');
    expect((await fs.stat('/café.txt')).size).toBe(5);
    expect((await fs.stat('/cafè.txt')).size).toBe(6);
    c.send(raw('SIZE caf\xe9.txt\r\n'));
    expect(await c.next()).toMatchObject({ code: 213, text: '5' });
    const names = (await download(c, raw('NLST'))).toString('utf8').split('\r\n').filter(Boolean).sort();
    expect(names).toEqual(['cafè.txt', 'café.txt']);
  });
});

describe('bytes that are not UTF-8 elsewhere', () => {
  it('count as one byte each against maxPathLength', async () => {
    const { c } = await session(new MemoryProvider(), { maxPathLength: 100 });
    // 61 bytes: within the limit (as U+FFFD's three bytes each it would be 181)
    c.send(Buffer.concat([raw('MKD '), Buffer.alloc(60, 0xe9), raw('\r\n')]));
    expect((await c.next()).code).toBe(257);
    c.send(Buffer.concat([raw('MKD '), Buffer.alloc(101, 0xe9), raw('\r\n')]));
    expect((await c.next()).code).toBe(553);
  });

  it('in credentials are read as Latin-1, so an 8-bit client logs in and no such byte matches another', async () => {
    const seen: string[] = [];
    const fs = new MemoryProvider();
    const ctx = await startServer({
      settings: { failedLoginDelay: 0 },
      driver: {
        authenticate: (_s, user, pass) => {
          seen.push(`${user}:${pass}`);
          return (user === 'ü' && pass === 'pé') || (user === 'r' && pass === 'p\ufffd') ? { fs } : null;
        },
      },
    });
    cleanups.push(() => ctx.close());
    const login = async (user: Buffer, pass: Buffer): Promise<number> => {
      const c = await RawClient.connect(ctx.port);
      cleanups.push(() => c.close());
      expect((await c.next()).code).toBe(220);
      c.send(Buffer.concat([raw('USER '), user, raw('\r\n')]));
      expect((await c.next()).code).toBe(331);
      c.send(Buffer.concat([raw('PASS '), pass, raw('\r\n')]));
      return (await c.next()).code;
    };
    expect(await login(raw('\xfc'), raw('p\xe9'))).toBe(230);
    expect(await login(Buffer.from('ü'), Buffer.from('pé'))).toBe(230);
    expect(await login(raw('r'), raw('p\x80'))).toBe(530);
    expect(await login(raw('r'), raw('p\xff\xff'))).toBe(530);
    expect(seen).toContain('ü:pé');
  });
});

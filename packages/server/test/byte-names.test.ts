// Names that are not UTF-8 (a client's 8-bit charset): kept byte for byte where storage keeps raw names, read as
// Latin-1 where it keeps UTF-8 text only.
import type { Socket } from 'node:net';
import { MemoryProvider, SqliteProvider, type FsProvider } from '@ftp/vfs';
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient, readAll, startServer, writeAndClose } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** `text` with `\xNN` written as raw bytes (Latin-1), the way an 8-bit client sends it. */
const raw = (text: string): Buffer => Buffer.from(text, 'latin1');

async function session(fs: FsProvider): Promise<{ c: RawClient; control: Buffer[] }> {
  const ctx = await startServer({ fs });
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

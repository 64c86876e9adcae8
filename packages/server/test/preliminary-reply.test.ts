// A 150 goes before its transfer's data, in a write of its own (RFC 959: "about to open data connection"). Held back
// to share a write with the 226 of a small transfer, it reached the client after the data, together with the 226:
// aria2c read both at once and then waited 60 s for a 226 it had already read, for every small file.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvider } from '@ftp/vfs';
import { afterEach, expect, it, vi } from 'vitest';
import { RawClient, readAll, startServer, writeAndClose } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0)) await c();
});

async function setup(files: Record<string, Buffer>) {
  const root = await mkdtemp(join(tmpdir(), 'preliminary-'));
  for (const [name, data] of Object.entries(files)) await writeFile(join(root, name), data);
  const ctx = await startServer({ fs: new LocalProvider(root) });
  cleanups.push(() => ctx.close(), () => rm(root, { recursive: true, force: true }));
  return ctx;
}

/** What this process does, in order: each reply write that holds a 150 or 226 (its first line), and 'end' for every socket ended. */
function replyOrder(): string[] {
  const order: string[] = [];
  const text = (chunk: unknown): string => (Buffer.isBuffer(chunk) || typeof chunk === 'string' ? chunk.toString() : '');
  const keep = (s: string): void => {
    if (/^(150|226) /m.test(s)) order.push(s.split('\r\n').filter(Boolean).map((l) => l.slice(0, 3)).join('+'));
  };
  const write = Socket.prototype._write;
  const writev = Socket.prototype._writev!;
  const end = Socket.prototype.end;
  vi.spyOn(Socket.prototype, '_write').mockImplementation(function (this: Socket, chunk, encoding, cb) {
    keep(text(chunk));
    return write.call(this, chunk, encoding, cb);
  });
  vi.spyOn(Socket.prototype, '_writev').mockImplementation(function (this: Socket, chunks, cb) {
    keep(chunks.map((c) => text(c.chunk)).join(''));
    return writev.call(this, chunks, cb);
  });
  vi.spyOn(Socket.prototype, 'end').mockImplementation(function (this: Socket, ...args: unknown[]) {
    order.push('end');
    return (end as (...a: unknown[]) => Socket).apply(this, args);
  });
  return order;
}

it("a small download's 150 is written on its own before its data connection is ended, the 226 after", async () => {
  const { port } = await setup({ 'small.bin': Buffer.alloc(16 * 1024, 7) });
  const c = await RawClient.binarySession(port, cleanups);
  const data = await c.passive();
  const order = replyOrder();
  c.send('RETR small.bin');
  expect((await c.next()).code).toBe(150);
  expect((await readAll(data)).length).toBe(16 * 1024);
  expect((await c.next()).code).toBe(226);
  // (The client's own side may be ended after the server's; only the first end is the data's.)
  expect(order.slice(0, 3)).toEqual(['150', 'end', '226']);
});

it("a short listing's 150 is written on its own before its data connection is ended, the 226 after", async () => {
  const { port } = await setup({ a: Buffer.from('x'), b: Buffer.from('y') });
  const c = await RawClient.binarySession(port, cleanups);
  const data = await c.passive();
  const order = replyOrder();
  c.send('NLST');
  expect((await c.next()).code).toBe(150);
  expect((await readAll(data)).toString()).toBe('a\r\nb\r\n');
  expect((await c.next()).code).toBe(226);
  expect(order.slice(0, 3)).toEqual(['150', 'end', '226']);
});

it('the 150 of a download that cannot end at once arrives while the client has not read a byte of it', async () => {
  const { port } = await setup({ 'big.bin': Buffer.alloc(32 * 1024 * 1024, 1) });
  const c = await RawClient.binarySession(port, cleanups);
  const data = await c.passive();
  data.pause();
  c.send('RETR big.bin');
  // Nothing is read from the data connection: the transfer is stuck on it, and the 150 must come anyway.
  expect((await c.next(2000)).code).toBe(150);
  data.resume();
  expect((await readAll(data)).length).toBe(32 * 1024 * 1024);
  expect((await c.next()).code).toBe(226);
});

it("an upload's 150 is written before the client sends anything, on its own", async () => {
  const { port } = await setup({});
  const c = await RawClient.binarySession(port, cleanups);
  const order = replyOrder();
  const writes = (): string[] => order.filter((e) => e !== 'end');
  const data = await c.passive();
  c.send('STOR up.bin');
  expect((await c.next()).code).toBe(150);
  expect(writes()).toEqual(['150']);
  await writeAndClose(data, 'hello');
  expect((await c.next()).code).toBe(226);
  expect(writes()).toEqual(['150', '226']);
});

it('an upload the storage refuses by its name (too long for the file system) is answered 553 before any 150', async () => {
  const { port } = await setup({});
  const c = await RawClient.binarySession(port, cleanups);
  const data = await c.passive();
  data.on('error', () => undefined);
  // 300 bytes: over NAME_MAX (255) of every Linux file system; the client would begin sending after a 150.
  for (const verb of ['STOR', 'APPE']) {
    expect(await c.cmd(`${verb} ${'n'.repeat(300)}`)).toMatchObject({ code: 553, text: expect.stringContaining('too long') });
  }
  expect((await c.cmd('NOOP')).code).toBe(200);
});

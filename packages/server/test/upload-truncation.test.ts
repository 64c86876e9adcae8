import nodefs from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvider } from '@ftp/vfs';
import { afterEach, expect, it } from 'vitest';
import { RawClient, startServer, writeAndClose } from './helpers.js';

// The local provider empties an old file before an upload starts (in the thread pool): these pin down that nothing
// can get ahead of that truncation, or turn its failure into the loss of the old file.

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Patched = Record<string, (...a: unknown[]) => unknown>;

for (const syncMetadata of [true, false]) {
  it(`a STOR whose truncation fails leaves the old file, even with partialUploads: 'discard' (syncMetadata: ${syncMetadata})`, async () => {
    const root = await mkdtemp(join(tmpdir(), 'upload-trunc-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    await writeFile(join(root, 'precious.txt'), 'precious old content');
    const ctx = await startServer({ fs: new LocalProvider(root, { syncMetadata }), settings: { partialUploads: 'discard' } });
    cleanups.push(() => ctx.close());
    const c = await RawClient.binarySession(ctx.port, cleanups);
    const patched = nodefs as unknown as Patched;
    const { ftruncate, ftruncateSync } = patched;
    const eio = () => Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO', errno: -5, syscall: 'ftruncate' });
    patched.ftruncate = (...args: unknown[]) => void setImmediate(() => (args.at(-1) as (e: Error) => void)(eio()));
    patched.ftruncateSync = () => {
      throw eio();
    };
    cleanups.push(() => Object.assign(patched, { ftruncate, ftruncateSync }));
    const socket = await c.passive();
    c.send('STOR precious.txt');
    // The file is opened once the data connection is up (after the 150), and the open fails: nothing was written,
    // so there is no partial upload to discard and the old content must stay.
    expect((await c.next()).code).toBe(150);
    await writeAndClose(socket, 'new').catch(() => undefined);
    expect((await c.next()).code).toBe(451);
    Object.assign(patched, { ftruncate, ftruncateSync });
    expect(await readFile(join(root, 'precious.txt'), 'utf8')).toBe('precious old content');
  });
}

it('an APPE right after an aborted STOR is not wiped by the STOR\'s late truncation (slow truncation, e.g. a big old file)', async () => {
  const root = await mkdtemp(join(tmpdir(), 'upload-trunc-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  await writeFile(join(root, 'f.bin'), Buffer.alloc(100_000, 7));
  const ctx = await startServer({ fs: new LocalProvider(root) });
  cleanups.push(() => ctx.close());
  const c = await RawClient.binarySession(ctx.port, cleanups);
  const patched = nodefs as unknown as Patched;
  const { ftruncate } = patched;
  // Freeing the blocks of a big old file takes a while: the real call starts 200 ms late.
  patched.ftruncate = (...args: unknown[]) => void setTimeout(() => ftruncate!(...args), 200);
  cleanups.push(() => Object.assign(patched, { ftruncate }));
  const socket = await c.passive();
  c.send('STOR f.bin');
  expect((await c.next()).code).toBe(150);
  socket.write('x');
  await new Promise((r) => setTimeout(r, 30));
  c.send('ABOR');
  expect((await c.next()).code).toBe(426);
  expect((await c.next()).code).toBe(226);
  socket.destroy();
  // The client appends to what the server kept (an empty file, or the old one): its bytes must stay.
  const s2 = await c.passive();
  c.send('APPE f.bin');
  expect((await c.next()).code).toBe(150);
  await writeAndClose(s2, 'appended');
  expect((await c.next()).code).toBe(226);
  const right = (await readFile(join(root, 'f.bin'))).toString('latin1');
  await new Promise((r) => setTimeout(r, 400));
  const later = (await readFile(join(root, 'f.bin'))).toString('latin1');
  expect(right.endsWith('appended')).toBe(true);
  expect(later).toBe(right);
});

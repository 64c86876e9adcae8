import nodefs from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { LocalProvider, MemoryProvider, quota, type FsProvider } from '@ftp/vfs';
import { afterEach, expect, it } from 'vitest';
import { RawClient, startServer, writeAndClose } from './helpers.js';

// An aborted upload may still have a write running in storage. Its 426 must wait for it: else the write lands under
// the client's next command on the same file (here an APPE, which then loses its bytes).

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Patched = Record<string, (...a: unknown[]) => unknown>;

for (const wrapped of [false, true]) {
  it(`an APPE right after an aborted STOR keeps its bytes, though the STOR's last write was still running${wrapped ? ' (quota wrapper)' : ''}`, async () => {
    const root = await mkdtemp(join(tmpdir(), 'upload-abort-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    await writeFile(join(root, 'f.bin'), 'old');
    const local = new LocalProvider(root, { syncMetadata: false });
    const ctx = await startServer({ fs: wrapped ? quota(local, { bytes: 64 << 20 }) : local });
    cleanups.push(() => ctx.close());
    const c = await RawClient.binarySession(ctx.port, cleanups);
    const patched = nodefs as unknown as Patched;
    const { write, writev } = patched;
    // The STOR's first write takes 200 ms in the thread pool; later ones (the APPE's) are immediate.
    let delayed = false;
    const slow = (real: (...a: unknown[]) => unknown) => (...args: unknown[]) => {
      if (delayed) return real(...args);
      delayed = true;
      // The bytes reach the file only when the call does: a storage that is slow to take them.
      setTimeout(() => real(...args), 200);
    };
    patched.write = slow(write!);
    patched.writev = slow(writev!);
    cleanups.push(() => Object.assign(patched, { write, writev }));
    const socket = await c.passive();
    // The server resets the data connection it stops reading: expected here.
    socket.on('error', () => undefined);
    c.send('STOR f.bin');
    expect((await c.next()).code).toBe(150);
    // More than one transfer buffer: a 1 MiB write starts in storage while more data arrives.
    socket.write(Buffer.alloc(3 << 20, 0x78));
    await new Promise((r) => setTimeout(r, 50));
    c.send('ABOR');
    expect((await c.next()).code).toBe(426);
    expect((await c.next()).code).toBe(226);
    socket.destroy();
    const s2 = await c.passive();
    c.send('APPE f.bin');
    expect((await c.next()).code).toBe(150);
    await writeAndClose(s2, 'appended');
    expect((await c.next()).code).toBe(226);
    const right = (await readFile(join(root, 'f.bin'))).toString('latin1');
    await new Promise((r) => setTimeout(r, 300));
    const later = (await readFile(join(root, 'f.bin'))).toString('latin1');
    expect(right.endsWith('appended')).toBe(true);
    expect(right.slice(0, -'appended'.length)).toMatch(/^x*$/);
    expect(later).toBe(right);
  });
}

it('file-handle fallback (a provider with open() only): the 426 waits for the write in flight, whose descriptor stays open until it returned', async () => {
  const req = createRequire(import.meta.resolve('@ftp/vfs'));
  const { RealFSProvider } = (await import(req.resolve('@platformatic/vfs'))) as { RealFSProvider: new (root: string) => FsProvider };
  const root = await mkdtemp(join(tmpdir(), 'upload-abort-handle-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  await writeFile(join(root, 'f.bin'), 'old');
  const ctx = await startServer({ fs: new RealFSProvider(root) });
  cleanups.push(() => ctx.close());
  const c = await RawClient.binarySession(ctx.port, cleanups);
  const events: string[] = [];
  const patched = nodefs as unknown as Patched;
  const { write, close } = patched;
  let slowFd = -1;
  const closedEarly = new Set<number>();
  // The first write takes 200 ms; a descriptor closed meanwhile is not written through (its number may be reused).
  patched.write = (...args: unknown[]) => {
    if (slowFd !== -1) return write!(...args);
    slowFd = args[0] as number;
    setTimeout(() => {
      if (closedEarly.has(slowFd)) {
        events.push('write ran on a closed descriptor');
        (args.at(-1) as (e: Error) => void)(Object.assign(new Error('EBADF'), { code: 'EBADF' }));
        return;
      }
      write!(...args.slice(0, -1), (err: unknown, n: unknown) => {
        events.push('write done');
        (args.at(-1) as (e: unknown, n: unknown) => void)(err, n);
      });
    }, 200);
  };
  patched.close = (...args: unknown[]) => {
    if (args[0] === slowFd) {
      events.push('close');
      closedEarly.add(slowFd);
    }
    return close!(...args);
  };
  cleanups.push(() => Object.assign(patched, { write, close }));
  const socket = await c.passive();
  socket.on('error', () => undefined);
  c.send('STOR f.bin');
  expect((await c.next()).code).toBe(150);
  socket.write(Buffer.alloc(3 << 20, 0x78));
  await new Promise((r) => setTimeout(r, 50));
  c.send('ABOR');
  events.push(`reply ${(await c.next()).code}`);
  expect((await c.next()).code).toBe(226);
  socket.destroy();
  await new Promise((r) => setTimeout(r, 300));
  expect(events).toEqual(['write done', 'close', 'reply 426']);
});

it('storage that shows an upload only once complete is not waited for: its slow clean-up does not hold the 426', async () => {
  /** An upload to a temporary object whose clean-up (an aborted multipart upload, say) takes 3 s. */
  class SlowCleanup extends Writable {
    override _write(_chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
      cb();
    }
    override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
      setTimeout(() => cb(err), 3000).unref();
    }
  }
  const memory = new MemoryProvider();
  const fs = Object.assign(Object.create(memory) as FsProvider, {
    uploadsVisibleWhenComplete: true,
    createWriteStream: async () => new SlowCleanup(),
  });
  const ctx = await startServer({ fs });
  cleanups.push(() => ctx.close());
  const c = await RawClient.binarySession(ctx.port, cleanups);
  const socket = await c.passive();
  socket.on('error', () => undefined);
  c.send('STOR f.bin');
  expect((await c.next()).code).toBe(150);
  socket.write('some bytes');
  await new Promise((r) => setTimeout(r, 50));
  const asked = Date.now();
  c.send('ABOR');
  expect((await c.next()).code).toBe(426);
  expect(Date.now() - asked).toBeLessThan(1500);
  expect((await c.next()).code).toBe(226);
});

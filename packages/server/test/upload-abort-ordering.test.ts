import nodefs from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvider, quota } from '@ftp/vfs';
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

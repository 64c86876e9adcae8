import { once } from 'node:events';
import { mkdir, symlink, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvider, MemoryProvider, type FsProvider, type HashAlgorithm, type HashOptions } from '@ftp/vfs';
import { afterEach, describe, expect, it } from 'vitest';
import { listingLines, RawClient, readAll, startServer } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function session(settings: object, fs?: FsProvider) {
  const ctx = await startServer({ settings, ...(fs ? { fs } : {}) });
  const c = await RawClient.connect(ctx.port);
  cleanups.push(() => ctx.close(), () => c.close());
  await c.login();
  return { ctx, c };
}

async function seed(c: RawClient, name: string, size: number): Promise<void> {
  const socket = await c.passive();
  c.send(`STOR ${name}`);
  expect((await c.next()).code).toBe(150);
  await new Promise<void>((r) => socket.end(Buffer.alloc(size, 1), () => r()));
  expect((await c.next()).code).toBe(226);
}

it('the control idle timer never fires while a transfer is making progress', async () => {
  const size = 24 * 1024 * 1024;
  const { c } = await session({ idleTimeout: 1, dataStallTimeout: 5 });
  await seed(c, 'slow', size);
  const socket = await c.passive();
  // Read at about 6 MB/s: the server keeps sending for longer than the idle timeout (beyond what the kernel
  // buffers hold) while the control connection is silent.
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    socket.pause();
    setTimeout(() => socket.resume(), 10);
  });
  const start = Date.now();
  c.send('RETR slow');
  expect((await c.next()).code).toBe(150);
  // The next reply is the transfer's own: had the idle timer fired it would be 421.
  const final = await c.next(30000);
  expect(final.code).toBe(226);
  expect(Date.now() - start).toBeGreaterThan(1500);
  expect((await c.cmd('NOOP')).code).toBe(200);
  await once(socket, 'close');
  expect(received).toBe(size);
});

it('a logged-in client waiting for a long command is not idle: its reply comes, and silence counts from it', async () => {
  // A provider whose hash takes 2.5 s (a big file), with idleTimeout 1 s.
  class SlowHash extends MemoryProvider {
    async hash(_path: string, _algorithm: HashAlgorithm, _start?: number, _end?: number, options: HashOptions = {}): Promise<string> {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2500);
        options.signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()));
      });
      return '0'.repeat(64);
    }
  }
  const fs = new SlowHash();
  await fs.writeFile('/big', 'x');
  const ctx = await startServer({ fs, settings: { idleTimeout: 1 } });
  const c = await RawClient.connect(ctx.port);
  cleanups.push(() => ctx.close(), () => c.close());
  await c.login();
  const start = Date.now();
  expect((await c.cmd('HASH big', 10000)).code).toBe(213);
  expect(Date.now() - start).toBeGreaterThan(2000);
  // Then the idle limit applies again, from the reply.
  expect((await c.next(5000)).code).toBe(421);
});

it('a logged-in client that stops reading its replies is cut at the idle timeout, though a command waits to reply', async () => {
  const { ctx, c } = await session({ idleTimeout: 1 });
  // Commands whose replies pile up past what the server queues: the last one waits for a drain that never comes.
  c.socket.pause();
  const lines = Buffer.from('STAT\r\n'.repeat(1000));
  for (const t0 = Date.now(); Date.now() - t0 < 1500; ) {
    if (!c.socket.write(lines)) await Promise.race([once(c.socket, 'drain'), new Promise((r) => setTimeout(r, 300))]);
  }
  const deadline = Date.now() + 8000;
  while (ctx.server.sessionCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(ctx.server.sessionCount).toBe(0);
});

it('a data connection that moves no byte for dataStallTimeout ends with 426', async () => {
  const { c } = await session({ dataStallTimeout: 0.5 });
  const socket = await c.passive();
  c.send('STOR stalled');
  expect((await c.next()).code).toBe(150);
  socket.write('a few bytes, then nothing');
  const t0 = Date.now();
  expect((await c.next(5000)).code).toBe(426);
  expect(Date.now() - t0).toBeLessThan(3000);
  expect((await c.cmd('NOOP')).code).toBe(200);
});

it('a client that floods commands without reading replies cannot grow the server memory', { timeout: 30000 }, async () => {
  const { c } = await session({});
  c.socket.pause(); // never read a reply
  global.gc?.();
  const before = process.memoryUsage();
  const line = Buffer.from('NOOP\r\n'.repeat(10000));
  let written = 0;
  // Write until the kernel buffers on both sides are full and the socket stops accepting (bounded count).
  for (let i = 0; i < 400 && c.socket.writableLength < 8 * 1024 * 1024; i++) {
    c.socket.write(line);
    written += line.length;
    await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 500));
  const after = process.memoryUsage();
  // The server stopped reading: most of what was written is still waiting on the client side.
  expect(c.socket.writableLength).toBeGreaterThan(written / 4);
  expect(after.heapUsed - before.heapUsed).toBeLessThan(32 * 1024 * 1024);
});

it('a symlink inside a local-disk root that points outside is not followed', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ftp-root-'));
  const outside = await mkdtemp(join(tmpdir(), 'ftp-outside-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }), () => rm(outside, { recursive: true, force: true }));
  await writeFile(join(outside, 'secret.txt'), 'secret');
  await symlink(outside, join(root, 'escape'));
  await symlink(join(outside, 'secret.txt'), join(root, 'secret-link'));
  const { c } = await session({}, new LocalProvider(root));
  expect((await c.cmd('CWD escape')).code).toBe(550);
  expect((await c.cmd('SIZE secret-link')).code).toBe(550);
  const socket = await c.passive();
  expect((await c.cmd('RETR escape/secret.txt')).code).toBe(550);
  expect((await c.cmd('RETR secret-link')).code).toBe(550);
  socket.destroy();
});

it('MLSD and MLST give a link the facts of what it leads to, as RETR and SIZE follow it; a link leading nowhere allowed stays a link', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ftp-root-'));
  const outside = await mkdtemp(join(tmpdir(), 'ftp-outside-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }), () => rm(outside, { recursive: true, force: true }));
  await writeFile(join(root, 'real.txt'), 'four');
  await writeFile(join(outside, 'secret.txt'), 'secret');
  await mkdir(join(root, 'folder'));
  await symlink('real.txt', join(root, 'to-file'));
  await symlink('folder', join(root, 'to-folder'));
  await symlink('missing', join(root, 'dangling'));
  await symlink(join(outside, 'secret.txt'), join(root, 'escape'));
  // Links to the folder itself or above stay links: as folders, mirroring clients would descend into them forever.
  await symlink('.', join(root, 'loop'));
  await symlink('..', join(root, 'folder', 'up'));
  const { c } = await session({}, new LocalProvider(root));
  const socket = await c.passive();
  c.send('MLSD');
  expect((await c.next()).code).toBe(150);
  const lines = (await readAll(socket)).toString().split('\r\n');
  expect((await c.next()).code).toBe(226);
  const facts = (name: string): string => lines.find((l) => l.endsWith(` ${name}`)) ?? `no ${name}`;
  expect(facts('to-file')).toMatch(/(^|;)type=file;/);
  expect(facts('to-file')).toMatch(/;size=4;/);
  expect(facts('to-folder')).toMatch(/(^|;)type=dir;/);
  expect(facts('dangling')).toMatch(/type=OS\.unix=symlink;/);
  expect(facts('escape')).toMatch(/type=OS\.unix=symlink;/);
  expect(facts('escape')).not.toMatch(/size=6/);
  expect(facts('loop')).toMatch(/type=OS\.unix=symlink;/);
  const inFolder = await c.passive();
  c.send('MLSD folder');
  expect((await c.next()).code).toBe(150);
  expect((await readAll(inFolder)).toString()).toMatch(/type=OS\.unix=symlink;.* up\r\n/);
  expect((await c.next()).code).toBe(226);
  expect((await c.cmd('MLST to-file')).lines[1]).toMatch(/type=file;.*size=4;/);
  expect((await c.cmd('MLST escape')).lines[1]).toMatch(/type=OS\.unix=symlink;/);
  // MLST follows a link as MLSD does, a link back up included.
  expect((await c.cmd('MLST loop')).lines[1]).toMatch(/type=OS\.unix=symlink;/);
  expect((await c.cmd('MLST to-folder')).lines[1]).toMatch(/type=dir;/);
  expect((await c.cmd('SIZE to-file')).text).toBe('4');
});

describe('a cycle through links that each look like they lead elsewhere is cut (mirroring clients went 80 levels down)', () => {
  // cyc/a/l -> ../b/c and cyc/b/c/m -> ../../b: `cyc/a/l` is really cyc/b/c, so its `m` leads to the folder above it.
  // x/l -> ../y and y/k -> ../x: neither leads above its own folder, but `x/l/k` is x again, on the way in.
  const links: Array<[target: string, link: string]> = [
    ['../b/c', 'cyc/a/l'],
    ['../../b', 'cyc/b/c/m'],
    ['../y', 'x/l'],
    ['../x', 'y/k'],
  ];
  const folders = ['cyc', 'cyc/a', 'cyc/b', 'cyc/b/c', 'x', 'y'];

  /** Each entry's type fact in an MLSD of `path`. */
  async function types(c: RawClient, path: string): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const line of await listingLines(c, `MLSD ${path}`)) {
      const [facts = '', name = ''] = line.split(/ (.*)/s);
      out[name] = /(?:^|;)type=([^;]+);/.exec(facts)?.[1] ?? '?';
    }
    return out;
  }

  /** What `lftp mirror` does: every folder MLSD shows, descended into; the deepest level reached (at most 12). */
  async function mirrorDepth(c: RawClient, root: string): Promise<number> {
    let deepest = 0;
    const queue: Array<[path: string, depth: number]> = [[root, 0]];
    while (queue.length > 0) {
      const [path, depth] = queue.shift()!;
      deepest = Math.max(deepest, depth);
      if (depth >= 12) continue;
      for (const [name, type] of Object.entries(await types(c, path))) if (type === 'dir') queue.push([`${path}/${name}`, depth + 1]);
    }
    return deepest;
  }

  async function check(fs: FsProvider): Promise<void> {
    const { c } = await session({}, fs);
    const a = await types(c, 'cyc/a');
    expect(a.l).toBe('dir');
    expect(await types(c, 'cyc/a/l')).toEqual({ m: 'OS.unix=symlink', 'file.txt': 'file' });
    expect((await c.cmd('MLST cyc/a/l/m')).lines[1]).toMatch(/type=OS\.unix=symlink;/);
    expect((await types(c, 'cyc/b/c')).m).toBe('OS.unix=symlink');
    expect((await types(c, 'x')).l).toBe('dir');
    expect((await types(c, 'x/l')).k).toBe('OS.unix=symlink');
    expect((await c.cmd('MLST x/l/k')).lines[1]).toMatch(/type=OS\.unix=symlink;/);
    // A link to a folder elsewhere is still a folder, and a walk of the whole tree ends.
    expect((await c.cmd('MLST x/l')).lines[1]).toMatch(/type=dir;/);
    expect(await mirrorDepth(c, '/cyc')).toBeLessThanOrEqual(3);
    expect(await mirrorDepth(c, '/')).toBeLessThanOrEqual(4);
  }

  async function seeded(fs: MemoryProvider): Promise<MemoryProvider> {
    for (const f of folders) await fs.mkdir(`/${f}`);
    const w = await fs.createWriteStream('/cyc/b/c/file.txt');
    await new Promise<void>((r) => w.end('x', () => r()));
    for (const [target, link] of links) await fs.symlink(target, `/${link}`);
    return fs;
  }

  it('on the memory backend', async () => {
    await check(await seeded(new MemoryProvider()));
  });

  it('on storage that gives no inode (told apart by where the links really lead)', async () => {
    class NoInodes extends MemoryProvider {
      override async stat(path: string) {
        const st = await super.stat(path);
        st.ino = 0;
        return st;
      }
    }
    await check(await seeded(new NoInodes()));
  });

  it('on the local disk', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ftp-root-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    for (const f of folders) await mkdir(join(root, f));
    await writeFile(join(root, 'cyc/b/c/file.txt'), 'x');
    for (const [target, link] of links) await symlink(target, join(root, link));
    await check(new LocalProvider(root));
  });
});

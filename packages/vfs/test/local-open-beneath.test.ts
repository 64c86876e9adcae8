// Downloads opened confined by the kernel (@ftp/native's openBeneath: openat2 + RESOLVE_BENEATH) where it can, and
// by the careful path (realpath, open, /proc/self/fd check) otherwise: which path a download takes, and that every
// way out of the root is still refused, whichever path saw it. fs.openSync is what only the careful path calls.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBeneathUnavailableReason } from '@ftp/native';
import { afterAll, afterEach, beforeAll, describe, expect, it, test, vi } from 'vitest';
import { LocalProvider, openReadStream, openWriteStream, toVfsError } from '../src/index.js';

const unavailable = openBeneathUnavailableReason();
const onCI = process.env.CI === 'true';
if (unavailable !== null && !onCI) console.warn(`\n*** @ftp/vfs: SKIPPING the kernel-confined open tests: ${unavailable}.\n`);

// Elsewhere the tests below skip when it is missing, saying why (the warning above); on CI it must be there.
test.runIf(onCI)('openBeneath is available on CI (CI=true)', () => {
  expect(unavailable, 'on CI the addon must be built and the kernel have openat2').toBeNull();
});

let base = '';
let root = '';
let outside = '';

beforeAll(() => {
  base = fs.mkdtempSync(join(tmpdir(), 'vfs-open-beneath-'));
  root = join(base, 'root');
  outside = join(base, 'outside');
  fs.mkdirSync(join(root, 'dir', 'deeper'), { recursive: true });
  fs.mkdirSync(outside);
  fs.writeFileSync(join(root, 'dir', 'deeper', 'f.txt'), 'inside');
  fs.writeFileSync(join(outside, 'secret.txt'), 'secret');
  fs.symlinkSync('deeper/f.txt', join(root, 'dir', 'relative-link'));
  fs.symlinkSync(join(root, 'dir', 'deeper', 'f.txt'), join(root, 'absolute-link-inside'));
  fs.symlinkSync(join(outside, 'secret.txt'), join(root, 'absolute-link-out'));
  fs.symlinkSync('../outside/secret.txt', join(root, 'relative-link-out'));
  fs.symlinkSync(outside, join(root, 'folder-link-out'));
  fs.symlinkSync('/proc/self/root/etc/hostname', join(root, 'proc-link'));
});
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));
afterEach(() => {
  vi.restoreAllMocks();
  delete process.env.FTP_NATIVE_OPEN;
});

async function read(p: LocalProvider, path: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await openReadStream(p, path)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

async function write(p: LocalProvider, path: string, data: string): Promise<void> {
  const ws = await openWriteStream(p, path);
  await new Promise<void>((resolve, reject) => {
    ws.on('error', reject);
    ws.end(Buffer.from(data), () => resolve());
  });
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return toVfsError(err).code;
  }
}

describe.skipIf(unavailable !== null)('downloads opened beneath the root by the kernel', () => {
  it('a plain path and a relative link inside the root: one confined open, no careful path', async () => {
    const p = new LocalProvider(root);
    const opens = vi.spyOn(fs, 'openSync');
    expect(await read(p, '/dir/deeper/f.txt')).toBe('inside');
    expect(await read(p, '/dir/relative-link')).toBe('inside');
    expect(await read(p, 'dir/../dir/deeper/f.txt')).toBe('inside');
    expect(opens).not.toHaveBeenCalled();
  });

  it('FTP_NATIVE_OPEN=0 takes the careful path for the same downloads', async () => {
    process.env.FTP_NATIVE_OPEN = '0';
    const p = new LocalProvider(root);
    const opens = vi.spyOn(fs, 'openSync');
    expect(await read(p, '/dir/deeper/f.txt')).toBe('inside');
    expect(opens).toHaveBeenCalledTimes(1);
  });

  it('an absolute link to a file inside the root still works, through the careful path', async () => {
    const p = new LocalProvider(root);
    const opens = vi.spyOn(fs, 'openSync');
    expect(await read(p, '/absolute-link-inside')).toBe('inside');
    expect(opens).toHaveBeenCalledTimes(1);
  });

  it('every way out is refused with EACCES, as the careful path refuses it (never the outside file)', async () => {
    const p = new LocalProvider(root);
    for (const path of ['/absolute-link-out', '/relative-link-out', '/folder-link-out/secret.txt']) {
      expect(await code(read(p, path)), path).toBe('EACCES');
    }
    // A magic link through /proc: outside the root too.
    expect(await code(read(p, '/proc-link'))).toBe('EACCES');
  });

  it('errors are those of the careful path: missing, a folder, a path through a file', async () => {
    const p = new LocalProvider(root);
    expect(await code(read(p, '/nope.txt'))).toBe('ENOENT');
    expect(await code(read(p, '/dir'))).toBe('EISDIR');
    expect(await code(read(p, '/dir/deeper/f.txt/x'))).toBe('ENOTDIR');
    expect(await code(read(p, '/'))).toBe('EISDIR');
  });

  it('uploads: one confined open too, new files and rewrites alike', async () => {
    const p = new LocalProvider(root);
    const opens = vi.spyOn(fs, 'openSync');
    await write(p, '/dir/up.txt', 'first');
    await write(p, '/dir/up.txt', 'second, longer');
    await write(p, '/dir/relative-link', 'through the link');
    expect(opens).not.toHaveBeenCalled();
    expect(fs.readFileSync(join(root, 'dir', 'up.txt'), 'utf8')).toBe('second, longer');
    expect(fs.readFileSync(join(root, 'dir', 'deeper', 'f.txt'), 'utf8')).toBe('through the link');
    fs.writeFileSync(join(root, 'dir', 'deeper', 'f.txt'), 'inside');
  });

  it('uploads out of the root are refused (EACCES), nothing written or made there', async () => {
    const p = new LocalProvider(root);
    for (const path of ['/absolute-link-out', '/relative-link-out', '/folder-link-out/new.txt']) {
      expect(await code(write(p, path, 'planted')), path).toBe('EACCES');
    }
    expect(fs.readdirSync(outside)).toEqual(['secret.txt']);
    expect(fs.readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('secret');
  });

  it('a root swapped for a link after the provider resolved it: refused, never a root elsewhere', async () => {
    const own = fs.mkdtempSync(join(tmpdir(), 'vfs-open-beneath-root-'));
    const elsewhere = fs.mkdtempSync(join(tmpdir(), 'vfs-open-beneath-elsewhere-'));
    try {
      fs.mkdirSync(join(own, 'ftp'));
      fs.writeFileSync(join(own, 'ftp', 'mine.txt'), 'mine');
      fs.writeFileSync(join(elsewhere, 'mine.txt'), 'private');
      const p = new LocalProvider(join(own, 'ftp'));
      expect(await read(p, '/mine.txt')).toBe('mine');
      fs.renameSync(join(own, 'ftp'), join(own, 'ftp-old'));
      fs.symlinkSync(elsewhere, join(own, 'ftp'));
      expect(await code(read(p, '/mine.txt'))).toBe('EACCES');
      expect(await code(write(p, '/planted.txt', 'x'))).toBe('EACCES');
      expect(fs.readdirSync(elsewhere)).toEqual(['mine.txt']);
    } finally {
      fs.rmSync(own, { recursive: true, force: true });
      fs.rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('a folder swapped for a link out between downloads: the next one is refused', async () => {
    const p = new LocalProvider(root);
    fs.mkdirSync(join(root, 'swap'));
    fs.writeFileSync(join(root, 'swap', 'secret.txt'), 'mine');
    expect(await read(p, '/swap/secret.txt')).toBe('mine');
    fs.rmSync(join(root, 'swap'), { recursive: true });
    fs.symlinkSync(outside, join(root, 'swap'));
    expect(await code(read(p, '/swap/secret.txt'))).toBe('EACCES');
  });
});

describe.skipIf(unavailable !== null)('stat and lstat looked up beneath the root by the kernel (O_PATH)', () => {
  // Sync metadata (the default) is the mode that looks up on the event loop; the other one keeps its async path.
  const provider = (): LocalProvider => new LocalProvider(root, { syncMetadata: true });

  it('plain paths and a relative link inside the root: no realpath walk; lstat sees the link itself', async () => {
    const p = provider();
    const walks = vi.spyOn(fs.realpathSync, 'native');
    const st = await p.stat('/dir/deeper/f.txt');
    expect(st.isFile() && st.size).toBe(6);
    expect((await p.stat('/dir/relative-link')).isFile()).toBe(true);
    expect((await p.lstat('/dir/relative-link')).isSymbolicLink()).toBe(true);
    expect((await p.lstat('/dir/deeper/f.txt')).isFile()).toBe(true);
    expect((await p.stat('/dir')).isDirectory()).toBe(true);
    expect(p.statSync('dir/../dir/deeper/f.txt').size).toBe(6);
    expect(walks).not.toHaveBeenCalled();
  });

  it('a missing name is ENOENT at once, for a name in a missing folder too (a new upload asks this first)', async () => {
    const p = provider();
    const walks = vi.spyOn(fs.realpathSync, 'native');
    expect(await code(p.stat('/new-upload.bin'))).toBe('ENOENT');
    expect(await code(p.lstat('/no-folder/new-upload.bin'))).toBe('ENOENT');
    expect(walks).not.toHaveBeenCalled();
    // The error names the virtual path, as the careful path's does.
    await expect(p.stat('/new-upload.bin')).rejects.toMatchObject({ code: 'ENOENT', path: '/new-upload.bin', syscall: 'stat' });
  });

  it('a FIFO is only looked up, never opened (an open would wait for a writer)', async () => {
    const p = provider();
    execFileSync('mkfifo', [join(root, 'dir', 'pipe')]);
    try {
      expect((await p.stat('/dir/pipe')).isFIFO()).toBe(true);
      expect((await p.lstat('/dir/pipe')).isFIFO()).toBe(true);
    } finally {
      fs.rmSync(join(root, 'dir', 'pipe'));
    }
  });

  it('links out, absolute links, /proc and paths through a file: answered by the careful path as before', async () => {
    const p = provider();
    expect((await p.stat('/absolute-link-inside')).size).toBe(6);
    for (const path of ['/absolute-link-out', '/relative-link-out', '/folder-link-out/secret.txt', '/proc-link']) {
      expect(await code(p.stat(path)), path).toBe('EACCES');
    }
    // The links themselves are visible, as ever.
    expect((await p.lstat('/absolute-link-out')).isSymbolicLink()).toBe(true);
    expect((await p.lstat('/folder-link-out')).isSymbolicLink()).toBe(true);
    expect(await code(p.stat('/dir/deeper/f.txt/x'))).toBe('ENOTDIR');
    expect((await p.stat('/')).isDirectory()).toBe(true);
  });

  it('FTP_NATIVE_OPEN=0 takes the careful path (realpath) for the same lookups', async () => {
    process.env.FTP_NATIVE_OPEN = '0';
    const p = provider();
    const walks = vi.spyOn(fs.realpathSync, 'native');
    expect((await p.stat('/dir/deeper/f.txt')).size).toBe(6);
    expect((await p.lstat('/dir/relative-link')).isSymbolicLink()).toBe(true);
    expect(await code(p.stat('/new-upload.bin'))).toBe('ENOENT');
    expect(walks).toHaveBeenCalled();
  });
});

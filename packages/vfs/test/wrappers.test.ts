import { constants } from 'node:fs';
import { once } from 'node:events';
import { MemoryProvider as PlatformaticMemory } from '@platformatic/vfs';
import { describe, expect, it } from 'vitest';
import { describeCapabilities, hashFile, MemoryProvider, mounts, openReadStream, openWriteStream, quota, readOnly, scoped, SqliteProvider, toVfsError } from '../src/index.js';
import type { FsProvider } from '../src/index.js';

async function code(promise: Promise<unknown> | (() => Promise<unknown>)): Promise<string> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
    return 'resolved';
  } catch (err) {
    return toVfsError(err).code;
  }
}

/** A provider with only the core: no optional capability, no symlinks. */
async function readAll(p: FsProvider, path: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of await openReadStream(p, path)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

function bare(): FsProvider {
  const inner = new MemoryProvider();
  return {
    stat: (p) => inner.stat(p),
    readdir: (p) => inner.readdir(p),
    mkdir: (p, o) => inner.mkdir(p, o),
    rmdir: (p) => inner.rmdir(p),
    unlink: (p) => inner.unlink(p),
    rename: (a, b) => inner.rename(a, b),
    open: (p, f, m) => inner.open(p, f, m),
  };
}

describe('readOnly()', () => {
  it('keeps exactly the capabilities of the inner provider, and says readonly and that it refuses uploads early', () => {
    const full = readOnly(new MemoryProvider());
    // Nothing can be uploaded: no upload is ever busy, and every one is refused before the server's 150.
    expect(describeCapabilities(full)).toEqual({ ...describeCapabilities(new MemoryProvider()), readonly: true, uploadBusy: false, releaseUploadHold: false, checkUpload: true });
    const none = readOnly(bare());
    expect(describeCapabilities(none)).toEqual({
      streaming: false,
      list: false,
      setTimes: false,
      setCreationTime: false,
      chmod: false,
      hash: false,
      availableSpace: false,
      allocate: false,
      concat: false,
      uploadBusy: false,
      releaseUploadHold: false,
      // Every upload is refused there before the server's 150.
      checkUpload: true,
      checkEnter: false,
      symlink: false,
      readonly: true,
      atomicUploads: false,
      uploadsVisibleWhenComplete: false,
      rawNames: false,
    });
    expect(none.lstat).toBeUndefined();
    expect(none.readlink).toBeUndefined();
  });

  it('refuses write flags in any form, and lets reads through', async () => {
    const p = new MemoryProvider();
    await p.writeFile('/f', 'data');
    const ro = readOnly(p);
    for (const flags of ['w', 'w+', 'a', 'a+', 'r+', 'wx', 'rs+', constants.O_WRONLY, constants.O_RDWR | constants.O_CREAT]) {
      expect(await code(ro.open('/f', flags as string)), String(flags)).toBe('EROFS');
    }
    const h = (await ro.open('/f', 'r')) as { close(): Promise<void> };
    await h.close();
    expect(await code(ro.open('/f', constants.O_RDONLY as unknown as string))).toBe('resolved');
    expect(await code(ro.open('/f', 'bogus'))).toBe('EINVAL');
    expect(await code(ro.availableSpace?.('/') ?? Promise.reject(new Error('missing')))).toBe('resolved');
  });

  it('refuses create, truncate and append flags even without a write flag: they change the tree too', async () => {
    // The bug: open(O_RDONLY | O_CREAT) went through, and the inner provider created the file.
    const p = new MemoryProvider();
    await p.writeFile('/f', 'data');
    const ro = readOnly(p);
    const { O_RDONLY, O_CREAT, O_EXCL, O_TRUNC, O_APPEND } = constants;
    for (const flags of [O_RDONLY | O_CREAT, O_RDONLY | O_CREAT | O_EXCL, O_RDONLY | O_TRUNC, O_RDONLY | O_APPEND]) {
      expect(await code(ro.open('/new', flags as unknown as string)), String(flags)).toBe('EROFS');
      expect(await code(ro.open('/f', flags as unknown as string)), String(flags)).toBe('EROFS');
    }
    expect(await code(p.stat('/new'))).toBe('ENOENT');
    expect((await p.readFile('/f', 'utf8')) as string).toBe('data');
  });

  it('does not close the inner provider', async () => {
    const p = new SqliteProvider();
    const ro = readOnly(p);
    expect(ro.close).toBeUndefined();
    expect((await ro.stat('/')).isDirectory()).toBe(true);
    p.close();
  });
});

describe('scoped()', () => {
  it('keeps exactly the capabilities of the inner provider', () => {
    expect(describeCapabilities(scoped(new MemoryProvider(), '/x'))).toEqual(describeCapabilities(new MemoryProvider()));
    expect(describeCapabilities(scoped(bare(), '/x'))).toEqual(describeCapabilities(bare()));
    expect(describeCapabilities(scoped(new PlatformaticMemory(), '/x'))).toEqual(describeCapabilities(new PlatformaticMemory()));
    expect(describeCapabilities(scoped(readOnly(new MemoryProvider()), '/x')).readonly).toBe(true);
  });

  it('maps paths under its root, without symlinks to resolve', async () => {
    const p = bare();
    await p.mkdir('/home/u', { recursive: true });
    const s = scoped(p, '/home/u/');
    await s.mkdir('/../../a');
    expect((await p.stat('/home/u/a')).isDirectory()).toBe(true);
    expect(await code(s.stat('/../../home'))).toBe('ENOENT');
    const e = await s.stat('/nope').catch((err: unknown) => toVfsError(err));
    expect(e).toMatchObject({ code: 'ENOENT', path: '/nope' });
  });

  it('refuses to remove or rename its own root, or to rename onto it (EPERM): the inner folder stays', async () => {
    const p = bare();
    await p.mkdir('/home/u', { recursive: true });
    await p.mkdir('/home/u/d');
    const s = scoped(p, '/home/u');
    await s.rmdir('/d');
    expect(await code(s.rmdir('/'))).toBe('EPERM');
    expect(await code(s.rmdir('/d/..'))).toBe('EPERM');
    expect(await code(s.rename('/', '/x'))).toBe('EPERM');
    await s.mkdir('/e');
    expect(await code(s.rename('/e', '/'))).toBe('EPERM');
    expect(await code(s.rename('/e', '/..'))).toBe('EPERM');
    expect((await p.stat('/home/u')).isDirectory()).toBe(true);
    expect(await p.readdir('/home/u')).toEqual(['e']);
    expect(await p.readdir('/home')).toEqual(['u']);
  });

  it('a root of / is the identity; views nest', async () => {
    const p = new MemoryProvider();
    await p.mkdir('/a/b/c', { recursive: true });
    await p.writeFile('/a/b/c/f', 'deep');
    expect((await scoped(p, '/').readdir('/')).sort()).toEqual(['a']);
    const nested = scoped(scoped(p, '/a'), '/b');
    expect(await nested.readdir('/')).toEqual(['c']);
    expect(await code(nested.stat('/../../a'))).toBe('ENOENT');
    const chunks: Buffer[] = [];
    for await (const c of await openReadStream(nested, '/c/f')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('deep');
  });

  it('resolves links inside the view, refuses those leading out, and reports loops', async () => {
    const p = new MemoryProvider();
    await p.mkdir('/home/u/d', { recursive: true });
    await p.mkdir('/home/other', { recursive: true });
    await p.writeFile('/home/other/secret', 's');
    await p.writeFile('/home/u/d/f', 'mine');
    await p.symlink('/home/other', '/home/u/to-other');
    await p.symlink('../other/secret', '/home/u/rel-secret');
    await p.symlink('d/f', '/home/u/ok');
    await p.symlink('/home/u/loop2', '/home/u/loop1');
    await p.symlink('/home/u/loop1', '/home/u/loop2');
    const s = scoped(p, '/home/u');
    expect(await code(s.readdir('/to-other'))).toBe('EACCES');
    expect(await code(openReadStream(s, '/to-other/secret'))).toBe('EACCES');
    expect(await code(openReadStream(s, '/rel-secret'))).toBe('EACCES');
    expect(await code(async () => {
      const ws = await openWriteStream(s, '/to-other/new');
      ws.end('x');
      await once(ws, 'finish');
    })).toBe('EACCES');
    expect(await code(p.stat('/home/other/new'))).toBe('ENOENT');
    expect(await code(s.rename('/ok', '/to-other/stolen'))).toBe('EACCES');
    expect(await code(s.stat('/loop1'))).toBe('ELOOP');
    expect((await s.stat('/ok')).size).toBe(4);
    expect(await s.readlink?.('/ok')).toBe('d/f');
    expect(await s.readlink?.('/to-other')).toBe('/home/other');
    await s.symlink?.('/d/f', '/abs');
    expect(await p.readlink('/home/u/abs')).toBe('/home/u/d/f');
    expect(await s.readlink?.('/abs')).toBe('/d/f');
  });

  it('stores a climbing link target as the path it leads to, and moves no link to where it would lead out', async () => {
    const p = new MemoryProvider();
    await p.mkdir('/home/u/a/b', { recursive: true });
    await p.mkdir('/home/other', { recursive: true });
    await p.writeFile('/home/u/x', 'mine');
    await p.writeFile('/home/other/secret', 's');
    const s = scoped(p, '/home/u');
    // Inside the view where it is made; stored relative, it would lead to /home/x once at the view's top, and
    // `../../other` made in /a/b to /home/other (another user's home): a race against another command could use it.
    await s.symlink?.('../x', '/a/l');
    await s.symlink?.('../../x', '/a/b/l2');
    expect(await p.readlink('/home/u/a/l')).toBe('/home/u/x');
    await s.rename('/a/l', '/l');
    await s.rename('/a/b/l2', '/l2');
    expect(await readAll(s, '/l')).toBe('mine');
    expect(await readAll(s, '/l2')).toBe('mine');
    // A target below the link's folder stays relative: it cannot climb, wherever it goes.
    await s.symlink?.('b', '/a/down');
    expect(await p.readlink('/home/u/a/down')).toBe('b');
    // A link placed with a climbing target (an administrator's, an older version's) is not moved where it leads out.
    await p.symlink('../../other/secret', '/home/u/a/placed');
    expect(await code(s.rename('/a/placed', '/placed'))).toBe('EACCES');
    expect(await code(p.lstat('/home/u/placed'))).toBe('ENOENT');
    await s.rename('/a/placed', '/a/b/placed'); // leads to /home/u/other/secret there: inside, if missing
    await p.symlink('/home/other', '/home/u/to-other');
    expect(await code(s.rename('/to-other', '/a/to-other'))).toBe('EACCES');
    // Through another link: a link to `to-other` leads out too, made at the top or moved there.
    expect(await code(s.symlink!('to-other', '/l3'))).toBe('EACCES');
    await s.symlink?.('to-other', '/a/l4'); // dangling in /a
    expect(await code(s.rename('/a/l4', '/l4'))).toBe('EACCES');
    expect(await code(p.lstat('/home/u/l4'))).toBe('ENOENT');
  });

  it("hand a hash's signal on to the provider's own hash (scoped, mounts, readOnly, quota)", async () => {
    const inner = new MemoryProvider();
    await inner.mkdir('/home/u', { recursive: true });
    await inner.writeFile('/home/u/f', 'data');
    const seen: Array<AbortSignal | undefined> = [];
    (inner as FsProvider).hash = async (_path, _algorithm, _start, _end, options) => {
      seen.push(options?.signal);
      options?.signal?.throwIfAborted();
      return 'digest';
    };
    const view = quota(readOnly(scoped(mounts(new MemoryProvider(), { '/m': inner }), '/m/home/u')), { bytes: 1e6 });
    const controller = new AbortController();
    expect(await hashFile(view, '/f', 'MD5', undefined, undefined, { signal: controller.signal })).toBe('digest');
    expect(seen).toEqual([controller.signal]);
  });

  it('stream errors name the path of the view', async () => {
    const p = new MemoryProvider({ capacity: 10 });
    await p.mkdir('/home/u', { recursive: true });
    const s = scoped(p, '/home/u');
    const ws = await openWriteStream(s, '/big');
    const err = await new Promise<unknown>((resolve) => {
      ws.on('error', resolve);
      ws.end(Buffer.alloc(100));
    });
    expect(toVfsError(err)).toMatchObject({ code: 'ENOSPC', path: '/big' });
    expect(String((err as Error).message)).not.toContain('/home/u');
  });

  it('does not close the inner provider', () => {
    expect(scoped(new SqliteProvider(), '/').close).toBeUndefined();
  });
});

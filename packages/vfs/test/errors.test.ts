import fsp from 'node:fs/promises';
import { MemoryProvider as PlatformaticMemory, VirtualProvider } from '@platformatic/vfs';
import { describe, expect, it } from 'vitest';
import { errorCodeOf, fsError, toVfsError, VFS_ERROR_CODES, VfsError, vfsError } from '../src/index.js';

describe('VfsError', () => {
  it('carries a code, a path, a syscall and a cross-copy brand', () => {
    const e = new VfsError('ENOENT', undefined, { path: '/a', syscall: 'open' });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('VfsError');
    expect(e.code).toBe('ENOENT');
    expect(e.path).toBe('/a');
    expect(e.syscall).toBe('open');
    expect(e.message).toBe("ENOENT: no such file or directory, open '/a'");
    expect(VfsError.isInstance(e)).toBe(true);
  });

  it('isInstance recognises the brand of another copy of the package, and nothing else', () => {
    const foreign = Object.assign(new Error('x'), { code: 'EIO', [Symbol.for('@ftp/vfs.VfsError')]: true });
    expect(VfsError.isInstance(foreign)).toBe(true);
    expect(VfsError.isInstance(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe(false);
    expect(VfsError.isInstance(null)).toBe(false);
    expect(VfsError.isInstance('ENOENT')).toBe(false);
  });

  it('vfsError() and fsError() build errors', () => {
    expect(vfsError('EACCES').message).toBe('EACCES: permission denied');
    expect(vfsError('EACCES', undefined, '/x').message).toBe("EACCES: permission denied, '/x'");
    expect(vfsError('EROFS', 'custom', '/x')).toMatchObject({ code: 'EROFS', message: 'custom', path: '/x' });
    expect(fsError('EISDIR', 'unlink', '/d').message).toBe("EISDIR: illegal operation on a directory, unlink '/d'");
  });
});

describe('toVfsError', () => {
  it('maps a Node fs error by code and hides the host path when given the virtual one', async () => {
    const host = '/tmp/definitely/not/here/secret-host-path';
    const err = await fsp.stat(host).catch((e: unknown) => e);
    const v = toVfsError(err, '/virtual');
    expect(v.code).toBe('ENOENT');
    expect(v.path).toBe('/virtual');
    expect(v.syscall).toBe('stat');
    expect(v.message).toBe("ENOENT: no such file or directory, stat '/virtual'");
    expect(v.message).not.toContain('secret-host-path');
    expect(v.cause).toBe(err);
  });

  it('keeps the original message without a path, and never copies a host path property', async () => {
    const err = await fsp.readdir('/tmp/not/here/either').catch((e: unknown) => e);
    const v = toVfsError(err);
    expect(v.code).toBe('ENOENT');
    expect(v.path).toBeUndefined();
    expect(v.message).toMatch(/^ENOENT: /);
  });

  it('maps @platformatic/vfs errors', async () => {
    const p = new PlatformaticMemory();
    const err = await p.stat('/missing').catch((e: unknown) => e);
    expect(toVfsError(err).code).toBe('ENOENT');
    const e2 = await new VirtualProvider().readlink('/x').catch((e: unknown) => e);
    expect((e2 as { code: string }).code).toBe('ERR_METHOD_NOT_IMPLEMENTED');
    expect(toVfsError(e2).code).toBe('ENOTSUP');
  });

  it('maps aliases, SQLite result codes, and unknown values to EIO', () => {
    expect(errorCodeOf({ code: 'EOPNOTSUPP' })).toBe('ENOTSUP');
    expect(errorCodeOf({ code: 'EFBIG' })).toBe('ENOSPC');
    expect(errorCodeOf({ code: 'ERR_SQLITE_ERROR', errcode: 13 })).toBe('ENOSPC');
    expect(errorCodeOf({ code: 'ERR_SQLITE_ERROR', errcode: 5 | (3 << 8) })).toBe('EBUSY');
    expect(errorCodeOf({ code: 'ERR_SQLITE_ERROR', errcode: 1 })).toBe('EIO');
    expect(errorCodeOf({ code: 'EWHATEVER' })).toBe('EIO');
    expect(errorCodeOf(new Error('plain'))).toBe('EIO');
    expect(errorCodeOf('a string')).toBe('EIO');
    expect(errorCodeOf(undefined)).toBe('EIO');
    const v = toVfsError('a string');
    expect(v.code).toBe('EIO');
    expect(v.message).toContain('a string');
    const w = toVfsError(new Error('boom'));
    expect(w.message).toBe('EIO: boom');
  });

  it('returns a VfsError as is when it already names the path, rebuilds it otherwise', () => {
    const e = fsError('ENOENT', 'open', '/inner/a');
    expect(toVfsError(e)).toBe(e);
    expect(toVfsError(e, '/inner/a')).toBe(e);
    const outer = toVfsError(e, '/a');
    expect(outer).not.toBe(e);
    expect(outer).toMatchObject({ code: 'ENOENT', path: '/a', syscall: 'open' });
    expect(outer.message).not.toContain('/inner');
  });

  it('every contract code maps to itself', () => {
    for (const code of VFS_ERROR_CODES) expect(toVfsError(Object.assign(new Error('x'), { code })).code).toBe(code);
  });
});

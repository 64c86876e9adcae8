import { describe, expect, it } from 'vitest';
import { basename, dirname, isInside, joinPath, normalizePath, relativeTo, resolvePath, splitPath, VfsError } from '../src/index.js';

describe('resolvePath', () => {
  const table: [cwd: string, arg: string, expected: string][] = [
    ['/', '', '/'],
    ['/', '.', '/'],
    ['/', '..', '/'],
    ['/', '/../..', '/'],
    ['/', '../../../etc/passwd', '/etc/passwd'],
    ['/a/b', '..', '/a'],
    ['/a/b', '../..', '/'],
    ['/a/b', '../../..', '/'],
    ['/a/b', '../../../c', '/c'],
    ['/a', 'b/c', '/a/b/c'],
    ['/a', '/x', '/x'],
    ['/a', '/', '/'],
    ['/a', '//x//y/', '/x/y'],
    ['/a', 'x/./y/../z', '/a/x/z'],
    ['/a/', 'b/', '/a/b'],
    ['//a//b//', '.', '/a/b'],
    ['/a/b', '', '/a/b'],
    ['/a/./b/../c', '', '/a/c'],
    ['/a', '...', '/a/...'],
    ['/a', '..x', '/a/..x'],
    ['/a', 'x..', '/a/x..'],
    ['/a', 'a b ', '/a/a b '],
    ['/a', ' ', '/a/ '],
    ['/', '\\..\\x', '/\\..\\x'],
    ['/a', '/..', '/'],
    ['/a', 'é 文件 "q".txt', '/a/é 文件 "q".txt'],
    ['a', 'b', '/a/b'],
    ['', 'b', '/b'],
  ];
  it.each(table)('resolvePath(%j, %j) = %j', (cwd, arg, expected) => {
    expect(resolvePath(cwd, arg)).toBe(expected);
  });

  it('throws EINVAL for a NUL byte in either part', () => {
    for (const [cwd, arg] of [
      ['/', 'a\0b'],
      ['/a\0', 'b'],
      ['/', '\0'],
    ] as const) {
      let caught: unknown;
      try {
        resolvePath(cwd, arg);
      } catch (err) {
        caught = err;
      }
      expect(VfsError.isInstance(caught)).toBe(true);
      expect((caught as VfsError).code).toBe('EINVAL');
    }
  });

  it('always yields a normalised absolute path (seeded random inputs)', () => {
    const parts = ['a', 'b', '.', '..', '', '...', 'é', ' ', 'x y', '//', '/'];
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const make = (): string => Array.from({ length: rnd(8) }, () => parts[rnd(parts.length)]).join(rnd(2) === 0 ? '/' : '');
    for (let i = 0; i < 5000; i++) {
      const cwd = `/${make()}`;
      const arg = make();
      const r = resolvePath(cwd, arg);
      expect(r.startsWith('/')).toBe(true);
      expect(r).not.toMatch(/\/\//);
      expect(r).not.toMatch(/(^|\/)\.\.?(\/|$)/);
      if (r !== '/') expect(r.endsWith('/')).toBe(false);
      // Idempotent, and never above the root.
      expect(resolvePath('/', r)).toBe(r);
      expect(resolvePath(r, '..'), r).toBe(dirname(r));
    }
  });
});

describe('path helpers', () => {
  it('normalizePath', () => {
    expect(normalizePath('a//b/../c/')).toBe('/a/c');
    expect(normalizePath('/../..')).toBe('/');
  });

  it.each([
    ['/', '/'],
    ['/a/b', '/a/b'],
    ['/a/b/', '/a/b'],
    ['/a/.', '/a'],
    ['/a/..', '/'],
    ['/.', '/'],
    ['/..', '/'],
    ['/a/./b', '/a/b'],
    ['/a/../b', '/b'],
    ['//a', '/a'],
    ['/a..b/.c', '/a..b/.c'],
    ['a/b', '/a/b'],
  ])('normalizePath(%j) is %j (already-normal paths pass through unchanged)', (path, expected) => {
    expect(normalizePath(path)).toBe(expected);
  });

  it('normalizePath refuses a NUL byte even in an otherwise normal path', () => {
    expect(() => normalizePath('/a\0b')).toThrow(VfsError);
  });

  it.each([
    ['/', '/', ''],
    ['/a', '/', 'a'],
    ['/a/b', '/a', 'b'],
    ['/a/b c/d.txt', '/a/b c', 'd.txt'],
  ])('dirname/basename of %j', (path, dir, base) => {
    expect(dirname(path)).toBe(dir);
    expect(basename(path)).toBe(base);
  });

  it.each([
    ['/', 'a', '/a'],
    ['/a', 'b', '/a/b'],
    ['/a', '/b', '/a/b'],
    ['/a', '../b', '/b'],
    ['/a/', 'b/', '/a/b'],
  ])('joinPath(%j, %j) = %j', (dir, name, expected) => {
    expect(joinPath(dir, name)).toBe(expected);
  });

  it('splitPath', () => {
    expect(splitPath('/')).toEqual([]);
    expect(splitPath('/a/b')).toEqual(['a', 'b']);
  });

  it.each([
    ['/', '/', true],
    ['/', '/a', true],
    ['/a', '/a', true],
    ['/a', '/a/b', true],
    ['/a', '/ab', false],
    ['/a', '/', false],
    ['/a/b', '/a', false],
  ])('isInside(%j, %j) = %j', (root, path, expected) => {
    expect(isInside(root, path)).toBe(expected);
  });

  it.each([
    ['/', '/a', '/a'],
    ['/home/u', '/home/u', '/'],
    ['/home/u', '/home/u/a/b', '/a/b'],
    ['/home/u', '/home/user', undefined],
    ['/home/u', '/etc', undefined],
  ])('relativeTo(%j, %j) = %j', (root, path, expected) => {
    expect(relativeTo(root, path)).toBe(expected);
  });
});

import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { makeFoldersSync } from '../src/index.js';

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

it('makes a path and its missing ancestors, returning the first folder made, as mkdir -p', () => {
  const base = fs.mkdtempSync(join(tmpdir(), 'make-folders-'));
  made.push(base);
  expect(makeFoldersSync(join(base, 'a', 'b', 'c'), 0o700)).toBe(join(base, 'a'));
  expect(fs.statSync(join(base, 'a', 'b', 'c')).isDirectory()).toBe(true);
  expect(fs.statSync(join(base, 'a', 'b')).mode & 0o777).toBe(0o700);
  // There already: nothing made.
  expect(makeFoldersSync(join(base, 'a', 'b'))).toBeUndefined();
  fs.writeFileSync(join(base, 'file'), 'x');
  expect(() => makeFoldersSync(join(base, 'file'))).toThrow(expect.objectContaining({ code: 'EEXIST' }));
  expect(() => makeFoldersSync(join(base, 'file', 'under'))).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
});

it('returns only what it made itself: a folder someone else made meanwhile is not claimed (the claims folder checks its owner then)', () => {
  const base = fs.mkdtempSync(join(tmpdir(), 'make-folders-'));
  made.push(base);
  const target = join(base, 'claims');
  const mkdirSync = fs.mkdirSync;
  // Someone else makes it between the look and the mkdir.
  (fs as { mkdirSync: unknown }).mkdirSync = (path: fs.PathLike, options?: fs.MakeDirectoryOptions) => {
    mkdirSync(path, options);
    return mkdirSync(path, options);
  };
  try {
    expect(makeFoldersSync(target)).toBeUndefined();
  } finally {
    (fs as { mkdirSync: unknown }).mkdirSync = mkdirSync;
  }
  expect(fs.statSync(target).isDirectory()).toBe(true);
});

it('takes the path as written, as mkdir -p: `link/../x` beside the link\'s target, a relative path answered relative', () => {
  const base = fs.mkdtempSync(join(tmpdir(), 'make-folders-'));
  made.push(base);
  fs.mkdirSync(join(base, 'real', 'inner'), { recursive: true });
  fs.symlinkSync(join(base, 'real', 'inner'), join(base, 'link'));
  // Not path.join: it would take the `..` away as text.
  makeFoldersSync(`${base}/link/../x`);
  expect(fs.statSync(join(base, 'real', 'x')).isDirectory()).toBe(true);
  expect(fs.existsSync(join(base, 'x'))).toBe(false);
  const cwd = process.cwd();
  process.chdir(base);
  try {
    expect(makeFoldersSync('rel/a')).toBe('rel');
  } finally {
    process.chdir(cwd);
  }
  expect(fs.statSync(join(base, 'rel', 'a')).isDirectory()).toBe(true);
});

// Node's recursive mkdir loops for ever there (mkdir answers ENOENT under /proc, which exists): a server told to
// serve such a path hung at its start.
it.runIf(fs.existsSync('/proc/self'))('fails with ENOENT, at once, where mkdir answers ENOENT under a folder that exists (/proc)', () => {
  const started = performance.now();
  expect(() => makeFoldersSync('/proc/no-such-ftp-folder/below')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  expect(performance.now() - started).toBeLessThan(1000);
});

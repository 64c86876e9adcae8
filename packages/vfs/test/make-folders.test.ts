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

// Node's recursive mkdir loops for ever there (mkdir answers ENOENT under /proc, which exists): a server told to
// serve such a path hung at its start.
it.runIf(fs.existsSync('/proc/self'))('fails with ENOENT, at once, where mkdir answers ENOENT under a folder that exists (/proc)', () => {
  const started = performance.now();
  expect(() => makeFoldersSync('/proc/no-such-ftp-folder/below')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  expect(performance.now() - started).toBeLessThan(1000);
});

// lstatRows against fs.lstatSync on real files of every kind: the same numbers, field for field, and the same
// errors. Imports src/, which loads the addon from dist/ (built before the tests, as for sendfile.test.ts).
import { execFileSync } from 'node:child_process';
import { lstatSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LSTAT_ROW_FIELDS, lstatRows, lstatRowsUnavailableReason } from '../src/index.js';

const unavailable = lstatRowsUnavailableReason();
const onCI = process.env.CI === 'true';
if (unavailable !== null && !onCI) {
  console.warn(`\n*** @ftp/native: SKIPPING the lstatRows tests: ${unavailable}. Build the addon (\`pnpm build\` in packages/native) to run them.\n`);
}

// Elsewhere the tests below skip when it is missing, saying why (the warning above); on CI it must be there.
test.runIf(onCI)('lstatRows is available on CI (CI=true)', () => {
  expect(unavailable, 'on CI the addon must be built and load').toBeNull();
});

describe.skipIf(unavailable !== null)('lstatRows', () => {
  let dir = '';
  const names = ['file', 'empty', 'folder', 'link-to-file', 'dangling-link', 'fifo', 'naïve ünïcode 名前', 'with space', '.hidden'];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'native-lstat-'));
    writeFileSync(join(dir, 'file'), 'x'.repeat(12_345));
    writeFileSync(join(dir, 'empty'), '');
    mkdirSync(join(dir, 'folder'));
    writeFileSync(join(dir, 'folder', 'inner'), 'inside!');
    writeFileSync(join(dir, 'folderinner'), 'out');
    symlinkSync('file', join(dir, 'link-to-file'));
    symlinkSync('nowhere', join(dir, 'dangling-link'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    writeFileSync(join(dir, 'naïve ünïcode 名前'), 'ü');
    writeFileSync(join(dir, 'with space'), 'abc');
    writeFileSync(join(dir, '.hidden'), 'h');
    // Times that differ from each other (and from the change and birth times, which are now), to fractions of a
    // second: a field taken for another, or rounded, shows.
    utimesSync(join(dir, 'file'), new Date('2001-02-03T04:05:06.789Z'), new Date('2002-03-04T05:06:07.891Z'));
    lutimesSync(join(dir, 'link-to-file'), new Date('2003-01-01T00:00:00.125Z'), new Date('2004-01-01T00:00:00.5Z'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('gives the numbers fs.lstatSync gives, in its field order, for every kind of entry (links not followed)', () => {
    const rows = lstatRows(`${dir}/`, names)!;
    expect(rows).toBeInstanceOf(Float64Array);
    expect(rows.length).toBe(names.length * LSTAT_ROW_FIELDS.length);
    names.forEach((name, i) => {
      const st = lstatSync(join(dir, name)) as unknown as Record<string, number>;
      const expected = Object.fromEntries(LSTAT_ROW_FIELDS.map((f) => [f, st[f]]));
      const got = Object.fromEntries(LSTAT_ROW_FIELDS.map((f, k) => [f, rows[i * LSTAT_ROW_FIELDS.length + k]]));
      expect(got, name).toEqual(expected);
    });
  });

  test('the field order is fs.Stats own (what callers pack rows by)', () => {
    const st = lstatSync(dir) as unknown as Record<string, unknown>;
    const numberFields = Object.keys(st).filter((k) => typeof st[k] === 'number');
    expect([...LSTAT_ROW_FIELDS]).toEqual(numberFields);
  });

  test('an entry that is gone has a mode of NaN; the others are still looked up', () => {
    const rows = lstatRows(`${dir}/`, ['file', 'gone', 'empty'])!;
    const W = LSTAT_ROW_FIELDS.length;
    expect(rows[1]).toBe(lstatSync(join(dir, 'file')).mode);
    expect(rows[W + 1]).toBeNaN();
    expect(rows[2 * W + 8]).toBe(0);
    expect(rows[2 * W + 1]).toBe(lstatSync(join(dir, 'empty')).mode);
  });

  test('the prefix is joined as it is: without a trailing slash it is the start of a name, not a folder', () => {
    const rows = lstatRows(`${dir}/fol`, ['der', 'derx'])!;
    expect(rows[1]).toBe(lstatSync(join(dir, 'folder')).mode);
    expect(rows[LSTAT_ROW_FIELDS.length + 1]).toBeNaN();
    // A folder's path without the slash: still a prefix of names beside it, not of those inside.
    expect(lstatRows(`${dir}/folder`, ['inner'])![8]).toBe(3);
    // An empty name: the prefix itself.
    expect(lstatRows(`${dir}/`, [''])![7]).toBe(lstatSync(dir).ino);
    expect(lstatRows(`${dir}/file`, [''])![8]).toBe(12_345);
  });

  test('no names: an empty array', () => {
    expect(lstatRows(`${dir}/`, [])).toEqual(new Float64Array(0));
  });

  test('fails as fs.lstatSync does: code, errno, syscall and path of the entry', () => {
    let expected: NodeJS.ErrnoException | undefined;
    try {
      lstatSync(join(dir, 'file', 'inside'));
    } catch (err) {
      expected = err as NodeJS.ErrnoException;
    }
    expect(expected?.code).toBe('ENOTDIR');
    expect(() => lstatRows(`${dir}/`, ['empty', 'file/inside'])).toThrow(expect.objectContaining({ code: 'ENOTDIR', errno: expected!.errno, syscall: 'lstat', path: `${dir}/file/inside` }));
    expect(() => lstatRows(`${dir}/`, ['x'.repeat(5000)])).toThrow(expect.objectContaining({ code: 'ENAMETOOLONG', syscall: 'lstat' }));
    expect(() => lstatRows(`${'/x'.repeat(3000)}/`, ['a'])).toThrow(expect.objectContaining({ code: 'ENAMETOOLONG' }));
  });

  test('a name holding a NUL byte is refused, never looked up as the shorter name before it', () => {
    expect(() => lstatRows(`${dir}/`, ['file\u0000.txt'])).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => lstatRows(`${dir}/file\u0000/`, ['x'])).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  test('an absolute name is joined to the prefix as text, never looked up from the filesystem root', () => {
    const rows = lstatRows(`${dir}/`, ['/file', '/etc/passwd'])!;
    expect(rows[8]).toBe(12_345); // dir//file
    expect(rows[LSTAT_ROW_FIELDS.length + 1]).toBeNaN(); // dir//etc/passwd: not there
  });

  test('a name too long only once cut inside a character is ENAMETOOLONG, never the shorter name', () => {
    // A prefix leaving an odd 301 bytes below PATH_MAX (4096): 'é' × 151 is 302 bytes, too long; a copy cut to
    // fit would stop at a whole character, after 150 of them (300 bytes), a shorter name that passes for one.
    const deep = join(dir, 'deep');
    mkdirSync(deep, { recursive: true });
    let prefix = `${deep}/`;
    while (prefix.length < 3795 - 41) prefix += 'x'.repeat(40) + '/';
    prefix += 'x'.repeat(3795 - 1 - prefix.length) + '/';
    expect(Buffer.byteLength(prefix)).toBe(3795);
    expect(() => lstatRows(prefix, ['é'.repeat(151)])).toThrow(expect.objectContaining({ code: 'ENAMETOOLONG' }));
  });

  test('errors are worded as fs.lstatSync words them', () => {
    let expected = '';
    try {
      lstatSync(join(dir, 'file', 'inside'));
    } catch (err) {
      expected = (err as Error).message;
    }
    expect(() => lstatRows(`${dir}/`, ['file/inside'])).toThrow(expected);
  });

  test('with the folder expected: its own rows, or ESTALE when another folder is found at the prefix', () => {
    const st = lstatSync(dir);
    expect(lstatRows(`${dir}/`, ['file'], { dev: st.dev, ino: st.ino })![8]).toBe(12_345);
    expect(() => lstatRows(`${dir}/`, ['file'], { dev: st.dev, ino: st.ino + 1 })).toThrow(expect.objectContaining({ code: 'ESTALE', syscall: 'lstat' }));
    const other = lstatSync(join(dir, 'folder'));
    expect(() => lstatRows(`${dir}/`, ['file'], { dev: other.dev, ino: other.ino })).toThrow(expect.objectContaining({ code: 'ESTALE' }));
    // A prefix that is no folder at all: looked up whole, failing as fs.lstatSync would.
    expect(() => lstatRows(`${dir}/file/`, ['x'], { dev: st.dev, ino: st.ino })).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
  });

  test('a getter that takes the rows memory away while names are read: a TypeError, never a write to freed memory', () => {
    const rows = new Float64Array(2 * LSTAT_ROW_FIELDS.length);
    const names: string[] = ['file', 'empty'];
    // Through the addon's own entry point, with rows this test holds (lstatRows makes its own).
    const addon = createRequire(import.meta.url)(fileURLToPath(new URL('../dist/native.node', import.meta.url))) as {
      lstatRows(p: string, n: unknown, r: Float64Array): unknown;
    };
    Object.defineProperty(names, 1, {
      get() {
        // ArrayBuffer.prototype.transfer (ES2024): detaches the buffer, the rows' memory going with it.
        (rows.buffer as ArrayBuffer & { transfer(length: number): ArrayBuffer }).transfer(8);
        return 'empty';
      },
    });
    expect(() => addon.lstatRows(`${dir}/`, names, rows)).toThrow(TypeError);
  });

  test('no descriptor is left open, whichever way a call ends', () => {
    const st = lstatSync(dir);
    const open = (): number => readdirSync('/proc/self/fd').length;
    const before = open();
    for (let i = 0; i < 200; i++) {
      lstatRows(`${dir}/`, names);
      lstatRows(`${dir}/`, ['file'], { dev: st.dev, ino: st.ino });
      for (const attempt of [
        () => lstatRows(`${dir}/`, ['file/inside']),
        () => lstatRows(`${dir}/`, ['a\u0000b']),
        () => lstatRows(`${dir}/`, ['x'.repeat(5000)]),
        () => lstatRows(`${dir}/`, ['file'], { dev: st.dev, ino: st.ino + 1 }),
        () => lstatRows(`${dir}/`, [1 as unknown as string]),
      ]) {
        expect(attempt).toThrow();
      }
    }
    expect(open()).toBe(before);
  });

  test('FTP_NATIVE_LSTAT=0 turns it off: null, and the reason says so', () => {
    process.env.FTP_NATIVE_LSTAT = '0';
    try {
      expect(lstatRows(`${dir}/`, ['file'])).toBeNull();
      expect(lstatRowsUnavailableReason()).toMatch(/FTP_NATIVE_LSTAT=0/);
    } finally {
      delete process.env.FTP_NATIVE_LSTAT;
    }
    expect(lstatRows(`${dir}/`, ['file'])).not.toBeNull();
  });
});

import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatNlstLine } from '@ftp/protocol';
import { LocalProvider, MemoryProvider, mounts, quota, readOnly, scoped, type FsProvider } from '@ftp/vfs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ServerSettings } from '../src/index.js';
import { listingLines as listing, type RawClient } from './helpers.js';
import { loggedIn } from './sliced-folder.js';

// NLST prints names only: a folder, or a pattern (`NLST *.txt`, what `mget` sends), is listed from its names,
// without looking up an entry (one lstat per entry made NLST of a 10,000-entry folder 4 times pure-ftpd's time).

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0)) await c();
});

const BIG = 1_200;
/** A folder of every kind of entry: files, a folder, links (to a folder, to a file, dangling), dot files, odd names. */
const MIXED = ['a.txt', 'b.log', '.hidden.txt', '.profile', 'space name.txt', 'caf\u00e9.txt', '-dash.txt', 'line\nfeed.txt', 'carriage\rreturn.txt', 'Z.txt', '[x].txt'];
let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(join(tmpdir(), 'ftp-nlst-names-'));
  const d = join(root, 'd');
  fs.mkdirSync(d);
  for (const name of MIXED) fs.writeFileSync(join(d, name), name);
  fs.mkdirSync(join(d, 'sub.txt'));
  fs.writeFileSync(join(d, 'sub.txt', 'inner.txt'), '');
  fs.symlinkSync('sub.txt', join(d, 'to-sub'));
  fs.symlinkSync('a.txt', join(d, 'to-a.txt'));
  fs.symlinkSync('nowhere', join(d, 'dangling.txt'));
  fs.mkdirSync(join(root, 'big'));
  for (let i = BIG - 1; i >= 0; i--) fs.writeFileSync(join(root, 'big', `e${String((i * 7919) % BIG).padStart(5, '0')}.${i % 3 === 0 ? 'txt' : 'bin'}`), '');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const session = (fsp: FsProvider, settings: Partial<ServerSettings> = {}): Promise<RawClient> => loggedIn(fsp, settings, cleanups);
const mixed = (): string[] => fs.readdirSync(join(root, 'd')).sort();
const txt = (names: string[]): string[] => names.filter((n) => n.endsWith('.txt') && !n.startsWith('.'));
const lines = (prefix: string, names: string[]): string[] => names.map((n) => formatNlstLine(prefix + n));

describe('NLST output', () => {
  it('a folder: every name, dot files and links (a dangling one too) included, sorted, relative to the argument', async () => {
    const c = await session(new LocalProvider(root));
    expect(mixed()).toHaveLength(MIXED.length + 4);
    expect(await listing(c, 'NLST d')).toEqual(lines('d/', mixed()));
    expect(await listing(c, 'NLST /d/')).toEqual(lines('/d/', mixed()));
    // CR and LF in names come as formatNlstLine makes them (not as line breaks).
    expect(await listing(c, 'NLST /d')).toContain('/d/line?feed.txt');
    expect((await c.cmd('CWD /d')).code).toBe(250);
    expect(await listing(c, 'NLST')).toEqual(lines('', mixed()));
    expect(await listing(c, 'NLST .')).toEqual(lines('', mixed()));
    expect(await listing(c, 'NLST to-sub')).toEqual(['to-sub/inner.txt']);
  });

  it('a pattern followed by a slash lists the one folder it matches (as `ls su?/`); a file followed by one is 550', async () => {
    const c = await session(new LocalProvider(root));
    // `sub.t?t/` matches the folder sub.txt only, not the files beside it (it gave `d/sub.t?t/a.txt`…, paths that do not exist).
    expect(await listing(c, 'NLST d/sub.t?t/')).toEqual(['d/sub.txt/inner.txt']);
    expect(await listing(c, 'NLST /d/to-s?b/')).toEqual(['/d/to-sub/inner.txt']);
    const long = await listing(c, 'LIST d/sub.t?t/');
    expect(long).toHaveLength(1);
    expect(long[0]).toMatch(/ inner\.txt$/);
    // Only files match, or several folders do: refused, saying so.
    await expect(listing(c, 'NLST d/a.*/')).rejects.toThrow(/got 550 .*No folders found/);
    await expect(listing(c, 'LIST d/*sub*/')).rejects.toThrow(/got 550 d\/\*sub\*\/: matches more than one folder \(sub\.txt\/, to-sub\/\)/);
    // `su?/./` is `su?/`, as in a shell; `su?/x/../` too (named from the root, the pattern not being last).
    expect(await listing(c, 'NLST d/sub.t?t/./')).toEqual(['d/sub.txt/inner.txt']);
    expect(await listing(c, 'NLST d/sub.t?t/inner.txt/../')).toEqual(['/d/sub.txt/inner.txt']);
    // A file named with a trailing slash is no folder, in every listing as for RETR or SIZE.
    for (const command of ['NLST d/a.txt/', 'LIST d/a.txt/']) await expect(listing(c, command)).rejects.toThrow(/got 550 .*Not a directory/);
    expect((await c.cmd('MLST d/a.txt/')).code).toBe(550);
    expect((await c.cmd('MLST d/a.txt')).code).toBe(250);
    expect((await c.cmd('MLST d/sub.txt/')).code).toBe(250);
  });

  it('a pattern: the names it matches, sorted, dot files only for a dot pattern; none is 550', async () => {
    const c = await session(new LocalProvider(root));
    expect(await listing(c, 'NLST d/*.txt')).toEqual(lines('d/', txt(mixed())));
    expect(await listing(c, 'NLST /d/.*')).toEqual(lines('/d/', mixed().filter((n) => n.startsWith('.'))));
    expect(await listing(c, 'NLST /d/[a-c]*')).toEqual(lines('/d/', ['a.txt', 'b.log', 'carriage\rreturn.txt', 'caf\u00e9.txt'].sort()));
    expect((await c.cmd('CWD /d')).code).toBe(250);
    expect(await listing(c, 'NLST *.txt')).toEqual(lines('', txt(mixed())));
    expect((await c.cmd('PASV')).code).toBe(227);
    expect((await c.cmd('NLST *.nothing')).code).toBe(550);
    expect((await c.cmd('PASV')).code).toBe(227);
    expect((await c.cmd('NLST /missing/*.txt')).code).toBe(550);
  });

  it('a file (or a dangling link) names itself, and NLST -l is LIST', async () => {
    const c = await session(new LocalProvider(root));
    expect(await listing(c, 'NLST d/a.txt')).toEqual(['d/a.txt']);
    expect(await listing(c, 'NLST /d/dangling.txt')).toEqual(['/d/dangling.txt']);
    const long = await listing(c, 'NLST -l /d');
    expect(long).toHaveLength(mixed().length);
    expect(long.find((l) => l.endsWith(' to-sub -> sub.txt'))).toMatch(/^l/);
  });

  it('a folder past listSortMax: every name once, in the order read', async () => {
    const c = await session(new LocalProvider(root), { listSortMax: 100 });
    const got = await listing(c, 'NLST big');
    expect(got).toHaveLength(BIG);
    expect([...got].sort()).toEqual(lines('big/', fs.readdirSync(join(root, 'big')).sort()));
    expect(await listing(c, 'NLST big/*.txt')).toEqual(lines('big/', txt(fs.readdirSync(join(root, 'big')).sort())));
  });
});

describe('NLST looks no entry up', () => {
  /** Calls of lstat and stat (each form) on an entry of `dir` (not `dir` itself, nor the pattern being tried). */
  function lookups(dir: string): { count: () => number } {
    let count = 0;
    const inside = (path: unknown): void => {
      const p = Buffer.isBuffer(path) ? path.toString() : String(path);
      if (p.startsWith(`${dir}/`) && !p.includes('*')) count++;
    };
    for (const name of ['lstat', 'lstatSync', 'stat', 'statSync'] as const) {
      const original = fs[name] as (...args: unknown[]) => unknown;
      vi.spyOn(fs, name).mockImplementation(((...args: unknown[]) => {
        inside(args[0]);
        return original.apply(fs, args);
      }) as never);
    }
    for (const name of ['lstat', 'stat'] as const) {
      const original = fs.promises[name] as (...args: unknown[]) => unknown;
      vi.spyOn(fs.promises, name).mockImplementation(((...args: unknown[]) => {
        inside(args[0]);
        return original.apply(fs.promises, args);
      }) as never);
    }
    return { count: () => count };
  }

  const providers: Array<[string, () => FsProvider, string]> = [
    ['local disk', () => new LocalProvider(root, { listingThread: false }), '/big'],
    ['local disk without syncMetadata', () => new LocalProvider(root, { syncMetadata: false }), '/big'],
    ['scoped', () => scoped(new LocalProvider(root, { listingThread: false }), '/big'), '/'],
    ['mounts, quota, readOnly', () => readOnly(quota(mounts(new LocalProvider(root, { listingThread: false }), { '/mnt': new MemoryProvider() }), { bytes: 1e9 })), '/big'],
  ];
  for (const [label, make, big] of providers) {
    it(`of a folder or of a pattern (${label})`, async () => {
      const c = await session(make());
      const prefix = big === '/' ? '/' : `${big}/`;
      const calls = lookups(join(root, 'big'));
      const all = await listing(c, `NLST ${big}`);
      expect(all).toHaveLength(BIG);
      expect(all).toEqual(lines(prefix, fs.readdirSync(join(root, 'big')).sort()));
      const matched = await listing(c, `NLST ${prefix}*.txt`);
      expect(matched).toEqual(lines(prefix, txt(fs.readdirSync(join(root, 'big')).sort())));
      expect(matched).toHaveLength(BIG / 3);
      // (Before: one lstat per entry, for each of the two.)
      expect([label, calls.count()]).toEqual([label, 0]);
    });
  }
});

import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { hashFile, listDirectory, listDirectorySlices, resolvePath } from '@ftp/vfs';
import type { Capabilities, DirEntry, FsProvider } from '@ftp/vfs';
import { readText, rejectsWithCode, writeAll } from './helpers.js';

// The `raw-names` group: names that are not UTF-8, for a provider that says `rawNames`. Such a name reaches the
// provider with byte escapes (PEP 383: a lone surrogate U+DC80 … U+DCFF for each raw byte 0x80 … 0xFF), and the
// provider must give back exactly the strings it was given, wherever a name comes back: listings of every kind,
// stats, reads, renames, removals. Storage that keeps names as UTF-8 text turns every lone surrogate into U+FFFD, so
// that `caf\xe9.txt` and `caf\xe8.txt` become one file; a provider that encodes the escapes naively to bytes makes
// `caf\udcc3\udca9` a second name of `café`. Both are what the group catches.
//
// Without `rawNames` the server hands the provider no escapes (it turns each into the Latin-1 character of its byte),
// so the group does not apply: each test is registered as skipped, with the reason in its name.

/** `caf\xe9.txt` (Latin-1 é) and `caf\xe8.txt` (Latin-1 è): two files whose names differ only in a byte. */
const E9 = 'caf\udce9.txt';
const E8 = 'caf\udce8.txt';
/** The same name spelled in UTF-8 (é as C3 A9): a third, separate file. */
const UTF8 = 'café.txt';
/** What UTF-8 text storage makes of both escaped names. */
const REPLACED = 'caf\ufffd.txt';
/** A folder named with byte 0xFF (never part of UTF-8) and a file inside it. */
const DIR_FF = 'd\udcff';
const INNER = 'inner\udcfe.txt';
/** Valid UTF-8 and escapes in one name: `é` then a raw byte 0xE9. */
const MIXED = 'é\udce9';

const REASON = 'the provider does not claim rawNames (the server hands it Latin-1 characters instead of byte escapes)';

/** What a group test needs of the suite's state. */
interface RawNamesCtx {
  readonly p: FsProvider;
  readonly caps: Capabilities;
}

/** A name with its escapes spelled `⟨xE9⟩` and U+FFFD spelled `⟨U+FFFD⟩`: a diff tells them apart (both print as �). */
function shown(name: string): string {
  return name.replace(/[\udc80-\udcff\ufffd]/g, (c) => (c === '\ufffd' ? '⟨U+FFFD⟩' : `⟨x${(c.charCodeAt(0) - 0xdc00).toString(16).toUpperCase()}⟩`));
}

/** Asserts that `actual` holds exactly the names `expected` (in this order): readable first, then code unit for code unit. */
function expectNames(actual: readonly string[], expected: readonly string[], what?: string): void {
  expect(actual.map(shown), what).toEqual(expected.map(shown));
  expect(actual, what).toEqual(expected);
}

async function readdirNames(p: FsProvider, path: string): Promise<string[]> {
  return (await p.readdir(path)).map((e) => (typeof e === 'string' ? e : (e as { name: string }).name)).sort();
}

async function listNames(p: FsProvider, path: string): Promise<string[]> {
  return (await listDirectory(p, path)).map((e) => e.name).sort();
}

/** Every entry of a slice-by-slice listing, and whether the listing said it came sorted. */
async function sliceEntries(p: FsProvider, path: string, sortedUpTo?: number): Promise<{ entries: DirEntry[]; sorted: boolean }> {
  const slices = await listDirectorySlices(p, path, sortedUpTo === undefined ? undefined : { sortedUpTo });
  const entries: DirEntry[] = [];
  for await (const slice of slices) entries.push(...slice);
  return { entries, sorted: slices.sorted === true };
}

/** Registers the group: every test runs only when the provider claims `rawNames`, else it is skipped with the reason. */
export function rawNameTests(ctx: RawNamesCtx): void {
  const rawIt = (name: string, fn: () => Promise<void>, reason = REASON, condition = ctx.caps.rawNames): void => {
    if (condition) it(name, fn);
    else it.skip(`${name} — skipped: ${reason}`, () => undefined);
  };

  /** The three neighbours of the `caf…` tests, each with contents of its own. */
  const seed = async (): Promise<void> => {
    await writeAll(ctx.p, `/${E9}`, 'e acute');
    await writeAll(ctx.p, `/${E8}`, 'e grave!');
    await writeAll(ctx.p, `/${UTF8}`, 'utf-8 name');
  };

  rawIt('two names that differ only in an escaped byte are two files: upload, stat, read, hash, append, REST', async () => {
    await seed();
    expect((await ctx.p.stat(`/${E9}`)).size).toBe(7);
    expect((await ctx.p.stat(`/${E8}`)).size).toBe(8);
    expect((await ctx.p.stat(`/${UTF8}`)).size).toBe(10);
    expect((await ctx.p.stat(`/${E9}`)).isFile()).toBe(true);
    expect(await readText(ctx.p, `/${E9}`)).toBe('e acute');
    expect(await readText(ctx.p, `/${E8}`)).toBe('e grave!');
    expect(await readText(ctx.p, `/${UTF8}`)).toBe('utf-8 name');
    expect(await readText(ctx.p, `/${E9}`, { start: 2, end: 4 })).toBe('acu');
    expect(await hashFile(ctx.p, `/${E8}`, 'SHA-256')).toBe(createHash('sha256').update('e grave!').digest('hex'));
    // Neither escaped name was stored as the U+FFFD that UTF-8 text makes of it.
    await rejectsWithCode(ctx.p.stat(`/${REPLACED}`), 'ENOENT');
    await writeAll(ctx.p, `/${E9}`, '+more', { append: true });
    await writeAll(ctx.p, `/${E8}`, 'E', { start: 0 });
    expect(await readText(ctx.p, `/${E9}`)).toBe('e acute+more');
    expect(await readText(ctx.p, `/${E8}`)).toBe('E');
    // A genuine U+FFFD in a name (EF BF BD in UTF-8) is a name of its own.
    await writeAll(ctx.p, `/${REPLACED}`, 'genuine');
    expect(await readText(ctx.p, `/${REPLACED}`)).toBe('genuine');
    expect(await readText(ctx.p, `/${E9}`)).toBe('e acute+more');
    expectNames(await readdirNames(ctx.p, '/'), [E8, E9, REPLACED, UTF8].sort());
  });

  rawIt('lists the escaped names exactly: readdir, readdir with file types, list, list slices (sorted when asked)', async () => {
    await seed();
    await writeAll(ctx.p, `/${MIXED}`, 'mixed');
    await ctx.p.mkdir(`/${DIR_FF}`);
    const expected = [E9, E8, UTF8, MIXED, DIR_FF].sort();
    expectNames(await readdirNames(ctx.p, '/'), expected);
    // `withFileTypes` is not part of the contract's readdir: a provider may answer with names; Dirents must agree.
    const readdirTyped = ctx.p.readdir as (path: string, options: { withFileTypes: true }) => Promise<unknown[]>;
    const typed = await readdirTyped.call(ctx.p, '/', { withFileTypes: true });
    const typedNames = typed.map((e) => (typeof e === 'string' ? e : (e as { name: string }).name));
    expectNames(typedNames.sort(), expected);
    for (const e of typed) {
      if (typeof e === 'string' || typeof (e as { isDirectory?: unknown }).isDirectory !== 'function') continue;
      const d = e as { name: string; isDirectory(): boolean };
      expect(d.isDirectory(), shown(d.name)).toBe(d.name === DIR_FF);
    }
    const list = await listDirectory(ctx.p, '/');
    expectNames(list.map((e) => e.name).sort(), expected);
    const sizes = Object.fromEntries(list.filter((e) => e.stats.isFile()).map((e) => [shown(e.name), e.stats.size]));
    expect(sizes).toEqual({ [shown(E9)]: 7, [shown(E8)]: 8, [shown(UTF8)]: 10, [shown(MIXED)]: 5 });
    expect(list.find((e) => e.name === DIR_FF)?.stats.isDirectory()).toBe(true);
    const { entries } = await sliceEntries(ctx.p, '/');
    expectNames(entries.map((e) => e.name).sort(), expected);
    expect(entries.find((e) => e.name === E8)?.stats.size).toBe(8);
    // Sorted means by UTF-16 code units (as Array.prototype.sort), escapes included.
    const asked = await sliceEntries(ctx.p, '/', 100);
    const order = asked.entries.map((e) => e.name);
    if (asked.sorted) expectNames(order, expected);
    else expectNames([...order].sort(), expected);
  });

  rawIt('a folder with an escaped name holds files; mkdir, rmdir and unlink take escaped names', async () => {
    await ctx.p.mkdir(`/${DIR_FF}`);
    await rejectsWithCode(ctx.p.mkdir(`/${DIR_FF}`), 'EEXIST');
    // Its neighbour one byte away (0xFE) is another folder.
    await ctx.p.mkdir('/d\udcfe');
    await writeAll(ctx.p, `/${DIR_FF}/${INNER}`, 'inner');
    await ctx.p.mkdir(`/${DIR_FF}/sub\udce9`);
    await writeAll(ctx.p, `/${DIR_FF}/sub\udce9/${E9}`, 'deep');
    expect((await ctx.p.stat(`/${DIR_FF}`)).isDirectory()).toBe(true);
    expectNames(await readdirNames(ctx.p, '/'), ['d\udcfe', DIR_FF]);
    expectNames(await readdirNames(ctx.p, `/${DIR_FF}`), [INNER, 'sub\udce9'].sort());
    expectNames(await listNames(ctx.p, `/${DIR_FF}`), [INNER, 'sub\udce9'].sort());
    expectNames(await readdirNames(ctx.p, '/d\udcfe'), []);
    expectNames((await sliceEntries(ctx.p, `/${DIR_FF}/sub\udce9`)).entries.map((e) => e.name), [E9]);
    expect(await readText(ctx.p, `/${DIR_FF}/${INNER}`)).toBe('inner');
    expect(await readText(ctx.p, `/${DIR_FF}/sub\udce9/${E9}`)).toBe('deep');
    await ctx.p.mkdir('/r\udce1/s\udce2', { recursive: true });
    expect((await ctx.p.stat('/r\udce1/s\udce2')).isDirectory()).toBe(true);
    expectNames(await readdirNames(ctx.p, '/r\udce1'), ['s\udce2']);
    await rejectsWithCode(ctx.p.rmdir(`/${DIR_FF}`), 'ENOTEMPTY');
    await ctx.p.unlink(`/${DIR_FF}/${INNER}`);
    await rejectsWithCode(ctx.p.unlink(`/${DIR_FF}/${INNER}`), 'ENOENT');
    await ctx.p.unlink(`/${DIR_FF}/sub\udce9/${E9}`);
    await ctx.p.rmdir(`/${DIR_FF}/sub\udce9`);
    await ctx.p.rmdir(`/${DIR_FF}`);
    await rejectsWithCode(ctx.p.stat(`/${DIR_FF}`), 'ENOENT');
    await ctx.p.rmdir('/r\udce1/s\udce2');
    await ctx.p.rmdir('/r\udce1');
    expectNames(await readdirNames(ctx.p, '/'), ['d\udcfe']);
  });

  rawIt('unlinking an escaped name removes that file only', async () => {
    await seed();
    await ctx.p.unlink(`/${E8}`);
    await rejectsWithCode(ctx.p.stat(`/${E8}`), 'ENOENT');
    expectNames(await readdirNames(ctx.p, '/'), [E9, UTF8].sort());
    expect(await readText(ctx.p, `/${E9}`)).toBe('e acute');
    await rejectsWithCode(ctx.p.unlink('/caf\udce7.txt'), 'ENOENT');
    await ctx.p.unlink(`/${E9}`);
    expectNames(await readdirNames(ctx.p, '/'), [UTF8]);
    expect(await readText(ctx.p, `/${UTF8}`)).toBe('utf-8 name');
  });

  rawIt('renames between escaped and UTF-8 names, both ways, files and folders', async () => {
    await seed();
    await ctx.p.mkdir(`/${DIR_FF}`);
    // Escaped to UTF-8, over the UTF-8 file: only that one is replaced.
    await ctx.p.rename(`/${E9}`, `/${UTF8}`);
    expectNames(await readdirNames(ctx.p, '/'), [E8, UTF8, DIR_FF].sort());
    expect(await readText(ctx.p, `/${UTF8}`)).toBe('e acute');
    expect(await readText(ctx.p, `/${E8}`)).toBe('e grave!');
    // UTF-8 to escaped, into an escaped folder.
    await ctx.p.rename(`/${UTF8}`, `/${DIR_FF}/b\udce0ck`);
    expectNames(await readdirNames(ctx.p, `/${DIR_FF}`), ['b\udce0ck']);
    expect(await readText(ctx.p, `/${DIR_FF}/b\udce0ck`)).toBe('e acute');
    // Escaped to escaped, over the neighbour one byte away.
    await ctx.p.rename(`/${DIR_FF}/b\udce0ck`, `/${E9}`);
    await ctx.p.rename(`/${E8}`, `/${E9}`);
    expectNames(await readdirNames(ctx.p, '/'), [E9, DIR_FF].sort());
    expect(await readText(ctx.p, `/${E9}`)).toBe('e grave!');
    // A folder, escaped to UTF-8 and back, with its contents.
    await writeAll(ctx.p, `/${DIR_FF}/${INNER}`, 'inner');
    await ctx.p.rename(`/${DIR_FF}`, '/plain é');
    expectNames(await readdirNames(ctx.p, '/'), [E9, 'plain é'].sort());
    expectNames(await readdirNames(ctx.p, '/plain é'), [INNER]);
    await ctx.p.rename('/plain é', '/e\udcfe');
    expectNames(await readdirNames(ctx.p, '/'), [E9, 'e\udcfe'].sort());
    expectNames(await listNames(ctx.p, '/e\udcfe'), [INNER]);
    expect(await readText(ctx.p, `/e\udcfe/${INNER}`)).toBe('inner');
    await rejectsWithCode(ctx.p.stat(`/${DIR_FF}`), 'ENOENT');
    await rejectsWithCode(ctx.p.rename(`/${E8}`, '/x'), 'ENOENT');
  });

  rawIt('byte 0xFF alone, runs of escapes, and names mixing UTF-8 with escapes stay exact', async () => {
    const files: Record<string, string> = {
      '\udcff': 'byte ff',
      '\udcff\udcff': 'two ff',
      '\udc80': 'byte 80',
      [MIXED]: 'e acute then e9',
      '\udce9é': 'e9 then e acute',
      'é': 'just e acute',
      '文\udc80件 \udcfe.bin': 'cjk around escapes',
    };
    for (const [name, body] of Object.entries(files)) await writeAll(ctx.p, `/${name}`, body);
    const expected = Object.keys(files).sort();
    expectNames(await readdirNames(ctx.p, '/'), expected);
    expectNames(await listNames(ctx.p, '/'), expected);
    expectNames((await sliceEntries(ctx.p, '/')).entries.map((e) => e.name).sort(), expected);
    for (const [name, body] of Object.entries(files)) {
      expect(await readText(ctx.p, `/${name}`), shown(name)).toBe(body);
      expect((await ctx.p.stat(`/${name}`)).size, shown(name)).toBe(Buffer.byteLength(body));
    }
    await ctx.p.mkdir('/\udcff\udcfe');
    await ctx.p.rename(`/${MIXED}`, `/\udcff\udcfe/${MIXED}`);
    expectNames(await readdirNames(ctx.p, '/\udcff\udcfe'), [MIXED]);
    expect(await readText(ctx.p, `/\udcff\udcfe/${MIXED}`)).toBe('e acute then e9');
    expect(await readText(ctx.p, '/é')).toBe('just e acute');
    await ctx.p.unlink('/\udcff');
    expect(await readText(ctx.p, '/\udcff\udcff')).toBe('two ff');
    await rejectsWithCode(ctx.p.stat('/\udcff'), 'ENOENT');
  });

  rawIt('escapes that spell valid UTF-8 are refused (EINVAL) or a name of their own, never a second name for the UTF-8 one', async () => {
    await writeAll(ctx.p, '/café', 'utf-8');
    // C3 A9 is é in UTF-8, so no decoder produces these escapes; a provider that writes escapes as their bytes
    // naively would reach `café` through them.
    const spelled = '/caf\udcc3\udca9';
    let refused = false;
    try {
      await writeAll(ctx.p, spelled, 'escaped');
    } catch (err) {
      await rejectsWithCode(Promise.reject(err), 'EINVAL');
      refused = true;
    }
    expect(await readText(ctx.p, '/café')).toBe('utf-8');
    if (refused) {
      expectNames(await readdirNames(ctx.p, '/'), ['café']);
      await rejectsWithCode(ctx.p.stat(spelled), ['EINVAL', 'ENOENT']);
    } else {
      expectNames(await readdirNames(ctx.p, '/'), ['café', 'caf\udcc3\udca9'].sort());
      expect(await readText(ctx.p, spelled)).toBe('escaped');
    }
  });

  rawIt(
    'links to escaped names: readlink gives the target back with its escapes, and reads follow it',
    async () => {
      const link = ctx.p.symlink as NonNullable<FsProvider['symlink']>;
      const readlink = ctx.p.readlink as NonNullable<FsProvider['readlink']>;
      await ctx.p.mkdir(`/${DIR_FF}`);
      await writeAll(ctx.p, `/${DIR_FF}/${E9}`, 'target');
      await link.call(ctx.p, `${DIR_FF}/${E9}`, '/to-caf\udce9');
      expectNames([resolvePath('/', await readlink.call(ctx.p, '/to-caf\udce9'))], [`/${DIR_FF}/${E9}`], 'readlink');
      expect(await readText(ctx.p, '/to-caf\udce9')).toBe('target');
      expectNames(await readdirNames(ctx.p, '/'), [DIR_FF, 'to-caf\udce9'].sort());
    },
    ctx.caps.rawNames ? 'the provider has no symlink capability' : REASON,
    ctx.caps.rawNames && ctx.caps.symlink,
  );
}

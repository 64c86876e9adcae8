import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  describeCapabilities,
  hashFile,
  HASH_ALGORITHMS,
  listDirectory,
  listDirectorySlices,
  openReadStream,
  openWriteStream,
  readOnly,
  resolvePath,
  scoped,
  toVfsError,
  VFS_ERROR_CODES,
} from '@ftp/vfs';
import type { Capabilities, FsProvider, HashAlgorithm } from '@ftp/vfs';
import { concurrentWriterTests } from './concurrent-writers.js';
import { rawNameTests } from './raw-names.js';
import {
  deterministicBytes,
  deterministicChunks,
  endStream,
  MemoryProbe,
  readAll,
  readText,
  rejectsWithCode,
  writeAll,
  writeChunk,
} from './helpers.js';

const MiB = 1024 * 1024;

/** The groups of the suite; `skip` takes these names. The optional ones also skip themselves without the capability. */
export const GROUPS = [
  'stat',
  'mkdir',
  'rmdir',
  'unlink',
  'rename',
  'listing',
  'streams',
  'large-file',
  'concurrency',
  'concurrent-writers',
  'unicode',
  'raw-names',
  'errors',
  'set-times',
  'chmod',
  'symlinks',
  'hash',
  'space',
  'read-only',
  'scoped',
] as const;

/** A group name of {@link GROUPS}. */
export type GroupName = (typeof GROUPS)[number];

/** Options of {@link describeProvider}. */
export interface DescribeProviderOptions {
  /** Releases a provider after each test (default: its `close()`, if any). */
  teardown?: (p: FsProvider) => void | Promise<void>;
  /** Size of the large streamed file. Default 64 MiB. */
  largeFileBytes?: number;
  /**
   * How much the process may grow while the large file is written and read back. Default 64 MiB. For a provider
   * that keeps file content in this process (`contentInMemory`), the write phase may grow by the file size on top.
   */
  memoryBudgetBytes?: number;
  /**
   * The provider keeps file content in this process's memory (a memory provider, SQLite `:memory:`): the large-file
   * test then checks that storing the file costs about its size (no extra copies) and that reading it back costs
   * no more than the budget, instead of checking that the whole transfer stays within the budget.
   */
  contentInMemory?: boolean;
  /**
   * Groups to skip, each as `'group: reason'` (or just `'group'`): the reason is printed and shown in the name of
   * the skipped suite.
   */
  skip?: readonly string[];
  /** Per-test timeout of the large-file test, ms. Default 60 000. */
  largeFileTimeout?: number;
}

/** The state the groups share: the fresh provider of the running test and the detected capabilities. */
interface Ctx {
  readonly p: FsProvider;
  readonly caps: Capabilities;
  readonly options: DescribeProviderOptions;
  /** The provider's uploads say `releasesChunks` (a flag of each upload stream, so read from one on the probe). */
  readonly releasesChunks: boolean;
}

/** Whether an upload opened on `p` says `releasesChunks`; the probe upload is discarded. */
async function uploadsReleaseChunks(p: FsProvider): Promise<boolean> {
  const path = '/.conformance-probe';
  let ws;
  try {
    ws = await openWriteStream(p, path);
  } catch {
    return false; // Read-only: nothing is uploaded at all.
  }
  const releases = ws.releasesChunks === true;
  ws.destroy();
  await p.unlink(path).catch(() => undefined);
  return releases;
}

const now = (): number => Date.now();

async function expectCode(promise: Promise<unknown> | (() => Promise<unknown>), codes: Parameters<typeof rejectsWithCode>[1]): Promise<void> {
  await rejectsWithCode(promise, codes);
}

async function names(p: FsProvider, path: string): Promise<string[]> {
  return (await listDirectory(p, path)).map((e) => e.name).sort();
}

async function readdirNames(p: FsProvider, path: string): Promise<string[]> {
  return (await p.readdir(path)).map((e) => (typeof e === 'string' ? e : (e as { name: string }).name)).sort();
}

/** Registers a capability-dependent test, or a skipped one that says why. */
function itIf(condition: boolean, name: string, reason: string, fn: () => Promise<void>, timeout?: number): void {
  if (condition) it(name, fn, timeout);
  else it.skip(`${name} — skipped: ${reason}`, () => undefined);
}

/**
 * Registers the conformance suite of the `@ftp/vfs` contract for a provider: vitest `describe`/`it` cases, each run
 * against a fresh provider from `factory` (released by `teardown`, default `close()`).
 *
 * Capabilities are detected once, on a probe provider; a test of a capability the provider lacks is registered as
 * skipped, with the reason in its name. Whole groups can be skipped with `options.skip` (`'symlinks: reason'`).
 */
export function describeProvider(name: string, factory: () => FsProvider | Promise<FsProvider>, options: DescribeProviderOptions = {}): void {
  const teardown = options.teardown ?? ((p: FsProvider) => p.close?.());
  const skips = new Map<string, string>();
  for (const entry of options.skip ?? []) {
    const i = entry.indexOf(':');
    const group = (i < 0 ? entry : entry.slice(0, i)).trim();
    const reason = i < 0 ? 'skipped by the driver' : entry.slice(i + 1).trim();
    if (!(GROUPS as readonly string[]).includes(group)) throw new Error(`describeProvider: unknown group "${group}" (groups: ${GROUPS.join(', ')})`);
    skips.set(group, reason);
  }

  describe(`@ftp/vfs conformance: ${name}`, async () => {
    const probe = await factory();
    const caps = describeCapabilities(probe);
    const releasesChunks = await uploadsReleaseChunks(probe);
    await teardown(probe);
    let current: FsProvider | undefined;
    const ctx: Ctx = {
      get p(): FsProvider {
        if (current === undefined) throw new Error('no provider: the factory failed');
        return current;
      },
      caps,
      options,
      releasesChunks,
    };
    beforeEach(async () => {
      current = await factory();
    });
    afterEach(async () => {
      const p = current;
      current = undefined;
      if (p !== undefined) await teardown(p);
    });

    const groups: Record<GroupName, (ctx: Ctx) => void> = {
      stat: statTests,
      mkdir: mkdirTests,
      rmdir: rmdirTests,
      unlink: unlinkTests,
      rename: renameTests,
      listing: listingTests,
      streams: streamTests,
      'large-file': largeFileTests,
      concurrency: concurrencyTests,
      'concurrent-writers': concurrentWriterTests,
      unicode: unicodeTests,
      'raw-names': rawNameTests,
      errors: errorTests,
      'set-times': setTimesTests,
      chmod: chmodTests,
      symlinks: symlinkTests,
      hash: hashTests,
      space: spaceTests,
      'read-only': readOnlyTests,
      scoped: scopedTests,
    };
    for (const group of GROUPS) {
      const reason = skips.get(group);
      if (reason !== undefined) {
        console.warn(`[@ftp/vfs-conformance] ${name}: group "${group}" skipped: ${reason}`);
        describe.skip(`${group} — skipped: ${reason}`, () => groups[group](ctx));
      } else {
        describe(group, () => groups[group](ctx));
      }
    }
  });
}

// ------------------------------------------------------------------------------------------------ groups

function statTests(ctx: Ctx): void {
  it('stat and lstat of / report a directory', async () => {
    expect((await ctx.p.stat('/')).isDirectory()).toBe(true);
    const lstat = ctx.p.lstat;
    if (typeof lstat === 'function') expect((await lstat.call(ctx.p, '/')).isDirectory()).toBe(true);
  });

  it('stat of a file reports a file, its size, a recent mtime and permission bits', async () => {
    const before = now();
    await writeAll(ctx.p, '/a.txt', 'hello');
    const st = await ctx.p.stat('/a.txt');
    expect(st.isFile()).toBe(true);
    expect(st.isDirectory()).toBe(false);
    expect(st.isSymbolicLink()).toBe(false);
    expect(st.size).toBe(5);
    expect(st.mtimeMs).toBeGreaterThan(before - 5_000);
    expect(st.mtimeMs).toBeLessThan(now() + 5_000);
    expect(typeof st.mode).toBe('number');
    const lstat = ctx.p.lstat;
    if (typeof lstat === 'function') {
      const l = await lstat.call(ctx.p, '/a.txt');
      expect(l.isFile()).toBe(true);
      expect(l.size).toBe(5);
    }
  });

  it('stat of a directory reports a directory', async () => {
    await ctx.p.mkdir('/d');
    const st = await ctx.p.stat('/d');
    expect(st.isDirectory()).toBe(true);
    expect(st.isFile()).toBe(false);
  });

  it('stat of a missing path fails with ENOENT, below a file with ENOTDIR or ENOENT', async () => {
    await expectCode(ctx.p.stat('/missing'), 'ENOENT');
    await expectCode(ctx.p.stat('/missing/deeper'), 'ENOENT');
    await writeAll(ctx.p, '/f', 'x');
    await expectCode(ctx.p.stat('/f/below'), ['ENOTDIR', 'ENOENT']);
  });
}

function mkdirTests(ctx: Ctx): void {
  it('creates a directory that stat and readdir see', async () => {
    await ctx.p.mkdir('/d');
    expect((await ctx.p.stat('/d')).isDirectory()).toBe(true);
    expect(await readdirNames(ctx.p, '/')).toEqual(['d']);
    expect(await readdirNames(ctx.p, '/d')).toEqual([]);
  });

  it('fails with EEXIST on an existing directory or file', async () => {
    await ctx.p.mkdir('/d');
    await expectCode(ctx.p.mkdir('/d'), 'EEXIST');
    await writeAll(ctx.p, '/f', 'x');
    await expectCode(ctx.p.mkdir('/f'), 'EEXIST');
  });

  it('fails with ENOENT when the parent is missing', async () => {
    await expectCode(ctx.p.mkdir('/no/such'), 'ENOENT');
  });

  it('recursive creates the parents and accepts an existing directory', async () => {
    await ctx.p.mkdir('/a/b/c', { recursive: true });
    expect((await ctx.p.stat('/a/b/c')).isDirectory()).toBe(true);
    await ctx.p.mkdir('/a/b/c', { recursive: true });
    await ctx.p.mkdir('/a', { recursive: true });
    expect(await readdirNames(ctx.p, '/a/b')).toEqual(['c']);
  });
}

function rmdirTests(ctx: Ctx): void {
  it('removes an empty directory', async () => {
    await ctx.p.mkdir('/d');
    await ctx.p.rmdir('/d');
    await expectCode(ctx.p.stat('/d'), 'ENOENT');
    expect(await readdirNames(ctx.p, '/')).toEqual([]);
  });

  it('fails with ENOTEMPTY, ENOTDIR and ENOENT', async () => {
    await ctx.p.mkdir('/d');
    await writeAll(ctx.p, '/d/f', 'x');
    await expectCode(ctx.p.rmdir('/d'), 'ENOTEMPTY');
    await expectCode(ctx.p.rmdir('/d/f'), 'ENOTDIR');
    await expectCode(ctx.p.rmdir('/missing'), 'ENOENT');
    expect(await readText(ctx.p, '/d/f')).toBe('x');
  });

  it('refuses to remove the root with EPERM (permanent: FTP 550, where EBUSY would be a 450 that clients retry)', async () => {
    await expectCode(ctx.p.rmdir('/'), 'EPERM');
    expect((await ctx.p.stat('/')).isDirectory()).toBe(true);
    await ctx.p.mkdir('/d');
    expect(await readdirNames(ctx.p, '/')).toEqual(['d']);
  });
}

function unlinkTests(ctx: Ctx): void {
  it('removes a file', async () => {
    await writeAll(ctx.p, '/f', 'x');
    await ctx.p.unlink('/f');
    await expectCode(ctx.p.stat('/f'), 'ENOENT');
    expect(await readdirNames(ctx.p, '/')).toEqual([]);
  });

  it('fails with EISDIR or EPERM for a directory, ENOENT for a missing file', async () => {
    await ctx.p.mkdir('/d');
    await expectCode(ctx.p.unlink('/d'), ['EISDIR', 'EPERM']);
    expect((await ctx.p.stat('/d')).isDirectory()).toBe(true);
    await expectCode(ctx.p.unlink('/missing'), 'ENOENT');
  });
}

function renameTests(ctx: Ctx): void {
  it('renames a file', async () => {
    await writeAll(ctx.p, '/a', 'content');
    await ctx.p.rename('/a', '/b');
    await expectCode(ctx.p.stat('/a'), 'ENOENT');
    expect(await readText(ctx.p, '/b')).toBe('content');
  });

  it('moves a file to another directory', async () => {
    await ctx.p.mkdir('/d');
    await writeAll(ctx.p, '/a', 'content');
    await ctx.p.rename('/a', '/d/a2');
    expect(await readdirNames(ctx.p, '/')).toEqual(['d']);
    expect(await readText(ctx.p, '/d/a2')).toBe('content');
  });

  it('renames a directory with its contents', async () => {
    await ctx.p.mkdir('/d/sub', { recursive: true });
    await writeAll(ctx.p, '/d/f', 'one');
    await writeAll(ctx.p, '/d/sub/g', 'two');
    await ctx.p.rename('/d', '/e');
    await expectCode(ctx.p.stat('/d'), 'ENOENT');
    expect(await readdirNames(ctx.p, '/e')).toEqual(['f', 'sub']);
    expect(await readText(ctx.p, '/e/f')).toBe('one');
    expect(await readText(ctx.p, '/e/sub/g')).toBe('two');
  });

  it('overwrites an existing file', async () => {
    await writeAll(ctx.p, '/a', 'new');
    await writeAll(ctx.p, '/b', 'old and longer');
    await ctx.p.rename('/a', '/b');
    await expectCode(ctx.p.stat('/a'), 'ENOENT');
    expect(await readText(ctx.p, '/b')).toBe('new');
    expect(await readdirNames(ctx.p, '/')).toEqual(['b']);
  });

  it('fails with ENOENT for a missing source or a missing target directory', async () => {
    await expectCode(ctx.p.rename('/missing', '/x'), 'ENOENT');
    await writeAll(ctx.p, '/a', 'x');
    await expectCode(ctx.p.rename('/a', '/no/such/b'), 'ENOENT');
    expect(await readText(ctx.p, '/a')).toBe('x');
  });

  it('refuses to rename the root, or anything onto it, with EPERM (permanent: FTP 550, not EBUSY\'s 450)', async () => {
    await writeAll(ctx.p, '/a', 'x');
    await ctx.p.mkdir('/d');
    await expectCode(ctx.p.rename('/', '/x'), 'EPERM');
    await expectCode(ctx.p.rename('/a', '/'), 'EPERM');
    await expectCode(ctx.p.rename('/d', '/'), 'EPERM');
    expect(await readdirNames(ctx.p, '/')).toEqual(['a', 'd']);
    expect(await readText(ctx.p, '/a')).toBe('x');
  });

  it('refuses to move a directory into itself (EINVAL)', async () => {
    await ctx.p.mkdir('/d/sub', { recursive: true });
    await expectCode(ctx.p.rename('/d', '/d/sub/d'), 'EINVAL');
    expect((await ctx.p.stat('/d/sub')).isDirectory()).toBe(true);
  });
}

function listingTests(ctx: Ctx): void {
  it('readdir and listDirectory agree, with types, sizes and mtimes', async () => {
    const before = now();
    await writeAll(ctx.p, '/small', 'abc');
    await writeAll(ctx.p, '/bigger', deterministicBytes(300_000));
    await writeAll(ctx.p, '/empty', '');
    await ctx.p.mkdir('/dir');
    const list = await listDirectory(ctx.p, '/');
    expect(list.map((e) => e.name).sort()).toEqual(await readdirNames(ctx.p, '/'));
    expect(list.map((e) => e.name).sort()).toEqual(['bigger', 'dir', 'empty', 'small']);
    const by = new Map(list.map((e) => [e.name, e.stats]));
    expect(by.get('small')?.size).toBe(3);
    expect(by.get('bigger')?.size).toBe(300_000);
    expect(by.get('empty')?.size).toBe(0);
    expect(by.get('small')?.isFile()).toBe(true);
    expect(by.get('dir')?.isDirectory()).toBe(true);
    for (const e of list) {
      expect(e.stats.mtimeMs).toBeGreaterThan(before - 5_000);
      expect(e.stats.mtimeMs).toBeLessThan(now() + 5_000);
    }
  });

  it('lists an empty directory as empty', async () => {
    await ctx.p.mkdir('/d');
    expect(await listDirectory(ctx.p, '/d')).toEqual([]);
    expect(await ctx.p.readdir('/d')).toEqual([]);
  });

  it('fails with ENOTDIR for a file and ENOENT for a missing directory', async () => {
    await writeAll(ctx.p, '/f', 'x');
    await expectCode(listDirectory(ctx.p, '/f'), 'ENOTDIR');
    await expectCode(ctx.p.readdir('/f'), 'ENOTDIR');
    await expectCode(listDirectory(ctx.p, '/missing'), 'ENOENT');
    await expectCode(ctx.p.readdir('/missing'), 'ENOENT');
  });

  it('lists many entries', async () => {
    await ctx.p.mkdir('/many');
    const expected: string[] = [];
    for (let i = 0; i < 150; i++) {
      const n = `f${String(i).padStart(3, '0')}`;
      expected.push(n);
      await writeAll(ctx.p, `/many/${n}`, String(i));
    }
    expect(await names(ctx.p, '/many')).toEqual(expected);
    expect(await readdirNames(ctx.p, '/many')).toEqual(expected);
  });

  // Providers with `listSlices` get a folder of several slices (local disk: 500 entries a slice); the others are
  // checked through the one-slice fallback, on fewer entries.
  // Its own time limit: on s3rver the 1,001 entries take ~20 s alone, past the default 30 s on a busy CI machine.
  it('lists a folder slice by slice as listDirectory does, and can stop in the middle', async () => {
    const count = typeof ctx.p.listSlices === 'function' ? 1_001 : 20;
    await ctx.p.mkdir('/sliced');
    for (let i = 0; i < count; i++) await writeAll(ctx.p, `/sliced/e${i}`, 'x'.repeat(i % 7));
    const whole = await listDirectory(ctx.p, '/sliced');
    const slices = await listDirectorySlices(ctx.p, '/sliced');
    const got: Array<{ name: string; size: number; file: boolean }> = [];
    for await (const slice of slices) for (const e of slice) got.push({ name: e.name, size: e.stats.size, file: e.stats.isFile() });
    const view = (list: Array<{ name: string; size: number; file: boolean }>): string[] => list.map((e) => `${e.name}:${e.size}:${e.file}`).sort();
    expect(got).toHaveLength(count);
    expect(view(got)).toEqual(view(whole.map((e) => ({ name: e.name, size: e.stats.size, file: e.stats.isFile() }))));
    // Stopped after its first slice, and before it started: the folder lists again in full afterwards.
    const stopped = await listDirectorySlices(ctx.p, '/sliced');
    expect((await stopped.next()).done).toBe(false);
    expect((await stopped.return()).done).toBe(true);
    expect((await stopped.next()).done).toBe(true);
    await (await listDirectorySlices(ctx.p, '/sliced')).return();
    expect(await names(ctx.p, '/sliced')).toHaveLength(count);
    const empty = await listDirectorySlices(ctx.p, '/');
    await empty.return();
    await ctx.p.mkdir('/hollow');
    const none: string[] = [];
    for await (const slice of await listDirectorySlices(ctx.p, '/hollow')) none.push(...slice.map((e) => e.name));
    expect(none).toEqual([]);
  }, 120_000);

  it('refuses to list a file or a missing folder slice by slice, when it is opened', async () => {
    await writeAll(ctx.p, '/f', 'x');
    await expectCode(listDirectorySlices(ctx.p, '/f'), 'ENOTDIR');
    await expectCode(listDirectorySlices(ctx.p, '/missing'), 'ENOENT');
  });
}

function streamTests(ctx: Ctx): void {
  const text = '0123456789abcdefghijklmnopqrstuvwxyz';

  it('writes a file and reads it back', async () => {
    await writeAll(ctx.p, '/f', text);
    expect(await readText(ctx.p, '/f')).toBe(text);
    expect((await ctx.p.stat('/f')).size).toBe(text.length);
  });

  it('reads ranges: start, end (inclusive), both, past the end', async () => {
    await writeAll(ctx.p, '/f', text);
    expect(await readText(ctx.p, '/f', { start: 10 })).toBe(text.slice(10));
    expect(await readText(ctx.p, '/f', { end: 9 })).toBe(text.slice(0, 10));
    expect(await readText(ctx.p, '/f', { start: 3, end: 7 })).toBe(text.slice(3, 8));
    expect(await readText(ctx.p, '/f', { start: 5, end: 5 })).toBe('5');
    expect(await readText(ctx.p, '/f', { start: 100 })).toBe('');
    expect(await readText(ctx.p, '/f', { start: 30, end: 1000 })).toBe(text.slice(30));
  });

  itIf(
    ctx.releasesChunks,
    'an upload that claims releasesChunks stores chunks whose memory was reused after their callback',
    "the provider's uploads do not say releasesChunks (the server gives them fresh memory for every chunk)",
    async () => {
      const ws = await openWriteStream(ctx.p, '/reused');
      expect(ws.releasesChunks).toBe(true);
      // Sizes around the small-first-chunk and batching thresholds of the local provider, and one big chunk.
      const sizes = [1, 16 * 1024, 65_536, 65_537, 300_000, MiB, 7];
      const buffer = Buffer.alloc(MiB + 1);
      const expected: Buffer[] = [];
      for (const [i, size] of sizes.entries()) {
        const chunk = buffer.subarray(0, size);
        chunk.fill(0x41 + i);
        expected.push(Buffer.from(chunk));
        // The next chunk overwrites this memory as soon as the callback has run, as the server's reads do.
        await new Promise<void>((resolve, reject) => ws.write(chunk, (err) => (err ? reject(err) : resolve())));
        chunk.fill(0x7a);
      }
      await endStream(ws);
      expect((await readAll(ctx.p, '/reused')).equals(Buffer.concat(expected))).toBe(true);
    },
  );

  it('reads ranges across chunk boundaries of a 1 MiB file', async () => {
    const data = deterministicBytes(MiB + 123, 7);
    await writeAll(ctx.p, '/big', data);
    expect((await readAll(ctx.p, '/big')).equals(data)).toBe(true);
    for (const [start, end] of [
      [0, 262_143],
      [262_143, 262_145],
      [100_000, 700_000],
      [MiB, MiB + 122],
    ] as const) {
      expect((await readAll(ctx.p, '/big', { start, end })).equals(data.subarray(start, end + 1))).toBe(true);
    }
  });

  it('overwrites a longer file with shorter content', async () => {
    await writeAll(ctx.p, '/f', 'a long original content');
    await writeAll(ctx.p, '/f', 'short');
    expect(await readText(ctx.p, '/f')).toBe('short');
    expect((await ctx.p.stat('/f')).size).toBe(5);
  });

  it('writes at start (REST + STOR): keeps the prefix, drops the old tail', async () => {
    await writeAll(ctx.p, '/f', '0123456789');
    await writeAll(ctx.p, '/f', 'XY', { start: 4 });
    expect(await readText(ctx.p, '/f')).toBe('0123XY');
    await writeAll(ctx.p, '/f', 'AB', { start: 6 });
    expect(await readText(ctx.p, '/f')).toBe('0123XYAB');
  });

  it('writes at start across chunk boundaries of a large file', async () => {
    const data = deterministicBytes(600_000, 3);
    await writeAll(ctx.p, '/f', data);
    const tail = deterministicBytes(100_000, 4);
    await writeAll(ctx.p, '/f', tail, { start: 300_000 });
    const back = await readAll(ctx.p, '/f');
    expect(back.length).toBe(400_000);
    expect(back.subarray(0, 300_000).equals(data.subarray(0, 300_000))).toBe(true);
    expect(back.subarray(300_000).equals(tail)).toBe(true);
  });

  it('writes at start on a missing file (creates it)', async () => {
    await writeAll(ctx.p, '/new', 'abc', { start: 0 });
    expect(await readText(ctx.p, '/new')).toBe('abc');
  });

  it('appends (APPE), and creates a missing file', async () => {
    await writeAll(ctx.p, '/f', 'abc');
    await writeAll(ctx.p, '/f', 'def', { append: true });
    expect(await readText(ctx.p, '/f')).toBe('abcdef');
    await writeAll(ctx.p, '/g', 'first', { append: true });
    expect(await readText(ctx.p, '/g')).toBe('first');
  });

  it('appends across chunk boundaries', async () => {
    const a = deterministicBytes(300_000, 5);
    const b = deterministicBytes(300_001, 6);
    await writeAll(ctx.p, '/f', a);
    await writeAll(ctx.p, '/f', b, { append: true });
    expect((await readAll(ctx.p, '/f')).equals(Buffer.concat([a, b]))).toBe(true);
  });

  it('writes an empty file', async () => {
    await writeAll(ctx.p, '/empty', '');
    const st = await ctx.p.stat('/empty');
    expect(st.isFile()).toBe(true);
    expect(st.size).toBe(0);
    expect((await readAll(ctx.p, '/empty')).length).toBe(0);
  });

  it('fails with ENOENT for a missing file or directory, EISDIR for a directory', async () => {
    await expectCode(openReadStream(ctx.p, '/missing'), 'ENOENT');
    await expectCode(openWriteStream(ctx.p, '/no/such/file'), 'ENOENT');
    await ctx.p.mkdir('/d');
    await expectCode(() => readAll(ctx.p, '/d'), 'EISDIR');
    await expectCode(() => writeAll(ctx.p, '/d', 'x'), 'EISDIR');
    await expectCode(() => writeAll(ctx.p, '/', 'x'), 'EISDIR');
  });

  it('writes through file handles (open) as well', async () => {
    const h = (await ctx.p.open('/h', 'w')) as { write(b: Buffer, o: number, l: number, p: number | null): Promise<unknown>; close(): Promise<void> };
    await h.write(Buffer.from('hello '), 0, 6, null);
    await h.write(Buffer.from('world'), 0, 5, null);
    await h.close();
    expect(await readText(ctx.p, '/h')).toBe('hello world');
    const r = (await ctx.p.open('/h', 'r')) as { read(b: Buffer, o: number, l: number, p: number | null): Promise<{ bytesRead: number }>; close(): Promise<void> };
    const buf = Buffer.alloc(5);
    const { bytesRead } = await r.read(buf, 0, 5, 6);
    await r.close();
    expect(buf.subarray(0, bytesRead).toString()).toBe('world');
  });
}

function largeFileTests(ctx: Ctx): void {
  const bytes = ctx.options.largeFileBytes ?? 64 * MiB;
  const budget = ctx.options.memoryBudgetBytes ?? 64 * MiB;
  const inMemory = ctx.options.contentInMemory === true;
  const label = `${(bytes / MiB).toFixed(0)} MiB`;
  it(
    `writes and reads back a ${label} streamed file (SHA-256 equal) with bounded memory`,
    async () => {
      const probe = new MemoryProbe();
      const every = 8 * MiB;
      const expected = createHash('sha256');
      probe.start();
      const t0 = performance.now();
      const ws = await openWriteStream(ctx.p, '/large.bin');
      let written = 0;
      for (const chunk of deterministicChunks(bytes, { seed: 42 })) {
        expected.update(chunk);
        await writeChunk(ws, chunk);
        written += chunk.length;
        if (written % every < chunk.length) probe.sample();
      }
      await endStream(ws);
      const writeMs = performance.now() - t0;
      const writePeak = Math.max(probe.peak, probe.sample());
      expect((await ctx.p.stat('/large.bin')).size).toBe(bytes);

      const readProbe = new MemoryProbe().start();
      const t1 = performance.now();
      const actual = createHash('sha256');
      let read = 0;
      for await (const chunk of await openReadStream(ctx.p, '/large.bin')) {
        actual.update(chunk as Buffer);
        read += (chunk as Buffer).length;
        if (read % every < (chunk as Buffer).length) readProbe.sample();
      }
      const readMs = performance.now() - t1;
      const readPeak = Math.max(readProbe.peak, readProbe.sample());
      expect(read).toBe(bytes);
      expect(actual.digest('hex')).toBe(expected.digest('hex'));

      const mib = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;
      console.info(
        `[@ftp/vfs-conformance] large file ${label}: write ${(bytes / MiB / (writeMs / 1000)).toFixed(0)} MiB/s, read ${(bytes / MiB / (readMs / 1000)).toFixed(0)} MiB/s; ` +
          `${probe.metric} growth: write ${mib(writePeak)}, read ${mib(readPeak)}${probe.collects ? '' : ' (no gc: figures include garbage)'}`,
      );
      // Without a collector the figures include garbage: allow twice the budget.
      const slack = probe.collects ? 1 : 2;
      if (inMemory) {
        // The content itself lives in this process: storing it may cost its size, but no extra copy of it.
        expect(writePeak).toBeLessThan(bytes + budget * slack);
        expect(readPeak).toBeLessThan(budget * slack);
      } else {
        expect(writePeak).toBeLessThan(budget * slack);
        expect(readPeak).toBeLessThan(budget * slack);
      }
    },
    ctx.options.largeFileTimeout ?? 60_000,
  );
}

function concurrencyTests(ctx: Ctx): void {
  it('concurrent writers to different files each keep their data', async () => {
    const files = Array.from({ length: 6 }, (_, i) => ({ path: `/c${i}.bin`, data: deterministicBytes(512 * 1024 + i * 1000, 100 + i) }));
    const streams = await Promise.all(files.map((f) => openWriteStream(ctx.p, f.path)));
    // Interleave the writes chunk by chunk.
    const step = 16 * 1024;
    for (let off = 0; off < 600 * 1024; off += step) {
      await Promise.all(files.map((f, i) => (off < f.data.length ? writeChunk(streams[i] as NodeJS.WritableStream, f.data.subarray(off, off + step)) : undefined)));
    }
    await Promise.all(streams.map((s) => endStream(s)));
    for (const f of files) expect((await readAll(ctx.p, f.path)).equals(f.data)).toBe(true);
  });

  it('concurrent readers of one file all read it whole', async () => {
    const data = deterministicBytes(700_000, 9);
    await writeAll(ctx.p, '/shared', data);
    const results = await Promise.all(Array.from({ length: 5 }, () => readAll(ctx.p, '/shared')));
    for (const r of results) expect(r.equals(data)).toBe(true);
  });

  itIf(
    ctx.caps.atomicUploads,
    'two concurrent uploads to one file end as one whole version',
    'the provider does not claim atomicUploads (its uploads write in place and may interleave)',
    async () => {
      const a = deterministicBytes(MiB, 11);
      const b = deterministicBytes(768 * 1024, 12);
      const wa = await openWriteStream(ctx.p, '/same');
      const wb = await openWriteStream(ctx.p, '/same');
      const step = 64 * 1024;
      for (let off = 0; off < a.length; off += step) {
        await writeChunk(wa, a.subarray(off, off + step));
        if (off < b.length) await writeChunk(wb, b.subarray(off, off + step));
      }
      await Promise.all([endStream(wa), endStream(wb)]);
      const result = await readAll(ctx.p, '/same');
      expect(result.equals(a) || result.equals(b)).toBe(true);
      expect((await ctx.p.stat('/same')).size).toBe(result.length);
    },
  );

  itIf(
    ctx.caps.uploadsVisibleWhenComplete,
    'an upload is invisible until complete, and an interrupted one leaves the previous version whole',
    'the provider does not claim uploadsVisibleWhenComplete (its uploads are visible as written)',
    async () => {
      const old = deterministicBytes(300_000, 21);
      await writeAll(ctx.p, '/kept', old);
      // Written but not ended (a backend may hold the bytes until a batch fills: no drain is awaited).
      const w = await openWriteStream(ctx.p, '/kept');
      w.write(deterministicBytes(200_000, 22));
      const fresh = await openWriteStream(ctx.p, '/new-file');
      fresh.write(deterministicBytes(100_000, 23));
      await new Promise((r) => setTimeout(r, 50));
      expect((await readAll(ctx.p, '/kept')).equals(old)).toBe(true);
      await expectCode(ctx.p.stat('/new-file'), ['ENOENT']);
      for (const s of [w, fresh]) {
        const err = new Error('data connection lost');
        (s as { transferError?: (e: Error) => void }).transferError?.(err);
        const closed = new Promise((r) => s.once('close', r));
        s.on('error', () => undefined);
        s.destroy(err);
        await closed;
      }
      expect((await readAll(ctx.p, '/kept')).equals(old)).toBe(true);
      await expectCode(ctx.p.stat('/new-file'), ['ENOENT']);
    },
  );
}

function unicodeTests(ctx: Ctx): void {
  const weird = `é 文件 'q' "dq".txt`;
  const dir = 'répertoire 目录 (1) #%&';

  it('stores names with unicode, spaces and quotes exactly', async () => {
    await ctx.p.mkdir(`/${dir}`);
    await writeAll(ctx.p, `/${dir}/${weird}`, 'unicode ✓');
    expect(await names(ctx.p, '/')).toEqual([dir]);
    expect(await readdirNames(ctx.p, `/${dir}`)).toEqual([weird]);
    expect(await names(ctx.p, `/${dir}`)).toEqual([weird]);
    expect(await readText(ctx.p, `/${dir}/${weird}`)).toBe('unicode ✓');
    expect((await ctx.p.stat(`/${dir}/${weird}`)).size).toBe(Buffer.byteLength('unicode ✓'));
  });

  it('renames and deletes such names', async () => {
    await writeAll(ctx.p, `/${weird}`, 'x');
    await ctx.p.rename(`/${weird}`, '/ünï cödé ✓.bin');
    expect(await names(ctx.p, '/')).toEqual(['ünï cödé ✓.bin']);
    await ctx.p.unlink('/ünï cödé ✓.bin');
    expect(await names(ctx.p, '/')).toEqual([]);
  });
}

function errorTests(ctx: Ctx): void {
  it('every failure is an Error whose code toVfsError maps into the contract', async () => {
    await writeAll(ctx.p, '/f', 'x');
    await ctx.p.mkdir('/d');
    await writeAll(ctx.p, '/d/g', 'y');
    const attempts: [string, () => Promise<unknown>][] = [
      ['stat missing', () => ctx.p.stat('/missing')],
      ['readdir file', () => ctx.p.readdir('/f')],
      ['mkdir existing', () => ctx.p.mkdir('/d')],
      ['rmdir non-empty', () => ctx.p.rmdir('/d')],
      ['unlink dir', () => ctx.p.unlink('/d')],
      ['rename missing', () => ctx.p.rename('/missing', '/x')],
      ['open missing', () => ctx.p.open('/missing', 'r')],
      ['read stream dir', () => readAll(ctx.p, '/d')],
    ];
    for (const [what, attempt] of attempts) {
      let caught: unknown;
      try {
        await attempt();
      } catch (err) {
        caught = err;
      }
      expect(caught, what).toBeInstanceOf(Error);
      const code = (caught as { code?: unknown }).code;
      expect(typeof code, what).toBe('string');
      const mapped = toVfsError(caught);
      expect(VFS_ERROR_CODES, what).toContain(mapped.code);
      expect(mapped.code, what).not.toBe('EIO');
      if ((VFS_ERROR_CODES as readonly string[]).includes(code as string)) expect(mapped.code, what).toBe(code);
    }
  });
}

function setTimesTests(ctx: Ctx): void {
  itIf(ctx.caps.setTimes, 'setTimes sets the modification time (MFMT)', 'the provider has no setTimes capability', async () => {
    const setTimes = ctx.p.setTimes as NonNullable<FsProvider['setTimes']>;
    await writeAll(ctx.p, '/f', 'x');
    const when = new Date('2020-01-02T03:04:05.678Z');
    await setTimes.call(ctx.p, '/f', when);
    const st = await ctx.p.stat('/f');
    expect(Math.floor(st.mtimeMs / 1000)).toBe(Math.floor(when.getTime() / 1000));
    expect(Math.abs(st.mtimeMs - when.getTime())).toBeLessThan(1000);
    const listed = (await listDirectory(ctx.p, '/')).find((e) => e.name === 'f');
    expect(Math.floor((listed?.stats.mtimeMs ?? 0) / 1000)).toBe(Math.floor(when.getTime() / 1000));
    await expectCode(setTimes.call(ctx.p, '/missing', when), 'ENOENT');
  });
}

function chmodTests(ctx: Ctx): void {
  itIf(ctx.caps.chmod, 'chmod changes the permission bits (SITE CHMOD)', 'the provider has no chmod capability', async () => {
    const chmod = ctx.p.chmod as NonNullable<FsProvider['chmod']>;
    await writeAll(ctx.p, '/f', 'x');
    await chmod.call(ctx.p, '/f', 0o600);
    expect((await ctx.p.stat('/f')).mode & 0o777).toBe(0o600);
    await chmod.call(ctx.p, '/f', 0o755);
    expect((await ctx.p.stat('/f')).mode & 0o777).toBe(0o755);
    expect((await ctx.p.stat('/f')).isFile()).toBe(true);
    await expectCode(chmod.call(ctx.p, '/missing', 0o600), 'ENOENT');
  });
}

function symlinkTests(ctx: Ctx): void {
  const reason = 'the provider has no symlink capability';
  const has = ctx.caps.symlink;
  const link = (target: string, path: string): Promise<void> => (ctx.p.symlink as NonNullable<FsProvider['symlink']>).call(ctx.p, target, path);
  const readlink = (path: string): Promise<string> => (ctx.p.readlink as NonNullable<FsProvider['readlink']>).call(ctx.p, path);
  const lstat = (path: string) => (ctx.p.lstat ?? ctx.p.stat).call(ctx.p, path);

  itIf(has, 'a link with an absolute target: lstat sees the link, stat and reads follow it', reason, async () => {
    await writeAll(ctx.p, '/t.txt', 'target');
    await link('/t.txt', '/l');
    expect((await lstat('/l')).isSymbolicLink()).toBe(true);
    const st = await ctx.p.stat('/l');
    expect(st.isFile()).toBe(true);
    expect(st.size).toBe(6);
    expect(resolvePath('/', await readlink('/l'))).toBe('/t.txt');
    expect(await readText(ctx.p, '/l')).toBe('target');
  });

  itIf(has, 'a link with a relative target resolves from its directory', reason, async () => {
    await writeAll(ctx.p, '/t.txt', 'target');
    await ctx.p.mkdir('/d');
    await link('../t.txt', '/d/l');
    expect(resolvePath('/d', await readlink('/d/l'))).toBe('/t.txt');
    expect(await readText(ctx.p, '/d/l')).toBe('target');
  });

  itIf(has, 'a link to a directory can be listed through, and is listed as a link', reason, async () => {
    await ctx.p.mkdir('/dir');
    await writeAll(ctx.p, '/dir/f', 'in dir');
    await link('/dir', '/dl');
    expect(await readdirNames(ctx.p, '/dl')).toEqual(['f']);
    expect(await readText(ctx.p, '/dl/f')).toBe('in dir');
    const entry = (await listDirectory(ctx.p, '/')).find((e) => e.name === 'dl');
    expect(entry?.stats.isSymbolicLink()).toBe(true);
  });

  itIf(has, 'a dangling link: stat fails with ENOENT, lstat works, unlink removes it', reason, async () => {
    await link('/nowhere', '/dang');
    await expectCode(ctx.p.stat('/dang'), 'ENOENT');
    expect((await lstat('/dang')).isSymbolicLink()).toBe(true);
    await ctx.p.unlink('/dang');
    await expectCode(lstat('/dang'), 'ENOENT');
  });

  itIf(has, 'writing through a link writes the target; unlinking the link keeps the target', reason, async () => {
    await writeAll(ctx.p, '/t.txt', 'old');
    await link('/t.txt', '/l');
    await writeAll(ctx.p, '/l', 'new content');
    expect(await readText(ctx.p, '/t.txt')).toBe('new content');
    expect((await lstat('/l')).isSymbolicLink()).toBe(true);
    await ctx.p.unlink('/l');
    expect(await readText(ctx.p, '/t.txt')).toBe('new content');
  });

  itIf(has, 'a link can be renamed; creating one over an existing path fails with EEXIST', reason, async () => {
    await writeAll(ctx.p, '/t.txt', 'target');
    await link('/t.txt', '/l');
    await ctx.p.rename('/l', '/l2');
    expect(await readText(ctx.p, '/l2')).toBe('target');
    await expectCode(link('/t.txt', '/t.txt'), 'EEXIST');
    await expectCode(link('/t.txt', '/l2'), 'EEXIST');
  });
}

function hashTests(ctx: Ctx): void {
  const data = deterministicBytes(300_000, 21);
  const digest = (algorithm: HashAlgorithm, buf: Buffer): string => {
    if (algorithm === 'CRC32') return crc32(buf).toString(16).padStart(8, '0');
    const names: Record<string, string> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-512': 'sha512', MD5: 'md5' };
    return createHash(names[algorithm] as string).update(buf).digest('hex');
  };
  const ranges: [number | undefined, number | undefined][] = [
    [undefined, undefined],
    [1000, 280_000],
    [262_144, undefined],
    [5, 5],
  ];

  it('hashFile computes every HASH algorithm, whole and over ranges', async () => {
    await writeAll(ctx.p, '/h.bin', data);
    for (const algorithm of HASH_ALGORITHMS) {
      for (const [start, end] of ranges) {
        expect(await hashFile(ctx.p, '/h.bin', algorithm, start, end), `${algorithm} ${start}-${end}`).toBe(digest(algorithm, data.subarray(start ?? 0, end ?? data.length)));
      }
    }
    await expectCode(hashFile(ctx.p, '/missing', 'SHA-256'), 'ENOENT');
  });

  itIf(ctx.caps.hash, "the provider's hash capability agrees with node:crypto", 'the provider has no hash capability (hashFile streams the file instead, tested above)', async () => {
    const hash = ctx.p.hash as NonNullable<FsProvider['hash']>;
    await writeAll(ctx.p, '/h.bin', data);
    for (const algorithm of HASH_ALGORITHMS) {
      for (const [start, end] of ranges) {
        expect(await hash.call(ctx.p, '/h.bin', algorithm, start, end)).toBe(digest(algorithm, data.subarray(start ?? 0, end ?? data.length)));
      }
    }
  });

  itIf(ctx.caps.hash, "the provider's hash stops at its signal: aborted, it rejects with the signal's reason, not a digest", 'the provider has no hash capability (hashFile streams the file itself: @ftp/vfs tests its signal)', async () => {
    const hash = ctx.p.hash as NonNullable<FsProvider['hash']>;
    await writeAll(ctx.p, '/h.bin', data);
    // A range, so that no digest stored with the file can answer without reading it.
    await expect(hash.call(ctx.p, '/h.bin', 'MD5', 1000, 280_000, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    const controller = new AbortController();
    const stopped = hash.call(ctx.p, '/h.bin', 'MD5', 1000, 280_000, { signal: controller.signal });
    controller.abort(new Error('client left'));
    await expect(stopped).rejects.toThrow('client left');
    expect(await hash.call(ctx.p, '/h.bin', 'MD5', 1000, 280_000)).toBe(digest('MD5', data.subarray(1000, 280_000)));
  });
}

function spaceTests(ctx: Ctx): void {
  itIf(ctx.caps.availableSpace, 'availableSpace reports a non-negative number of bytes (AVBL)', 'the provider has no availableSpace capability', async () => {
    const n = await (ctx.p.availableSpace as NonNullable<FsProvider['availableSpace']>).call(ctx.p, '/');
    expect(typeof n).toBe('number');
    expect(n).toBeGreaterThanOrEqual(0);
  });

  itIf(ctx.caps.allocate, 'allocate accepts a small reservation (ALLO)', 'the provider has no allocate capability', async () => {
    await (ctx.p.allocate as NonNullable<FsProvider['allocate']>).call(ctx.p, '/f', 10);
  });
}

function readOnlyTests(ctx: Ctx): void {
  it('readOnly() refuses every mutation with EROFS and lets reads through', async () => {
    await writeAll(ctx.p, '/f', 'original');
    await ctx.p.mkdir('/d');
    const ro = readOnly(ctx.p);
    const rc = describeCapabilities(ro);
    expect(rc.readonly).toBe(true);
    expect(rc.checkUpload).toBe(true);
    const refusals: [string, () => Promise<unknown>][] = [
      ['mkdir', () => ro.mkdir('/new')],
      ['mkdir recursive', () => ro.mkdir('/a/b', { recursive: true })],
      ['rmdir', () => ro.rmdir('/d')],
      ['unlink', () => ro.unlink('/f')],
      ['rename', () => ro.rename('/f', '/g')],
      ['open w', () => ro.open('/f', 'w')],
      ['open a', () => ro.open('/f', 'a')],
      ['open r+', () => ro.open('/f', 'r+')],
      ['open wx', () => ro.open('/new', 'wx')],
      ['upload', () => writeAll(ro, '/f', 'changed')],
      ['upload new', () => writeAll(ro, '/new', 'x')],
      ['append', () => writeAll(ro, '/f', 'more', { append: true })],
      ['rest', () => writeAll(ro, '/f', 'X', { start: 2 })],
      // Asked before the server's 150: every upload is refused there already.
      ['checkUpload', () => (ro.checkUpload as NonNullable<FsProvider['checkUpload']>)('/f')],
      ['checkUpload new', () => (ro.checkUpload as NonNullable<FsProvider['checkUpload']>)('/new', {}, null)],
    ];
    if (typeof ro.setTimes === 'function') refusals.push(['setTimes', () => (ro.setTimes as NonNullable<FsProvider['setTimes']>)('/f', new Date(0))]);
    if (typeof ro.chmod === 'function') refusals.push(['chmod', () => (ro.chmod as NonNullable<FsProvider['chmod']>)('/f', 0o600)]);
    if (typeof ro.symlink === 'function') refusals.push(['symlink', () => (ro.symlink as NonNullable<FsProvider['symlink']>)('/f', '/l')]);
    if (typeof ro.allocate === 'function') refusals.push(['allocate', () => (ro.allocate as NonNullable<FsProvider['allocate']>)('/f', 1)]);
    if (typeof ro.concat === 'function') refusals.push(['concat', () => (ro.concat as NonNullable<FsProvider['concat']>)('/f', ['/f'])]);
    for (const [what, attempt] of refusals) {
      const e = await rejectsWithCode(attempt, 'EROFS').catch((err: Error) => {
        throw new Error(`${what}: ${err.message}`);
      });
      expect(e.code).toBe('EROFS');
    }
    // Reads pass through.
    expect((await ro.stat('/f')).size).toBe(8);
    expect(await readdirNames(ro, '/')).toEqual(['d', 'f']);
    expect(await names(ro, '/')).toEqual(['d', 'f']);
    expect(await readText(ro, '/f')).toBe('original');
    expect(await readText(ro, '/f', { start: 2, end: 4 })).toBe('igi');
    expect(await hashFile(ro, '/f', 'MD5')).toBe(createHash('md5').update('original').digest('hex'));
    // Nothing changed underneath.
    expect(await readText(ctx.p, '/f')).toBe('original');
    expect(await readdirNames(ctx.p, '/')).toEqual(['d', 'f']);
    // Capabilities the inner provider has stay detectable.
    for (const cap of ['streaming', 'list', 'setTimes', 'chmod', 'hash', 'availableSpace', 'allocate', 'concat', 'symlink'] as const) {
      expect(rc[cap], cap).toBe(ctx.caps[cap]);
    }
  });
}

function scopedTests(ctx: Ctx): void {
  const setup = async (): Promise<FsProvider> => {
    await ctx.p.mkdir('/jail/sub', { recursive: true });
    await writeAll(ctx.p, '/jail/inside.txt', 'in');
    await writeAll(ctx.p, '/jail/sub/deep.txt', 'deep');
    await writeAll(ctx.p, '/secret.txt', 'secret');
    return scoped(ctx.p, '/jail');
  };

  it('scoped() sees only its sub-tree, and .. or absolute paths cannot leave it', async () => {
    const s = await setup();
    expect((await s.stat('/')).isDirectory()).toBe(true);
    expect(await readdirNames(s, '/')).toEqual(['inside.txt', 'sub']);
    expect(await names(s, '/..')).toEqual(['inside.txt', 'sub']);
    expect(await readText(s, '/inside.txt')).toBe('in');
    expect(await readText(s, '/sub/../inside.txt')).toBe('in');
    for (const escape of ['/../secret.txt', '/sub/../../secret.txt', '/secret.txt', '../../../secret.txt', '/../../jail/../secret.txt']) {
      await expectCode(s.stat(escape), 'ENOENT');
      await expectCode(() => readAll(s, escape), 'ENOENT');
    }
    await expectCode(() => readAll(s, '/jail/inside.txt'), 'ENOENT');
  });

  it('scoped() writes, renames and deletes inside its sub-tree only', async () => {
    const s = await setup();
    await writeAll(s, '/../new.txt', 'new');
    expect(await readText(ctx.p, '/jail/new.txt')).toBe('new');
    await expectCode(ctx.p.stat('/new.txt'), 'ENOENT');
    await s.rename('/new.txt', '/../../moved.txt');
    expect(await readText(ctx.p, '/jail/moved.txt')).toBe('new');
    await s.mkdir('/../made');
    expect((await ctx.p.stat('/jail/made')).isDirectory()).toBe(true);
    await s.unlink('/../moved.txt');
    await expectCode(ctx.p.stat('/jail/moved.txt'), 'ENOENT');
    expect(await readText(ctx.p, '/secret.txt')).toBe('secret');
    await writeAll(s, '/inside.txt', 'X', { start: 1 });
    expect(await readText(ctx.p, '/jail/inside.txt')).toBe('iX');
  });

  it('scoped() errors name the path of the view', async () => {
    const s = await setup();
    const e = await rejectsWithCode(s.stat('/nope'), 'ENOENT');
    expect(e.path).toBe('/nope');
    expect(e.message).not.toContain('/jail');
    const e2 = await rejectsWithCode(() => readAll(s, '/sub/none'), 'ENOENT');
    expect(e2.message).not.toContain('/jail');
  });

  it('scoped() keeps the capabilities of the inner provider', async () => {
    const s = await setup();
    expect(describeCapabilities(s)).toEqual(ctx.caps);
    expect(describeCapabilities(scoped(readOnly(ctx.p), '/jail')).readonly).toBe(true);
  });

  const has = ctx.caps.symlink;
  const reason = 'the provider has no symlink capability';
  itIf(has, 'scoped(): links that point outside the sub-tree are not followed (EACCES or ENOENT)', reason, async () => {
    const s = await setup();
    const link = ctx.p.symlink as NonNullable<FsProvider['symlink']>;
    await link.call(ctx.p, '/secret.txt', '/jail/abs-out');
    await link.call(ctx.p, '../secret.txt', '/jail/rel-out');
    await link.call(ctx.p, '/', '/jail/root-out');
    await link.call(ctx.p, '../..', '/jail/sub/up-out');
    for (const path of ['/abs-out', '/rel-out', '/root-out/secret.txt', '/sub/up-out/secret.txt']) {
      await expectCode(s.stat(path), ['EACCES', 'ENOENT']);
      await expectCode(() => readAll(s, path), ['EACCES', 'ENOENT']);
    }
    await expectCode(s.readdir('/root-out'), ['EACCES', 'ENOENT']);
    await expectCode(listDirectory(s, '/root-out'), ['EACCES', 'ENOENT']);
    await expectCode(() => writeAll(s, '/abs-out', 'pwned'), ['EACCES', 'ENOENT']);
    await expectCode(() => writeAll(s, '/root-out/planted.txt', 'pwned'), ['EACCES', 'ENOENT']);
    await expectCode(s.mkdir('/root-out/planted'), ['EACCES', 'ENOENT']);
    expect(await readText(ctx.p, '/secret.txt')).toBe('secret');
    await expectCode(ctx.p.stat('/planted.txt'), 'ENOENT');
    await expectCode(ctx.p.stat('/planted'), 'ENOENT');
    // The links themselves are visible.
    expect((await (s.lstat as NonNullable<FsProvider['lstat']>)('/abs-out')).isSymbolicLink()).toBe(true);
  });

  itIf(has, 'scoped(): link targets stay consistent between the view and the inner provider', reason, async () => {
    const s = await setup();
    const slink = s.symlink as NonNullable<FsProvider['symlink']>;
    const sreadlink = s.readlink as NonNullable<FsProvider['readlink']>;
    await slink('/inside.txt', '/l-abs');
    expect(resolvePath('/', await sreadlink('/l-abs'))).toBe('/inside.txt');
    expect(await readText(s, '/l-abs')).toBe('in');
    expect(await readText(ctx.p, '/jail/l-abs')).toBe('in');
    await slink('sub/deep.txt', '/l-rel');
    expect(await readText(s, '/l-rel')).toBe('deep');
    await slink('..', '/sub/up');
    expect(await readdirNames(s, '/sub/up')).toContain('inside.txt');
    await expectCode(slink('../secret.txt', '/l-out'), 'EACCES');
    await expectCode(slink('../../../secret.txt', '/sub/l-out'), 'EACCES');
  });
}

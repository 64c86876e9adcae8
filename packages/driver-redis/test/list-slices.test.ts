import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { writeAll } from '@ftp/vfs-conformance';
import { collectSlices } from '@ftp/vfs';
import type { DirEntry, DirSlices } from '@ftp/vfs';
import { deleteFilesystem, RedisProvider } from '../src/index.js';
import { LIST_PAGE_SIZE } from '../src/list-slices.js';
import { LIST, LIST_PAGE } from '../src/scripts.js';
import { commandsDuring } from './monitor.js';
import { testPrefix, testRedis } from './redis.js';

const redis = await testRedis();
const used: string[] = [];

function fresh(): RedisProvider {
  const prefix = testPrefix('slices');
  used.push(prefix);
  return new RedisProvider({ redis, prefix });
}

afterEach(async () => {
  for (const p of used.splice(0)) await deleteFilesystem(redis, p, { removeIdCounter: true });
});
afterAll(async () => {
  await redis.quit();
});

/** Creates `dir` with `count` sub-directories e0, e1, …; answers their names. */
async function fill(p: RedisProvider, dir: string, count: number): Promise<string[]> {
  await p.mkdir(dir, { recursive: true });
  const names = Array.from({ length: count }, (_, i) => `e${i}`);
  for (let i = 0; i < count; i += 200) await Promise.all(names.slice(i, i + 200).map((n) => p.mkdir(`${dir}/${n}`)));
  return names;
}

async function removeAll(p: RedisProvider, dir: string, names: readonly string[]): Promise<void> {
  for (let i = 0; i < names.length; i += 200) await Promise.all(names.slice(i, i + 200).map((n) => p.rmdir(`${dir}/${n}`)));
}

async function firstSlice(slices: DirSlices): Promise<DirEntry[]> {
  const got = await slices.next();
  if (got.done === true) throw new Error('the listing ended before its first slice');
  return got.value;
}

function namesOf(entries: readonly DirEntry[]): string[] {
  return entries.map((e) => e.name);
}

function expectNoRepeat(names: readonly string[]): void {
  const twice = names.filter((n, i) => names.indexOf(n) !== i);
  expect(twice).toEqual([]);
}

describe('RedisProvider.listSlices', () => {
  it('lists a big directory in slices of about a page, one list-page script each, with the stats list() gives', async () => {
    const p = fresh();
    await fill(p, '/big', 1_300);
    for (let i = 0; i < 5; i++) await writeAll(p, `/big/f${i}`, 'x'.repeat(i));
    await p.symlink('/elsewhere', '/big/link');
    const whole = await p.list('/big');
    const sizes: number[] = [];
    const got: DirEntry[] = [];
    const cmds = await commandsDuring(redis, p.keys.prefix, async () => {
      for await (const slice of await p.listSlices('/big')) {
        sizes.push(slice.length);
        got.push(...slice);
      }
    });
    expect(sizes.length).toBeGreaterThanOrEqual(3);
    // COUNT is a hint: HSCAN answers whole buckets, so a page may hold a few more.
    expect(Math.max(...sizes)).toBeLessThan(LIST_PAGE_SIZE * 1.2);
    const view = (list: readonly DirEntry[]): string[] =>
      list.map((e) => `${e.name}:${e.stats.ino}:${e.stats.isDirectory()}:${e.stats.isSymbolicLink()}:${e.stats.size}:${e.stats.mtimeMs}:${e.stats.mode}`).sort();
    expect(got).toHaveLength(1_306);
    expect(view(got)).toEqual(view(whole));
    const scripts = cmds.filter((c) => /^eval/i.test(c[0] ?? ''));
    expect(scripts.length).toBe(sizes.length);
    expect(scripts.every((c) => c[1] === LIST_PAGE.sha || c[1] === LIST_PAGE.source)).toBe(true);
    expect(cmds.some((c) => c[1] === LIST.sha || /^hgetall$/i.test(c[0] ?? ''))).toBe(false);
    const scans = cmds.filter((c) => /^hscan$/i.test(c[0] ?? ''));
    expect(scans.length).toBe(sizes.length);
    expect(scans.every((c) => c.at(-2)?.toUpperCase() === 'COUNT' && c.at(-1) === String(LIST_PAGE_SIZE))).toBe(true);
  });

  it('lists a small directory in one slice and one round-trip, as list() does', async () => {
    const p = fresh();
    await fill(p, '/small', 20);
    let slices: DirEntry[][] = [];
    const cmds = await commandsDuring(redis, p.keys.prefix, async () => {
      slices = [];
      for await (const slice of await p.listSlices('/small')) slices.push(slice);
    });
    expect(slices.map((s) => s.length)).toEqual([20]);
    expect(cmds.filter((c) => /^eval/i.test(c[0] ?? ''))).toHaveLength(1);
    expect(await collectSlices(await p.listSlices('/'))).toHaveLength(1);
    await p.mkdir('/empty');
    expect(await collectSlices(await p.listSlices('/empty'))).toEqual([]);
  });

  it('refuses a missing directory or a file when it is opened, as list() does; follows links to a directory', async () => {
    const p = fresh();
    await writeAll(p, '/f', 'x');
    await fill(p, '/real', 3);
    await p.symlink('/real', '/link');
    for (const path of ['/missing', '/f', '/f/under', '/missing/under']) {
      const expected = await p.list(path).then(
        () => 'listed',
        (err: NodeJS.ErrnoException) => err.code,
      );
      await expect(p.listSlices(path)).rejects.toMatchObject({ code: expected, syscall: 'scandir', path });
    }
    expect(namesOf(await collectSlices(await p.listSlices('/link'))).sort()).toEqual(['e0', 'e1', 'e2']);
  });

  it('stops early: return() after a slice or before any ends the listing and reads nothing more', async () => {
    const p = fresh();
    await fill(p, '/big', 1_200);
    const slices = await p.listSlices('/big');
    expect((await firstSlice(slices)).length).toBeGreaterThan(0);
    const after = await commandsDuring(redis, p.keys.prefix, async () => {
      expect(await slices.return()).toEqual({ done: true, value: undefined });
      expect((await slices.next()).done).toBe(true);
    });
    expect(after).toEqual([]);
    const unstarted = await p.listSlices('/big');
    expect((await unstarted.return()).done).toBe(true);
    expect((await unstarted.next()).done).toBe(true);
    expect(await collectSlices(await p.listSlices('/big'))).toHaveLength(1_200);
  });

  it('leaves out entries removed between slices, never repeats one, and lists every entry present throughout', async () => {
    const p = fresh();
    const all = await fill(p, '/d', 1_500);
    const slices = await p.listSlices('/d');
    const first = await firstSlice(slices);
    const sentFirst = new Set(namesOf(first));
    const removed = all.filter((n) => !sentFirst.has(n)).slice(0, 300);
    await removeAll(p, '/d', removed);
    const added = Array.from({ length: 100 }, (_, i) => `new${i}`);
    await Promise.all(added.map((n) => writeAll(p, `/d/${n}`, 'abc')));
    const rest = await collectSlices(slices);
    const names = [...namesOf(first), ...namesOf(rest)];
    expectNoRepeat(names);
    expect(names.filter((n) => removed.includes(n))).toEqual([]);
    const kept = all.filter((n) => !removed.includes(n));
    expect(names.filter((n) => !added.includes(n)).sort()).toEqual(kept.sort());
    // Entries added meanwhile may be listed or not; those listed come with their own stats.
    for (const e of rest) expect(e.name.startsWith('new') ? e.stats.isFile() && e.stats.size === 3 : e.stats.isDirectory()).toBe(true);
  });

  it('never gives a name twice, even when HSCAN repeats entries because the directory shrank during the scan', async () => {
    const p = fresh();
    const all = await fill(p, '/shrink', 12_000);
    const slices = await p.listSlices('/shrink');
    const first = await firstSlice(slices);
    // The first page covers about 1/24 of the hash's buckets (500 of 12,000 entries). Left with 3 entries, Redis
    // shrinks the table to 16 buckets: the cursor then maps to a bucket that covers the first 1/16 again, where
    // the entries kept here are, so HSCAN answers them a second time (this test fails without the listing's check).
    const kept = namesOf(first).slice(0, 3);
    await removeAll(
      p,
      '/shrink',
      all.filter((n) => !kept.includes(n)),
    );
    // Lookups let Redis finish moving entries into the smaller table.
    for (let i = 0; i < 50; i++) await p.stat(`/shrink/${kept[i % 3] as string}`);
    const names = [...namesOf(first), ...namesOf(await collectSlices(slices))];
    expectNoRepeat(names);
    expect(names.filter((n) => kept.includes(n)).sort()).toEqual([...kept].sort());
  });

  it('a directory removed between slices ends the listing; a new one at its path is not listed in its place', async () => {
    const p = fresh();
    const all = await fill(p, '/gone', 1_200);
    const slices = await p.listSlices('/gone');
    await firstSlice(slices);
    await removeAll(p, '/gone', all);
    await p.rmdir('/gone');
    await fill(p, '/gone', 5);
    await writeAll(p, '/gone/other', 'x');
    expect(await slices.next()).toEqual({ done: true, value: undefined });
  });

  it('a directory renamed between slices is listed to the end (the listing follows its inode, not its path)', async () => {
    const p = fresh();
    const all = await fill(p, '/before', 1_200);
    const slices = await p.listSlices('/before');
    const first = await firstSlice(slices);
    await p.rename('/before', '/after');
    const names = [...namesOf(first), ...namesOf(await collectSlices(slices))];
    expectNoRepeat(names);
    expect(names.sort()).toEqual([...all].sort());
  });

  it("a page that fails rejects next() with the driver's VfsError, ends the listing, and return() still resolves", async () => {
    const prefix = testPrefix('slices');
    used.push(prefix);
    const p = new RedisProvider({ redis: 'redis://127.0.0.1:6379', prefix });
    await fill(p, '/big', 1_200);
    const slices = await p.listSlices('/big');
    await firstSlice(slices);
    p.client.disconnect();
    await expect(slices.next()).rejects.toMatchObject({ name: 'VfsError', code: 'EIO', syscall: 'scandir', path: '/big' });
    expect((await slices.next()).done).toBe(true);
    expect((await slices.return()).done).toBe(true);
    await p.close();
  });
});

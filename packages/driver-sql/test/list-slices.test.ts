import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { collectSlices, toVfsError, VfsError } from '@ftp/vfs';
import type { DirEntry, DirSlices } from '@ftp/vfs';
import type { SqlProvider } from '../src/index.js';
import { childrenPage, childSlices, SLICE_ROWS } from '../src/list-slices.js';
import { countingProvider, put } from './helpers.js';
import { DBS, disposeProvider, freshProvider } from './services.js';
import type { TestDb } from './services.js';

afterAll(() => {
  for (const db of DBS) db.cleanup();
});

/**
 * Names that collations tell apart badly: case, accents, composed and decomposed forms, trailing spaces,
 * scripts and astral characters. Byte-exact storage keeps them distinct; a keyset compared otherwise than the
 * ORDER BY sorts would skip or repeat some of them at a page boundary.
 */
const TRICKY = ['a', 'A', 'a ', 'a  ', 'b', 'B', 'e', 'E', 'é', 'É', 'e\u0301', 'ss', 'SS', 'ß', 'ẞ', 'z', 'Z', 'ø', 'Ø', '日本', '日', '🙂', '🙃', '_', '~', '0', '00'];

/** `name` rows inserted straight into the inodes table under directory `dir` (much faster than one mkdir each). */
async function addChildren(p: SqlProvider, dir: number, names: string[]): Promise<void> {
  for (let i = 0; i < names.length; i += 500) {
    const now = Date.now();
    const rows = names.slice(i, i + 500).map((name, k) => ({ parent: dir, name, type: 0, size: (i + k) % 13, mtime: now - k, birthtime: now, mode: 0o640, target: null, sha256: null }));
    await p.db.insertInto(p.tables.i).values(rows).execute();
  }
}

async function dirId(p: SqlProvider, path: string): Promise<number> {
  await p.mkdir(path, { recursive: true });
  return (await p.stat(path)).ino as number;
}

/** Names in the byte order of their UTF-8 (the order of MySQL's VARBINARY, SQLite's BINARY, PostgreSQL's C). */
function byteOrder(names: string[]): string[] {
  return [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** Whether the database sorts names by their bytes (PostgreSQL sorts by its collation, C or C.UTF-8 here). */
async function sortsByBytes(p: SqlProvider): Promise<boolean> {
  if (p.dialect !== 'postgres') return true;
  const { rows } = await sql<{ c: string }>`select datcollate as c from pg_database where datname = current_database()`.execute(p.db);
  return ['C', 'POSIX', 'C.UTF-8', 'C.utf8'].includes(rows[0]?.c ?? '');
}

/** What a listing tells of an entry. */
function view(e: DirEntry): string {
  const s = e.stats;
  const kind = s.isDirectory() ? 'd' : s.isSymbolicLink() ? 'l' : s.isFile() ? 'f' : '?';
  return `${e.name}|${kind}|${s.size}|${s.mode & 0o7777}|${s.mtimeMs}|${s.birthtimeMs}|${s.ino}`;
}

/** The slices of a listing, each as its names. */
async function sliceNames(slices: DirSlices): Promise<string[][]> {
  const out: string[][] = [];
  for await (const slice of slices) out.push(slice.map((e) => e.name));
  return out;
}

async function withProvider(db: TestDb, fn: (p: SqlProvider) => Promise<void>): Promise<void> {
  const p = await freshProvider(db);
  try {
    await fn(p);
  } finally {
    await disposeProvider(p);
  }
}

for (const db of DBS) {
  describe(`SqlProvider.listSlices (${db.dialect})`, () => {
    it('lists a big folder 1,000 entries a query, in name order, with the stats list() gives', async () => {
      const { p, queries } = await countingProvider(db);
      try {
        const dir = await dirId(p, '/big');
        const names = [...TRICKY, ...Array.from({ length: 2 * SLICE_ROWS + 473 - TRICKY.length }, (_, i) => `f${i}`)];
        await addChildren(p, dir, names);
        await p.mkdir('/big/sub');
        await p.symlink('/big/sub', '/big/link');
        const q0 = queries();
        const slices = await p.listSlices('/big');
        expect(queries() - q0).toBe(1);
        const got: DirEntry[][] = [];
        for (;;) {
          const r = await slices.next();
          if (r.done === true) break;
          got.push(r.value);
        }
        expect(got.map((s) => s.length)).toEqual([SLICE_ROWS, SLICE_ROWS, 475]);
        // One query a slice; the short last one tells the end, so reaching it, and what follows, cost nothing more.
        expect(queries() - q0).toBe(1 + 3);
        const q1 = queries();
        expect((await slices.next()).done).toBe(true);
        expect((await slices.return()).done).toBe(true);
        expect(queries()).toBe(q1);
        const listed = got.flat();
        const all = [...names, 'sub', 'link'];
        expect(new Set(listed.map((e) => e.name)).size).toBe(all.length);
        if (await sortsByBytes(p)) expect(listed.map((e) => e.name)).toEqual(byteOrder(all));
        expect(listed.map(view).sort()).toEqual((await p.list('/big')).map(view).sort());
        expect(listed.find((e) => e.name === 'link')?.stats.isSymbolicLink()).toBe(true);
      } finally {
        await disposeProvider(p);
      }
    });

    it('pages of a few rows put a boundary between every two close names: none skipped, none repeated', async () => {
      await withProvider(db, async (p) => {
        const dir = await dirId(p, '/tricky');
        await addChildren(p, dir, TRICKY);
        const bytes = await sortsByBytes(p);
        for (const size of [1, 2, 3, 5]) {
          // Only the names matter here: no stats are built.
          const slices = childSlices((after, limit) => childrenPage(p.db, p.tables, dir, after, limit), (row) => ({ name: row.name, stats: null as never }), size);
          const pages = await sliceNames(slices);
          expect(pages.slice(0, -1).every((page) => page.length === size)).toBe(true);
          expect(pages.at(-1)?.length).toBeGreaterThan(0);
          const listed = pages.flat();
          expect(listed).toHaveLength(TRICKY.length);
          expect(new Set(listed)).toEqual(new Set(TRICKY));
          if (bytes) expect(listed).toEqual(byteOrder(TRICKY));
        }
      });
    });

    it('stops early: return() ends the listing without another query, before it started or in the middle', async () => {
      const { p, queries } = await countingProvider(db);
      try {
        await addChildren(p, await dirId(p, '/d'), Array.from({ length: SLICE_ROWS + 1 }, (_, i) => `n${i}`));
        const unstarted = await p.listSlices('/d');
        let q0 = queries();
        expect(await unstarted.return()).toEqual({ done: true, value: undefined });
        expect((await unstarted.next()).done).toBe(true);
        expect(queries()).toBe(q0);
        const started = await p.listSlices('/d');
        expect((await started.next()).value).toHaveLength(SLICE_ROWS);
        q0 = queries();
        expect((await started.return()).done).toBe(true);
        expect((await started.next()).done).toBe(true);
        expect(queries()).toBe(q0);
        // A return() while a page is being read waits for it, then ends the listing.
        const racing = await p.listSlices('/d');
        const first = racing.next();
        const ended = racing.return();
        expect((await first).value).toHaveLength(SLICE_ROWS);
        expect((await ended).done).toBe(true);
        q0 = queries();
        expect((await racing.next()).done).toBe(true);
        expect(queries()).toBe(q0);
      } finally {
        await disposeProvider(p);
      }
    });

    it('an empty folder gives no slice; a missing one, a file or a link loop is refused when opened, with the codes of list()', async () => {
      await withProvider(db, async (p) => {
        await p.mkdir('/empty');
        expect(await sliceNames(await p.listSlices('/empty'))).toEqual([]);
        await put(p, '/file', 'x');
        await p.symlink('/loop2', '/loop1');
        await p.symlink('/loop1', '/loop2');
        for (const path of ['/missing', '/file', '/file/below', '/missing/below', '/loop1']) {
          const want = await p.list(path).then(
            () => 'listed',
            (err: unknown) => toVfsError(err).code,
          );
          expect(want).not.toBe('listed');
          const err = await p.listSlices(path).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(VfsError.isInstance(err)).toBe(true);
          expect({ path, code: (err as VfsError).code }).toEqual({ path, code: want });
        }
        // A link to a folder lists the folder, as list() does.
        await put(p, '/empty/in', 'y');
        await p.symlink('/empty', '/to-empty');
        expect((await collectSlices(await p.listSlices('/to-empty'))).map((e) => e.name)).toEqual(['in']);
      });
    });

    it('entries created and deleted during the listing: no name twice, the end is reached', async () => {
      await withProvider(db, async (p) => {
        const dir = await dirId(p, '/busy');
        const names = Array.from({ length: 2 * SLICE_ROWS + 10 }, (_, i) => `m${String(i).padStart(5, '0')}`);
        await addChildren(p, dir, names);
        const slices = await p.listSlices('/busy');
        const seen: string[] = [];
        const first = await slices.next();
        seen.push(...(first.value as DirEntry[]).map((e) => e.name));
        // Before the point reached (not listed), after it (listed), an entry listed already renamed past it (listed
        // again under its new name, as readdir may), and entries not listed yet deleted.
        await put(p, '/busy/a-before', 'x');
        await put(p, '/busy/z-after', 'x');
        await p.rename('/busy/m00000', '/busy/zz-renamed');
        for (const n of names.slice(SLICE_ROWS, SLICE_ROWS + 5)) await p.unlink(`/busy/${n}`);
        // Each page refills the folder past the point reached: the listing still ends, within a bounded number of pages.
        let pages = 1;
        for (;;) {
          const r = await slices.next();
          if (r.done === true) break;
          seen.push(...r.value.map((e) => e.name));
          await put(p, `/busy/zzz-${pages}`, 'x');
          expect(++pages).toBeLessThan(10);
        }
        expect(new Set(seen).size).toBe(seen.length);
        // Pages 2 and 3 (the short one, which ends it): zzz-1 came before page 3 was read, zzz-2 after.
        expect(pages).toBe(3);
        const deleted = new Set(names.slice(SLICE_ROWS, SLICE_ROWS + 5));
        expect(seen).toEqual([...names.filter((n) => !deleted.has(n)), 'z-after', 'zz-renamed', 'zzz-1']);
      });
    });

    it('a folder renamed between slices goes on being listed; deleted, its listing ends', async () => {
      await withProvider(db, async (p) => {
        const names = Array.from({ length: SLICE_ROWS + 200 }, (_, i) => `k${i}`);
        const moved = await dirId(p, '/moving');
        await addChildren(p, moved, names);
        const renamed = await p.listSlices('/moving');
        const head = (await renamed.next()).value as DirEntry[];
        await p.rename('/moving', '/moved');
        const tail = await collectSlices(renamed);
        expect(new Set([...head, ...tail].map((e) => e.name))).toEqual(new Set(names));

        const doomed = await dirId(p, '/doomed');
        await addChildren(p, doomed, names);
        const deleted = await p.listSlices('/doomed');
        expect((await deleted.next()).value).toHaveLength(SLICE_ROWS);
        await p.db.deleteFrom(p.tables.i).where('parent', '=', doomed).execute();
        await p.rmdir('/doomed');
        expect((await deleted.next()).done).toBe(true);
        expect((await deleted.return()).done).toBe(true);
      });
    });

    it('a page query that fails rejects next() with a VfsError naming the path, and ends the listing', async () => {
      const p = await freshProvider(db);
      try {
        await addChildren(p, await dirId(p, '/gone'), Array.from({ length: SLICE_ROWS + 1 }, (_, i) => `g${i}`));
        const slices = await p.listSlices('/gone');
        expect((await slices.next()).value).toHaveLength(SLICE_ROWS);
        // The tables disappear under the listing (a DBA's DROP, a restore into another prefix).
        await p.dropTables();
        const err = await slices.next().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(VfsError.isInstance(err)).toBe(true);
        expect((err as VfsError).code).toBe('EIO');
        expect((err as VfsError).path).toBe('/gone');
        expect((await slices.next()).done).toBe(true);
        expect((await slices.return()).done).toBe(true);
      } finally {
        await p.close();
      }
    });
  });
}

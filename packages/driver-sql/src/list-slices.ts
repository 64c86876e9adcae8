import type { Kysely } from 'kysely';
import { slicesFromGenerator, type DirEntry, type DirSlices } from '@ftp/vfs';
import { INODE_COLUMNS, toInode } from './schema.js';
import type { Database, Inode, Tables } from './schema.js';

/**
 * Entries per slice of a paged listing (one query each). At ~10–30 µs of database and driver work per row, a
 * query's round trip and planning (~0.3–0.5 ms) is then a few percent of a page's cost, while a page stays a few
 * hundred kilobytes of rows in hand, whatever the size of the folder.
 */
export const SLICE_ROWS = 1000;

/**
 * Where a page starts: the `name` of the last row of the previous page, exactly as the database returned it (a
 * Buffer from MySQL's VARBINARY), so that it is bound back as the stored bytes and compares as they do.
 */
export type PageKey = unknown;

/** A raw row of the inodes table as a page query returns it (before {@link toInode}). */
export type ChildRow = Record<(typeof INODE_COLUMNS)[number], unknown>;

/**
 * The children of directory `dir` whose names sort after `after` (all of them when undefined), at most `limit`, in
 * name order. Keyset pagination on the `(parent, name)` unique index: each page is one index range however deep
 * into the folder it starts, and the `>` compares as the `ORDER BY` sorts (same column, same collation: bytes on
 * MySQL's VARBINARY and SQLite's BINARY, the column's collation on PostgreSQL), so no entry is skipped or repeated
 * at a page boundary.
 */
export async function childrenPage(db: Kysely<Database>, t: Tables, dir: number, after: PageKey | undefined, limit: number): Promise<ChildRow[]> {
  let q = db
    .selectFrom(t.inode('c'))
    .select(INODE_COLUMNS.map((c) => `c.${c}` as const))
    .where('c.parent', '=', dir);
  // Typed as a string by the schema; at runtime the value the database returned (see PageKey).
  if (after !== undefined) q = q.where('c.name', '>', after as string);
  return q.orderBy('c.name').limit(limit).execute();
}

/** Reads one page: rows after `after`, at most `limit` (see {@link childrenPage}); errors reject. */
export type PageReader = (after: PageKey | undefined, limit: number) => Promise<ChildRow[]>;

/**
 * A directory's entries a page at a time: each `next()` runs one page query and gives its rows as entries
 * (`toEntry`), until a page comes back short. Names strictly increase from page to page, so entries created or
 * deleted meanwhile can neither repeat a name nor keep the listing going round; those created after the point
 * reached are listed, those before it are not (so an entry renamed past that point shows under both names, as
 * with `readdir`). `return()` ends it without another query; a page that fails rejects its `next()` and ends the
 * listing.
 *
 * @param size rows per page (the tests use small pages to put boundaries between close names).
 */
export function childSlices(read: PageReader, toEntry: (row: Inode) => DirEntry, size: number = SLICE_ROWS): DirSlices {
  if (!(Number.isInteger(size) && size > 0)) throw new RangeError(`@ftp/driver-sql: a page holds at least one row, got ${size}`);
  return slicesFromGenerator(readPages(read, toEntry, size));
}

// A generator: a page that throws finishes it (later calls: done); slicesFromGenerator ends it after a page in flight.
async function* readPages(read: PageReader, toEntry: (row: Inode) => DirEntry, size: number): AsyncGenerator<DirEntry[], undefined> {
  let after: PageKey | undefined;
  for (;;) {
    const rows = await read(after, size);
    if (rows.length > 0) yield rows.map((r) => toEntry(toInode(r)));
    if (rows.length < size) return undefined;
    after = (rows[rows.length - 1] as ChildRow).name;
  }
}

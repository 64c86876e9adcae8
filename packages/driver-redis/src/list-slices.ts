import { slicesFromGenerator, type DirEntry, type DirSlices } from '@ftp/vfs';
import { redisError } from './errors.js';
import { entriesOf, num, str } from './stats.js';

/**
 * Entries a page of a listing asks HSCAN for (its COUNT). A page is one script: the HSCAN call plus one HMGET per
 * entry, ~2 ms of Redis time for 500 here (a 10,000-entry directory: 20 pages of 1.8–2.0 ms, against 38–45 ms for
 * the whole-directory LIST script), during which every other client of the Redis waits, since Redis runs one
 * script at a time. Bigger pages would hold them up longer; smaller ones would cost a listing more round-trips.
 * It is also the size of the local disk's slices.
 */
export const LIST_PAGE_SIZE = 500;

/** One page of a listing, as the LIST_PAGE script answers it. */
export interface ListPage {
  /** The directory's inode id: the next pages are read from it, wherever the directory has moved meanwhile. */
  ino: string;
  /** HSCAN's cursor for the next page; '0' once the scan is over. */
  cursor: string;
  /** How many entries the directory had when the page was read. */
  size: number;
  /** The page's entries with their stats; entries removed meanwhile are not in it. */
  entries: DirEntry[];
}

/** Decodes a LIST_PAGE reply (what follows its 'OK'). */
export function pageOf(reply: readonly unknown[]): ListPage {
  return { ino: str(reply[0]) ?? '', cursor: str(reply[1]) ?? '0', size: num(reply[2], 0), entries: entriesOf(reply, 3) };
}

/** Reads the page of directory `ino` at HSCAN cursor `cursor`; rejects with a `VfsError`. */
export type PageReader = (ino: string, cursor: string) => Promise<ListPage>;

/**
 * Pages a listing may read before it is given up with EIO, for a directory that had at most `entries` entries
 * when its pages were read. A scan of a hash ends after about entries / COUNT calls, about twice that when the
 * table is sparse (each call visits up to 10 × COUNT buckets, and Redis shrinks a table that falls below 10 %
 * full). The margin is wide so that no scan that progresses reaches it, yet a cursor that never comes back to 0
 * (a server's bug, or a Redis-compatible server whose cursors behave otherwise) ends the listing instead of
 * reading pages forever.
 */
export function pageLimit(entries: number): number {
  return 16 + 16 * Math.ceil(entries / LIST_PAGE_SIZE);
}

/**
 * The listing that `first` opened, one slice per page that has entries, the next page read only when the
 * consumer asks for it. A scan's whole state is its cursor, so `return()` has nothing to release in Redis.
 *
 * No name is given twice. HSCAN may return an entry again when the hash table shrinks during the scan (a
 * directory mostly emptied while it is listed): its cursor then maps to a coarser bucket that covers part of what
 * was already returned. A directory hash has no order to page by instead (keyset paging with ZRANGEBYLEX would
 * need a second, sorted index of every directory, kept by every script, and the names twice in Redis), so the
 * listing remembers the names it has sent and leaves out repeats: exact, O(1) an entry, and nothing written to
 * Redis, so that a full Redis still lists. The cost is the names themselves, held by the listing until it ends:
 * ~85 bytes an entry for 16-character names (measured), 85 MB for a million entries, none of their stats.
 *
 * `path` names the directory in the errors raised here.
 */
export function pagedSlices(first: ListPage, read: PageReader, path: string): DirSlices {
  return slicesFromGenerator(readPages(first, read, path));
}

async function* readPages(first: ListPage, read: PageReader, path: string): AsyncGenerator<DirEntry[], undefined> {
  const sent = new Set<string>();
  let page = first;
  let largest = first.size;
  for (let count = 1; ; count++) {
    const fresh: DirEntry[] = [];
    for (const entry of page.entries) {
      if (sent.has(entry.name)) continue;
      sent.add(entry.name);
      fresh.push(entry);
    }
    if (fresh.length > 0) yield fresh;
    if (page.cursor === '0') return undefined;
    if (count >= pageLimit(largest)) throw redisError(new Error(`HSCAN did not end after ${count} pages`), 'scandir', path);
    page = await read(page.ino, page.cursor);
    largest = Math.max(largest, page.size);
  }
}

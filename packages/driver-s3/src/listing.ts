import { ListObjectsV2Command, type _Object } from '@aws-sdk/client-s3';
import { collectSlices, fsError, slicesFromGenerator, VfsStats, type DirEntry, type DirSlices } from '@ftp/vfs';
import { metadataDeadline, type S3Context } from './context.js';
import { toS3Error } from './errors.js';
import { dirStats, FILE_MODE, headFile, objectMtime } from './objects.js';
import { entryName } from './paths.js';

/** Safety bound on the pages of one listing (10 million keys at 1,000 per page): no loop runs unbounded. */
const MAX_PAGES = 10_000;

/** One ListObjectsV2 page (`/` delimiter): its objects, its common prefixes and where the next page starts. */
interface Page {
  contents: _Object[];
  prefixes: string[];
  next: string | undefined;
}

async function fetchPage(ctx: S3Context, prefix: string, path: string, token: string | undefined): Promise<Page> {
  let out;
  try {
    out = await ctx.client.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }), metadataDeadline(ctx));
  } catch (err) {
    throw toS3Error(err, path, 'scandir');
  }
  const prefixes: string[] = [];
  for (const cp of out.CommonPrefixes ?? []) if (cp.Prefix !== undefined) prefixes.push(cp.Prefix);
  return { contents: out.Contents ?? [], prefixes, next: out.IsTruncated === true ? out.NextContinuationToken : undefined };
}

/**
 * The entries of a directory a ListObjectsV2 page at a time (`/` delimiter; sizes and times come from the pages
 * themselves: no request per entry). The first page is read when it is called, so that a file or a missing path
 * fails there; while the caller sends one slice, the next page is already being fetched (a page takes tens of
 * milliseconds on a real store). Common prefixes are directories; the directory's own marker is left out.
 *
 * A name that is both an object and a prefix (`a` and `a/…`, made by another tool) is listed once, as the file (as
 * `stat` sees it), and a prefix a store repeats is listed once, with bounded memory (see {@link TakenPrefixes}).
 *
 * @throws VfsError ENOTDIR for a file, ENOENT for a path that is neither a file nor a prefix.
 */
export async function listDirSlices(ctx: S3Context, path: string): Promise<DirSlices> {
  const prefix = ctx.keys.dirKey(path);
  // S3 keeps no time for a prefix: report the time of the listing (one value for the whole listing).
  const now = Date.now();
  let pages = 1;
  let page = await fetchPage(ctx, prefix, path, undefined);
  // A store may answer a page with nothing in it and more to come: an empty folder is one with no entry at all.
  while (page.contents.length === 0 && page.prefixes.length === 0 && page.next !== undefined) {
    if (++pages > MAX_PAGES) throw fsError('EIO', 'scandir', path);
    page = await fetchPage(ctx, prefix, path, page.next);
  }
  if (page.contents.length === 0 && page.prefixes.length === 0 && path !== '/') {
    if ((await headFile(ctx, path)) !== undefined) throw fsError('ENOTDIR', 'scandir', path);
    throw fsError('ENOENT', 'scandir', path);
  }
  const taken = new TakenPrefixes();
  async function* slices(): AsyncGenerator<DirEntry[], undefined> {
    for (let current = page; ; ) {
      let ahead: Promise<Page> | null = null;
      if (current.next !== undefined) {
        // Past the bound, the listing still gives this page, then fails.
        ahead = ++pages > MAX_PAGES ? Promise.reject(fsError('EIO', 'scandir', path)) : fetchPage(ctx, prefix, path, current.next);
        // A fetch ahead that nobody waits for (the listing was stopped) must not be an unhandled rejection.
        ahead.catch(() => undefined);
      }
      // A page whose every entry is left out gives no slice.
      const entries = entriesOf(current, prefix, taken, now);
      if (entries.length > 0) yield entries;
      if (ahead === null) return undefined;
      current = await ahead;
    }
  }
  return slicesFromGenerator(slices());
}

/** The entries of one page: objects as files, then prefixes as directories unless the name is taken. */
function entriesOf(page: Page, prefix: string, taken: TakenPrefixes, now: number): DirEntry[] {
  const out: DirEntry[] = [];
  let lastObject = '';
  for (const obj of page.contents) {
    const key = obj.Key;
    if (key === undefined) continue;
    if (key > lastObject) lastObject = key;
    const name = entryName(prefix, key);
    if (name === undefined) continue;
    out.push({ name, stats: objectStats(obj) });
    taken.add(`${key}/`);
  }
  for (const key of page.prefixes) {
    const name = entryName(prefix, key);
    if (name === undefined || taken.has(key)) continue;
    out.push({ name, stats: dirStats(now) });
    taken.add(key);
  }
  taken.forgetBelow(lastObject);
  return out;
}

/** How many taken prefixes a listing remembers at most: two pages' worth. */
const MAX_TAKEN = 2_000;

/**
 * The common prefixes a listing must not give (again): those of a file's name (`a/` once `a` is listed: S3 sorts
 * `a` first) and those already listed (some stores, s3rver among them, repeat a common prefix on every page).
 * Keys come in order, so a prefix below the greatest object key listed so far can no longer come and is
 * forgotten; the cap bounds what a folder of nothing but subfolders could make a store repeat.
 */
class TakenPrefixes {
  #keys = new Set<string>();

  add(key: string): void {
    this.#keys.add(key);
    // A Set iterates in insertion order: the first key is the oldest.
    if (this.#keys.size > MAX_TAKEN) this.#keys.delete(this.#keys.values().next().value as string);
  }

  has(key: string): boolean {
    return this.#keys.has(key);
  }

  forgetBelow(bound: string): void {
    for (const key of this.#keys) if (key < bound) this.#keys.delete(key);
  }
}

/**
 * Every entry of a directory with its stats: {@link listDirSlices}, gathered.
 *
 * @throws VfsError ENOTDIR for a file, ENOENT for a path that is neither a file nor a prefix.
 */
export async function listDir(ctx: S3Context, path: string): Promise<DirEntry[]> {
  return collectSlices(await listDirSlices(ctx, path));
}

/** Stats of a listed object (ListObjectsV2 has no user metadata: the time is S3's LastModified). */
function objectStats(obj: _Object): VfsStats {
  return new VfsStats({ kind: 'file', size: obj.Size ?? 0, mode: FILE_MODE, mtimeMs: objectMtime(undefined, obj.LastModified) });
}

/** One object of a recursive listing. */
export interface ListedObject {
  key: string;
  size: number;
  /** The ETag the listing gave (the version seen), if any. */
  etag: string | undefined;
}

/** Every object under a key prefix (no delimiter), page by page, for directory renames. */
export async function* walkObjects(ctx: S3Context, prefix: string, path: string): AsyncGenerator<ListedObject> {
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    let out;
    try {
      out = await ctx.client.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: prefix, ContinuationToken: token }), metadataDeadline(ctx));
    } catch (err) {
      throw toS3Error(err, path, 'scandir');
    }
    for (const obj of out.Contents ?? []) if (obj.Key !== undefined) yield { key: obj.Key, size: obj.Size ?? 0, etag: obj.ETag };
    token = out.IsTruncated === true ? out.NextContinuationToken : undefined;
    if (token === undefined) return;
  }
  throw fsError('EIO', 'scandir', path);
}

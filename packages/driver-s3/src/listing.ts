import { ListObjectsV2Command, type _Object } from '@aws-sdk/client-s3';
import { fsError, VfsStats, type DirEntry } from '@ftp/vfs';
import type { S3Context } from './context.js';
import { toS3Error } from './errors.js';
import { dirStats, FILE_MODE, headFile, objectMtime } from './objects.js';
import { entryName } from './paths.js';

/** Safety bound on the pages of one listing (10 million keys at 1,000 per page): no loop runs unbounded. */
const MAX_PAGES = 10_000;

/**
 * The entries of a directory with their stats, from ListObjectsV2 with a `/` delimiter, every page (sizes and times
 * come from the listing itself: no request per entry). Common prefixes are directories; the directory's own marker
 * is left out. A name that is both an object and a prefix is listed once, as the file (as `stat` sees it).
 *
 * @throws VfsError ENOTDIR for a file, ENOENT for a path that is neither a file nor a prefix.
 */
export async function listDir(ctx: S3Context, path: string): Promise<DirEntry[]> {
  const prefix = ctx.keys.dirKey(path);
  const files = new Map<string, DirEntry>();
  const dirs = new Map<string, DirEntry>();
  let anything = false;
  let token: string | undefined;
  // S3 keeps no time for a prefix: report the time of the listing (one value for the whole listing).
  const now = Date.now();
  for (let page = 0; page < MAX_PAGES; page++) {
    let out;
    try {
      out = await ctx.client.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
    } catch (err) {
      throw toS3Error(err, path, 'scandir');
    }
    for (const obj of out.Contents ?? []) {
      anything = true;
      const name = obj.Key === undefined ? undefined : entryName(prefix, obj.Key);
      if (name !== undefined) files.set(name, { name, stats: objectStats(obj) });
    }
    for (const cp of out.CommonPrefixes ?? []) {
      anything = true;
      const name = cp.Prefix === undefined ? undefined : entryName(prefix, cp.Prefix);
      if (name !== undefined && !dirs.has(name)) dirs.set(name, { name, stats: dirStats(now) });
    }
    token = out.IsTruncated === true ? out.NextContinuationToken : undefined;
    if (token === undefined) break;
  }
  if (!anything && path !== '/') {
    // Nothing under the prefix: a file, or nothing at all.
    if ((await headFile(ctx, path)) !== undefined) throw fsError('ENOTDIR', 'scandir', path);
    throw fsError('ENOENT', 'scandir', path);
  }
  for (const [name, entry] of dirs) if (!files.has(name)) files.set(name, entry);
  return [...files.values()];
}

/** Stats of a listed object (ListObjectsV2 has no user metadata: the time is S3's LastModified). */
function objectStats(obj: _Object): VfsStats {
  return new VfsStats({ kind: 'file', size: obj.Size ?? 0, mode: FILE_MODE, mtimeMs: objectMtime(undefined, obj.LastModified) });
}

/** One object of a recursive listing. */
export interface ListedObject {
  key: string;
  size: number;
}

/** Every object under a key prefix (no delimiter), page by page, for directory renames. */
export async function* walkObjects(ctx: S3Context, prefix: string, path: string): AsyncGenerator<ListedObject> {
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    let out;
    try {
      out = await ctx.client.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: prefix, ContinuationToken: token }));
    } catch (err) {
      throw toS3Error(err, path, 'scandir');
    }
    for (const obj of out.Contents ?? []) if (obj.Key !== undefined) yield { key: obj.Key, size: obj.Size ?? 0 };
    token = out.IsTruncated === true ? out.NextContinuationToken : undefined;
    if (token === undefined) return;
  }
  throw fsError('EIO', 'scandir', path);
}

import { dirname, fsError, isInside, VfsError } from '@ftp/vfs';
import { mapLimit } from './concurrency.js';
import type { S3Context } from './context.js';
import { copyObject } from './copy.js';
import { isPreconditionFailed, toS3Error } from './errors.js';
import { walkObjects, type ListedObject } from './listing.js';
import { kindOf, requireDirectory } from './objects.js';
import { deleteIfUnchanged, deleteKeys, putMarker } from './remove.js';

/** How many failures an error message names (the rest are counted). */
const NAMED_FAILURES = 10;

function describeFailures(failures: readonly { key: string; reason: string }[]): string {
  const named = failures.slice(0, NAMED_FAILURES).map((f) => `${f.key} (${f.reason})`);
  const more = failures.length > NAMED_FAILURES ? `, and ${failures.length - NAMED_FAILURES} more` : '';
  return named.join(', ') + more;
}

/**
 * Renames a file or a directory. S3 has no rename: a file is copied server-side (CopyObject, multipart UploadPartCopy
 * over 5 GiB) then deleted; a directory moves every object under it the same way, `renameConcurrency` at a time.
 *
 * Each source is pinned by the ETag seen first: it is copied only if it is still that version
 * (`x-amz-copy-source-if-match`; else EBUSY, nothing moved), and deleted only if it still is afterwards (a HEAD or a
 * fresh listing, then DeleteObject with If-Match / DeleteObjects with the ETag). An upload that completes at the old
 * name during the rename is therefore kept there (the rename moved the version before it: the order "rename, then
 * upload"), instead of being deleted unseen. See the README for the window left on stores without conditional deletes.
 *
 * A directory rename copies everything first and deletes the sources only when every copy succeeded: when some
 * copies fail, the copies made are deleted again and an EIO error (EBUSY when every failure was a source changed
 * meanwhile) lists what failed (nothing moved); when deletes fail, an EIO error lists the objects that now exist
 * under both names. It never half-finishes silently.
 */
export async function renamePath(ctx: S3Context, from: string, to: string): Promise<void> {
  // The root: EPERM (FTP 550), for good; EBUSY would be 450 "try again later", which clients retry for ever.
  if (from === '/' || to === '/') throw fsError('EPERM', 'rename', from);
  const src = await kindOf(ctx, from);
  if (src.kind === 'none') throw fsError('ENOENT', 'rename', from);
  if (from === to) return;
  if (src.kind === 'directory' && isInside(from, to)) throw fsError('EINVAL', 'rename', to);
  await requireDirectory(ctx, dirname(to), 'rename', to);
  const dst = await kindOf(ctx, to);
  if (src.kind === 'file') {
    if (dst.kind === 'directory') throw fsError('EISDIR', 'rename', to);
    try {
      await copyObject(ctx, ctx.keys.fileKey(from), ctx.keys.fileKey(to), src.head.ContentLength ?? 0, src.head.ETag);
    } catch (err) {
      throw toS3Error(err, from, 'rename');
    }
    // A newer object at `from` (written during the copy) is not the one moved: it stays.
    await deleteIfUnchanged(ctx, ctx.keys.fileKey(from), src.head.ETag, from);
  } else {
    if (dst.kind === 'file') throw fsError('ENOTDIR', 'rename', to);
    if (dst.kind === 'directory' && dst.probe.nonEmpty) throw fsError('ENOTEMPTY', 'rename', to);
    await moveTree(ctx, from, to);
  }
  await putMarker(ctx, dirname(from), 'rename');
}

async function moveTree(ctx: S3Context, from: string, to: string): Promise<void> {
  const srcPrefix = ctx.keys.dirKey(from);
  const dstPrefix = ctx.keys.dirKey(to);
  const objects: ListedObject[] = [];
  const limit = ctx.options.maxRenameObjects;
  for await (const o of walkObjects(ctx, srcPrefix, from)) {
    // Refused while listing, before any copy: every key of the tree is held until the sources are deleted, and a
    // tree of millions would exhaust the process's memory halfway through, leaving both trees behind.
    if (objects.length >= limit) {
      throw new VfsError('EPERM', `EPERM: rename '${from}' to '${to}': the directory holds more than ${limit} objects (maxRenameObjects); nothing was moved`, {
        path: from,
        syscall: 'rename',
      });
    }
    objects.push(o);
  }
  const target = (o: ListedObject): string => dstPrefix + o.key.slice(srcPrefix.length);
  const copies = await mapLimit(objects, ctx.options.renameConcurrency, (o) => copyObject(ctx, o.key, target(o), o.size, o.etag));
  const failed: { key: string; reason: string }[] = [];
  const copied: string[] = [];
  let changed = 0;
  for (const [i, r] of copies.entries()) {
    const o = objects[i] as ListedObject;
    if (r.ok) copied.push(target(o));
    else {
      if (isPreconditionFailed(r.error) || (VfsError.isInstance(r.error) && r.error.code === 'EBUSY')) changed++;
      failed.push({ key: o.key, reason: toS3Error(r.error, from, 'rename').message });
    }
  }
  if (failed.length > 0) {
    const undone = (await deleteKeys(ctx, copied)).failures;
    // The originals are all kept either way; copies that could not be removed again stay under the new name (the
    // message must not say nothing happened there: a retry meets them).
    const outcome =
      undone.length === 0
        ? 'nothing was moved'
        : `the originals were kept, but ${undone.length} copies could not be removed again and stay under '${to}' (${describeFailures(undone)})`;
    // Only sources replaced since the listing: another client is writing there, a retry may well succeed.
    const code = changed === failed.length ? 'EBUSY' : 'EIO';
    throw new VfsError(
      code,
      `${code}: rename '${from}' to '${to}': ${failed.length} of ${objects.length} objects could not be copied, ${outcome}: ${describeFailures(failed)}`,
      { path: from, syscall: 'rename' },
    );
  }
  // Delete only the versions copied: list the sources again (a page per 1,000, not a HEAD each), keep any key that
  // now holds another version, and make each delete conditional on the ETag copied.
  const now = new Map<string, string | undefined>();
  for await (const o of walkObjects(ctx, srcPrefix, from)) now.set(o.key, o.etag);
  const unchanged = objects.filter((o) => now.has(o.key) && now.get(o.key) === o.etag);
  const etags = new Map(unchanged.map((o) => [o.key, o.etag] as const));
  const notDeleted = (await deleteKeys(ctx, unchanged.map((o) => o.key), etags)).failures;
  if (notDeleted.length > 0) {
    throw new VfsError(
      'EIO',
      `EIO: rename '${from}' to '${to}': every object was copied, but ${notDeleted.length} of ${objects.length} originals could not be deleted and exist under both names: ${describeFailures(notDeleted)}`,
      { path: from, syscall: 'rename' },
    );
  }
}

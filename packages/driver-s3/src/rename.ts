import { dirname, fsError, isInside, VfsError } from '@ftp/vfs';
import { mapLimit } from './concurrency.js';
import type { S3Context } from './context.js';
import { copyObject } from './copy.js';
import { toS3Error } from './errors.js';
import { walkObjects, type ListedObject } from './listing.js';
import { kindOf, requireDirectory } from './objects.js';
import { deleteKey, deleteKeys, putMarker, type DeleteFailure } from './remove.js';

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
 * A directory rename copies everything first and deletes the sources only when every copy succeeded: when some
 * copies fail, the copies made are deleted again and an EIO error lists what failed (nothing moved); when deletes
 * fail, an EIO error lists the objects that now exist under both names. It never half-finishes silently.
 */
export async function renamePath(ctx: S3Context, from: string, to: string): Promise<void> {
  if (from === '/' || to === '/') throw fsError('EBUSY', 'rename', from);
  const src = await kindOf(ctx, from);
  if (src.kind === 'none') throw fsError('ENOENT', 'rename', from);
  if (from === to) return;
  if (src.kind === 'directory' && isInside(from, to)) throw fsError('EINVAL', 'rename', to);
  await requireDirectory(ctx, dirname(to), 'rename', to);
  const dst = await kindOf(ctx, to);
  if (src.kind === 'file') {
    if (dst.kind === 'directory') throw fsError('EISDIR', 'rename', to);
    try {
      await copyObject(ctx, ctx.keys.fileKey(from), ctx.keys.fileKey(to), src.head.ContentLength ?? 0);
    } catch (err) {
      throw toS3Error(err, from, 'rename');
    }
    await deleteKey(ctx, ctx.keys.fileKey(from), from);
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
  for await (const o of walkObjects(ctx, srcPrefix, from)) objects.push(o);
  const target = (o: ListedObject): string => dstPrefix + o.key.slice(srcPrefix.length);
  const copies = await mapLimit(objects, ctx.options.renameConcurrency, (o) => copyObject(ctx, o.key, target(o), o.size));
  const failed: { key: string; reason: string }[] = [];
  const copied: string[] = [];
  for (const [i, r] of copies.entries()) {
    const o = objects[i] as ListedObject;
    if (r.ok) copied.push(target(o));
    else failed.push({ key: o.key, reason: toS3Error(r.error, from, 'rename').message });
  }
  if (failed.length > 0) {
    const undone: DeleteFailure[] = await deleteKeys(ctx, copied);
    const left = undone.length === 0 ? '' : `; ${undone.length} copies could not be removed again: ${describeFailures(undone)}`;
    throw new VfsError(
      'EIO',
      `EIO: rename '${from}' to '${to}': ${failed.length} of ${objects.length} objects could not be copied, nothing was moved: ${describeFailures(failed)}${left}`,
      { path: from, syscall: 'rename' },
    );
  }
  const notDeleted = await deleteKeys(ctx, objects.map((o) => o.key));
  if (notDeleted.length > 0) {
    throw new VfsError(
      'EIO',
      `EIO: rename '${from}' to '${to}': every object was copied, but ${notDeleted.length} of ${objects.length} originals could not be deleted and exist under both names: ${describeFailures(notDeleted)}`,
      { path: from, syscall: 'rename' },
    );
  }
}

import { CopyObjectCommand } from '@aws-sdk/client-s3';
import { fsError } from '@ftp/vfs';
import { copySource, type S3Context } from './context.js';
import { toS3Error } from './errors.js';
import { encodeMtime, kindOf, MTIME_META } from './objects.js';
import { MAX_PART_SIZE } from './options.js';

/**
 * MFMT: stores the time in the object's metadata (`x-amz-meta-mtime`, ms since the epoch, negative before 1970) with a server-side
 * self-copy (CopyObject, MetadataDirective REPLACE, the other metadata and the content type kept, pinned by If-Match).
 * `stat` reports it; listings cannot (ListObjectsV2 returns no metadata) and show S3's LastModified.
 *
 * @throws VfsError ENOENT; EINVAL for an invalid Date; ENOTSUP for a directory (S3 keeps no time for a prefix) and for objects over 5 GiB
 * (CopyObject's limit).
 */
export async function setObjectTime(ctx: S3Context, path: string, mtime: Date): Promise<void> {
  let stored: string;
  try {
    stored = encodeMtime(mtime.getTime());
  } catch {
    throw fsError('EINVAL', 'utime', path);
  }
  const k = await kindOf(ctx, path);
  if (k.kind === 'none') throw fsError('ENOENT', 'utime', path);
  if (k.kind === 'directory') throw fsError('ENOTSUP', 'utime', path);
  if ((k.head.ContentLength ?? 0) > MAX_PART_SIZE) throw fsError('ENOTSUP', 'utime', path);
  const key = ctx.keys.fileKey(path);
  try {
    await ctx.client.send(
      new CopyObjectCommand({
        Bucket: ctx.bucket,
        Key: key,
        CopySource: copySource(ctx, key),
        CopySourceIfMatch: k.head.ETag,
        MetadataDirective: 'REPLACE',
        Metadata: { ...k.head.Metadata, [MTIME_META]: stored },
        ContentType: k.head.ContentType,
      }),
    );
  } catch (err) {
    throw toS3Error(err, path, 'utime');
  }
}

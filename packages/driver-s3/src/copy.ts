import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { VfsError } from '@ftp/vfs';
import { mapLimit } from './concurrency.js';
import { copySource, metadataDeadline, type S3Context } from './context.js';
import { copyRanges } from './parts.js';

/**
 * Copies one object server-side, metadata included (no byte passes through this process): CopyObject up to
 * `multipartCopyThreshold` (S3's limit: 5 GiB), a multipart upload of UploadPartCopy ranges above it — ranges of
 * `multipartCopyPartSize` (512 MiB), larger for an object over 5,000 GiB so that they stay within 10,000 parts.
 * With `etag`, only that version of the source is copied (`x-amz-copy-source-if-match`): a source replaced since it
 * was looked at fails with 412 (EBUSY once mapped) instead of copying something else.
 * Throws the SDK's error; the caller maps it.
 */
export async function copyObject(ctx: S3Context, srcKey: string, dstKey: string, size: number, etag?: string): Promise<void> {
  if (size <= ctx.multipartCopyThreshold) {
    await ctx.client.send(new CopyObjectCommand({ Bucket: ctx.bucket, Key: dstKey, CopySource: copySource(ctx, srcKey), CopySourceIfMatch: etag }));
    return;
  }
  await multipartCopy(ctx, srcKey, dstKey, size, etag);
}

async function multipartCopy(ctx: S3Context, srcKey: string, dstKey: string, size: number, etag: string | undefined): Promise<void> {
  // A multipart upload does not inherit the source's metadata: take it (and the version, for If-Match) first.
  const head = await ctx.client.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: srcKey }), metadataDeadline(ctx));
  if (etag !== undefined && head.ETag !== etag) {
    throw new VfsError('EBUSY', `EBUSY: '${srcKey}' was replaced while it was being renamed`, { syscall: 'rename' });
  }
  const created = await ctx.client.send(
    new CreateMultipartUploadCommand({ Bucket: ctx.bucket, Key: dstKey, Metadata: head.Metadata, ContentType: head.ContentType }),
  );
  const uploadId = created.UploadId;
  try {
    const ranges = copyRanges(size, ctx.multipartCopyPartSize, ctx.partSchedule);
    const results = await mapLimit(ranges, ctx.options.uploadConcurrency, async ([start, end], i): Promise<CompletedPart> => {
      const out = await ctx.client.send(
        new UploadPartCopyCommand({
          Bucket: ctx.bucket,
          Key: dstKey,
          UploadId: uploadId,
          PartNumber: i + 1,
          CopySource: copySource(ctx, srcKey),
          CopySourceRange: `bytes=${start}-${end}`,
          CopySourceIfMatch: head.ETag,
        }),
      );
      return { PartNumber: i + 1, ETag: out.CopyPartResult?.ETag };
    });
    const parts: CompletedPart[] = [];
    for (const r of results) {
      if (!r.ok) throw r.error;
      parts.push(r.value);
    }
    await ctx.client.send(new CompleteMultipartUploadCommand({ Bucket: ctx.bucket, Key: dstKey, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
  } catch (err) {
    await ctx.client.send(new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key: dstKey, UploadId: uploadId })).catch(() => undefined);
    throw err;
  }
}

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { mapLimit } from './concurrency.js';
import { copySource, type S3Context } from './context.js';
import { copyRanges } from './upload.js';

/**
 * Copies one object server-side, metadata included (no byte passes through this process): CopyObject up to
 * `multipartCopyThreshold` (S3's limit: 5 GiB), a multipart upload of UploadPartCopy ranges above it.
 * Throws the SDK's error; the caller maps it.
 */
export async function copyObject(ctx: S3Context, srcKey: string, dstKey: string, size: number): Promise<void> {
  if (size <= ctx.multipartCopyThreshold) {
    await ctx.client.send(new CopyObjectCommand({ Bucket: ctx.bucket, Key: dstKey, CopySource: copySource(ctx, srcKey) }));
    return;
  }
  await multipartCopy(ctx, srcKey, dstKey, size);
}

async function multipartCopy(ctx: S3Context, srcKey: string, dstKey: string, size: number): Promise<void> {
  // A multipart upload does not inherit the source's metadata: take it (and the version, for If-Match) first.
  const head = await ctx.client.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: srcKey }));
  const created = await ctx.client.send(
    new CreateMultipartUploadCommand({ Bucket: ctx.bucket, Key: dstKey, Metadata: head.Metadata, ContentType: head.ContentType }),
  );
  const uploadId = created.UploadId;
  try {
    const ranges = copyRanges(size, ctx.multipartCopyPartSize);
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

import { DeleteObjectCommand, DeleteObjectsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { mapLimit } from './concurrency.js';
import type { S3Context } from './context.js';
import { toS3Error } from './errors.js';

/** DeleteObjects takes at most 1,000 keys per request. */
const DELETE_BATCH = 1000;

/** A key that could not be deleted, and why. */
export interface DeleteFailure {
  key: string;
  reason: string;
}

/** Deletes one object. */
export async function deleteKey(ctx: S3Context, key: string, path: string): Promise<void> {
  try {
    await ctx.client.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: key }));
  } catch (err) {
    throw toS3Error(err, path, 'unlink');
  }
}

/** Deletes many objects, 1,000 per DeleteObjects request, a few requests at once; returns what failed. */
export async function deleteKeys(ctx: S3Context, keys: readonly string[]): Promise<DeleteFailure[]> {
  const batches: string[][] = [];
  for (let i = 0; i < keys.length; i += DELETE_BATCH) batches.push(keys.slice(i, i + DELETE_BATCH));
  const failures: DeleteFailure[] = [];
  const results = await mapLimit(batches, 4, (batch) =>
    ctx.client.send(new DeleteObjectsCommand({ Bucket: ctx.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } })),
  );
  for (const [i, r] of results.entries()) {
    if (!r.ok) {
      const reason = r.error instanceof Error ? r.error.message : String(r.error);
      for (const key of batches[i] ?? []) failures.push({ key, reason });
      continue;
    }
    for (const e of r.value.Errors ?? []) failures.push({ key: e.Key ?? '?', reason: `${e.Code ?? 'Error'}: ${e.Message ?? ''}` });
  }
  return failures;
}

/**
 * Writes the (empty) marker object of a directory, so that it persists once empty: after its last file is deleted or
 * moved away, a directory that existed only through the keys below it would vanish otherwise.
 */
export async function putMarker(ctx: S3Context, path: string, syscall: string): Promise<void> {
  if (path === '/') return;
  try {
    await ctx.client.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: ctx.keys.dirKey(path), Body: Buffer.alloc(0) }));
  } catch (err) {
    throw toS3Error(err, path, syscall);
  }
}

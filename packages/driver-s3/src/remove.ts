import { createHash } from 'node:crypto';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type _Error as S3KeyError,
  type DeleteObjectsCommandOutput,
  type ObjectIdentifier,
} from '@aws-sdk/client-s3';
import { mapLimit } from './concurrency.js';
import { metadataDeadline, type S3Context } from './context.js';
import { isConditionRefused, isNotFound, isPreconditionFailed, toS3Error } from './errors.js';

/** DeleteObjects takes at most 1,000 keys per request. */
const DELETE_BATCH = 1000;

/** Rounds of DeleteObjects for the keys a batch reported with a transient error (after the first). */
const TRANSIENT_RETRIES = 3;

/** Per-key error codes of DeleteObjects that a later attempt may not get (the SDK retries whole requests only). */
const TRANSIENT_KEY_ERRORS: ReadonlySet<string> = new Set(['SlowDown', 'InternalError', 'ServiceUnavailable', 'OperationAborted', 'RequestTimeout']);

/**
 * Adds Content-MD5 to a DeleteObjects request. S3 requires an integrity header there; with
 * `requestChecksumCalculation: 'WHEN_REQUIRED'` the SDK sends only x-amz-checksum-crc32, which stores that require
 * Content-MD5 (MinIO releases, other S3-compatibles) refuse with 400 MissingContentMD5: no rename could delete its
 * sources.
 */
function withContentMd5(command: DeleteObjectsCommand): DeleteObjectsCommand {
  command.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      const body = request.body;
      if (request.headers !== undefined && (typeof body === 'string' || body instanceof Uint8Array)) {
        const has = Object.keys(request.headers).some((h) => h.toLowerCase() === 'content-md5');
        if (!has) request.headers['content-md5'] = createHash('md5').update(body).digest('base64');
      }
      return next(args);
    },
    { step: 'build', name: 'ftpDeleteObjectsContentMd5' },
  );
  return command;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A key that could not be deleted, and why. */
export interface DeleteFailure {
  key: string;
  reason: string;
}

/** Deletes one object. */
export async function deleteKey(ctx: S3Context, key: string, path: string): Promise<void> {
  try {
    await ctx.client.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: key }), metadataDeadline(ctx));
  } catch (err) {
    throw toS3Error(err, path, 'unlink');
  }
}

/**
 * Deletes the object at `key` only if it is still the version `etag` (the one just copied by a rename): a HEAD
 * first, then DeleteObject with If-Match, so that a newer object written there meanwhile (an upload that completed
 * during the rename) is left in place. Returns false when the key holds another version (or nothing) and was kept.
 *
 * Stores that ignore If-Match on DeleteObject leave one round-trip between the HEAD and the delete in which a newer
 * object can still be deleted; a store that refuses the header (NotImplemented, 400) is asked again without it, and
 * not asked with it again (the HEAD stays).
 */
export async function deleteIfUnchanged(ctx: S3Context, key: string, etag: string | undefined, path: string): Promise<boolean> {
  if (etag === undefined) {
    await deleteKey(ctx, key, path);
    return true;
  }
  let current: string | undefined;
  try {
    current = (await ctx.client.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key }), metadataDeadline(ctx))).ETag;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw toS3Error(err, path, 'unlink');
  }
  if (current !== etag) return false;
  if (!ctx.conditionalDeletesUnsupported) {
    try {
      await ctx.client.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: key, IfMatch: etag }), metadataDeadline(ctx));
      return true;
    } catch (err) {
      if (isPreconditionFailed(err)) return false;
      if (isNotFound(err)) return false;
      if (!isConditionRefused(err)) throw toS3Error(err, path, 'unlink');
      await deleteKey(ctx, key, path);
      // Taken to refuse the condition only once the plain delete went through (a 400 for another reason would
      // otherwise switch conditional deletes off for the whole process).
      ctx.conditionalDeletesUnsupported = true;
      return true;
    }
  }
  await deleteKey(ctx, key, path);
  return true;
}

/** What {@link deleteKeys} did not delete: failures, and the keys kept because they hold another version now. */
export interface DeleteOutcome {
  failures: DeleteFailure[];
  changed: string[];
}

/**
 * Deletes many objects, 1,000 per DeleteObjects request, a few requests at once; returns what failed. With `etags`
 * (key → the version to delete), each object is deleted only if it is still that version (the ETag of DeleteObjects'
 * object identifier); those that are not are kept and listed as `changed`. A store that refuses ETags there
 * (NotImplemented, 400) gets the batch again without them and is not sent them again. Keys reported with a transient
 * error (SlowDown, InternalError...) are sent again, up to {@link TRANSIENT_RETRIES} more rounds with a growing pause:
 * the request itself succeeded, so the SDK's retries never see them.
 */
export async function deleteKeys(ctx: S3Context, keys: readonly string[], etags?: ReadonlyMap<string, string | undefined>): Promise<DeleteOutcome> {
  const outcome: DeleteOutcome = { failures: [], changed: [] };
  const send = (batch: readonly string[], conditional: boolean): Promise<DeleteObjectsCommandOutput> => {
    const objects: ObjectIdentifier[] = batch.map((Key) => {
      const ETag = conditional ? etags?.get(Key) : undefined;
      return ETag === undefined ? { Key } : { Key, ETag };
    });
    return ctx.client.send(withContentMd5(new DeleteObjectsCommand({ Bucket: ctx.bucket, Delete: { Objects: objects, Quiet: true } })), metadataDeadline(ctx));
  };
  let pending: readonly string[] = keys;
  for (let round = 0; pending.length > 0; round++) {
    const last = round >= TRANSIENT_RETRIES;
    if (round > 0) await sleep(100 * 2 ** round);
    const batches: string[][] = [];
    for (let i = 0; i < pending.length; i += DELETE_BATCH) batches.push(pending.slice(i, i + DELETE_BATCH));
    const results = await mapLimit(batches, 4, async (batch) => {
      const conditional = etags !== undefined && !ctx.conditionalDeletesUnsupported;
      try {
        return await send(batch, conditional);
      } catch (err) {
        if (!conditional || !isConditionRefused(err)) throw err;
        const plain = await send(batch, false);
        ctx.conditionalDeletesUnsupported = true;
        return plain;
      }
    });
    const again: string[] = [];
    const fail = (e: S3KeyError): void => {
      outcome.failures.push({ key: e.Key ?? '?', reason: `${e.Code ?? 'Error'}: ${e.Message ?? ''}` });
    };
    for (const [i, r] of results.entries()) {
      if (!r.ok) {
        const reason = r.error instanceof Error ? r.error.message : String(r.error);
        for (const key of batches[i] ?? []) outcome.failures.push({ key, reason });
        continue;
      }
      for (const e of r.value.Errors ?? []) {
        if (e.Code === 'PreconditionFailed' || e.Code === 'ConditionalRequestConflict') outcome.changed.push(e.Key ?? '?');
        else if (!last && e.Key !== undefined && TRANSIENT_KEY_ERRORS.has(e.Code ?? '')) again.push(e.Key);
        else fail(e);
      }
    }
    pending = again;
  }
  return outcome;
}

/**
 * Writes the (empty) marker object of a directory, so that it persists once empty: after its last file is deleted or
 * moved away, a directory that existed only through the keys below it would vanish otherwise.
 */
export async function putMarker(ctx: S3Context, path: string, syscall: string): Promise<void> {
  if (path === '/') return;
  try {
    await ctx.client.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: ctx.keys.dirKey(path), Body: Buffer.alloc(0) }), metadataDeadline(ctx));
  } catch (err) {
    throw toS3Error(err, path, syscall);
  }
}

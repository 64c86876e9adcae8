import { createHash, type Hash } from 'node:crypto';
import { Writable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { VfsError, type UploadStream } from '@ftp/vfs';
import { copySource, type S3Context } from './context.js';
import { openDownload } from './download.js';
import { isConditionRefused, isNotFound, isNotImplemented, isPreconditionFailed, toS3Error } from './errors.js';
import { MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE } from './options.js';
import { SHA256_META } from './objects.js';

/**
 * Size of the first buffer of an upload, doubled as it fills up to `partSize`: most uploads are small, and a whole
 * part buffer per upload would cost every small upload `partSize` bytes.
 */
const FIRST_BUFFER = 64 * 1024;

/** Shared zeros for the gap of a REST offset beyond the end of the file. */
const ZEROS = Buffer.alloc(1024 * 1024);

/** The bytes an upload keeps from the object it replaces (APPE, REST + STOR). */
export interface KeptPrefix {
  /** Bytes kept from the start of the existing object. */
  size: number;
  /** ETag of the existing object, so that a concurrent change is detected (If-Match) instead of mixed in. */
  etag: string | undefined;
}

/** What an upload writes: the key, an optional prefix of the existing object, then zeros, then the client's bytes. */
export interface UploadPlan {
  path: string;
  key: string;
  keep?: KeptPrefix;
  /** Zero bytes between the kept prefix and the client's data (REST offset past the end). */
  zeroFill?: number;
  /**
   * What the key must still hold when the upload completes, or the upload fails (EBUSY) and writes nothing: the
   * version whose bytes it keeps (APPE, REST + STOR), or `'nothing'` (APPE / REST onto a missing file). Enforced by a
   * HEAD just before completing and by If-Match / If-None-Match on the PutObject or CompleteMultipartUpload.
   */
  replaces?: { etag: string } | 'nothing';
}

/** The error of an upload whose object was changed by another client meanwhile. */
function changedMeanwhile(path: string, cause?: unknown): VfsError {
  return new VfsError('EBUSY', `EBUSY: '${path}' was changed by another client during this upload; nothing was written (try again)`, {
    path,
    syscall: 'write',
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Splits `size` bytes into parts of at most 5 GiB and at least 5 MiB (`size` >= 5 MiB): [start, endInclusive][]. */
export function copyRanges(size: number, maxPart = MAX_PART_SIZE): [number, number][] {
  const count = Math.ceil(size / maxPart);
  const each = Math.ceil(size / count);
  const ranges: [number, number][] = [];
  for (let start = 0; start < size; start += each) ranges.push([start, Math.min(size, start + each) - 1]);
  return ranges;
}

/**
 * An upload to S3 as a Writable. Bytes are gathered into one part buffer; a full part is sent as an UploadPart while
 * the next fills, at most `uploadConcurrency` parts in flight, so memory stays under
 * `partSize × (uploadConcurrency + 1)` whatever the size of the file. An upload that ends within the first part is a
 * single PutObject. The object appears only when complete (CompleteMultipartUpload / PutObject), whole.
 *
 * Any interruption — `transferError(err)` from the server, `destroy()`, a failed part — aborts the multipart upload
 * (in-flight parts are cancelled first), so no parts are left behind and no partial object appears; `close` is
 * emitted once the abort is done.
 */
export class S3UploadStream extends Writable implements UploadStream {
  /** Every chunk is copied into a part buffer (hashed first) before its callback: the caller may reuse its memory. */
  readonly releasesChunks = true;
  readonly #ctx: S3Context;
  readonly #plan: UploadPlan;
  readonly #partSize: number;
  readonly #abort = new AbortController();
  #buf: Buffer | null = null;
  #filled = 0;
  /** Part buffers whose UploadPart has settled, reused: at most `uploadConcurrency + 1` are ever allocated. */
  readonly #free: Buffer[] = [];
  #nextPart = 1;
  readonly #parts: CompletedPart[] = [];
  readonly #inflight = new Set<Promise<void>>();
  #uploadId: Promise<string> | undefined;
  #failure: unknown;
  #hash: Hash | null;
  #size = 0;
  #ready: Promise<void>;
  #completed = false;
  /** The error the server reported for an interrupted transfer, if any. */
  interruptedBy: Error | undefined;

  /** @internal Created by the provider's `createWriteStream`. */
  constructor(ctx: S3Context, plan: UploadPlan) {
    super({ highWaterMark: 256 * 1024 });
    this.#ctx = ctx;
    this.#plan = plan;
    this.#partSize = ctx.options.partSize;
    this.#hash = ctx.options.storeSha256 ? createHash('sha256') : null;
    this.#ready = this.#writePrefix();
    // Failures of the prefix surface on the next write or at the end; never as an unhandled rejection.
    this.#ready.catch(() => undefined);
  }

  /** Records the interruption; `destroy()`, which the server calls next, then aborts the upload. */
  transferError(err: Error): void {
    this.interruptedBy = err;
  }

  /** Bytes of the object written so far (kept prefix included). */
  get bytesWritten(): number {
    return this.#size;
  }

  #signal(): { abortSignal: AbortSignal } {
    return { abortSignal: this.#abort.signal };
  }

  #fail(err: unknown): VfsError {
    return toS3Error(err, this.#plan.path, 'write');
  }

  /** Kept bytes first: server-side UploadPartCopy where S3 allows it (>= 5 MiB), else streamed from a ranged GET. */
  async #writePrefix(): Promise<void> {
    const keep = this.#plan.keep;
    if (keep !== undefined && keep.size > 0) {
      let copied = false;
      if (keep.size >= MIN_PART_SIZE && !this.#ctx.partCopyUnsupported) copied = await this.#copyPrefix(keep);
      if (!copied) {
        const body = await openDownload(this.#ctx, this.#plan.path, { start: 0, end: keep.size - 1, ifMatch: keep.etag, signal: this.#abort.signal });
        let got = 0;
        for await (const chunk of body) {
          got += (chunk as Buffer).length;
          await this.#push(chunk as Buffer);
        }
        if (got !== keep.size) throw new VfsError('EIO', `EIO: the existing object changed while its ${keep.size} bytes were kept`, { path: this.#plan.path });
      }
    }
    let zeros = this.#plan.zeroFill ?? 0;
    while (zeros > 0) {
      const n = Math.min(zeros, ZEROS.length);
      await this.#push(ZEROS.subarray(0, n));
      zeros -= n;
    }
  }

  /** Copies the kept prefix server-side as the first parts; false when the store has no UploadPartCopy. */
  async #copyPrefix(keep: KeptPrefix): Promise<boolean> {
    const ranges = copyRanges(keep.size);
    const first = this.#nextPart;
    const uploadId = await this.#ensureUpload();
    const source = copySource(this.#ctx, this.#plan.key);
    try {
      // One at a time: they are server-side (no bytes through this process) and usually one or two.
      for (const [i, [start, end]] of ranges.entries()) {
        const out = await this.#ctx.client.send(
          new UploadPartCopyCommand({
            Bucket: this.#ctx.bucket,
            Key: this.#plan.key,
            UploadId: uploadId,
            PartNumber: first + i,
            CopySource: source,
            CopySourceRange: `bytes=${start}-${end}`,
            CopySourceIfMatch: keep.etag,
          }),
          this.#signal(),
        );
        this.#parts.push({ PartNumber: first + i, ETag: out.CopyPartResult?.ETag });
      }
    } catch (err) {
      if (!isNotImplemented(err) || this.#parts.length > 0) throw err;
      this.#ctx.partCopyUnsupported = true;
      return false;
    }
    this.#nextPart = first + ranges.length;
    this.#size += keep.size;
    // The copied bytes never pass through here: no digest of the whole object can be computed.
    this.#hash = null;
    return true;
  }

  #ensureUpload(): Promise<string> {
    // Not cancellable: a create that reached the store must be known, so that it can be aborted.
    this.#uploadId ??= this.#ctx.client
      .send(new CreateMultipartUploadCommand({ Bucket: this.#ctx.bucket, Key: this.#plan.key }))
      .then((out) => {
        if (out.UploadId === undefined) throw new VfsError('EIO', 'EIO: S3 returned no UploadId', { path: this.#plan.path });
        return out.UploadId;
      });
    return this.#uploadId;
  }

  /** Copies bytes into the part buffer; a full part is sent (waiting while `uploadConcurrency` parts are in flight). */
  async #push(data: Buffer): Promise<void> {
    this.#hash?.update(data);
    this.#size += data.length;
    let off = 0;
    while (off < data.length) {
      // Until a multipart upload exists the data may end as one small PutObject: start small, grow.
      this.#buf ??= this.#free.pop() ?? Buffer.allocUnsafeSlow(this.#uploadId === undefined ? Math.min(FIRST_BUFFER, this.#partSize) : this.#partSize);
      if (this.#filled === this.#buf.length) this.#grow(data.length - off);
      const n = data.copy(this.#buf, this.#filled, off);
      this.#filled += n;
      off += n;
      if (this.#filled === this.#partSize) {
        const part = this.#buf;
        this.#buf = null;
        this.#filled = 0;
        await this.#sendPart(part);
      }
    }
  }

  /** Replaces the (full) first buffer by one at least twice as large, at most `partSize`. */
  #grow(need: number): void {
    const old = this.#buf as Buffer;
    const size = Math.min(this.#partSize, Math.max(old.length * 2, this.#filled + need));
    const next = Buffer.allocUnsafeSlow(size);
    old.copy(next, 0, 0, this.#filled);
    this.#buf = next;
  }

  async #sendPart(body: Buffer): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    const uploadId = await this.#ensureUpload();
    while (this.#inflight.size >= this.#ctx.options.uploadConcurrency) {
      await Promise.race(this.#inflight);
      if (this.#failure !== undefined) throw this.#failure;
    }
    const partNumber = this.#nextPart++;
    if (partNumber > MAX_PARTS) {
      throw new VfsError('ENOSPC', `ENOSPC: an upload has at most ${MAX_PARTS} parts of ${this.#partSize} bytes (raise partSize)`, { path: this.#plan.path });
    }
    const p = this.#ctx.client
      .send(new UploadPartCommand({ Bucket: this.#ctx.bucket, Key: this.#plan.key, UploadId: uploadId, PartNumber: partNumber, Body: body }), this.#signal())
      .then((out) => {
        this.#parts.push({ PartNumber: partNumber, ETag: out.ETag });
      })
      .catch((err: unknown) => {
        this.#failure ??= err;
      })
      .finally(() => {
        this.#inflight.delete(p);
        // The SDK is done with the body (retries included): its memory serves the next part.
        if (body.length === this.#partSize && !this.#abort.signal.aborted) this.#free.push(body);
      });
    this.#inflight.add(p);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#ready
      .then(() => this.#push(chunk))
      .then(
        () => cb(),
        (err: unknown) => cb(this.#fail(err)),
      );
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#finish().then(
      () => {
        this.#completed = true;
        cb();
      },
      (err: unknown) => cb(this.#fail(err)),
    );
  }

  /**
   * For an upload that replaces a known version (or nothing): checks with a HEAD that the key still holds it — the
   * only check on stores without conditional writes — and returns the condition headers for the completing request.
   */
  async #completionConditions(): Promise<{ IfMatch?: string; IfNoneMatch?: string }> {
    const replaces = this.#plan.replaces;
    if (replaces === undefined) return {};
    let etag: string | undefined;
    try {
      etag = (await this.#ctx.client.send(new HeadObjectCommand({ Bucket: this.#ctx.bucket, Key: this.#plan.key }), this.#signal())).ETag;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (replaces === 'nothing' ? etag !== undefined : etag !== replaces.etag) throw changedMeanwhile(this.#plan.path);
    if (this.#ctx.conditionalWritesUnsupported) return {};
    return replaces === 'nothing' ? { IfNoneMatch: '*' } : { IfMatch: replaces.etag };
  }

  /**
   * Sends the request that makes the object appear, with the conditions: a failed condition is EBUSY; a store that
   * refuses the headers (NotImplemented, 400) gets the request again without them, and once that succeeds is not
   * asked with them again.
   */
  async #complete<T>(conditions: { IfMatch?: string; IfNoneMatch?: string }, send: (c: { IfMatch?: string; IfNoneMatch?: string }) => Promise<T>): Promise<T> {
    try {
      return await send(conditions);
    } catch (err) {
      if (conditions.IfMatch === undefined && conditions.IfNoneMatch === undefined) throw err;
      if (isPreconditionFailed(err)) throw changedMeanwhile(this.#plan.path, err);
      if (!isConditionRefused(err)) throw err;
      const done = await send({});
      // Only a store that then takes the request without them is taken to refuse the headers: a 400 for another
      // reason must not switch conditional writes off for the whole process.
      this.#ctx.conditionalWritesUnsupported = true;
      return done;
    }
  }

  async #finish(): Promise<void> {
    await this.#ready;
    const digest = this.#hash?.digest('hex');
    const metadata = digest === undefined ? undefined : { [SHA256_META]: digest };
    if (this.#uploadId === undefined) {
      // Everything fits in one part: a single PutObject, which carries the digest directly.
      const body = this.#buf === null ? Buffer.alloc(0) : this.#buf.subarray(0, this.#filled);
      this.#buf = null;
      const conditions = await this.#completionConditions();
      await this.#complete(conditions, (c) =>
        this.#ctx.client.send(new PutObjectCommand({ Bucket: this.#ctx.bucket, Key: this.#plan.key, Body: body, Metadata: metadata, ...c }), this.#signal()),
      );
      return;
    }
    if (this.#filled > 0 || this.#parts.length + this.#inflight.size === 0) {
      const last = this.#buf === null ? Buffer.alloc(0) : this.#buf.subarray(0, this.#filled);
      this.#buf = null;
      this.#filled = 0;
      await this.#sendPart(last);
    }
    while (this.#inflight.size > 0) await Promise.race(this.#inflight);
    this.#free.length = 0;
    if (this.#failure !== undefined) throw this.#failure;
    const uploadId = await this.#uploadId;
    const parts = [...this.#parts].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    const conditions = await this.#completionConditions();
    const done = await this.#complete(conditions, (c) =>
      this.#ctx.client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.#ctx.bucket, Key: this.#plan.key, UploadId: uploadId, MultipartUpload: { Parts: parts }, ...c }),
        this.#signal(),
      ),
    );
    if (metadata !== undefined && this.#size <= MAX_PART_SIZE) {
      // A multipart upload's metadata is fixed before its bytes are seen: record the digest with one server-side
      // self-copy, only if the object is still the one just completed (If-Match). A failure only costs the digest.
      await this.#ctx.client
        .send(
          new CopyObjectCommand({
            Bucket: this.#ctx.bucket,
            Key: this.#plan.key,
            CopySource: copySource(this.#ctx, this.#plan.key),
            CopySourceIfMatch: done.ETag,
            MetadataDirective: 'REPLACE',
            Metadata: metadata,
          }),
          this.#signal(),
        )
        .catch(() => undefined);
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.#completed) return cb(err);
    this.#abort.abort();
    this.#buf = null;
    this.#free.length = 0;
    this.#abortUpload().then(
      () => cb(err),
      (abortErr: unknown) => cb(err ?? this.#fail(abortErr)),
    );
  }

  /** Cancels what is in flight, waits for it to settle, then aborts the multipart upload (if one was started). */
  async #abortUpload(): Promise<void> {
    await this.#ready.catch(() => undefined);
    await Promise.allSettled([...this.#inflight]);
    const pending = this.#uploadId;
    if (pending === undefined) return;
    let uploadId: string;
    try {
      uploadId = await pending;
    } catch {
      return; // CreateMultipartUpload itself failed or was cancelled: nothing exists to abort.
    }
    await this.#ctx.client.send(new AbortMultipartUploadCommand({ Bucket: this.#ctx.bucket, Key: this.#plan.key, UploadId: uploadId }));
  }
}

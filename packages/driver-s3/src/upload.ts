import { createHash, type Hash } from 'node:crypto';
import { Writable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { VfsError, type UploadStream } from '@ftp/vfs';
import { copySource, type S3Context } from './context.js';
import { openDownload } from './download.js';
import { httpStatusOf, isConditionRefused, isNotFound, isNotImplemented, isPreconditionFailed, s3CodeOf, toS3Error } from './errors.js';
import type { UploadMemoryBudget } from './budget.js';
import { MAX_PART_SIZE, MIN_PART_SIZE } from './options.js';
import { SHA256_META } from './objects.js';
import { copyRanges, partSizeFor, scheduledBytes, type PartSchedule } from './parts.js';

/**
 * Size of the first buffer of an upload, outside the memory budget: most uploads are small, and a whole part buffer
 * per upload would cost every small upload `partSize` bytes (and make it wait for the budget). An upload that passes
 * it takes a whole part buffer from the budget.
 */
const FIRST_BUFFER = 64 * 1024;

/** Shared zeros for the gap of a REST offset beyond the end of the file. */
const ZEROS = Buffer.alloc(1024 * 1024);

/**
 * The most bytes an upload hashes and copies without giving the event loop a turn. Every session of the server runs
 * on one thread: a write of several MiB (the server hands over everything read since the last one) hashed and copied
 * at once held every other session for tens of milliseconds (over 100 ms with 8 MiB parts). A 256 KiB step (two
 * SHA-256 passes and a copy into a part buffer) takes well under a millisecond, a few on a loaded machine whose new
 * part buffers are first touched; 1 MiB steps still measured 12–17 ms of main-thread CPU now and then on a busy
 * 2-core VM. The turns cost nothing measurable in throughput.
 */
export const HASH_STEP = 256 * 1024;

/** A turn of the event loop (timers and I/O of other sessions run meanwhile). */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The header SigV4 takes the payload's SHA-256 from instead of hashing the body itself. */
const PAYLOAD_SHA256 = 'x-amz-content-sha256';

/**
 * Gives a request whose body is `body` the SHA-256 of that body (hex) computed beforehand, in steps, as the bytes
 * came: the SDK's signer (SigV4) otherwise hashes the whole body (a part: 8 MiB and more) in one synchronous call.
 * The payload stays signed, exactly as the SDK would sign it; only who hashes it changes. Left out when the request's
 * body is not `body` itself (a middleware replaced it) or the header is already set.
 */
function withPayloadSha256<C extends UploadPartCommand | PutObjectCommand>(command: C, body: Buffer, sha256: string | undefined): C {
  if (sha256 === undefined) return command;
  // Typed through UploadPartCommand's stack: the two commands' stacks differ only in their input and output types,
  // which this middleware does not look at.
  (command as UploadPartCommand).middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      if (request.headers !== undefined && request.body === body && !Object.keys(request.headers).some((h) => h.toLowerCase() === PAYLOAD_SHA256)) {
        request.headers[PAYLOAD_SHA256] = sha256;
      }
      return next(args);
    },
    { step: 'build', name: 'ftpPayloadSha256' },
  );
  return command;
}

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

/** The condition headers of the request completing an upload. */
type Conditions = { IfMatch?: string; IfNoneMatch?: string };

/** The error of an upload whose object was changed by another client meanwhile. */
function changedMeanwhile(path: string, cause?: unknown): VfsError {
  return new VfsError('EBUSY', `EBUSY: '${path}' was changed by another client during this upload; nothing was written (try again)`, {
    path,
    syscall: 'write',
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Whether a completing request that failed may nevertheless have been applied: the SDK retried it (the response to
 * an earlier attempt may have been lost after S3 committed it, and the retry then meets the new object: 412, or
 * NoSuchUpload for a completed upload id), or it got no answer, or a 5xx (S3 may answer 5xx after committing).
 */
function mayHaveBeenApplied(err: unknown): boolean {
  const attempts = (err as { $metadata?: { attempts?: unknown } } | null)?.$metadata?.attempts;
  if (typeof attempts === 'number' && attempts > 1) return true;
  if (s3CodeOf(err) === 'NoSuchUpload') return true;
  const status = httpStatusOf(err);
  return status === undefined || (status >= 500 && !isNotImplemented(err));
}

/**
 * The ETag S3 gives the object of a multipart upload: the MD5 of the parts' binary MD5s, then `-` and the part count.
 * Undefined when a part's ETag is no plain MD5 (SSE-KMS, SSE-C, some gateways).
 */
function multipartEtag(parts: readonly CompletedPart[]): string | undefined {
  const md5 = createHash('md5');
  for (const part of parts) {
    const hex = /^"?([0-9a-f]{32})"?$/i.exec(part.ETag ?? '')?.[1];
    if (hex === undefined) return undefined;
    md5.update(Buffer.from(hex, 'hex'));
  }
  return `"${md5.digest('hex')}-${parts.length}"`;
}

/** The error of an upload that would make an object larger than S3 (or the part count) allows. */
export function tooLarge(path: string, limit: number, schedule: PartSchedule): VfsError {
  const why =
    limit >= schedule.maxObjectSize
      ? `an S3 object holds at most ${limit} bytes`
      : `a multipart upload holds at most ${limit} bytes here (${schedule.maxParts} parts, growing from partSize)`;
  return new VfsError('ENOSPC', `ENOSPC: '${path}' is too large: ${why}; nothing was written`, { path, syscall: 'write' });
}

/**
 * An upload to S3 as a Writable. Bytes are gathered into one part buffer; a full part is sent as an UploadPart while
 * the next fills. An upload that ends within the first part is a single PutObject. The object appears only when
 * complete (CompleteMultipartUpload / PutObject), whole.
 *
 * Its size is not known in advance, and S3 takes at most 10,000 parts: parts start at `partSize` and grow with the
 * part count ({@link partSizeFor}: doubled every 800 parts up to about 1 GiB), so that 10,000 parts hold S3's 5 TiB
 * whatever `partSize` is. Parts in flight are bounded in bytes, `partSize × uploadConcurrency` (at most
 * `uploadConcurrency` of them; always at least one), so bigger parts mean fewer at once, and memory stays under
 * `max(partSize × uploadConcurrency, P) + P` where P is the size of the part being filled: `partSize ×
 * (uploadConcurrency + 1)` for the first 800 parts, as with fixed parts, and about twice the current part only for
 * uploads already huge. Past what the upload can hold (5 TiB) the write that would cross it fails with ENOSPC.
 *
 * Part buffers (all but the first 64 KiB) are taken from the provider's {@link UploadMemoryBudget}, shared with the
 * other uploads, and given back once their UploadPart has settled (or the upload is destroyed), each exactly once.
 * When the budget is spent the upload waits for a buffer with its write callback pending (backpressure), holding
 * nothing but its parts in flight, which settle: waiting never deadlocks, and a destroy withdraws the request.
 *
 * Any interruption — `transferError(err)` from the server, `destroy()`, a failed part — aborts the multipart upload
 * (in-flight parts are cancelled first), so no parts are left behind and no partial object appears; `close` is
 * emitted once the abort is done. Once the object is stored (PutObject / CompleteMultipartUpload answered, or found
 * stored after an unanswered one), a destroy only cancels the digest's self-copy: the object stays.
 */
export class S3UploadStream extends Writable implements UploadStream {
  /** Every chunk is copied into a part buffer (hashed first) before its callback: the caller may reuse its memory. */
  readonly releasesChunks = true;
  readonly #ctx: S3Context;
  readonly #plan: UploadPlan;
  /** The first part's size (`partSize`); later parts grow from it, see {@link partSizeFor}. */
  readonly #basePartSize: number;
  readonly #schedule: PartSchedule;
  /** Bytes of parts allowed in flight at once (`partSize × uploadConcurrency`), or one part when parts are bigger. */
  readonly #inflightBudget: number;
  /** The most bytes this object can have: S3's object limit, or what the remaining parts hold, the lower. */
  #limit: number;
  readonly #abort = new AbortController();
  readonly #budget: UploadMemoryBudget;
  /** The buffer being filled: the first 64 KiB one (outside the budget), then part buffers from the budget. */
  #buf: Buffer | null = null;
  #filled = 0;
  /** The number of the part being filled (the next one sent). */
  #nextPart = 1;
  /** Bytes of the kept part copied server-side so far, while {@link #copyPrefix} runs. */
  #copiedSoFar = 0;
  readonly #parts: CompletedPart[] = [];
  readonly #inflight = new Set<Promise<void>>();
  /** Bytes of the UploadParts in flight (bodies), and of the buffers behind them. */
  #inflightBytes = 0;
  #inflightHeld = 0;
  /** A full part waiting for room in flight. */
  #waiting: Buffer | null = null;
  #uploadId: Promise<string> | undefined;
  #failure: unknown;
  #hash: Hash | null;
  /** SHA-256 of the bytes of the part being filled, for its request's signature (see {@link withPayloadSha256}). */
  #partHash: Hash | null = null;
  /** Bytes hashed and copied since the event loop last had a turn (see {@link HASH_STEP}). */
  #sinceTurn = 0;
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
    this.#basePartSize = ctx.options.partSize;
    this.#schedule = ctx.partSchedule;
    this.#inflightBudget = ctx.options.partSize * ctx.options.uploadConcurrency;
    this.#budget = ctx.options.uploadMemory;
    this.#limit = Math.min(this.#schedule.maxObjectSize, scheduledBytes(1, this.#basePartSize, this.#schedule));
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

  /**
   * Bytes of the object so far, the kept part's copied ranges included while they are copied (see
   * `UploadStream.storedBytes`): a copy of a big object's start outlasts the server's stall timeout.
   */
  get storedBytes(): number {
    return this.#size + this.#copiedSoFar;
  }

  /** @internal Bytes of part buffers held now: the one being filled, those in flight (tests). */
  get bufferedBytes(): number {
    return (this.#buf?.length ?? 0) + (this.#waiting?.buffer.byteLength ?? 0) + this.#inflightHeld;
  }

  /** Size of part `partNumber` of this upload. */
  #partSizeFor(partNumber: number): number {
    return partSizeFor(partNumber, this.#basePartSize, this.#schedule);
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
    let zeros = this.#plan.zeroFill ?? 0;
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
    if (this.#size + zeros > this.#limit) throw tooLarge(this.#plan.path, this.#limit, this.#schedule);
    while (zeros > 0) {
      const n = Math.min(zeros, ZEROS.length);
      await this.#push(ZEROS.subarray(0, n));
      zeros -= n;
    }
  }

  /**
   * Copies the kept prefix server-side as the first parts (ranges up to 5 GiB: at most 1,024 of the 10,000 parts for
   * a 5 TiB object); the streamed parts follow at the schedule's sizes from the next part number. False when the
   * store has no UploadPartCopy.
   */
  async #copyPrefix(keep: KeptPrefix): Promise<boolean> {
    const ranges = copyRanges(keep.size, this.#schedule.maxPartSize, this.#schedule);
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
        this.#copiedSoFar += end - start + 1;
      }
    } catch (err) {
      if (!isNotImplemented(err) || this.#parts.length > 0) throw err;
      this.#ctx.partCopyUnsupported = true;
      return false;
    }
    this.#nextPart = first + ranges.length;
    this.#copiedSoFar = 0;
    this.#size += keep.size;
    this.#limit = Math.min(this.#schedule.maxObjectSize, this.#size + scheduledBytes(this.#nextPart, this.#basePartSize, this.#schedule));
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

  /**
   * Copies bytes into the part buffer; a full part is sent (waiting while the parts in flight fill their budget).
   * Bytes that would make the object larger than it can be are refused whole (ENOSPC), before any is buffered.
   *
   * The bytes are hashed (the object's SHA-256, the part's for its signature) and copied in steps of at most
   * {@link HASH_STEP}, with a turn of the event loop after each {@link HASH_STEP} bytes: a big write never holds the
   * other sessions for long. Writes are handled one at a time, in order, so the hashes see the bytes in sequence.
   */
  async #push(data: Buffer): Promise<void> {
    if (this.#size + data.length > this.#limit) throw tooLarge(this.#plan.path, this.#limit, this.#schedule);
    this.#size += data.length;
    let off = 0;
    while (off < data.length) {
      const partSize = this.#partSizeFor(this.#nextPart);
      this.#buf ??= await this.#takeBuffer(partSize);
      if (this.#filled === this.#buf.length) await this.#grow(partSize);
      const n = Math.min(data.length - off, this.#buf.length - this.#filled, HASH_STEP - this.#sinceTurn);
      const step = data.subarray(off, off + n);
      this.#hash?.update(step);
      (this.#partHash ??= createHash('sha256')).update(step);
      step.copy(this.#buf, this.#filled);
      this.#filled += n;
      off += n;
      this.#sinceTurn += n;
      if (this.#filled === partSize) {
        const part = this.#buf;
        this.#buf = null;
        this.#filled = 0;
        await this.#sendPart(part, part, this.#takePartHash());
      }
      if (this.#sinceTurn >= HASH_STEP) {
        this.#sinceTurn = 0;
        await turn();
        // Destroyed meanwhile: its buffers are given back, nothing more may be written into them.
        if (this.#abort.signal.aborted) throw this.#abort.signal.reason;
      }
    }
  }

  /** The SHA-256 (hex) of the part just filled, and a fresh start for the next. */
  #takePartHash(): string | undefined {
    const digest = this.#partHash?.digest('hex');
    this.#partHash = null;
    return digest;
  }

  /**
   * A buffer for a part of `size` bytes: until a multipart upload exists, a small one outside the budget (the data may
   * end as one small PutObject); else one from the budget, waiting for it when the budget is spent.
   */
  async #takeBuffer(size: number): Promise<Buffer> {
    if (this.#uploadId === undefined) return Buffer.allocUnsafeSlow(Math.min(FIRST_BUFFER, size));
    return this.#fromBudget(size);
  }

  /** A buffer from the budget; given straight back if the upload was destroyed while it waited. */
  async #fromBudget(size: number): Promise<Buffer> {
    const buf = await this.#budget.acquire(size, this.#abort.signal);
    if (this.#abort.signal.aborted) {
      this.#budget.release(buf);
      throw this.#abort.signal.reason;
    }
    return buf;
  }

  /** Replaces the (full) first buffer by a whole part buffer from the budget. */
  async #grow(partSize: number): Promise<void> {
    const old = this.#buf as Buffer;
    const next = await this.#fromBudget(partSize);
    old.copy(next, 0, 0, this.#filled);
    this.#buf = next;
  }

  /**
   * Gives a part buffer back to the budget (a no-op for the first, small one, and for one given back already). Once
   * the upload is aborted its memory is not handed to another upload: a cancelled request's socket may not be done
   * with it yet.
   */
  #release(buf: Buffer | null): void {
    if (buf !== null) this.#budget.release(buf, !this.#abort.signal.aborted);
  }

  /**
   * Sends `body` as the next part; `owner`, the buffer it lies in, goes back to the budget once the part settles.
   * `sha256`: the body's SHA-256 (hex), for the request's signature.
   */
  async #sendPart(body: Buffer, owner: Buffer, sha256: string | undefined): Promise<void> {
    let uploadId: string;
    this.#waiting = owner;
    try {
      if (this.#failure !== undefined) throw this.#failure;
      uploadId = await this.#ensureUpload();
      // At most `uploadConcurrency` parts and `partSize × uploadConcurrency` bytes in flight; one part always may go.
      while (this.#inflight.size > 0 && (this.#inflight.size >= this.#ctx.options.uploadConcurrency || this.#inflightBytes + body.length > this.#inflightBudget)) {
        await Promise.race(this.#inflight);
        if (this.#failure !== undefined) throw this.#failure;
      }
    } catch (err) {
      this.#release(owner);
      throw err;
    } finally {
      this.#waiting = null;
    }
    const partNumber = this.#nextPart++;
    // Unreachable while #limit holds (every byte past it is refused); kept so that S3 never sees a part too many.
    if (partNumber > this.#schedule.maxParts) {
      this.#release(owner);
      throw tooLarge(this.#plan.path, this.#limit, this.#schedule);
    }
    const held = owner.length;
    this.#inflightBytes += body.length;
    this.#inflightHeld += held;
    const p = this.#ctx.client
      .send(
        withPayloadSha256(new UploadPartCommand({ Bucket: this.#ctx.bucket, Key: this.#plan.key, UploadId: uploadId, PartNumber: partNumber, Body: body }), body, sha256),
        this.#signal(),
      )
      .then((out) => {
        this.#parts.push({ PartNumber: partNumber, ETag: out.ETag });
      })
      .catch((err: unknown) => {
        this.#failure ??= err;
      })
      .finally(() => {
        this.#inflight.delete(p);
        this.#inflightBytes -= body.length;
        this.#inflightHeld -= held;
        // The SDK is done with the body (retries included): its memory goes back to the budget, for any upload.
        this.#release(owner);
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
      () => cb(),
      (err: unknown) => cb(this.#fail(err)),
    );
  }

  /**
   * For an upload that replaces a known version (or nothing): checks with a HEAD that the key still holds it — the
   * only check on stores without conditional writes — and returns the condition headers for the completing request.
   */
  async #completionConditions(): Promise<Conditions> {
    const replaces = this.#plan.replaces;
    if (replaces === undefined) return {};
    const etag = (await this.#head())?.ETag;
    if (replaces === 'nothing' ? etag !== undefined : etag !== replaces.etag) throw changedMeanwhile(this.#plan.path);
    if (this.#ctx.conditionalWritesUnsupported) return {};
    return replaces === 'nothing' ? { IfNoneMatch: '*' } : { IfMatch: replaces.etag };
  }

  /**
   * Sends the request that makes the object appear, with the conditions: a failed condition is EBUSY; a store that
   * refuses the headers (NotImplemented, 400) gets the request again without them, and once that succeeds is not
   * asked with them again. A failure that may hide a success (see {@link mayHaveBeenApplied}) is checked against
   * the key first (`stored`): an APPE reported failed although stored would be appended twice by the client's retry.
   * Returns the ETag of the object written.
   */
  async #complete(conditions: Conditions, send: (c: Conditions) => Promise<{ ETag?: string }>, stored: () => Promise<{ ETag?: string } | undefined>): Promise<string | undefined> {
    try {
      return (await send(conditions)).ETag;
    } catch (err) {
      if (mayHaveBeenApplied(err) && !this.#abort.signal.aborted) {
        const found = await stored().catch(() => undefined);
        if (found !== undefined) return found.ETag;
      }
      if (conditions.IfMatch === undefined && conditions.IfNoneMatch === undefined) throw err;
      if (isPreconditionFailed(err)) throw changedMeanwhile(this.#plan.path, err);
      if (!isConditionRefused(err)) throw err;
      const done = await this.#complete({}, send, stored);
      // Only a store that then takes the request without them is taken to refuse the headers: a 400 for another
      // reason must not switch conditional writes off for the whole process.
      this.#ctx.conditionalWritesUnsupported = true;
      return done;
    }
  }

  /** The key's object now, or undefined when there is none. */
  async #head(): Promise<HeadObjectCommandOutput | undefined> {
    try {
      return await this.#ctx.client.send(new HeadObjectCommand({ Bucket: this.#ctx.bucket, Key: this.#plan.key }), this.#signal());
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Whether the store no longer knows the multipart upload: it was completed (nothing here aborted it). */
  async #uploadGone(uploadId: string): Promise<boolean> {
    try {
      await this.#ctx.client.send(new ListPartsCommand({ Bucket: this.#ctx.bucket, Key: this.#plan.key, UploadId: uploadId, MaxParts: 1 }), this.#signal());
      return false;
    } catch (err) {
      return s3CodeOf(err) === 'NoSuchUpload' || httpStatusOf(err) === 404;
    }
  }

  async #finish(): Promise<void> {
    await this.#ready;
    const digest = this.#hash?.digest('hex');
    const metadata = digest === undefined ? undefined : { [SHA256_META]: digest };
    if (this.#uploadId === undefined) {
      const owner = this.#buf;
      const body = owner === null ? Buffer.alloc(0) : owner.subarray(0, this.#filled);
      this.#buf = null;
      try {
        await this.#putObject(body, digest, metadata, this.#takePartHash());
      } finally {
        this.#release(owner);
      }
      return;
    }
    if (this.#filled > 0 || this.#parts.length + this.#inflight.size === 0) {
      const owner = this.#buf;
      const last = owner === null ? Buffer.alloc(0) : owner.subarray(0, this.#filled);
      this.#buf = null;
      this.#filled = 0;
      await this.#sendPart(last, owner ?? last, this.#takePartHash());
    }
    this.#release(this.#buf);
    this.#buf = null;
    await this.#completeMultipart(metadata);
  }

  /** Stores an upload that fits in one part: a single PutObject, which carries the digest directly. */
  async #putObject(body: Buffer, digest: string | undefined, metadata: Record<string, string> | undefined, sha256: string | undefined): Promise<void> {
    const conditions = await this.#completionConditions();
    // The same bytes as this upload: S3's ETag of a PutObject is their MD5 (not under SSE-KMS: the digest then).
    const stored = async (): Promise<{ ETag?: string } | undefined> => {
      const head = await this.#head();
      if (head === undefined || head.ContentLength !== body.length) return undefined;
      const md5 = `"${createHash('md5').update(body).digest('hex')}"`;
      return head.ETag === md5 || (digest !== undefined && head.Metadata?.[SHA256_META] === digest) ? { ETag: head.ETag } : undefined;
    };
    await this.#complete(
      conditions,
      (c) =>
        this.#ctx.client.send(
          withPayloadSha256(new PutObjectCommand({ Bucket: this.#ctx.bucket, Key: this.#plan.key, Body: body, Metadata: metadata, ...c }), body, sha256),
          this.#signal(),
        ),
      stored,
    );
    this.#completed = true;
  }

  /** Waits for the parts in flight, then completes the multipart upload (and records the digest by a self-copy). */
  async #completeMultipart(metadata: Record<string, string> | undefined): Promise<void> {
    while (this.#inflight.size > 0) await Promise.race(this.#inflight);
    if (this.#failure !== undefined) throw this.#failure;
    const uploadId = await (this.#uploadId as Promise<string>);
    const parts = [...this.#parts].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    const conditions = await this.#completionConditions();
    // The upload's size and S3's multipart ETag, or its size and an upload id the store no longer knows (stores
    // whose ETags are no MD5s): an id disappears only once completed, as nothing here aborted it.
    const stored = async (): Promise<{ ETag?: string } | undefined> => {
      const head = await this.#head();
      if (head === undefined || head.ContentLength !== this.#size) return undefined;
      return head.ETag === multipartEtag(parts) || (await this.#uploadGone(uploadId)) ? { ETag: head.ETag } : undefined;
    };
    const etag = await this.#complete(
      conditions,
      (c) =>
        this.#ctx.client.send(
          new CompleteMultipartUploadCommand({ Bucket: this.#ctx.bucket, Key: this.#plan.key, UploadId: uploadId, MultipartUpload: { Parts: parts }, ...c }),
          this.#signal(),
        ),
      stored,
    );
    // Stored from here on: a destroy during the self-copy below must not abort the upload (S3 would answer
    // NoSuchUpload) nor call the stored file a failure.
    this.#completed = true;
    if (metadata !== undefined && etag !== undefined && this.#size <= MAX_PART_SIZE) {
      // A multipart upload's metadata is fixed before its bytes are seen: record the digest with one server-side
      // self-copy, only if the object is still the one just completed (If-Match). A failure (or a destroy meanwhile)
      // only costs the digest: HASH then reads the object.
      await this.#ctx.client
        .send(
          new CopyObjectCommand({
            Bucket: this.#ctx.bucket,
            Key: this.#plan.key,
            CopySource: copySource(this.#ctx, this.#plan.key),
            CopySourceIfMatch: etag,
            MetadataDirective: 'REPLACE',
            Metadata: metadata,
          }),
          this.#signal(),
        )
        .catch(() => undefined);
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Cancels a self-copy still running; the object itself is stored and stays.
    if (this.#completed) {
      this.#abort.abort();
      return cb(err);
    }
    this.#abort.abort();
    this.#release(this.#buf);
    this.#buf = null;
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

import type { Socket } from 'node:net';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { createDeflate, createInflate, type Inflate } from 'node:zlib';
import { unackedBytes } from '@ftp/native';
import { AsciiDecoder, AsciiEncoder, encodeEscaped } from '@ftp/protocol';
import { chunkReaderOf, fileSizeOf, VfsError, type ChunkReader, type UploadStream } from '@ftp/vfs';
import { FtpError } from '../errors.js';
import { BIG_FILE_SIZE, releaseBuffer, takeBuffer } from './buffer-pool.js';
import { Turns } from '../turns.js';
import { kernelReceiveHandOff } from './receive-file.js';
import { feedThroughBuffers, type PooledFeed } from './receive-pooled.js';
import { sendfileSource, sendWithSendfile } from './send-file.js';
import { throttleTransform, type RateLimiter } from './throttle.js';

/** Why a transfer stopped early. */
export type TransferFailure = 'aborted' | 'connection' | 'stalled' | 'local';

/** Raised inside a transfer: tells the session which reply to give (426 for the client's side, 451 for ours). */
export class TransferError extends Error {
  constructor(
    readonly reason: TransferFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TransferError';
  }
}

/** The transfer in progress on a session: progress for STAT, and the handle ABOR pulls. */
export class Transfer {
  bytes = 0;
  readonly startedAt = performance.now();
  /** The data connection, once it is made. */
  socket: Socket | null = null;
  /** The TCP connection under {@link socket} (itself, unless TLS runs over it). */
  private tcp: Socket | null = null;
  /** Whether the data connection's end marks a complete upload (false: a TLS upload that ended without close_notify). */
  endedCleanly: () => boolean = () => true;
  /**
   * Whether storage holds writes it has not finished: an upload that has not moved for the stall timeout while
   * storage is busy is stalled by the storage (a frozen database, a partition), not by the client, and must not be
   * stored as a partial upload the client interrupted.
   */
  storageBusy: () => boolean = () => false;
  /** Whether storage has all of an upload and has not said it stored it (its commit): a stall then is storage's. */
  storageCommitting: () => boolean = () => false;
  /** Told when {@link stop} is called: the upload's wait for its storage ends with the stop's failure. */
  afterStop: (() => void) | null = null;
  /** Whether the kernel sends this download from the file (sendfile), not the server through buffers. */
  sentByKernel = false;
  /** Whether the rest of this upload went from the socket into the file on @ftp/native's threads (see receive-file.ts). */
  receivedByKernel = false;
  /** Whether the transfer waits for a bandwidth limit: not a stall, however long nothing moves. */
  throttled = false;
  /** The stall limit the transfer was attached with (ms; 0: none). */
  stallTimeoutMs = 0;
  /** Counts now what the kernel moved so far of a transfer on @ftp/native's threads, for a reading that must be current (STAT). */
  countKernelProgress: () => void = () => undefined;
  /** What storage has stored so far, when it says (see `UploadStream.storedBytes`): a change is progress. */
  storageProgress: () => number | undefined = () => undefined;
  /** {@link storageProgress} at the last stall check. */
  private lastStored: number | undefined;
  /** Why the transfer was stopped from outside, when the reason alone does not say it (a storage stall). */
  private stopCause: Error | null = null;
  private lastProgress = performance.now();
  /** The data socket's write queue at the last stall check (-1: none seen yet). */
  private lastQueued = -1;
  /** What the kernel held of it unacknowledged at the last stall check (-1: none seen yet). */
  private lastUnacked = -1;
  private stopReason: TransferFailure | null = null;
  private stallTimer: NodeJS.Timeout | null = null;
  private onStop: ((reason: TransferFailure) => void) | null = null;
  private readonly settled: Promise<void>;
  private settle!: () => void;

  constructor(
    readonly direction: 'download' | 'upload' | 'listing',
    readonly path: string,
  ) {
    this.settled = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  /** Resolves once the transfer's final reply (226, 426 or 451) has been sent. */
  get done(): Promise<void> {
    return this.settled;
  }

  /**
   * Starts moving bytes over `socket`; a stall of `stallTimeoutMs` without progress stops the transfer. `tcp` is the
   * connection under `socket` when that is a TLS socket: its write queue is what shows a slow download moving.
   */
  attach(socket: Socket, stallTimeoutMs: number, tcp: Socket = socket): void {
    this.socket = socket;
    this.tcp = tcp;
    this.stallTimeoutMs = stallTimeoutMs;
    this.lastProgress = performance.now();
    if (this.stopReason) socket.destroy();
    if (stallTimeoutMs > 0) {
      this.stallTimer = setInterval(() => {
        // A socket write of a big buffer calls back only at its end: one of 1 MiB to a client reading 4 KB/s takes
        // minutes while bytes flow all along. The write queue changing between two checks is progress too (it shrinks as
        // the kernel takes bytes; it grows only when a write is added, after the one before it completed).
        const now = performance.now();
        const queued = writeQueueOf(tcp);
        if (queued !== undefined) {
          if (queued !== this.lastQueued) this.lastProgress = now;
          this.lastQueued = queued;
        }
        // Past Node, the kernel's send buffer (grown to megabytes for a fast link) drains for minutes into a slow
        // client while the server can hand it nothing new (room for more is signalled only once a third is free):
        // what the client has not acknowledged yet shrinking is progress too.
        // (An upload's connection carries nothing of ours to acknowledge: not asked.)
        const unacked = this.direction === 'upload' ? undefined : unackedOf(tcp);
        if (unacked !== undefined) {
          if (unacked !== this.lastUnacked) this.lastProgress = now;
          this.lastUnacked = unacked;
        }
        // Storage copying the kept part of an APPE or REST + STOR takes no data for as long as that lasts.
        const stored = this.storageProgress();
        if (stored !== this.lastStored) {
          this.lastStored = stored;
          this.lastProgress = now;
        }
        if (this.throttled) this.lastProgress = now;
        if (now - this.lastProgress < stallTimeoutMs) return;
        const seconds = Math.round(stallTimeoutMs / 1000);
        if (this.storageCommitting()) this.stop('local', new FtpError(451, `Storage did not finish storing the upload in ${seconds} s; upload abandoned.`));
        else if (this.storageBusy()) this.stop('local', new FtpError(451, `Storage took none of the upload's data for ${seconds} s; upload abandoned.`));
        else this.stop('stalled');
      }, Math.min(stallTimeoutMs, 1000));
      this.stallTimer.unref();
    }
  }

  /**
   * Waits for a data connection unless the transfer is stopped first (ABOR, session closed); a socket that
   * arrives after the stop is destroyed rather than leaked.
   */
  race(promise: Promise<Socket>): Promise<Socket> {
    const late = (socket: Socket): void => void socket.destroy();
    if (this.stopReason) {
      promise.then(late, () => {});
      return Promise.reject(new TransferError(this.stopReason, MESSAGES.aborted));
    }
    return new Promise<Socket>((resolve, reject) => {
      let stopped = false;
      const onStop = (reason: TransferFailure): void => {
        stopped = true;
        reject(new TransferError(reason, reason === 'aborted' ? MESSAGES.aborted : MESSAGES.connection));
      };
      this.onStop = onStop;
      promise
        .then(
          (socket) => (stopped ? late(socket) : resolve(socket)),
          (err: unknown) => reject(err),
        )
        .finally(() => {
          // Only this race's own: this runs a microtask after the caller resumed, which may have started the next
          // race already (the TLS handshake after the accept), whose ABOR must still be heard.
          if (this.onStop === onStop) this.onStop = null;
        });
    });
  }

  /** Counts bytes moved; also what keeps the stall timer and the control idle timer from firing. */
  progress(n: number): void {
    this.bytes += n;
    this.lastProgress = performance.now();
  }

  get idleMs(): number {
    return this.throttled ? 0 : performance.now() - this.lastProgress;
  }

  get reason(): TransferFailure | null {
    return this.stopReason;
  }

  /**
   * Stops the transfer from outside (ABOR, stall, shutdown): the data connection is cut at once, by a reset. Closed
   * the usual way, it would still deliver what the kernel holds of a download — megabytes, to a client that reads
   * slowly or not at all, after its 426 and 226 — and hold those buffers for as long as that takes.
   */
  stop(reason: TransferFailure, cause?: Error): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    this.stopCause = cause ?? null;
    if (this.tcp !== null) resetConnection(this.tcp);
    this.socket?.destroy();
    this.onStop?.(reason);
    this.afterStop?.();
  }

  /** Releases the timers and lets ABOR's reply follow. */
  dispose(): void {
    if (this.stallTimer) clearInterval(this.stallTimer);
    this.settle();
  }

  /** The error for a data connection that closed before the transfer was complete. */
  closedError(): TransferError {
    const reason = this.stopReason ?? 'connection';
    if (this.stopCause !== null) return new TransferError(reason, this.stopCause.message, { cause: this.stopCause });
    return new TransferError(reason, reason === 'local' ? MESSAGES.connection : MESSAGES[reason]);
  }

  /**
   * A failure that came from storage (its stream failed, or closed before its end): 451 with storage's reason,
   * whatever the error's code (a remote store's ECONNRESET is storage's, not the client's), unless the transfer was
   * stopped first (ABOR, a stall, the client's connection), whose reason it then was.
   */
  storageFailure(err: unknown): TransferError {
    if (err instanceof TransferError) return err;
    if (this.stopReason !== null) return this.failure(err);
    const message = isPrematureClose(err) ? 'Storage closed the file before the transfer was complete.' : ((err as Error)?.message ?? 'local error');
    return new TransferError('local', message, { cause: err });
  }

  /** Turns whatever a pipeline threw into a TransferError that says whose fault it was. */
  failure(err: unknown): TransferError {
    if (err instanceof TransferError) return err;
    if (this.stopCause !== null) return this.closedError();
    // The error says whose side failed: storage errors carry a filesystem code, the data connection's a socket code.
    const reason = this.stopReason ?? (isSocketError(err) || !isStorageError(err) ? 'connection' : 'local');
    if (reason === 'local') return new TransferError(reason, (err as Error)?.message ?? 'local error', { cause: err });
    // The client's MODE Z data that does not inflate: the connection was fine, what came over it was not. Or the
    // connection ended inside the deflate stream, which is said as such (see isInvalidData for why neither is kept).
    const message = reason === 'connection' && isZlibError(err) ? (isCutDeflate(err) ? MESSAGES.deflateCut : MESSAGES.undeflatable) : MESSAGES[reason];
    return new TransferError(reason, message, { cause: err });
  }
}

const MESSAGES: Record<Exclude<TransferFailure, 'local'> | 'unclean' | 'undeflatable' | 'deflateCut', string> = {
  unclean: 'Data connection ended without TLS close_notify; upload incomplete.',
  undeflatable: 'Data received is not valid MODE Z (deflate) data; transfer aborted.',
  deflateCut: 'Data connection closed before the end of the MODE Z (deflate) stream; upload not kept.',
  aborted: 'Transfer aborted.',
  connection: 'Data connection closed; transfer aborted.',
  stalled: 'Data connection stalled; transfer aborted.',
};

const SOCKET_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT', 'ENOTCONN', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

/**
 * Whether a transfer failed on MODE Z data that does not inflate (corrupt, followed by more bytes after the end of
 * the deflate stream, or ended inside it), rather than on a cut connection. What it stored cannot be told from the
 * client's data: it must not be kept as a partial upload that a client would resume from.
 *
 * A stream the connection ends inside (the client killed, the network lost) is one of them, though most are honest
 * cuts: corrupt data decodes as deflate often enough to end the same way (one byte flipped in a test stream: 45 % of
 * the time, its output wrong from the flip to the end), and the only check, the stream's Adler-32, comes at its end.
 * Kept, a resume (SIZE + REST) would complete a file with garbage inside; removed, the client sends it again whole.
 */
export function isInvalidData(err: unknown): boolean {
  return err instanceof TransferError && isZlibError(err.cause);
}

/**
 * Inflate that fails on bytes after the end of the deflate stream: zlib stops there and drops the rest silently,
 * so two streams, or one followed by junk, would be stored as just the first.
 */
function strictInflate(): Transform {
  const inflate = createInflate() as Inflate & Transform;
  let fed = 0;
  const transform = inflate._transform.bind(inflate);
  const push = inflate.push.bind(inflate);
  inflate._transform = (chunk: Buffer, enc, cb) => {
    fed += chunk.length;
    transform(chunk, enc, cb);
  };
  // zlib ends its output as soon as the stream ends with input left over: caught there, before that end is taken
  // for the end of a good upload.
  inflate.push = (chunk: unknown, encoding?: BufferEncoding) => {
    if (chunk !== null || inflate.bytesWritten >= fed) return push(chunk, encoding);
    inflate.destroy(Object.assign(new Error('data after the end of the deflate stream'), { code: 'Z_DATA_ERROR' }));
    return false;
  };
  return inflate;
}

/** An error of zlib's (`Z_DATA_ERROR`, `Z_BUF_ERROR`…): data that does not inflate. */
function isZlibError(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code?.startsWith('Z_') === true;
}

/**
 * zlib's "unexpected end of file": the input ended inside the deflate stream (Node's inflate gives `Z_BUF_ERROR` only
 * when asked to finish a stream that has not ended). Told to the client as a cut, not as data that does not inflate.
 */
function isCutDeflate(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'Z_BUF_ERROR';
}

function isSocketError(err: unknown): boolean {
  return SOCKET_ERRORS.has((err as NodeJS.ErrnoException | undefined)?.code ?? '');
}

/** A failure of the storage: a VfsError, or any errno-style code that is not the socket's. */
function isStorageError(err: unknown): boolean {
  if (VfsError.isInstance(err)) return true;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code);
}

/** TYPE A, local to network: LF becomes CRLF (RFC 959 §3.1.1.1). */
export function asciiEncodeTransform(): Transform {
  const encoder = new AsciiEncoder();
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      cb(null, encoder.push(chunk));
    },
  });
}

/** TYPE A, network to local: CRLF becomes LF. */
export function asciiDecodeTransform(): Transform {
  const decoder = new AsciiDecoder();
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      cb(null, decoder.push(chunk));
    },
    flush(cb: TransformCallback) {
      const rest = decoder.flush();
      cb(null, rest.length > 0 ? rest : undefined);
    },
  });
}

/** How bytes are coded on the data connection: TYPE A line endings, MODE Z deflate, and rate limits. */
export interface Coding {
  ascii: boolean;
  /** zlib level for MODE Z; null for MODE S. */
  deflateLevel: number | null;
  /** Every limiter a byte must pass (the session's and the user's). */
  limiters: readonly RateLimiter[];
}

/**
 * The rate limit's stage: whenever there is a limiter, even one at 0 now, since its rate may be raised while the
 * transfer runs; none without.
 */
function throttleOf(transfer: Transfer, coding: Coding): Transform[] {
  if (coding.limiters.length === 0) return [];
  return [throttleTransform(coding.limiters, (on) => (transfer.throttled = on))];
}

/** Local bytes to wire bytes: TYPE A, then deflate, then the rate limit. */
function encoders(transfer: Transfer, coding: Coding): Transform[] {
  const out: Transform[] = [];
  if (coding.ascii) out.push(asciiEncodeTransform());
  if (coding.deflateLevel !== null) out.push(createDeflate({ level: coding.deflateLevel }));
  out.push(...throttleOf(transfer, coding));
  return out;
}

/** Wire bytes to local bytes: the rate limit, inflate, then TYPE A. */
function decoders(transfer: Transfer, coding: Coding): Transform[] {
  const out: Transform[] = throttleOf(transfer, coding);
  if (coding.deflateLevel !== null) out.push(strictInflate());
  if (coding.ascii) out.push(asciiDecodeTransform());
  return out;
}

export interface SendOptions {
  /** Let the kernel send the file when nothing has to change its bytes (the `sendfile` setting). */
  sendfile?: boolean;
}

/**
 * Streams `source` to the data socket with backpressure, through the coding, and resolves once the last byte is
 * handed to the kernel and the socket is ended. `pipeline` also fails at once for a data connection that closed
 * before the transfer began, and for one the client closed before the end.
 */
export async function sendToSocket(transfer: Transfer, source: Readable, coding: Coding, options: SendOptions = {}): Promise<void> {
  const socket = transfer.socket!;
  // Bytes that need no change on the way are sent by the kernel where it can (see send-file.ts).
  const kernel = options.sendfile === true && !coding.ascii && coding.deflateLevel === null && coding.limiters.length === 0 ? sendfileSource(source, socket) : undefined;
  if (kernel !== undefined && (await sendWithSendfile(transfer, source, kernel.file, kernel.socketFd, socket))) return;
  // Stream mode without a rate limit, in TYPE I or TYPE A: straight from the file into reused buffers, line ends
  // converted on the way (no stream stage, no buffer per read).
  const direct = coding.deflateLevel === null && coding.limiters.length === 0 ? chunkReaderOf(source) : undefined;
  if (direct !== undefined) return sendChunks(transfer, source, direct, socket, coding.ascii ? new AsciiEncoder() : null);
  const stages: Readable[] = [source, ...encoders(transfer, coding)];
  // Counted by watching the last stage rather than by one more Transform: a stage costs a copy of the stream
  // machinery per chunk, which is what bounds a transfer's speed here.
  countBytes(transfer, stages[stages.length - 1]!);
  // Whose failure came first: storage's stream (an error, or a close before its end) or the data connection. The
  // pipeline then destroys the other with the same error, so the error alone does not say.
  let first: 'storage' | 'connection' | null = null;
  source.once('error', () => (first ??= 'storage'));
  source.once('close', () => {
    if (!source.readableEnded) first ??= 'storage';
  });
  socket.once('error', () => (first ??= 'connection'));
  socket.once('close', () => (first ??= 'connection'));
  try {
    await pipeline([...stages, socket]);
  } catch (err) {
    throw first === 'storage' ? transfer.storageFailure(err) : transfer.failure(err);
  }
}

/**
 * Sends a file read straight into two reused buffers: one is being written to the socket while the next chunk is
 * read into the other. For stream-mode sends without a rate limit from providers that offer a {@link ChunkReader};
 * in TYPE A each chunk goes through `ascii` (a new buffer only when it has line ends to convert).
 */
async function sendChunks(transfer: Transfer, source: Readable, reader: ChunkReader, socket: Socket, ascii: AsciiEncoder | null): Promise<void> {
  const big = (fileSizeOf(source) ?? 0) >= BIG_FILE_SIZE;
  let current = takeBuffer(big);
  let spare = takeBuffer(big);
  let socketError: unknown = null;
  const onError = (err: unknown): void => {
    socketError ??= err;
  };
  socket.on('error', onError);
  try {
    let n = await reader(current).catch((err: unknown) => Promise.reject(transfer.storageFailure(err)));
    while (n > 0) {
      // TYPE A: the chunk itself when it has no line end to convert, else a new buffer.
      const wire = ascii === null ? current.subarray(0, n) : ascii.push(current.subarray(0, n));
      transfer.progress(wire.length);
      // Both settle before a buffer is touched again: a read into a buffer still being written would corrupt it.
      const [wrote, read] = await Promise.allSettled([writeChunk(transfer, socket, wire), reader(spare)]);
      if (wrote.status === 'rejected') throw wrote.reason;
      if (read.status === 'rejected') throw transfer.storageFailure(read.reason);
      n = read.value;
      [current, spare] = [spare, current];
    }
    socket.end();
    await finished(socket, { readable: false });
  } catch (err) {
    socket.destroy();
    throw transfer.failure(socketError ?? err);
  } finally {
    socket.off('error', onError);
    source.destroy();
    releaseBuffer(current);
    releaseBuffer(spare);
  }
}

function writeChunk(transfer: Transfer, socket: Socket, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    // Destroyed between two chunks: by ABOR or the stall timer (their reason says which reply), or by the client.
    if (socket.destroyed) return reject(socket.errored ?? transfer.closedError());
    socket.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * Streams the data socket into an upload with backpressure, through the coding. Resolves when the client closed
 * the data connection (end of file in stream mode) and the upload has stored everything. On a failure the upload
 * is told first (`transferError`), then destroyed, so a backend can keep or discard the partial data; or, with
 * `keepPartial`, ended so that it stores what arrived (see {@link ReceiveOptions}).
 *
 * `waitForStorage`: on failure, wait (bounded) for the storage to close the upload before reporting it, for storage
 * that writes in place, where a late write would land under the client's next command. Storage that shows an upload
 * only once complete (a temporary object) has nothing to wait for, and its clean-up may be slow.
 */
export async function receiveFromSocket(transfer: Transfer, upload: UploadStream, coding: Coding, options: ReceiveOptions = {}): Promise<void> {
  const socket = transfer.socket!;
  const stages: Transform[] = decoders(transfer, coding);
  // Plain bytes to storage that lets their memory be reused: read into the shared transfer buffers.
  const pooled = options.reuseBuffers !== false && stages.length === 0 && upload.releasesChunks === true;
  // A big upload's rest goes from the socket to the file on the addon's threads where it can (see receive-file.ts).
  const handOff = pooled && options.kernelReceive === true ? kernelReceiveHandOff(transfer, socket, upload) : undefined;
  const feed = pooled ? feedThroughBuffers(transfer, socket, upload, handOff) : null;
  transfer.storageBusy = () => upload.writableLength > 0;
  transfer.storageCommitting = () => upload.writableEnded && !upload.writableFinished && !upload.destroyed;
  transfer.storageProgress = () => upload.storedBytes;
  if (feed === null) countBytes(transfer, socket);
  let source: Readable = socket;
  for (const stage of stages) source = source.pipe(stage);
  try {
    await pipeInto(transfer, source, stages, upload, feed, options);
  } finally {
    feed?.dispose();
  }
  if (!socket.destroyed) socket.end();
}

/** How long a failed upload's storage may take to close before the failure is told anyway (ms). */
export const UPLOAD_CLOSE_WAIT_MS = 5000;

/**
 * How long the last bytes of an upload stopped by ABOR, a stall or a reset may take to be written before it is ended
 * anyway (ms): a working disk takes milliseconds, and one that hangs must not hold ABOR's reply for long.
 */
const KEEP_ARRIVED_WAIT_MS = 1000;

/**
 * Resolves once `upload` has closed (or could not say so), or after `waitMs`; with `stored`, already once it has
 * stored what it was given ('finish'): not its clean-up after that, which may be slow.
 */
function uploadSettled(upload: UploadStream, waitMs: number, stored = false): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      upload.off('finish', done);
      resolve();
    };
    const timer = setTimeout(done, waitMs);
    timer.unref();
    if (stored) upload.once('finish', done);
    finished(upload).then(done, done);
  });
}

/** How {@link receiveFromSocket} treats its storage. */
export interface ReceiveOptions {
  /** Read plain uploads into the shared transfer buffers when the storage lets them be reused. Default true. */
  reuseBuffers?: boolean;
  /**
   * Let a big upload's bytes go from the socket straight into storage's file on @ftp/native's threads, where
   * storage lends its descriptor (the local disk) and nothing has to see the bytes (the `kernelReceive` setting).
   */
  kernelReceive?: boolean;
  /** On failure, wait (bounded) for the storage to close before telling the failure. Default true. */
  waitForStorage?: boolean;
  /**
   * On a failure of the data connection (reset, abort, stall), store what arrived instead of discarding it, and
   * tell the failure once it is stored: for storage that shows an upload only when complete, so that a client
   * resuming with SIZE and REST resumes from what it sent, not from the previous version's size. Default false.
   */
  keepPartial?: boolean;
  /**
   * How long a kept partial upload may take to be stored before the failure is told anyway (ms). Long: a later
   * upload of the file must not be overtaken by it. Default {@link UPLOAD_CLOSE_WAIT_MS}.
   */
  storeWaitMs?: number;
}

/** Waits for `source` to end and `upload` to store everything: piped, or fed by `feed` when there is one. */
function pipeInto(transfer: Transfer, source: Readable, stages: Transform[], upload: UploadStream, feed: PooledFeed | null, options: ReceiveOptions): Promise<void> {
  const socket = transfer.socket!;
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    /** The data ended without TLS's close_notify where one is required: possibly truncated, never stored as kept. */
    let unclean = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      const failure = transfer.failure(err);
      socket.unpipe();
      // The storage failed (a full disk, say): the data connection stays, unread, until the final reply is on its
      // way, and is cut after it. Cut first, a client (lftp) takes the reset for a network failure and sends the
      // upload again, never reading why. A failure of the connection itself, ABOR or a stall cut it at once.
      if (failure.reason === 'local') {
        // Nothing is read meanwhile: the pooled reads end here (a write's callback would otherwise resume them).
        feed?.dispose();
        socket.pause();
      } else socket.destroy();
      for (const stage of stages) stage.destroy();
      // Data that did not inflate is not the client's: never kept, whatever partialUploads says.
      if (options.keepPartial === true && failure.reason !== 'local' && !unclean && !isInvalidData(failure) && !upload.destroyed && !upload.writableEnded) {
        // What arrived is stored as the file (as an upload written in place keeps it), then the failure told.
        feed?.flush();
        upload.end();
        void uploadSettled(upload, options.storeWaitMs ?? UPLOAD_CLOSE_WAIT_MS, true).then(() => reject(failure));
        return;
      }
      const abandon = (): void => {
        try {
          upload.transferError?.(failure);
        } finally {
          upload.destroy(failure);
        }
        // The failure (426, 451…) is told once the upload has closed: a write still running in storage would
        // otherwise land after it, under the client's next command on the same file (an APPE, a REST + STOR). A
        // storage that takes longer to close is not waited for past UPLOAD_CLOSE_WAIT_MS.
        if (options.waitForStorage !== false) void uploadSettled(upload, UPLOAD_CLOSE_WAIT_MS).then(() => reject(failure));
        else reject(failure);
      };
      // Storage written in place keeps what arrived before ABOR, a stall or the client's reset (as vsftpd and
      // pyftpdlib do, and as the transfer's byte count says): the bytes the feed gathered for its next write go to
      // storage first. A failing storage ('local') gets nothing more, and bytes that did not decode are not the client's.
      if (feed !== null && options.waitForStorage !== false && failure.reason !== 'local' && !unclean && !isInvalidData(failure)) {
        void feed.settle(KEEP_ARRIVED_WAIT_MS).then(abandon);
        return;
      }
      abandon();
    };
    // ABOR, a stall or the session's end: also once the data is all in and storage is storing it (its commit), when
    // the data connection has nothing left to fail with.
    transfer.afterStop = () => {
      // The session ended (the client left, a shutdown) while storage stores an upload that arrived whole: the file is
      // complete, so the storing goes on. Only one that never ends is given up, after the stall limit.
      if (transfer.reason === 'connection' && transfer.storageCommitting()) {
        if (transfer.stallTimeoutMs > 0) {
          const limit = setTimeout(() => fail(new TransferError('local', `Storage did not finish storing the upload in ${Math.round(transfer.stallTimeoutMs / 1000)} s; upload abandoned.`)), transfer.stallTimeoutMs);
          limit.unref();
          finished(upload).then(() => clearTimeout(limit), () => clearTimeout(limit));
        }
        return;
      }
      fail(transfer.closedError());
    };
    // `finished` also settles for a socket that was already closed or reset before this transfer began.
    finished(socket, { writable: false }).catch((err: unknown) => fail(isPrematureClose(err) ? transfer.closedError() : err));
    for (const stage of stages) stage.once('error', fail);
    // The upload's own failures are storage's, whatever their code (ours come as TransferErrors).
    upload.once('error', (err: unknown) => fail(transfer.storageFailure(err)));
    finished(upload, { readable: false }).then(
      () => {
        if (settled) return;
        settled = true;
        resolve();
      },
      (err: unknown) => fail(transfer.storageFailure(err)),
    );
    // The upload is ended only once the end of the data is known to be genuine, so a rejected end never commits
    // (not even as a kept partial upload).
    const onEnd = (): void => {
      // Failed meanwhile (bytes after the deflate stream are found at its end, before this runs).
      if (settled) return;
      if (!transfer.endedCleanly()) {
        unclean = true;
        return fail(new TransferError('connection', MESSAGES.unclean));
      }
      feed?.flush();
      upload.end();
    };
    // A socket emits 'end' as soon as its FIN arrives, read or not: an empty upload may be over already.
    if (source.readableEnded) onEnd();
    else source.once('end', onEnd);
    if (feed === null) source.pipe(upload, { end: false });
  });
}

/**
 * Writes listing lines to the data socket in batches, through the coding, with backpressure, then ends it. The
 * lines come as they are made: in groups (a slice of a folder each), so that a big folder is never all in hand.
 */
export async function sendLines(transfer: Transfer, lines: Iterable<string> | AsyncIterable<Iterable<string>>, batchSize: number, coding: Coding): Promise<void> {
  const groups = new GroupWaiter(Symbol.asyncIterator in lines ? lines[Symbol.asyncIterator]() : [lines][Symbol.iterator]());
  const socket = transfer.socket!;
  // Closed before this listens (during a TLS connection's settling turn, say): its 'close' will not come again.
  if (socket.destroyed) throw transfer.closedError();
  const onClose = (): void => groups.closed(transfer.closedError());
  socket.once('close', onClose);
  try {
    // Listings are already CRLF text: TYPE A has nothing to convert.
    await sendToSocket(transfer, Readable.from(batchesOf(groups, batchSize), { objectMode: false }), { ...coding, ascii: false });
  } finally {
    socket.off('close', onClose);
  }
}

/**
 * A listing's groups of lines, one wait at a time. A group still being read (a slice on its way from storage) must
 * not hold up ABOR's reply or the 426 of a client that left: a wait ends when the data connection closes. Each
 * wait is its own promise, dropped once settled. (A race against one promise that lives as long as the connection
 * would keep a reaction, and through it every group of lines already sent, until the listing ends: all of a big
 * folder.)
 */
class GroupWaiter {
  readonly #groups: AsyncIterator<Iterable<string>> | Iterator<Iterable<string>>;
  #closedError: Error | null = null;
  #fail: ((err: Error) => void) | null = null;

  constructor(groups: AsyncIterator<Iterable<string>> | Iterator<Iterable<string>>) {
    this.#groups = groups;
  }

  /** The data connection closed: the wait in progress, and any later one, fail with `err`. */
  closed(err: Error): void {
    this.#closedError = err;
    this.#fail?.(err);
  }

  next(): Promise<IteratorResult<Iterable<string>>> {
    return new Promise((resolve, reject) => {
      if (this.#closedError) return reject(this.#closedError);
      this.#fail = reject;
      // Abandoned when the connection closes first: its outcome then goes nowhere.
      Promise.resolve(this.#groups.next()).then(resolve, reject);
    });
  }
}

/**
 * The lines of `groups`, CRLF-ended, in buffers of `batchSize` lines. At module level, as are the listings' own
 * generators: a generator function made per listing gives its generator objects a new shape each time, and the
 * optimized code that had inlined their `next` was thrown away at every listing (V8 "wrong map" deoptimizations
 * through a server's first listings).
 */
async function* batchesOf(groups: GroupWaiter, batchSize: number): AsyncGenerator<Buffer> {
  let batch = '';
  let count = 0;
  let got: IteratorResult<Iterable<string>> | null;
  // Storage that answers at once (memory, SQLite) and a socket that takes every write would otherwise run a whole
  // listing in one go: 100,000 entries held every other session 90–550 ms.
  const turns = new Turns();
  for (;;) {
    got = await groups.next();
    if (got.done === true) break;
    for (const line of got.value) {
      batch += line + '\r\n';
      if (++count >= batchSize) {
        yield encodeEscaped(batch);
        batch = '';
        count = 0;
        const turn = turns.check();
        if (turn) await turn;
      }
    }
    // Dropped before the next wait: a suspended generator keeps its variables, and this one would keep the group
    // just sent until the next one came.
    got = null;
  }
  if (batch.length > 0) yield encodeEscaped(batch);
}

/**
 * Bytes queued on the socket's handle and not yet taken by the kernel: libuv's write queue, which Node's handle
 * reports live (`writeQueueSize`), shrinking as a slow client drains a big write. Undefined where the handle has none
 * (a relay): the stall timer then counts completed writes only.
 */
/** Bytes the kernel holds of `socket`'s data that the client has not acknowledged (undefined: not known here). */
export function unackedOf(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return undefined;
  return unackedBytes(fd) ?? undefined;
}

function writeQueueOf(socket: Socket): number | undefined {
  const queued = (socket as unknown as { _handle?: { writeQueueSize?: unknown } | null })._handle?.writeQueueSize;
  return typeof queued === 'number' ? queued : undefined;
}

/** Counts the bytes a stream emits, for progress (STAT), the stall timer and the transfer event. */
function countBytes(transfer: Transfer, stream: Readable): void {
  stream.on('data', (chunk: Buffer) => transfer.progress(chunk.length));
}

function isPrematureClose(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/** Ends a TCP connection with a reset, discarding what it has not sent yet; destroys it where it cannot (no TCP handle). */
export function resetConnection(tcp: Socket): void {
  if (tcp.destroyed) return;
  // Ended, its shutdown still pending in libuv (the FIN queued after what it has not written yet): a reset then
  // fails with EINVAL and Node never closes the handle, a descriptor lost per ABOR. Closed instead. Once the shutdown
  // is done ('finish'), the reset works: it drops what the kernel still holds, a lingering download's pages included.
  if (tcp.writableEnded && !tcp.writableFinished) {
    tcp.destroy();
    return;
  }
  try {
    tcp.resetAndDestroy();
  } catch {
    tcp.destroy();
  }
}

import { Readable, Writable, type Stream } from 'node:stream';
import { fsError, toVfsError, VfsError } from './errors.js';
import { mapStreamErrors } from './internal/stream-errors.js';
import type { FileHandleLike, FsProvider, ReadStreamOptions, UploadStream, WriteStreamOptions } from './spec.js';

/** Size of the reads of the file-handle fallback (and of the providers of this package): 256 KiB. */
export const TRANSFER_CHUNK_SIZE = 256 * 1024;

/** Checks `start`/`end`/`append` of stream options; throws EINVAL for negative, fractional or contradictory ones. */
export function checkStreamOptions(options: ReadStreamOptions & WriteStreamOptions, path: string): void {
  for (const key of ['start', 'end'] as const) {
    const v = options[key];
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) {
      throw new VfsError('EINVAL', `EINVAL: ${key} must be a non-negative integer, got ${String(v)}`, { path });
    }
  }
  if (options.append === true && options.start !== undefined) {
    throw new VfsError('EINVAL', 'EINVAL: start and append are exclusive', { path });
  }
}

function asHandle(h: unknown, path: string): FileHandleLike {
  const handle = h as Partial<FileHandleLike> | null;
  if (handle === null || typeof handle !== 'object' || typeof handle.read !== 'function' || typeof handle.close !== 'function') {
    throw new VfsError('ENOTSUP', 'ENOTSUP: open() did not return a file handle', { path });
  }
  return handle as FileHandleLike;
}

/** A Readable over a file handle: reads of up to 256 KiB into a fresh buffer each (pushed buffers are kept downstream). */
class HandleReadStream extends Readable {
  #handle: FileHandleLike;
  #pos: number;
  #limit: number;
  #sizeHint: number;
  #closed = false;

  constructor(handle: FileHandleLike, start: number, endInclusive: number | undefined, sizeHint: number) {
    super({ highWaterMark: TRANSFER_CHUNK_SIZE });
    this.#handle = handle;
    this.#pos = start;
    this.#limit = endInclusive === undefined ? Infinity : endInclusive + 1;
    this.#sizeHint = sizeHint;
  }

  override _read(): void {
    const want = Math.min(TRANSFER_CHUNK_SIZE, this.#limit - this.#pos);
    if (want <= 0) {
      this.push(null);
      return;
    }
    // Size the buffer to what the file probably still holds (a small file gets a small buffer), at least 8 KiB
    // in case it grew.
    const size = Math.min(want, Math.max(this.#sizeHint - this.#pos, 8192));
    const buf = Buffer.allocUnsafe(size);
    this.#handle.read(buf, 0, size, this.#pos).then(
      ({ bytesRead }) => {
        if (bytesRead <= 0) {
          this.push(null);
          return;
        }
        this.#pos += bytesRead;
        this.push(bytesRead === size ? buf : buf.subarray(0, bytesRead));
      },
      (err: unknown) => this.destroy(err as Error),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.#closed) return cb(err);
    this.#closed = true;
    this.#handle.close().then(
      () => cb(err),
      (closeErr: unknown) => cb(err ?? (closeErr as Error)),
    );
  }
}

function bytesWrittenOf(result: unknown, fallback: number): number {
  if (typeof result === 'number') return result;
  const n = (result as { bytesWritten?: unknown } | null)?.bytesWritten;
  return typeof n === 'number' ? n : fallback;
}

/** A Writable over a file handle; for REST + STOR it truncates the file to the final length when done. */
class HandleWriteStream extends Writable implements UploadStream {
  #handle: FileHandleLike;
  #pos: number | null;
  #truncateAtEnd: boolean;
  #closed = false;

  constructor(handle: FileHandleLike, position: number | null, truncateAtEnd: boolean) {
    super({ highWaterMark: TRANSFER_CHUNK_SIZE, decodeStrings: true });
    this.#handle = handle;
    this.#pos = position;
    this.#truncateAtEnd = truncateAtEnd;
  }

  async #writeAll(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const len = chunk.length - off;
      const n = bytesWrittenOf(await this.#handle.write(chunk, off, len, this.#pos), len);
      if (n <= 0) throw new VfsError('EIO', 'EIO: short write');
      off += n;
      if (this.#pos !== null) this.#pos += n;
    }
  }

  /**
   * The last write or truncate started on the handle (settled or not). `Writable` calls `_destroy` without waiting
   * for it: the handle is closed only once it has returned, or its descriptor could be reused by another open and
   * the late write land in someone else's file (and the upload would look closed while its last bytes were still on
   * their way).
   */
  #running: Promise<void> | null = null;

  #run(op: Promise<void>, cb: (err?: Error | null) => void): void {
    this.#running = op.then(() => cb(), cb);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#run(this.#writeAll(chunk), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#run(
      (async () => {
        if (this.#truncateAtEnd && this.#pos !== null && typeof this.#handle.truncate === 'function') {
          await this.#handle.truncate(this.#pos);
        }
        this.#closed = true;
        await this.#handle.close();
      })(),
      cb,
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const close = (): void => {
      if (this.#closed) return cb(err);
      this.#closed = true;
      this.#handle.close().then(
        () => cb(err),
        (closeErr: unknown) => cb(err ?? (closeErr as Error)),
      );
    };
    if (this.#running) void this.#running.then(close, close);
    else close();
  }
}

/**
 * Opens a file for download. Uses the provider's `createReadStream` when it has one; otherwise streams through a
 * handle from `open(path, 'r')`, 256 KiB per read, never reading the whole file. The handle is closed on end,
 * error and destroy. Errors (thrown and emitted) are {@link VfsError}s naming `path`.
 *
 * @param options `start`/`end` byte offsets, `end` inclusive.
 * @throws VfsError `EISDIR` for a directory, `ENOENT`, …
 */
export async function openReadStream(p: FsProvider, path: string, options: ReadStreamOptions = {}): Promise<Readable> {
  checkStreamOptions(options, path);
  try {
    if (typeof p.createReadStream === 'function') {
      return mapStreamErrors(await p.createReadStream(path, options), path);
    }
    const st = await p.stat(path);
    if (st.isDirectory()) throw fsError('EISDIR', 'open', path);
    const handle = asHandle(await p.open(path, 'r'), path);
    return mapStreamErrors(new HandleReadStream(handle, options.start ?? 0, options.end, st.size), path);
  } catch (err) {
    throw toVfsError(err, path);
  }
}

/**
 * Opens a file for upload. Uses the provider's `createWriteStream` when it has one; otherwise writes through a
 * handle from `open()`: `'w'` (truncate), `'a'` (`append`), or `'r+'` for `start` (REST + STOR: created when missing,
 * written from `start`, truncated to the final length at the end). The upload is complete once the stream has
 * emitted `finish`. Errors (thrown and emitted) are {@link VfsError}s naming `path`.
 */
export async function openWriteStream(p: FsProvider, path: string, options: WriteStreamOptions = {}): Promise<UploadStream> {
  checkStreamOptions(options, path);
  try {
    if (typeof p.createWriteStream === 'function') {
      return mapStreamErrors(await p.createWriteStream(path, options), path);
    }
    if (options.append === true) {
      return mapStreamErrors(new HandleWriteStream(asHandle(await p.open(path, 'a', options.mode), path), null, false), path);
    }
    const start = options.start ?? 0;
    if (start === 0) {
      return mapStreamErrors(new HandleWriteStream(asHandle(await p.open(path, 'w', options.mode), path), 0, false), path);
    }
    let handle: unknown;
    try {
      handle = await p.open(path, 'r+');
    } catch (err) {
      if (toVfsError(err).code !== 'ENOENT') throw err;
      handle = await p.open(path, 'w', options.mode);
    }
    return mapStreamErrors(new HandleWriteStream(asHandle(handle, path), start, true), path);
  } catch (err) {
    throw toVfsError(err, path);
  }
}

/**
 * Reads the next bytes of a read stream's file into a buffer the caller owns; resolves to how many were read, 0 at
 * the end. The server uses it to send a file from a few reused buffers, with no allocation per chunk.
 */
export type ChunkReader = (into: Buffer) => Promise<number>;

/** A value a provider pins on a stream it returns, under a registered symbol (it survives wrappers and bundles). */
function streamTag<V>(name: string): { set<T extends Stream>(stream: T, value: V): T; get(stream: Stream): V | undefined } {
  const key = Symbol.for(`@ftp/vfs.${name}`);
  return {
    set(stream, value) {
      Object.defineProperty(stream, key, { value });
      return stream;
    },
    get: (stream) => (stream as unknown as Record<symbol, V | undefined>)[key],
  };
}

/**
 * The open file under a read stream and the part of it the stream reads, for a consumer that hands the file to
 * the kernel instead of reading it (sendfile). The stream still owns the descriptor: the consumer must not read
 * the stream as well, must not close the descriptor, and destroys the stream when done.
 */
export interface FileDescriptorSource {
  /** A regular file's descriptor; read at explicit offsets (its own position is not used). */
  readonly fd: number;
  /** The first byte to send. */
  readonly start: number;
  /** The byte after the last one to send, or Infinity: to the end the file has when that is reached. */
  readonly end: number;
  /** Bytes it is fine to read on the event loop's thread (files the provider reads synchronously anyway). */
  readonly inlineBytes: number;
  /** Asked once everything was sent: an error if the bytes must not pass for the file (see `ChunkReader`). */
  atEnd(): VfsError | null;
  /**
   * Says the bytes sent were handed to the kernel by reference (sendfile): `socket` holds the file's own pages until
   * the client acknowledges them (and a client on the same machine's receive queue until it reads them), after the
   * stream has closed and its claim on the file is gone. Until `socket` closes, an upload that would rewrite those
   * bytes in place (a restart point inside the file) is refused (EBUSY), in other processes sharing claims too: the
   * client would receive the new bytes in place of the ones it was sent.
   */
  lendPages?(socket: { once(event: 'close', listener: () => void): unknown }): void;
}

/**
 * Writes to a lent descriptor (see {@link FileDescriptorSink.lend}): `position` is the offset of the upload's next
 * byte (null: the descriptor appends, APPE). Calls `done` once, with how many bytes it wrote from there and the
 * file's error if writing failed. Returns a function that ends the writing early (the upload was destroyed or taken
 * over); `done` must follow it.
 */
export type DescriptorWriter = (fd: number, position: number | null, done: (written: number, err: NodeJS.ErrnoException | null) => void) => () => void;

/**
 * The open file under an upload stream, for a consumer that writes to it directly (the kernel, from another thread)
 * instead of through `write()`: the local disk's uploads have one. The stream still owns the descriptor, and its
 * end (`end()`: truncation for REST, the close) and failures work as for data written through it.
 */
export interface FileDescriptorSink {
  /**
   * Lends the descriptor to `write` until it calls `done`. Meanwhile the upload is busy: writes and `end()` wait
   * for `done`, and a destroy ends the writing and closes the descriptor only after `done`. An error given to
   * `done` is the file's (a full disk): the upload fails with it. Returns false, calling nothing, when the upload
   * cannot lend now: data written through it is not stored yet, a write failed, or it has ended or failed.
   */
  lend(write: DescriptorWriter): boolean;
  /**
   * The borrower wrote more: the upload is not idle (an upload idle for seconds may be taken over by a newcomer
   * to the same file, its client most likely gone).
   */
  progressed(): void;
}

const chunkReaderTag = streamTag<ChunkReader>('chunkReader');
const fileDescriptorSinkTag = streamTag<FileDescriptorSink>('fileDescriptorSink');
const fileDescriptorTag = streamTag<FileDescriptorSource>('fileDescriptor');
const fileSizeTag = streamTag<number>('fileSize');

/**
 * Gives a read stream a {@link ChunkReader} (providers whose streams read a file descriptor). A consumer that
 * uses it must not read the stream as well, and destroys the stream when done, which releases the file.
 */
export function attachChunkReader<T extends Readable>(stream: T, reader: ChunkReader): T {
  return chunkReaderTag.set(stream, reader);
}

/** The stream's {@link ChunkReader}, if its provider gave it one (wrappers pass the stream through unchanged). */
export function chunkReaderOf(stream: Readable): ChunkReader | undefined {
  return chunkReaderTag.get(stream);
}

/** Gives a read stream its {@link FileDescriptorSource} (providers whose streams read a local file). */
export function attachFileDescriptor<T extends Readable>(stream: T, source: FileDescriptorSource): T {
  return fileDescriptorTag.set(stream, source);
}

/** The stream's {@link FileDescriptorSource}, if its provider gave it one (wrappers pass the stream through unchanged). */
export function fileDescriptorOf(stream: Readable): FileDescriptorSource | undefined {
  return fileDescriptorTag.get(stream);
}

/** Gives an upload stream its {@link FileDescriptorSink} (providers whose uploads write a local file). */
export function attachFileDescriptorSink<T extends Writable>(stream: T, sink: FileDescriptorSink): T {
  return fileDescriptorSinkTag.set(stream, sink);
}

/**
 * The upload stream's {@link FileDescriptorSink}, if its provider gave it one. Wrappers that must see the bytes (a
 * quota) return a stream of their own, which has none; those that pass the stream through keep it.
 */
export function fileDescriptorSinkOf(stream: Writable): FileDescriptorSink | undefined {
  return fileDescriptorSinkTag.get(stream);
}

/** Records the size of the file a read stream reads, as its provider saw it at open (saves the server a stat). */
export function attachFileSize<T extends Readable>(stream: T, size: number): T {
  return fileSizeTag.set(stream, size);
}

/** The size its provider recorded with {@link attachFileSize}, if any. */
export function fileSizeOf(stream: Readable): number | undefined {
  return fileSizeTag.get(stream);
}

/**
 * Counts `key` in `counts` while `stream` is open: one more now, one less at its `close` (the key goes at 0). For a
 * provider's own bookkeeping of what its running uploads hold (the folders they write into, say), which its other
 * calls consult meanwhile.
 */
export function countWhileOpen<K>(counts: Map<K, number>, key: K, stream: { once(event: 'close', listener: () => void): unknown }): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
  stream.once('close', () => {
    const left = (counts.get(key) ?? 1) - 1;
    if (left > 0) counts.set(key, left);
    else counts.delete(key);
  });
}

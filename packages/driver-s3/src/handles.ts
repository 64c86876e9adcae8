import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { fsError, type FileStats } from '@ftp/vfs';
import type { S3Context } from './context.js';
import { openDownload } from './download.js';
import { fileStats } from './objects.js';
import type { HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import type { S3UploadStream } from './upload.js';

/**
 * A read-only file handle: each `read` is one ranged GET of exactly the bytes asked for. The server never needs it
 * (the provider streams); it exists for `@platformatic/vfs` callers and the contract's `open()`.
 */
export class S3ReadHandle {
  readonly #ctx: S3Context;
  readonly #head: HeadObjectCommandOutput;
  #position = 0;
  #closed = false;
  /** The path opened. */
  readonly path: string;

  /** @internal Created by the provider's `open()`. */
  constructor(ctx: S3Context, path: string, head: HeadObjectCommandOutput) {
    this.#ctx = ctx;
    this.path = path;
    this.#head = head;
  }

  /** Reads up to `length` bytes at `position` (or the current position) into `buffer[offset...]`. */
  async read<T extends Uint8Array>(buffer: T, offset = 0, length = buffer.byteLength - offset, position: number | null = null): Promise<{ bytesRead: number; buffer: T }> {
    if (this.#closed) throw fsError('EINVAL', 'read', this.path);
    const pos = position ?? this.#position;
    const size = this.#head.ContentLength ?? 0;
    const want = Math.min(length, size - pos);
    let bytesRead = 0;
    if (want > 0) {
      const body = await openDownload(this.#ctx, this.path, { start: pos, end: pos + want - 1, ifMatch: this.#head.ETag });
      for await (const chunk of body) {
        const c = chunk as Buffer;
        const n = Math.min(c.length, want - bytesRead);
        buffer.set(c.subarray(0, n), offset + bytesRead);
        bytesRead += n;
      }
    }
    if (position === null) this.#position = pos + bytesRead;
    return { bytesRead, buffer };
  }

  /** Writing through a read handle is refused. */
  async write(): Promise<never> {
    throw fsError('EINVAL', 'write', this.path);
  }

  /** Stats of the object as it was opened. */
  async stat(): Promise<FileStats> {
    return fileStats(this.#head);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}

/**
 * A write-only handle over an upload stream: sequential writes only (S3 objects are written once, front to back).
 * The object appears, whole, on `close()`.
 */
export class S3WriteHandle {
  readonly #upload: S3UploadStream;
  #position = 0;
  #closed = false;
  /** The path opened. */
  readonly path: string;

  /** @internal Created by the provider's `open()`. */
  constructor(path: string, upload: S3UploadStream) {
    this.path = path;
    this.#upload = upload;
    // Errors surface through write()/close(); keep the emitter from throwing meanwhile.
    upload.on('error', () => undefined);
  }

  /** Appends `buffer[offset, offset + length)`; `position` must be null or the current end (ENOTSUP otherwise). */
  async write<T extends Uint8Array>(buffer: T, offset = 0, length = buffer.byteLength - offset, position: number | null = null): Promise<{ bytesWritten: number; buffer: T }> {
    if (this.#closed) throw fsError('EINVAL', 'write', this.path);
    if (position !== null && position !== this.#position) throw fsError('ENOTSUP', 'write', this.path);
    const chunk = Buffer.from(buffer.buffer, buffer.byteOffset + offset, length);
    // Resolve only once the stream has taken the bytes (copied them into its part buffer): the caller may reuse them.
    await new Promise<void>((resolve, reject) => {
      this.#upload.write(chunk, (err) => (err ? reject(err) : resolve()));
    });
    this.#position += length;
    return { bytesWritten: length, buffer };
  }

  /** Reading through a write handle is refused. */
  async read(): Promise<never> {
    throw fsError('EINVAL', 'read', this.path);
  }

  /** Completes the upload; resolves once the object is stored. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#upload.destroyed) {
      if (!this.#upload.closed) await once(this.#upload, 'close');
      return;
    }
    this.#upload.end();
    await finished(this.#upload);
  }
}

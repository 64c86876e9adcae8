import { Readable } from 'node:stream';
import { contentGone, getChunk } from './content.js';
import type { Internals } from './content.js';
import type { ReaderLease } from './lease.js';
import { VfsError } from '@ftp/vfs';

/**
 * A download: the chunks of one inode, fetched one ahead of the consumer (memory: about two chunks). The inode id is
 * fixed when the stream opens and an inode's chunks are never rewritten, so a download never mixes two versions.
 * The stream holds a lease on the inode until it ends, fails or is destroyed: if the file is replaced or deleted
 * meanwhile, its old chunks stay readable for the grace period (deleted as soon as the last reader leaves), after
 * which the stream fails with EIO rather than return anything else. A stream dropped without being ended or destroyed
 * gives its lease back when it is garbage-collected.
 */
export class RedisReadStream extends Readable {
  readonly #fs: Internals;
  readonly #ino: number;
  readonly #end: number;
  #pos: number;
  /** The fetch of the chunk after the one being pushed, started early so Redis round-trips overlap the consumer. */
  #ahead: { seq: number; data: Promise<Buffer | null> } | undefined;
  readonly #lease: ReaderLease | undefined;

  /**
   * @param end exclusive, already clamped to the file size.
   * @param lease the reader's lease on `ino` (none for a read of no bytes, or without grace period), released once
   * the stream is done, whichever way.
   */
  constructor(fs: Internals, ino: number, start: number, end: number, lease?: ReaderLease) {
    super({ highWaterMark: fs.chunkSize });
    this.#fs = fs;
    this.#ino = ino;
    this.#pos = start;
    this.#end = end;
    this.#lease = lease?.heldBy(this);
  }

  #fetch(seq: number): Promise<Buffer | null> {
    if (this.#ahead?.seq === seq) {
      const p = this.#ahead.data;
      this.#ahead = undefined;
      return p;
    }
    return getChunk(this.#fs, this.#ino, seq);
  }

  override _read(): void {
    if (this.#pos >= this.#end) {
      this.push(null);
      return;
    }
    const cs = this.#fs.chunkSize;
    const seq = Math.floor(this.#pos / cs);
    const current = this.#fetch(seq);
    if ((seq + 1) * cs < this.#end) {
      const data = getChunk(this.#fs, this.#ino, seq + 1);
      data.catch(() => undefined); // Reported when awaited; never an unhandled rejection.
      this.#ahead = { seq: seq + 1, data };
    }
    current.then(
      (chunk) => {
        if (this.destroyed) return;
        if (chunk === null) throw contentGone(seq);
        const a = this.#pos - seq * cs;
        const b = Math.min(chunk.length, this.#end - seq * cs);
        if (b <= a) throw new VfsError('EIO', `EIO: chunk ${seq} is shorter than the file size says`, { syscall: 'read' });
        this.#pos = seq * cs + b;
        this.push(a === 0 && b === chunk.length ? chunk : chunk.subarray(a, b));
      },
    ).catch((err: unknown) => this.destroy(err as Error));
  }

  // Runs once, after the end (autoDestroy), an error or destroy(). The release is not awaited: the stream's close
  // does not wait for Redis, and a release that fails leaves a lease that expires by itself.
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    void this.#lease?.release();
    cb(err);
  }
}

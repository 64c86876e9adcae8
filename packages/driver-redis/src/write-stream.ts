import { Writable } from 'node:stream';
import type { UploadStream } from '@ftp/vfs';
import { discardContent, putChunk, refreshContent } from './content.js';
import type { Internals } from './content.js';

/** What the writer calls once every chunk is stored: makes the new inode visible (the COMMIT script). */
export type Committer = (ino: number, size: number, chunks: number) => Promise<void>;

/** Where an upload starts: the new inode, chunks already in it (a kept prefix), and the bytes that continue them. */
export interface UploadStart {
  ino: number;
  /** Whole chunks already stored under `ino` (copied from the previous version). */
  fullChunks: number;
  /** Bytes that begin chunk `fullChunks`: the partial tail of a kept prefix. */
  head: Buffer;
  /** Zero bytes after `head` (REST past the end of the file leaves a hole, as a file system does). */
  hole: number;
  /** The copy of the first `fullChunks` chunks and of `head`, when not made yet: the stream makes it first. */
  copy?: KeptCopy;
}

/**
 * Copies the kept part of the file into the upload's inode (in steps, `onStep` hearing the chunks copied after each,
 * `stopped` ending it early); resolves to the partial chunk that follows the whole ones.
 */
export type KeptCopy = (onStep?: (copied: number) => void, stopped?: () => boolean) => Promise<Buffer>;

/**
 * An upload into a new, invisible inode. Bytes are gathered into chunk-size buffers; each full chunk is written
 * (HSET + PEXPIRE in one MULTI) with at most `maxInFlight` writes outstanding, so memory stays within a few chunks.
 * On `end()` the last chunk is written and the inode swapped in by one script: the upload becomes visible whole,
 * at once. An interrupted upload (`transferError`, or `destroy()` before the end) deletes its content; if this
 * process dies instead, the content's TTL (refreshed by every chunk) removes it.
 */
export class RedisWriteStream extends Writable implements UploadStream {
  /** Every chunk is copied into the stream's own chunk buffers before its callback: the caller may reuse its memory. */
  readonly releasesChunks = true;
  readonly #fs: Internals;
  readonly #ino: number;
  readonly #commit: Committer;
  #seq: number;
  #size: number;
  #cur: Buffer | null = null;
  #used = 0;
  /** The window of chunk writes the stream waits on. */
  #inflight: Promise<void>[] = [];
  /** Every chunk write not settled yet, including those `_final` is awaiting: what `_destroy` must wait for. */
  readonly #outstanding = new Set<Promise<void>>();
  /** The run of `_final`, once started: `_destroy` must not delete content that it may be committing. */
  #finishing: Promise<void> | undefined;
  #committed = false;
  /** Set once the content is known discarded: `_destroy` need not ask again. */
  #discarded = false;
  /** When the content's TTL was last refreshed. */
  #refreshed = performance.now(); // elapsed time only: the monotonic clock (the wall clock can be stepped)
  /** Set by `transferError`: the upload must not be committed, even if `end()` were called after all. */
  #aborted: Error | undefined;
  /** The start of the content not yet taken: the partial chunk of a kept prefix, then zeros of a hole. */
  #head: Buffer;
  #hole: number;
  #copy: KeptCopy | undefined;
  /** Chunks copied so far while the kept part is copied; undefined once done (or with nothing to copy). */
  #copiedChunks: number | undefined;

  constructor(fs: Internals, start: UploadStart, commit: Committer) {
    super({ highWaterMark: fs.chunkSize });
    this.#fs = fs;
    this.#ino = start.ino;
    this.#commit = commit;
    this.#seq = start.fullChunks;
    this.#size = start.fullChunks * fs.chunkSize;
    this.#head = start.head;
    this.#hole = start.hole;
    this.#copy = start.copy;
    if (start.copy !== undefined) this.#copiedChunks = 0;
  }

  /** Bytes stored so far, the kept part included as it is copied (`UploadStream.storedBytes`). */
  get storedBytes(): number {
    return this.#copiedChunks === undefined ? this.#size : this.#copiedChunks * this.#fs.chunkSize;
  }

  // Writable holds writes, `end()` and `destroy()` until this calls back.
  override _construct(cb: (err?: Error | null) => void): void {
    const copy = this.#copy;
    this.#copy = undefined;
    if (copy === undefined) return cb();
    // A turn first: whoever opened the stream is listening for its errors before the copy can fail.
    new Promise((resolve) => setImmediate(resolve))
      .then(() =>
        copy(
          (n) => (this.#copiedChunks = n),
          () => this.destroyed || this.#aborted !== undefined,
        ),
      )
      .then(
        (head) => {
          this.#head = head;
          this.#copiedChunks = undefined;
          cb();
        },
        (err: Error) => cb(err),
      );
  }

  /** Copies bytes into the current chunk; each full chunk is sent, waiting whenever the window of writes is full. */
  async #take(data: Uint8Array): Promise<void> {
    const cs = this.#fs.chunkSize;
    let off = 0;
    while (off < data.length) {
      this.#cur ??= Buffer.allocUnsafeSlow(cs);
      const n = Math.min(cs - this.#used, data.length - off);
      this.#cur.set(data.subarray(off, off + n), this.#used);
      this.#used += n;
      this.#size += n;
      off += n;
      if (this.#used === cs) await this.#send(this.#cur);
    }
  }

  /** Takes what precedes the first byte written: the kept partial chunk, then the hole (in chunk-size pieces). */
  async #takeHead(): Promise<void> {
    if (this.#head.length > 0) {
      const head = this.#head;
      this.#head = Buffer.alloc(0);
      await this.#take(head);
    }
    const cs = this.#fs.chunkSize;
    while (this.#hole > 0) {
      const n = Math.min(cs, this.#hole);
      this.#hole -= n;
      await this.#take(Buffer.alloc(n));
    }
  }

  /** Sends a chunk; when the window is full, waits for the oldest write in flight. */
  async #send(buf: Buffer): Promise<void> {
    this.#refreshed = performance.now();
    const p = putChunk(this.#fs, this.#ino, this.#seq++, buf);
    this.#outstanding.add(p);
    // Awaited later; never an unhandled rejection.
    p.then(
      () => this.#outstanding.delete(p),
      () => this.#outstanding.delete(p),
    );
    this.#inflight.push(p);
    this.#cur = null;
    this.#used = 0;
    while (this.#inflight.length >= this.#fs.maxInFlight) await this.#inflight.shift();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#takeHead()
      .then(() => this.#take(chunk))
      .then(() => this.#keepAlive())
      .then(() => cb(), cb);
  }

  /**
   * A slow client may take longer than the TTL to fill one chunk: the content already stored would expire under it.
   * So the TTL is also refreshed when a third of it has passed since the last chunk was sent.
   */
  async #keepAlive(): Promise<void> {
    if (this.#seq === 0 || performance.now() - this.#refreshed < this.#fs.uploadTtlMs / 3) return;
    this.#refreshed = performance.now();
    await refreshContent(this.#fs, this.#ino);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#finishing = (async () => {
      if (this.#aborted !== undefined) throw this.#aborted;
      await this.#takeHead();
      if (this.#cur !== null && this.#used > 0) await this.#send(this.#cur.subarray(0, this.#used));
      while (this.#inflight.length > 0) await this.#inflight.shift();
      try {
        await this.#commit(this.#ino, this.#size, this.#seq);
      } catch (err) {
        // A commit that timed out or lost its connection may have run in Redis, or may still run (the discard goes
        // after it on the connection): whether the upload became the file is known only once the discard answers.
        const committed = await discardContent(this.#fs, this.#ino);
        this.#discarded = committed === false;
        if (committed !== true) throw err;
      }
      this.#committed = true;
    })();
    this.#finishing.then(() => cb(), cb);
  }

  /** The server reports an interrupted transfer: nothing of it may become visible (destroy() follows). */
  transferError(err: Error): void {
    // destroy() normally follows and discards the content; should end() come instead, _final refuses to commit.
    this.#aborted = err;
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.#committed) return cb(err);
    this.#cur = null;
    // Wait for the writes in flight (one landing after the delete would recreate the key, with a TTL but still) and
    // for a commit already sent (deleting after it would empty a file that is visible by then).
    Promise.allSettled([...this.#outstanding, this.#finishing])
      .then(() => (this.#committed || this.#discarded ? undefined : discardContent(this.#fs, this.#ino)))
      .then(() => cb(err), () => cb(err));
  }
}

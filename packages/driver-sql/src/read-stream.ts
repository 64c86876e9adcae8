import { Readable } from 'node:stream';
import { setImmediate as turn } from 'node:timers/promises';
import { VfsError } from '@ftp/vfs';
import { dbError } from './errors.js';
import { CHUNK_SIZE, toBuffer } from './schema.js';
import { copyChunksOut } from './raw-io.js';
import type { Store } from './store.js';

/** How long a reader lease lives unless renewed. */
export const LEASE_MS = 10 * 60_000;
/**
 * How often an open download renews its lease, on a timer (as driver-redis does) rather than as it reads: a client
 * that takes the bytes slowly (socket backpressure) can leave the stream unread for longer than a lease. A quarter of the lease: a renewal that fails (the database briefly out
 * of reach) still leaves two more before the lease runs out.
 */
const RENEW_EVERY_MS = LEASE_MS / 4;

/** Chunks fetched per query (1 MiB): fewer round trips, memory still bounded. */
const CHUNKS_PER_QUERY = 4;

/**
 * Renews a download's lease every {@link RENEW_EVERY_MS} until stopped. The timer holds the stream only weakly: a stream
 * dropped without being ended or destroyed would otherwise hold its lease, and the rows of a removed file, for as
 * long as the process runs; once it is collected the lease is released instead.
 */
function renewLease(store: Store, id: number, token: string, stream: object): NodeJS.Timeout {
  const ref = new WeakRef(stream);
  const timer = setInterval(() => {
    if (ref.deref() === undefined) {
      clearInterval(timer);
      void store.release(id, token);
      return;
    }
    // A failure is not the download's: the next tick tries again, and its reads fail on their own if the database
    // is gone.
    store.renew(id, token).catch(() => undefined);
  }, RENEW_EVERY_MS);
  // A lease never keeps the process alive: when it exits, the lease expires by itself.
  timer.unref();
  return timer;
}

interface Batch {
  first: number;
  upTo: number;
  rows: { seq: number; bytes: Buffer }[];
}

/**
 * Streams one inode's content, {@link CHUNKS_PER_QUERY} chunks per SELECT, the next SELECT already running while
 * the current batch is consumed (at most two batches, 2 MiB, in memory). It reads a fixed inode id under a
 * reader lease (a row of `<prefix>readers`, renewed while it is open): a file replaced or deleted meanwhile, by any
 * process, is only unlinked until the stream ends, so it reads the whole old version. Should the chunks go missing
 * anyway (a lease that expired: the process stalled, or the database was out of reach for a whole lease), the stream
 * fails with EIO.
 */
export class SqlReadStream extends Readable {
  readonly #s: Store;
  readonly #id: number;
  #pos: number;
  readonly #end: number;
  #busy = false;
  /** `_read` was called while a query ran: read again when it is done. */
  #wanted = false;
  #released = false;
  /** The prefetched next batch. */
  #next: Promise<Batch> | undefined;
  readonly #token: string;
  /** Renews the lease until it is released (see {@link renewLease}). */
  readonly #renewal: NodeJS.Timeout;

  /**
   * @param size the file's size when it was opened.
   * @param start first byte; @param endInclusive last byte.
   */
  constructor(store: Store, id: number, token: string, size: number, start: number, endInclusive: number | undefined, readonly path: string) {
    super({ highWaterMark: CHUNK_SIZE * 2 });
    this.#s = store;
    this.#id = id;
    this.#pos = start;
    this.#end = Math.min(size, endInclusive === undefined ? Infinity : endInclusive + 1);
    this.#token = token;
    this.#renewal = renewLease(store, id, token, this);
  }

  /**
   * The bytes a chunk of `first`…`upTo` is expected to hold, for the COPY's buffer: a small file's one chunk needs
   * no 256 KiB (a range ending inside a chunk may get more: the buffer then grows).
   */
  #rowBytes(first: number, upTo: number): number {
    return Math.max(1, Math.min(CHUNK_SIZE, Math.ceil((this.#end - first * CHUNK_SIZE) / (upTo - first + 1))));
  }

  #query(first: number): Promise<Batch> {
    const upTo = Math.min(first + CHUNKS_PER_QUERY - 1, Math.floor((this.#end - 1) / CHUNK_SIZE));
    const { t, db, raw } = this.#s;
    const select = db.selectFrom(t.chunk('c')).select(['c.seq', 'c.bytes']).where('c.inode', '=', this.#id).where('c.seq', '>=', first).where('c.seq', '<=', upTo).orderBy('c.seq');
    // PostgreSQL: as a binary COPY (the chunks come as bytes; a SELECT's bytea comes as hex text, made into a string
    // and decoded on this thread: see copyChunksOut).
    const p = (
      raw?.dialect === 'postgres'
        ? copyChunksOut(raw.pool, select.compile(), upTo - first + 1, this.#rowBytes(first, upTo))
        : select.execute().then((rows) => rows.map((r) => ({ seq: Number(r.seq), bytes: toBuffer(r.bytes) })))
    ).then((rows) => ({ first, upTo, rows }));
    // Awaited by the next _read; a prefetch the stream no longer needs must not fail "unhandled".
    p.catch(() => undefined);
    return p;
  }

  override _read(): void {
    if (this.#busy) {
      this.#wanted = true;
      return;
    }
    if (this.#pos >= this.#end) {
      this.#release();
      this.push(null);
      return;
    }
    this.#busy = true;
    this.#step().then(
      (more) => {
        this.#busy = false;
        if (!more) {
          this.#release();
          this.push(null);
        } else if (this.#wanted) {
          this.#wanted = false;
          this._read();
        }
      },
      (err: unknown) => {
        this.#busy = false;
        this.destroy(dbError(err, this.#s.where, this.path));
      },
    );
  }

  /** Pushes the next batch (prefetching the one after it); false at the end. */
  async #step(): Promise<boolean> {
    // SQLite's queries run on this thread and resolve in microtasks, and a socket with room takes each batch at once:
    // a turn of the event loop per batch (1 MiB), or a download held every other session for up to 1.6 s at a time.
    if (this.#s.dialect === 'sqlite') await turn();
    const batch = await (this.#next ?? this.#query(Math.floor(this.#pos / CHUNK_SIZE)));
    this.#next = undefined;
    if (this.destroyed) return false;
    if (batch.upTo + 1 <= Math.floor((this.#end - 1) / CHUNK_SIZE)) this.#next = this.#query(batch.upTo + 1);
    let expected = batch.first;
    for (const { seq, bytes: chunk } of batch.rows) {
      if (seq !== expected) break;
      expected++;
      const base = seq * CHUNK_SIZE;
      const a = this.#pos - base;
      const b = Math.min(chunk.length, this.#end - base);
      if (b <= a) break;
      this.#pos = base + b;
      this.push(a === 0 && b === chunk.length ? chunk : chunk.subarray(a, b));
    }
    if (expected !== batch.upTo + 1 && this.#pos < this.#end) {
      throw new VfsError('EIO', 'EIO: the file was deleted or replaced by another client during the download', { path: this.path });
    }
    return this.#pos < this.#end;
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    clearInterval(this.#renewal);
    this.#next = undefined;
    void this.#s.release(this.#id, this.#token);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#release();
    cb(err);
  }
}

const MiB = 1024 * 1024;

/** Default capacity of an {@link UploadMemoryBudget}: 256 MiB. */
export const DEFAULT_UPLOAD_MEMORY = 256 * MiB;

interface Waiter {
  size: number;
  resolve(buf: Buffer): void;
  reject(err: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * A limit on the bytes of part buffers that S3 uploads hold at once, shared by every upload of a provider, and by
 * several providers when the same instance is passed to each (`new S3Provider({ ..., uploadMemory: budget })`).
 *
 * Every part buffer of a multipart upload (the part being filled, the parts in flight) is taken from the budget and
 * given back once its UploadPart has settled. When the budget is short, the upload waits for a buffer: the write
 * callback is delayed, so the server stops reading that data connection (backpressure); nothing fails. Waiting uploads
 * are served first come, first served. An upload waits only while holding no buffer being filled (its other buffers
 * are parts in flight, which settle and come back), so waiting never deadlocks. A part larger than the whole budget
 * (parts grow past 800 parts, up to about 1 GiB) is given the whole budget once it is idle: `held` then exceeds
 * `capacity` for the time of that part, as little as possible.
 *
 * Outside the budget: the first 64 KiB of each upload (so that small files, a single PutObject, never wait; with
 * 1,000 sessions at most 64 MiB), and the bytes the server and the SDK hold on their own.
 *
 * The default, 256 MiB, lets six uploads run at full speed with the default part size and concurrency (8 MiB × (4 + 1)
 * = 40 MiB each) and 32 hold a part, while a process with many concurrent uploads stays within about 256 MiB of part
 * buffers instead of 40 MiB per upload (4 GB for 100 uploads). One upload alone is never slowed by it.
 *
 * Released buffers of the most used size are kept (within the capacity) and handed to the next part, so that memory
 * is reused rather than left to the garbage collector; all are let go once no upload holds a part buffer.
 */
export class UploadMemoryBudget {
  /** Bytes the part buffers may take in all (a part larger than this may take the whole budget once it is idle). */
  readonly capacity: number;
  #held = 0;
  #peak = 0;
  /** Released buffers kept for reuse; their bytes count against the capacity, and are dropped to make room. */
  readonly #spare: Buffer[] = [];
  #spareBytes = 0;
  readonly #leased = new Set<Buffer>();
  readonly #queue: Waiter[] = [];

  /** @param capacity bytes, at least 1 MiB. Default 256 MiB. @throws RangeError for a bad value. */
  constructor(capacity: number = DEFAULT_UPLOAD_MEMORY) {
    if (!Number.isSafeInteger(capacity) || capacity < MiB) throw new RangeError(`UploadMemoryBudget: capacity must be an integer >= 1 MiB, got ${String(capacity)}`);
    this.capacity = capacity;
  }

  /** Bytes of part buffers held by uploads now (those kept for reuse excluded). */
  get held(): number {
    return this.#held;
  }

  /** The most bytes ever held at once (for tests and metrics). */
  get peak(): number {
    return this.#peak;
  }

  /** Uploads waiting for a buffer now. */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * @internal A buffer of `size` bytes, once the budget has room for it (in turn behind earlier requests). Rejects with
   * the signal's reason when it is aborted first; the request is then withdrawn, and nothing is taken.
   */
  acquire(size: number, signal?: AbortSignal): Promise<Buffer> {
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    if (this.#queue.length === 0 && this.#fits(size)) return Promise.resolve(this.#take(size));
    return new Promise<Buffer>((resolve, reject) => {
      const waiter: Waiter = { size, resolve, reject, signal, onAbort: undefined };
      if (signal !== undefined) {
        waiter.onAbort = () => {
          const i = this.#queue.indexOf(waiter);
          if (i < 0) return;
          this.#queue.splice(i, 1);
          reject(signal.reason);
          // The head may have been the one blocking the others.
          this.#serve();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#queue.push(waiter);
    });
  }

  /**
   * @internal Gives a buffer from {@link acquire} back. Returns false (and does nothing) for a buffer that is not held:
   * given back already, or never taken. `reuse` false: its memory is not handed out again (only its bytes are).
   */
  release(buf: Buffer, reuse = true): boolean {
    if (!this.#leased.delete(buf)) return false;
    this.#held -= buf.length;
    // Kept for the next part when it is of the size asked for most (the first waiting, else the same size again).
    const want = this.#queue[0]?.size ?? buf.length;
    if (reuse && buf.length === want && this.#held + this.#spareBytes + buf.length <= this.capacity) {
      this.#spare.push(buf);
      this.#spareBytes += buf.length;
    }
    this.#serve();
    // No upload holds a part buffer: nothing to hand the spares to soon, and an idle server should not keep up to
    // `capacity` of them for good.
    if (this.#held === 0) {
      this.#spare.length = 0;
      this.#spareBytes = 0;
    }
    return true;
  }

  /** Whether `size` bytes can be given now: within the capacity (spare buffers dropped if need be), or the budget is idle. */
  #fits(size: number): boolean {
    return this.#held + size <= this.capacity || this.#held === 0;
  }

  #take(size: number): Buffer {
    let buf: Buffer | undefined;
    const i = this.#spare.findIndex((b) => b.length === size);
    if (i >= 0) {
      buf = this.#spare[i] as Buffer;
      this.#spare.splice(i, 1);
      this.#spareBytes -= size;
    }
    // Spare buffers of other sizes (or too many) are let go, so that real memory stays within the capacity.
    while (this.#spare.length > 0 && this.#held + size + this.#spareBytes > this.capacity) this.#spareBytes -= (this.#spare.shift() as Buffer).length;
    buf ??= Buffer.allocUnsafeSlow(size);
    this.#leased.add(buf);
    this.#held += size;
    if (this.#held > this.#peak) this.#peak = this.#held;
    return buf;
  }

  /** Serves the waiting requests in order, as long as the first fits. */
  #serve(): void {
    for (let head = this.#queue[0]; head !== undefined && this.#fits(head.size); head = this.#queue[0]) {
      this.#queue.shift();
      if (head.signal !== undefined && head.onAbort !== undefined) head.signal.removeEventListener('abort', head.onAbort);
      head.resolve(this.#take(head.size));
    }
  }
}

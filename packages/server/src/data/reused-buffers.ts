/**
 * Free buffers of one size, kept for reuse, as many as recent load needs.
 *
 * A fixed number kept is wrong both ways: 200 clients each downloading a 1 MiB file had up to 280 buffers of
 * 256 KiB out at once, where 32 were kept, so ~1,000 buffers a second were allocated and dropped; that garbage
 * (outside V8's heap, but counted by it) set off a full collection every ~200 ms. Keeping a large number for
 * good would hold tens of MiB on a server whose burst is long over. So at least `minKept` stay free, and under
 * load as many more as the most buffers out at once during this window or the last one: a load that comes and
 * goes then allocates nothing, the pool never holds more than that peak (memory the load had in use anyway), and
 * once two windows pass with fewer out, the extra ones are let go.
 */
export class ReusedBuffers {
  readonly #free: Buffer[] = [];
  #inUse = 0;
  /** Most buffers out at once since the current window began. */
  #peak = 0;
  /** The same in the window before. */
  #lastPeak = 0;
  #timer: NodeJS.Timeout | null = null;

  /**
   * @param size bytes of each buffer
   * @param minKept free buffers always kept
   * @param maxKept free buffers never exceeded, whatever the load
   * @param windowMs length of a window: extra buffers go 1–2 windows after the load that needed them
   */
  constructor(
    readonly size: number,
    readonly minKept: number,
    readonly maxKept: number,
    readonly windowMs: number,
  ) {}

  /** Buffers handed out and neither released nor forgotten yet. */
  get inUse(): number {
    return this.#inUse;
  }

  /** Free buffers held for reuse. */
  get kept(): number {
    return this.#free.length;
  }

  /** A buffer of {@link size} bytes, contents undefined; give it back with {@link release} or {@link forget}. */
  take(): Buffer {
    this.#inUse++;
    if (this.#inUse > this.#peak) this.#peak = this.#inUse;
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Takes back a buffer nothing reads or writes any more. */
  release(buffer: Buffer): void {
    this.#inUse--;
    if (this.#free.length >= this.#keep()) return;
    this.#free.push(buffer);
    if (this.#free.length > this.minKept && this.#timer === null) {
      this.#timer = setInterval(() => this.#nextWindow(), this.windowMs);
      // A pool must not keep a process alive that has nothing else to do.
      this.#timer.unref();
    }
  }

  /** Gives up a buffer something may still use: never handed out again, no longer counted as out. */
  forget(_buffer: Buffer): void {
    this.#inUse--;
  }

  /** Free buffers to hold now: what the recent peak needs beside those out, within the bounds. */
  #keep(): number {
    const needed = Math.max(this.#peak, this.#lastPeak) - this.#inUse;
    return Math.min(this.maxKept, Math.max(this.minKept, needed));
  }

  #nextWindow(): void {
    this.#lastPeak = this.#peak;
    this.#peak = this.#inUse;
    const extra = this.#free.length - this.#keep();
    // The oldest first: the newest were used last and are the likeliest still in a cache.
    if (extra > 0) this.#free.splice(0, extra);
    if (this.#free.length <= this.minKept && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }
}

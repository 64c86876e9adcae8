import { Transform, type TransformCallback } from 'node:stream';

/** The most bytes a limiter lets pass at once, at high rates: the granularity of throttling there. */
const MAX_SLICE = 64 * 1024;
/** The fewest: below this, the cost of a release per slice outweighs the smoothness. */
const MIN_SLICE = 1024;

/**
 * The bytes released at once (and the bucket's size) at `rate`: about 100 ms of it, so that a slow transfer moves
 * steadily (a fixed 64 KiB slice at 2,000 B/s left 33 s with nothing on the wire, longer than the stall timeout)
 * while a fast one keeps to 64 KiB slices and as few releases as before.
 */
export function sliceFor(rate: number): number {
  return Math.min(MAX_SLICE, Math.max(MIN_SLICE, Math.floor(rate / 10)));
}

/**
 * A token bucket: at most `rate` bytes per second, in bursts of at most about 100 ms of it (64 KiB at most). One
 * limiter can be shared by every session of a user (a per-user limit) and its rate changed while transfers run:
 * a change takes effect at once, also for a transfer waiting for its turn.
 */
export class RateLimiter {
  #rate: number;
  private tokens: number;
  // The monotonic clock: the wall clock set back an hour left every limited transfer waiting an hour.
  private last = performance.now();
  private queue: Promise<void> = Promise.resolve();
  /** Ends the sleep of the caller being served, for it to look at a changed rate. */
  private wake: (() => void) | null = null;

  /** @param rate bytes per second; 0 is unlimited. */
  constructor(rate: number) {
    checkRate(rate);
    this.#rate = rate;
    this.tokens = sliceFor(rate);
  }

  /** Bytes per second; 0 is unlimited. */
  get rate(): number {
    return this.#rate;
  }

  set rate(rate: number) {
    checkRate(rate);
    // What accrued so far accrued at the old rate.
    this.refill();
    this.#rate = rate;
    this.wake?.();
  }

  /** Resolves once `bytes` may pass. Callers are served in order. */
  take(bytes: number): Promise<void> {
    const turn = this.queue.then(() => this.wait(bytes));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private refill(): void {
    const now = performance.now();
    if (this.#rate > 0) this.tokens = Math.min(sliceFor(this.#rate), this.tokens + ((now - this.last) / 1000) * this.#rate);
    this.last = now;
  }

  private async wait(bytes: number): Promise<void> {
    for (;;) {
      if (this.#rate <= 0) {
        this.last = performance.now();
        return;
      }
      this.refill();
      // A full bucket lets a slice cut for a higher rate pass too (into debt): it would never fit otherwise.
      const need = Math.min(bytes, sliceFor(this.#rate));
      if (this.tokens >= need) {
        this.tokens -= bytes;
        return;
      }
      const ms = Math.max(1, Math.ceil(((need - this.tokens) / this.#rate) * 1000));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.wake = null;
          resolve();
        }, ms);
        // A wait must not keep a stopping process alive: the transfer's own sockets do while it runs.
        timer.unref();
        this.wake = () => {
          clearTimeout(timer);
          this.wake = null;
          resolve();
        };
      });
    }
  }
}

function checkRate(rate: number): void {
  if (!(rate >= 0)) throw new RangeError('rate must be a non-negative number of bytes per second');
}

/**
 * A pass-through that holds each slice until every limiter lets it go. `waiting` is told when it starts and stops
 * waiting for a limiter: time spent so is the limit's, not a stall of the data connection.
 */
export function throttleTransform(limiters: readonly RateLimiter[], waiting?: (on: boolean) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      void (async () => {
        for (let offset = 0; offset < chunk.length; ) {
          // Cut for the slowest limiter now: a rate changed between two slices is followed.
          let rate = 0;
          for (const limiter of limiters) if (limiter.rate > 0 && (rate === 0 || limiter.rate < rate)) rate = limiter.rate;
          if (rate === 0 && offset === 0) return void this.push(chunk);
          const end = rate === 0 ? chunk.length : Math.min(chunk.length, offset + sliceFor(rate));
          const slice = chunk.subarray(offset, end);
          waiting?.(true);
          try {
            for (const limiter of limiters) await limiter.take(slice.length);
          } finally {
            waiting?.(false);
          }
          this.push(slice);
          offset = end;
        }
      })().then(() => cb(), cb);
    },
  });
}

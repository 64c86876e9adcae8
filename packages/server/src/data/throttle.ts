import { Transform, type TransformCallback } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

/** Bytes a limiter lets pass at once: the granularity of throttling. */
const SLICE = 64 * 1024;

/**
 * A token bucket: at most `rate` bytes per second, in bursts of at most 64 KiB. One limiter can be shared by
 * every session of a user (a per-user limit) and its rate changed while transfers run.
 */
export class RateLimiter {
  private tokens = SLICE;
  private last = Date.now();
  private queue: Promise<void> = Promise.resolve();

  /** @param rate bytes per second; 0 is unlimited. */
  constructor(public rate: number) {
    if (!(rate >= 0)) throw new RangeError('rate must be a non-negative number of bytes per second');
  }

  /** Resolves once `bytes` (at most 64 KiB) may pass. Callers are served in order. */
  take(bytes: number): Promise<void> {
    const turn = this.queue.then(() => this.wait(bytes));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async wait(bytes: number): Promise<void> {
    for (;;) {
      if (this.rate <= 0) return;
      const now = Date.now();
      this.tokens = Math.min(SLICE, this.tokens + ((now - this.last) / 1000) * this.rate);
      this.last = now;
      if (this.tokens >= bytes) {
        this.tokens -= bytes;
        return;
      }
      // Re-checked after the wait: the rate may have changed meanwhile.
      await sleep(Math.max(1, Math.ceil(((bytes - this.tokens) / this.rate) * 1000)));
    }
  }
}

/** A pass-through that holds each 64 KiB slice until every limiter lets it go. */
export function throttleTransform(limiters: readonly RateLimiter[]): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      void (async () => {
        for (let offset = 0; offset < chunk.length; offset += SLICE) {
          const slice = chunk.subarray(offset, Math.min(chunk.length, offset + SLICE));
          for (const limiter of limiters) await limiter.take(slice.length);
          this.push(slice);
        }
      })().then(() => cb(), cb);
    },
  });
}

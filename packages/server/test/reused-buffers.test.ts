import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ReusedBuffers } from '../src/data/reused-buffers.js';

const WINDOW = 1000;

/** Takes `n` buffers, then gives them all back. */
function burst(pool: ReusedBuffers, n: number): Buffer[] {
  const out = Array.from({ length: n }, () => pool.take());
  for (const b of out) pool.release(b);
  return out;
}

/** How many of `before` a new burst of `n` gets back (the rest are new allocations). */
function reusedOf(pool: ReusedBuffers, before: Buffer[], n: number): number {
  const known = new Set(before);
  const again = Array.from({ length: n }, () => pool.take());
  const reused = again.filter((b) => known.has(b)).length;
  for (const b of again) pool.release(b);
  return reused;
}

describe('ReusedBuffers', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keeps as many free buffers as a burst had out, so the next burst of that size allocates nothing', () => {
    const pool = new ReusedBuffers(1024, 4, 500, WINDOW);
    const first = burst(pool, 200);
    expect(pool.kept).toBe(200);
    expect(pool.inUse).toBe(0);
    expect(reusedOf(pool, first, 200)).toBe(200);
  });

  it('a load that comes and goes across windows keeps its buffers', () => {
    const pool = new ReusedBuffers(1024, 4, 500, WINDOW);
    const first = burst(pool, 100);
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(WINDOW / 2);
      expect(reusedOf(pool, first, 100)).toBe(100);
    }
  });

  it('lets the extra buffers go two quiet windows after the burst, keeping minKept', () => {
    const pool = new ReusedBuffers(1024, 4, 500, WINDOW);
    const first = burst(pool, 100);
    vi.advanceTimersByTime(WINDOW);
    // One window on, the last window's peak still counts.
    expect(pool.kept).toBe(100);
    vi.advanceTimersByTime(WINDOW);
    expect(pool.kept).toBe(4);
    // The ones kept are the most recently used.
    expect(reusedOf(pool, first.slice(-4), 4)).toBe(4);
    // Nothing left to trim: the timer stopped.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never holds more free buffers than the recent peak needs beside those still out', () => {
    const pool = new ReusedBuffers(1024, 2, 500, WINDOW);
    const out = Array.from({ length: 10 }, () => pool.take());
    for (const b of out.slice(0, 6)) pool.release(b);
    // Peak 10, four still out: six free is the peak's worth.
    expect(pool.kept).toBe(6);
    expect(pool.kept + pool.inUse).toBeLessThanOrEqual(10);
    for (const b of out.slice(6)) pool.release(b);
    expect(pool.kept).toBe(10);
  });

  it('keeps at most maxKept, whatever the peak', () => {
    const pool = new ReusedBuffers(1024, 2, 8, WINDOW);
    burst(pool, 50);
    expect(pool.kept).toBe(8);
  });

  it('with no burst above minKept keeps minKept and starts no timer', () => {
    const pool = new ReusedBuffers(1024, 4, 500, WINDOW);
    const first = burst(pool, 3);
    expect(pool.kept).toBe(3);
    expect(vi.getTimerCount()).toBe(0);
    expect(reusedOf(pool, first, 3)).toBe(3);
  });

  it('a forgotten buffer no longer counts as out and is never handed out again', () => {
    const pool = new ReusedBuffers(1024, 4, 500, WINDOW);
    const a = pool.take();
    const b = pool.take();
    pool.forget(a);
    expect(pool.inUse).toBe(1);
    pool.release(b);
    expect(pool.take()).toBe(b);
    expect(pool.take()).not.toBe(a);
  });

  it('buffers have the pool size', () => {
    const pool = new ReusedBuffers(4096, 1, 2, WINDOW);
    expect(pool.take().length).toBe(4096);
  });
});

import { describe, expect, it } from 'vitest';
import { percentile, summarize } from '../src/stats.js';

describe('summarize', () => {
  it('gives the median of an odd and an even count, with min and max', () => {
    expect(summarize([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, runs: [3, 1, 2] });
    expect(summarize([4, 1, 2, 3])?.median).toBe(2.5);
  });

  it('leaves failed (NaN) runs out, and has no figure when every run failed', () => {
    expect(summarize([Number.NaN, 5, 7])).toMatchObject({ median: 6, min: 5, max: 7, runs: [5, 7] });
    expect(summarize([Number.NaN])).toBeNull();
    expect(summarize([])).toBeNull();
  });
});

describe('percentile', () => {
  it('is the nearest-rank value', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });
});

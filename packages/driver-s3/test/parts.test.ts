// The part-size schedule of uploads and the copy ranges, as pure functions: S3's limits (10,000 parts, 5 MiB –
// 5 GiB each, 5 TiB objects) cannot be reached against a test store, so their properties are checked here.
import { describe, expect, it } from 'vitest';
import { copyRanges, MAX_OBJECT_SIZE, partSizeFor, S3_PART_SCHEDULE, scheduledBytes, type PartSchedule } from '../src/parts.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;
const MIN_PART = 5 * MiB;
const MAX_PART = 5 * GiB;

/** Every part size of a whole upload, 1 to maxParts. */
function sizes(base: number, schedule: PartSchedule = S3_PART_SCHEDULE): number[] {
  return Array.from({ length: schedule.maxParts }, (_, i) => partSizeFor(i + 1, base, schedule));
}

/** Checks the properties every schedule must have for a base part size. */
function checkSchedule(base: number): void {
  const all = sizes(base);
  let total = 0;
  for (const [i, size] of all.entries()) {
    if (i > 0 && size < (all[i - 1] as number)) throw new Error(`base ${base}: part ${i + 1} (${size}) is smaller than part ${i}`);
    // Every part but the last must be >= 5 MiB; any of them may be the last.
    if (size < MIN_PART || size < base) throw new Error(`base ${base}: part ${i + 1} is ${size} bytes`);
    if (size > MAX_PART) throw new Error(`base ${base}: part ${i + 1} is ${size} bytes, above 5 GiB`);
    total += size;
  }
  if (total < MAX_OBJECT_SIZE) throw new Error(`base ${base}: 10,000 parts hold ${total} bytes, less than 5 TiB`);
  if (scheduledBytes(1, base) !== total) throw new Error(`base ${base}: scheduledBytes ${scheduledBytes(1, base)} != ${total}`);
}

describe('partSizeFor (growing parts for uploads of unknown size)', () => {
  it('is monotonic, between 5 MiB and 5 GiB, and 10,000 parts hold 5 TiB, for 5 MiB and 8 MiB', () => {
    for (const base of [5 * MiB, 8 * MiB]) {
      const all = sizes(base);
      expect(all.every((s, i) => i === 0 || s >= (all[i - 1] as number))).toBe(true);
      expect(Math.min(...all)).toBe(base);
      expect(Math.max(...all)).toBeLessThanOrEqual(MAX_PART);
      // Every part but the last (any of them can be the last) is a valid non-final S3 part.
      expect(all.slice(0, -1).every((s) => s >= MIN_PART)).toBe(true);
      expect(all.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(5 * TiB);
    }
  });

  it('10,000 parts hold exactly 5,318,400 MiB at the default 8 MiB and 5,628,000 MiB at 5 MiB (scheduledBytes)', () => {
    expect(scheduledBytes(1, 8 * MiB)).toBe(5_318_400 * MiB); // ≈ 5.07 TiB
    expect(scheduledBytes(1, 5 * MiB)).toBe(5_628_000 * MiB); // ≈ 5.37 TiB
    // Where 5 TiB is reached: the first part number whose running total passes it.
    const reach = (base: number): number => {
      let total = 0;
      for (let n = 1; ; n++) if ((total += partSizeFor(n, base)) >= MAX_OBJECT_SIZE) return n;
    };
    expect(reach(8 * MiB)).toBe(9_927);
    expect(reach(5 * MiB)).toBe(9_700);
    // scheduledBytes(from), which an upload's limit comes from, is the sum of the sizes of parts from..maxParts.
    const small: PartSchedule = { ...S3_PART_SCHEDULE, maxParts: 23, partsPerDoubling: 4, growthCeiling: 40 * MiB };
    for (const schedule of [S3_PART_SCHEDULE, small]) {
      for (const base of [5 * MiB, 8 * MiB, 13 * MiB + 7]) {
        const all = sizes(base, schedule);
        for (const from of [1, 2, 4, 5, 17, 799, 800, 801, 5_601, 9_999, 10_000, 10_001]) {
          const expected = all.slice(from - 1).reduce((a, b) => a + b, 0);
          expect(scheduledBytes(from, base, schedule)).toBe(expected);
        }
      }
    }
  });

  it('keeps partSize for the first 800 parts, then doubles every 800 parts up to the first size >= 1 GiB', () => {
    expect(partSizeFor(1, 8 * MiB)).toBe(8 * MiB);
    expect(partSizeFor(800, 8 * MiB)).toBe(8 * MiB);
    expect(partSizeFor(801, 8 * MiB)).toBe(16 * MiB);
    expect(partSizeFor(1_601, 8 * MiB)).toBe(32 * MiB);
    expect(partSizeFor(5_600, 8 * MiB)).toBe(512 * MiB);
    expect(partSizeFor(5_601, 8 * MiB)).toBe(GiB);
    expect(partSizeFor(10_000, 8 * MiB)).toBe(GiB);
    expect(partSizeFor(6_401, 5 * MiB)).toBe(1280 * MiB);
    expect(partSizeFor(10_000, 5 * MiB)).toBe(1280 * MiB);
    // Large bases grow less or not at all.
    expect(partSizeFor(10_000, 600 * MiB)).toBe(1200 * MiB);
    expect(partSizeFor(10_000, GiB)).toBe(GiB);
    expect(partSizeFor(10_000, 5 * GiB)).toBe(5 * GiB);
  });

  it('holds for every partSize from 5 MiB to 5 GiB (each MiB, and odd byte counts)', () => {
    for (let base = 5 * MiB; base <= 5 * GiB; base += MiB) checkSchedule(base);
    for (const base of [5 * MiB + 1, 7 * MiB + 12_345, 8 * MiB - 1, 8 * MiB + 1, 1000 * 1000 * 10, 1024 * MiB - 1, 5 * GiB - 1]) checkSchedule(base);
  });

});

describe('copyRanges (UploadPartCopy ranges)', () => {
  /** Ranges are contiguous, cover [0, size), none above maxPart, every one but the last >= 5 MiB. */
  function checkRanges(size: number, ranges: [number, number][], maxPart = MAX_PART): void {
    expect(ranges[0]?.[0]).toBe(0);
    expect(ranges.at(-1)?.[1]).toBe(size - 1);
    for (const [i, [start, end]] of ranges.entries()) {
      if (i > 0) expect(start).toBe((ranges[i - 1] as [number, number])[1] + 1);
      expect(end - start + 1).toBeLessThanOrEqual(maxPart);
      if (i < ranges.length - 1) expect(end - start + 1).toBeGreaterThanOrEqual(MIN_PART);
    }
  }

  it('copy ranges stay within 10,000 parts: a rename of a 5 TiB object (512 MiB ranges would need 10,240), an APPE prefix', () => {
    const ranges = copyRanges(5 * TiB, 512 * MiB);
    expect(ranges.length).toBeLessThanOrEqual(10_000);
    checkRanges(5 * TiB, ranges);
    // Up to 5,000 GiB the ranges are the usual 512 MiB ones.
    expect(copyRanges(5000 * GiB, 512 * MiB)).toHaveLength(10_000);
    expect(copyRanges(100 * GiB, 512 * MiB)).toHaveLength(200);
    checkRanges(100 * GiB + 3, copyRanges(100 * GiB + 3, 512 * MiB));
    // APPE / REST keep their prefix in ranges of up to 5 GiB: at most 1,024 of the 10,000 parts for 5 TiB.
    expect(copyRanges(5 * TiB)).toHaveLength(1024);
    checkRanges(5 * TiB, copyRanges(5 * TiB));
    expect(copyRanges(6 * MiB + 7)).toEqual([[0, 6 * MiB + 6]]);
    for (const size of [5 * MiB, 5 * GiB, 5 * GiB + 1, 10 * GiB + 1, 3 * TiB + 12_345]) checkRanges(size, copyRanges(size));
  });

  it('honours a lowered part count and part size (the test hook)', () => {
    const schedule: PartSchedule = { ...S3_PART_SCHEDULE, maxParts: 4, maxPartSize: 20 * MiB };
    const ranges = copyRanges(30 * MiB, 5 * MiB, schedule);
    expect(ranges).toHaveLength(4);
    checkRanges(30 * MiB, ranges, 20 * MiB);
    expect(copyRanges(30 * MiB, 20 * MiB, schedule)).toHaveLength(2);
  });
});

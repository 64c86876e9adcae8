import { MAX_PART_SIZE, MAX_PARTS, MiB } from './options.js';

/** S3's largest object: 5 TiB. */
export const MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB;

/**
 * The limits a multipart upload lives within, and how its part size grows. S3's values in {@link S3_PART_SCHEDULE};
 * a test lowers them (`S3Provider.setPartSchedule`) to reach them with a few MiB.
 */
export interface PartSchedule {
  /** Parts of one multipart upload, copied ones included (S3: 10,000). */
  readonly maxParts: number;
  /** The part size doubles every this many parts. */
  readonly partsPerDoubling: number;
  /** Doubling stops at the first size at or above this. */
  readonly growthCeiling: number;
  /** Largest part, uploaded or copied (S3: 5 GiB). */
  readonly maxPartSize: number;
  /** Largest object (S3: 5 TiB). */
  readonly maxObjectSize: number;
}

/**
 * S3's limits, and the growth that fits an upload of unknown size into them: parts 1–800 are `partSize`, 801–1,600
 * twice that, and so on, doubling every 800 parts until a part is 1 GiB or more (8 MiB: 1 GiB from part 5,601;
 * 5 MiB: 1.25 GiB from part 6,401). 10,000 parts then hold more than 5 TiB for every `partSize` (8 MiB: 5,318,400
 * MiB ≈ 5.07 TiB; 5 MiB: 5,628,000 MiB ≈ 5.37 TiB), while an upload up to 800 parts (6.25 GiB at 8 MiB) keeps
 * `partSize` throughout, and a bigger one holds parts of about 1/800 of what it has sent so far.
 */
export const S3_PART_SCHEDULE: PartSchedule = {
  maxParts: MAX_PARTS,
  partsPerDoubling: 800,
  growthCeiling: 1024 * MiB,
  maxPartSize: MAX_PART_SIZE,
  maxObjectSize: MAX_OBJECT_SIZE,
};

/**
 * Size of part `partNumber` (1-based) of an upload whose first part is `basePartSize`: `basePartSize` doubled once
 * every `partsPerDoubling` parts until it reaches `growthCeiling`, never above `maxPartSize`. Monotonic, never below
 * `basePartSize` (itself at least S3's 5 MiB minimum), so every part but the last is a valid S3 part.
 */
export function partSizeFor(partNumber: number, basePartSize: number, schedule: PartSchedule = S3_PART_SCHEDULE): number {
  let size = basePartSize;
  for (let level = Math.floor((partNumber - 1) / schedule.partsPerDoubling); level > 0 && size < schedule.growthCeiling; level--) size *= 2;
  return Math.min(size, schedule.maxPartSize);
}

/** Bytes that parts `fromPart` to `schedule.maxParts` (inclusive) hold at their scheduled sizes: one step per doubling. */
export function scheduledBytes(fromPart: number, basePartSize: number, schedule: PartSchedule = S3_PART_SCHEDULE): number {
  let total = 0;
  for (let n = fromPart; n <= schedule.maxParts; ) {
    const last = Math.min(schedule.maxParts, (Math.floor((n - 1) / schedule.partsPerDoubling) + 1) * schedule.partsPerDoubling);
    total += partSizeFor(n, basePartSize, schedule) * (last - n + 1);
    n = last + 1;
  }
  return total;
}

/**
 * Splits `size` bytes (at least 5 MiB) into server-side copy ranges (UploadPartCopy) of about `rangeSize`, as even as
 * possible: [start, endInclusive][]. Never more than `schedule.maxParts` ranges — an object too big for that many
 * ranges of `rangeSize` (5,000 GiB at 512 MiB) gets larger ones — and none above `schedule.maxPartSize`. Every range
 * but the last is at least 5 MiB.
 */
export function copyRanges(size: number, rangeSize: number = MAX_PART_SIZE, schedule: PartSchedule = S3_PART_SCHEDULE): [number, number][] {
  const count = Math.max(Math.ceil(size / schedule.maxPartSize), Math.min(Math.ceil(size / Math.min(rangeSize, schedule.maxPartSize)), schedule.maxParts));
  const each = Math.ceil(size / count);
  const ranges: [number, number][] = [];
  for (let start = 0; start < size; start += each) ranges.push([start, Math.min(size, start + each) - 1]);
  return ranges;
}

/**
 * How a background loop of bounded statements (a kept part's copy, a removed file's reclaim) sizes them: `first`
 * rows in the first, then as many as take about `ms` (measured on each, at most doubling), at most `max`.
 */
export interface Pace {
  first: number;
  max: number;
  ms: number;
}

/** Rows for the next statement, after one of `rows` rows that took `ms` milliseconds. */
export function nextRows(rows: number, pace: Pace, ms: number): number {
  return Math.max(1, Math.min(pace.max, 2 * rows, Math.floor((rows * pace.ms) / Math.max(ms, 0.1))));
}

/** Summaries of repeated runs. */

/** A figure from several runs: its median, range and the raw values. */
export interface Figure {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

/** Median, min and max of the runs (NaN runs, from failed attempts, are left out). */
export function summarize(values: readonly number[]): Figure | null {
  const runs = values.filter((v) => Number.isFinite(v));
  if (runs.length === 0) return null;
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs };
}

/** The p-th percentile (0–100) by nearest rank; NaN for no samples. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

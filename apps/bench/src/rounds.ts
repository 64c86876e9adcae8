/**
 * Interleaved rounds: every server's runs of a workload are spread over the same stretch of time.
 *
 * On a shared VM the machine's speed drifts by up to 3× within minutes (other guests, the host reclaiming free
 * memory). Measured one server after the other, a drift lands on whichever server was being measured, and the
 * ratios between servers show it. Measured in rounds (run 1 of every server, then run 2 of every server…, each
 * round starting with a different server), every server's median is taken over the same conditions.
 */
import { summarize } from './stats.js';
import type { Row } from './workloads/types.js';

/** The servers of round `round` (0-based), rotated so that no server is always measured first or after the same one. */
export function roundOrder<T>(servers: readonly T[], round: number): T[] {
  if (servers.length === 0) return [];
  const shift = round % servers.length;
  return [...servers.slice(shift), ...servers.slice(0, shift)];
}

/**
 * One server's rows of one workload, from rounds of one run each, as rows of all the runs: each metric's runs
 * put together and summarized again (the same median, min and max as runs made back to back would give). Notes
 * are kept, an identical note once with the number of rounds that gave it.
 */
export function mergeRounds(rounds: readonly (readonly Row[])[]): Row[] {
  const merged = new Map<string, { row: Row; runs: number[]; notes: string[] }>();
  for (const rows of rounds) {
    for (const row of rows) {
      const key = `${row.workload}\u0000${row.metric}`;
      let m = merged.get(key);
      if (m === undefined) {
        m = { row, runs: [], notes: [] };
        merged.set(key, m);
      }
      if (row.figure) m.runs.push(...row.figure.runs);
      if (row.note) m.notes.push(row.note);
    }
  }
  return [...merged.values()].map(({ row, runs, notes }) => {
    const { note: _first, ...rest } = row;
    const note = joinNotes(notes);
    return { ...rest, figure: summarize(runs), ...(note ? { note } : {}) };
  });
}

function joinNotes(notes: readonly string[]): string | undefined {
  if (notes.length === 0) return undefined;
  const counts = new Map<string, number>();
  for (const n of notes) counts.set(n, (counts.get(n) ?? 0) + 1);
  return [...counts].map(([n, c]) => (c > 1 ? `${n} (in ${c} rounds)` : n)).join('; ');
}

/**
 * Interleaved rounds: every server's runs of a workload are spread over the same stretch of time.
 *
 * On a shared VM the machine's speed drifts by up to 3× within minutes (other guests, the host reclaiming free
 * memory). Measured one server after the other, a drift lands on whichever server was being measured, and the
 * ratios between servers show it. Measured in rounds (run 1 of every server, then run 2 of every server…), every
 * server's median is taken over the same conditions.
 *
 * The order of the servers changes from round to round, and not only which comes first: a run inherits the state
 * the run before it leaves (memory it freed, which this VM hands back to its host and the next writer faults in
 * again; writeback; caches). A rotation kept every server after the same one in every round but the one it started:
 * in three full runs, every STOR round that fell below ~1,400 MiB/s while the others ran near 2,000 came right after
 * ftp-srv's, and with the rotation that was ours in two rounds of three.
 */
import { summarize } from './stats.js';
import type { Row } from './workloads/types.js';

/**
 * Plans the order of each round over the whole run, across workloads: each server as seldom as possible first and,
 * within that, each server as seldom as possible right after one it has already followed (the last of a round
 * precedes the first of the next, and the last of a workload the first of the next workload). Greedy, one position
 * at a time, ties to the earlier server in the list: deterministic.
 */
export class RoundPlanner<T> {
  /** How often each server ran right after another: `followed.get(a).get(b)` runs of b right after a. */
  readonly #followed = new Map<T, Map<T, number>>();
  readonly #first = new Map<T, number>();
  #last: T | undefined;

  /** The order of the next round of `servers` (any subset of the servers planned so far, or new ones). */
  next(servers: readonly T[]): T[] {
    const left = [...servers];
    const order: T[] = [];
    // Being first again weighs more than any repeated neighbour.
    const firstWeight = left.length + 1;
    while (left.length > 0) {
      const previous = order.length > 0 ? order[order.length - 1] : this.#last;
      let best = 0;
      let bestCost = Infinity;
      for (let i = 0; i < left.length; i++) {
        const s = left[i] as T;
        const after = previous === undefined ? 0 : (this.#followed.get(previous)?.get(s) ?? 0);
        const cost = order.length === 0 ? (this.#first.get(s) ?? 0) * firstWeight + after : after;
        if (cost < bestCost) {
          best = i;
          bestCost = cost;
        }
      }
      const chosen = left.splice(best, 1)[0] as T;
      if (previous !== undefined) {
        const counts = this.#followed.get(previous) ?? new Map<T, number>();
        counts.set(chosen, (counts.get(chosen) ?? 0) + 1);
        this.#followed.set(previous, counts);
      }
      if (order.length === 0) this.#first.set(chosen, (this.#first.get(chosen) ?? 0) + 1);
      order.push(chosen);
    }
    if (order.length > 0) this.#last = order[order.length - 1];
    return order;
  }
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

/**
 * Turns of the event loop for long work done in one session's name. Every session shares one thread: a listing of a
 * big folder from storage that answers at once (memory, SQLite), or a sort of 100,000 names, ran for 200–800 ms
 * without a pause, and every other session's replies and transfers waited that long (measured with a NOOP every 5 ms
 * beside it). Work that checks a {@link Turns} gives the loop a turn whenever it has run for a few milliseconds.
 */

/** Milliseconds of work between two turns: long enough that the turns cost nothing measurable, short enough to go unnoticed. */
export const TURN_MS = 4;

/** A clock of work since the last turn. */
export class Turns {
  #since = performance.now();

  /** Resolves at once while the work has run less than {@link TURN_MS}; after a turn of the event loop otherwise. */
  check(): Promise<void> | undefined {
    if (performance.now() - this.#since < TURN_MS) return undefined;
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        this.#since = performance.now();
        resolve();
      }),
    );
  }
}

/** Entries sorted in runs of this many before they are merged (a run is sorted in one step, ~2 ms). */
const RUN = 2048;

/**
 * `items` sorted by `compare` (stable, as `Array.prototype.sort`), with turns of the event loop between steps. Sorts
 * in place and returns `items` when they fit one run; a new array otherwise.
 */
export async function sortWithTurns<T>(items: T[], compare: (a: T, b: T) => number, turns: Turns = new Turns()): Promise<T[]> {
  if (items.length <= RUN) return items.sort(compare);
  let runs: T[][] = [];
  for (let i = 0; i < items.length; i += RUN) {
    runs.push(items.slice(i, i + RUN).sort(compare));
    await turns.check();
  }
  while (runs.length > 1) {
    const merged: T[][] = [];
    for (let i = 0; i < runs.length; i += 2) {
      const b = runs[i + 1];
      merged.push(b === undefined ? runs[i]! : await merge(runs[i]!, b, compare, turns));
    }
    runs = merged;
  }
  return runs[0]!;
}

/** The merge of two sorted runs, `a`'s entries first among equals (so the sort stays stable). */
async function merge<T>(a: T[], b: T[], compare: (a: T, b: T) => number, turns: Turns): Promise<T[]> {
  const out = new Array<T>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) {
    out[k++] = compare(b[j]!, a[i]!) < 0 ? b[j++]! : a[i++]!;
    if ((k & 1023) === 0) await turns.check();
  }
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out;
}

/**
 * The names a server's listings may hold at once for sorting, across all sessions (`listSortBudget`).
 *
 * A LIST or NLST of a folder of up to `listSortMax` entries reads every name before it sends the first line, so a
 * client that starts such a listing and never reads it holds those names until the data connection's stall timeout:
 * ~4.5 MB for 20,000 names of 200 bytes. Without a bound over all sessions, a few hundred such clients would take
 * the process past its heap limit. A listing takes its share before it reads the folder and gives it back when it
 * ends; when the budget runs short it is granted less, and a folder bigger than that is listed in the order it is
 * read (a slice at a time), as any folder bigger than `listSortMax` is.
 */
export class ListingSortBudget {
  #free: number;

  constructor(readonly total: number) {
    this.#free = total;
  }

  /** Takes up to `wanted` names; returns how many were granted (0 when none are left). */
  take(wanted: number): number {
    const granted = Math.max(0, Math.min(wanted, this.#free));
    this.#free -= granted;
    return granted;
  }

  /** Gives back what {@link take} granted. */
  give(granted: number): void {
    this.#free = Math.min(this.total, this.#free + granted);
  }
}

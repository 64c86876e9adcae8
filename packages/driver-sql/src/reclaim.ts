import { setImmediate as turn } from 'node:timers/promises';
import { nextRows, type Pace } from './pace.js';
import type { DialectName } from './dialects.js';
import type { InodeLifecycle } from './lifecycle.js';
import { CHUNK_SIZE } from './schema.js';
import type { Store } from './store.js';

/**
 * Chunk rows a removed file may have for its rows to be deleted inside the transaction that removes it (1 MiB: one
 * statement of a few milliseconds, as cheap as marking the file for later). Bigger files are reclaimed in the
 * background (see {@link Reclaimer}).
 */
export const INLINE_ROWS = 4;

/** Whether a file of `size` bytes is removed with its rows at once (see {@link INLINE_ROWS}). */
export function removedInline(size: number): boolean {
  return Math.ceil(size / CHUNK_SIZE) <= INLINE_ROWS;
}

/**
 * How the background reclaim paces its DELETEs of chunk rows: `first` rows in the first statement, then as many as
 * take about `ms` (measured on each statement, at most doubling), at most `max`. One statement for the whole file
 * grew with it: a 1 GiB DELE froze a SQLite process (node:sqlite runs on the event loop) for 0.6 s and held a
 * PostgreSQL or MariaDB transaction and pooled connection for 3.5–4.5 s (5 GiB: 34–48 s), with its locks.
 * - SQLite: every statement stalls every session of the process; a row costs ~0.15–0.25 ms here (its overflow pages
 *   go to the free list), so ~10 ms is some 32–64 rows; at most 32 (8 MiB), as fast in all (1 GiB: 0.7–1 s, against
 *   0.6 s in one statement), the longest stall 20–30 ms (a WAL checkpoint now and then).
 * - PostgreSQL, MariaDB: the statement runs off the event loop; the bound caps how long one transaction holds a pooled
 *   connection and its row locks (~1 ms a row here: 32 rows, 8 MiB, take some 30–50 ms). 64 or 128 rows per statement
 *   deleted no faster (the disk and, on MariaDB, the purge of the deleted rows are the limit).
 */
export const RECLAIM_PACE: Record<DialectName, Pace> = {
  sqlite: { first: 16, max: 32, ms: 10 },
  postgres: { first: 16, max: 32, ms: 250 },
  mysql: { first: 16, max: 32, ms: 250 },
};

/**
 * How long a reclaimer's claim on an inode lasts (it renews it after a third of that while it works): a process that
 * dies mid-reclaim leaves a claim that expires, and the next sweep of any process finishes the work.
 */
export const CLAIM_MS = 60_000;

/**
 * @internal How removed files are reclaimed (tests): a fixed number of chunk rows per statement, a call after each
 * statement (awaited before the next one) with the inode and the rows deleted so far, the length of a claim, the
 * period of the sweep.
 */
export interface ReclaimTuning {
  rows?: number;
  onBatch?: (id: number, deleted: number) => void | Promise<void>;
  claimMs?: number;
  sweepMs?: number;
}

/**
 * Deletes the content of removed files in the background, in bounded statements (see {@link RECLAIM_PACE}), one
 * inode at a time, the event loop free between two statements.
 *
 * A removed file is first only unlinked and marked (`parent` NULL, name `.detached-<id>`; see
 * {@link InodeLifecycle.removeFile}), in the short transaction of the command. Nothing ever links a marked inode
 * again, and it takes no new reader lease, so its rows can go at any time once no live lease holds it. The reclaim
 * claims it first (its `mtime` becomes the claim's expiry, under the inode's row lock, only when unclaimed or
 * expired and no live lease holds it), so two processes never reclaim one inode at once; deletes its chunk rows a
 * range of `seq` at a time (idempotent: a range already gone deletes nothing); then deletes the inode row. Until
 * then the marked row stays: a process that dies or closes mid-way leaves it, and a later sweep (at the next start,
 * and every minute in every process, see `SqlProvider`) finishes it.
 */
export class Reclaimer {
  /** Inodes waiting, with the callers waiting for each. */
  readonly #queue = new Map<number, (() => void)[]>();
  #running: Promise<void> | undefined;
  #stopped = false;
  /** Bumped by {@link cancel} and {@link stop}: the reclaim running stops after its statement. */
  #epoch = 0;

  constructor(
    private readonly life: InodeLifecycle,
    private readonly s: Pick<Store, 'db' | 't' | 'dialect' | 'tx'>,
    private readonly tuning: ReclaimTuning | undefined,
  ) {}

  /**
   * Reclaims inode `id` (after those already waiting). Resolves once it is done, skipped (not marked, claimed by
   * another process, still leased) or given up (stopped, a database error: the sweep retries later). Never rejects.
   */
  schedule(id: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const waiters = this.#queue.get(id);
      if (waiters === undefined) this.#queue.set(id, [resolve]);
      else waiters.push(resolve);
      this.#running ??= this.#drain();
    });
  }

  /** Resolves once every reclaim scheduled so far has ended. */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  /** Drops what is waiting and stops the running reclaim after its statement (its claim released); can go on later. */
  async cancel(): Promise<void> {
    this.#epoch++;
    this.#flush();
    await this.idle();
  }

  /** {@link cancel}, for good (the provider closes). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.cancel();
  }

  #flush(): void {
    for (const waiters of this.#queue.values()) for (const w of waiters) w();
    this.#queue.clear();
  }

  #halted(epoch: number): boolean {
    return this.#stopped || epoch !== this.#epoch;
  }

  async #drain(): Promise<void> {
    const epoch = this.#epoch;
    try {
      // A turn first: the command that removed the file answers before any reclaim statement runs.
      await turn();
      for (;;) {
        if (this.#halted(epoch)) break;
        const next = this.#queue.entries().next();
        if (next.done === true) break;
        const [id, waiters] = next.value;
        this.#queue.delete(id);
        try {
          await this.#reclaim(id, epoch);
        } catch {
          // The database is failing or gone: the inode stays marked, and its claim expires; a later sweep retries.
        }
        for (const w of waiters) w();
      }
    } finally {
      this.#running = undefined;
      // Stopped: nothing more. Cancelled: what was waiting then is dropped (by cancel()), what came since is reclaimed.
      if (this.#stopped) this.#flush();
      else if (this.#queue.size > 0) this.#running = this.#drain();
    }
  }

  async #reclaim(id: number, epoch: number): Promise<void> {
    const claimMs = this.tuning?.claimMs ?? CLAIM_MS;
    const until = await this.life.claim(id, claimMs);
    if (until === undefined) return;
    const claim = { until };
    try {
      await this.#deleteRows(id, epoch, claim);
    } catch (err) {
      // A failure (a lock timeout, the database going away): the claim is given back if it can be, so that the next
      // sweep retries at once rather than after the claim expires.
      await this.life.unclaim(id, claim.until).catch(() => undefined);
      throw err;
    }
  }

  /** Deletes the rows of a claimed inode, then the inode; stops when halted (the claim then given back). */
  async #deleteRows(id: number, epoch: number, claim: { until: number }): Promise<void> {
    const { db, t, dialect } = this.s;
    const claimMs = this.tuning?.claimMs ?? CLAIM_MS;
    const range = await db
      .selectFrom(t.chunk('c'))
      .select((eb) => [eb.fn.min<number | string | null>('c.seq').as('lo'), eb.fn.max<number | string | null>('c.seq').as('hi')])
      .where('c.inode', '=', id)
      .executeTakeFirst();
    const pace = RECLAIM_PACE[dialect];
    let rows = Math.max(1, this.tuning?.rows ?? pace.first);
    let deleted = 0;
    if (range?.lo !== null && range?.lo !== undefined && range.hi !== null) {
      const hi = Number(range.hi);
      for (let from = Number(range.lo); from <= hi; ) {
        if (this.#halted(epoch)) {
          await this.life.unclaim(id, claim.until);
          return;
        }
        if (claim.until - Date.now() < (2 * claimMs) / 3) {
          const renewed = await this.life.renewClaim(id, claim.until, claimMs);
          // Gone, or taken over by another process after this claim expired (a long stall): that one finishes.
          if (renewed === undefined) return;
          claim.until = renewed;
        }
        const to = from + rows;
        const t0 = performance.now();
        const n = await this.s.tx(async (trx) => {
          const r = await trx.deleteFrom(t.c).where('inode', '=', id).where('seq', '>=', from).where('seq', '<', to).executeTakeFirst();
          return Number(r.numDeletedRows);
        });
        const ms = performance.now() - t0;
        if (this.tuning?.rows === undefined && n === rows) rows = nextRows(rows, pace, ms);
        from = to;
        deleted += n;
        await this.tuning?.onBatch?.(id, deleted);
        // A turn for every other session (on SQLite the statement itself held the event loop).
        await turn();
      }
    }
    if (this.#halted(epoch)) {
      await this.life.unclaim(id, claim.until);
      return;
    }
    await this.life.finish(id);
  }
}

import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { Writable } from 'node:stream';
import { setImmediate as turn } from 'node:timers/promises';
import { expressionBuilder, sql } from 'kysely';
import { fsError, VfsError } from '@ftp/vfs';
import type { UploadStream } from '@ftp/vfs';
import type { DialectName } from './dialects.js';
import { dbError } from './errors.js';
import { nextRows, type Pace } from './pace.js';
import { CHUNK_SIZE, T_DIR, T_FILE, toBuffer, toInode, INODE_COLUMNS } from './schema.js';
import type { Database } from './schema.js';
import type { Store } from './store.js';
import { detachedName } from './lifecycle.js';
import { INLINE_ROWS } from './reclaim.js';
import { executeMysql } from './raw-io.js';

/**
 * Full chunks sent per INSERT (1 MiB): one statement, one commit per MiB instead of per chunk — commits are what
 * an upload waits for (a WAL / redo-log flush each).
 */
const CHUNKS_PER_INSERT = 4;

/** INSERTs an upload keeps running at once: the database writes one batch while the next one arrives. */
const INSERTS_IN_FLIGHT = 2;

/** How often an upload refreshes its temporary inode's mtime (stale uploads of dead processes are swept by age). */
const HEARTBEAT_MS = 60_000;

/**
 * How an upload that continues a file (APPE, REST + STOR) copies the chunk rows it keeps: `first` rows in the first
 * INSERT … SELECT, then as many as take about `ms` (measured on each statement, at most doubling), at most `max`.
 * One statement for the whole kept part grew with the file: for 1 GiB it froze a SQLite process (node:sqlite runs on
 * the event loop) for 12–20 s, and held a PostgreSQL or MariaDB transaction and pooled connection for 7–15 s.
 * - SQLite: every statement stalls every session of the process. One of a few rows costs ~1–2 ms a row here, but
 *   larger ones cost more per row (8 rows: ~25 ms, 16: ~65 ms; a transaction past the 2 MiB page cache spills), and
 *   the copy is no faster with them: 1 MiB at most.
 * - PostgreSQL, MariaDB: the statement runs off the event loop; the bound caps how long one transaction holds a
 *   pooled connection. 4 to 8 MiB per statement copied as fast as 32 MiB or one statement for the whole file (the
 *   disk is the limit; a statement's round trips are nothing next to 4 MiB).
 */
const COPY_PACE: Record<DialectName, Pace> = {
  sqlite: { first: 2, max: 4, ms: 10 },
  postgres: { first: 16, max: 32, ms: 250 },
  mysql: { first: 16, max: 32, ms: 250 },
};

/**
 * @internal How uploads copy the part of a file they keep (tests): a fixed number of chunk rows per statement, and
 * a call after each statement with the rows copied so far (awaited before the next one).
 */
export interface CopyTuning {
  rows?: number;
  onBatch?: (copied: number) => void | Promise<void>;
}

/** Where a finished upload goes, and what it starts from. */
export interface UploadTarget {
  /** The temporary, unlinked inode the chunks are written under. */
  tempId: number;
  /** Its name while the upload runs (a sweep renames a stale one: then it no longer commits). */
  tempName: string;
  /** Directory and name it replaces at the end. */
  dirId: number;
  name: string;
  /**
   * Whole chunks kept from the old version (REST/APPE), `base`'s first `seq` chunk rows: the stream copies them, in
   * SQL, before it takes any data (then the data goes on from chunk `seq`).
   */
  seq: number;
  /** Bytes kept from `base`'s chunk `seq` (the start of the next chunk), read after the whole ones. */
  partial: number;
  /** Zeros to add before the data (REST beyond the end of the file). */
  gap: number;
  /** Whether the upload holds the whole file from byte 0 (then its SHA-256 is computed and stored). */
  whole: boolean;
  /** Bytes this upload may add under the quota (Infinity without one); checked again when it is swapped in. */
  allowance: number;
  /**
   * For an upload that continues the file (APPE, REST + STOR): the version it started from, `null` when there was
   * no file. The swap then happens only if the entry is still that inode at that generation (or still absent);
   * otherwise the upload fails with EBUSY. Undefined for a whole-file upload: it replaces whatever is there.
   */
  base?: { id: number; gen: number } | null;
}

/** The error of an upload that continues a file which another client changed meanwhile. */
function changedError(path: string): VfsError {
  return new VfsError('EBUSY', `EBUSY: '${path}' was changed by another client while this upload continued it; nothing was written, try again`, {
    path,
    syscall: 'write',
  });
}

/**
 * An upload: fixed-size chunks written under a temporary, unlinked inode (four per INSERT, two INSERTs in flight
 * while the next batch fills: memory stays at about three MiB), then swapped in by one transaction at `end()`:
 * readers see the old version until then, concurrent uploads end as one whole version (the last to finish); the
 * version it replaces is only unlinked there, its rows reclaimed afterwards, in the background.
 * An interrupted upload (`transferError`, or `destroy()` before the end) deletes its chunks and inode (those of more
 * than a few chunks in the background too: see {@link settled}).
 *
 * An upload that keeps the start of the file (APPE, REST + STOR) first copies it, chunk rows to chunk rows in SQL,
 * a few MiB per statement (see {@link COPY_PACE}), while the stream is being constructed: the stream is returned at
 * once (the client can start sending; its writes wait for the copy), no statement or transaction grows with the
 * file, and a stream destroyed meanwhile stops after the statement running. Each statement copies only while the
 * file is still the version the upload continues (`base`): a change stops the copy with EBUSY (the commit checks it
 * again, so nothing copied from two versions is ever swapped in).
 */
export class SqlWriteStream extends Writable implements UploadStream {
  /** Every chunk is hashed and copied into the stream's own chunk buffers before its callback (nothing awaits between). */
  readonly releasesChunks = true;
  readonly #s: Store;
  readonly #target: UploadTarget;
  #seq: number;
  #cur: Buffer | null = null;
  #used = 0;
  #size: number;
  #written = 0;
  /** INSERTs running (at most {@link INSERTS_IN_FLIGHT}, on different pool connections). */
  #inflight: Promise<void>[] = [];
  /** Full chunks waiting for the next INSERT. */
  #batch: Buffer[] = [];
  #hash: Hash | undefined;
  #done = false;
  #abortion: Promise<boolean> | undefined;
  /** The background reclaim of an interrupted upload's rows. */
  #reclaiming: Promise<void> | undefined;
  #failed: Error | undefined;
  #beat = Date.now();
  /** The copy of the kept part of the file, while it runs (see {@link _construct}). */
  #copying: Promise<void> | undefined;
  /** Chunk rows copied so far while the kept part is copied; undefined when there is none to copy, or once done. */
  #copiedRows: number | undefined;

  constructor(store: Store, target: UploadTarget, readonly path: string) {
    super({ highWaterMark: CHUNK_SIZE });
    this.#s = store;
    this.#target = target;
    this.#seq = target.seq;
    this.#size = target.seq * CHUNK_SIZE;
    if (target.whole) this.#hash = createHash('sha256');
  }

  /**
   * Bytes stored so far, the kept part included as it is copied (`UploadStream.storedBytes`): the server's stall
   * check takes a change as progress, so a long copy is not taken for stalled storage.
   */
  get storedBytes(): number {
    return this.#copiedRows === undefined ? this.#size : this.#copiedRows * CHUNK_SIZE;
  }

  /** Copies the kept part of the file before the first write (Node holds writes and `end()` until `cb`). */
  override _construct(cb: (err?: Error | null) => void): void {
    const { base, seq, partial } = this.#target;
    if (base === undefined || base === null || (seq === 0 && partial === 0)) return cb();
    this.#copiedRows = 0;
    const copying = this.#copyKept(base).then(
      () => ((this.#copiedRows = undefined), cb()),
      (err: unknown) => cb(dbError(err, this.#s.where, this.path)),
    );
    this.#copying = copying;
  }

  /** Whether the upload was given up (destroyed, or its transfer failed): the copy stops. */
  get #stopped(): boolean {
    return this.destroyed || this.#failed !== undefined;
  }

  /**
   * Copies `base`'s first `seq` chunk rows under the temporary inode, a bounded number per statement, the event loop
   * free between two; then reads the kept start of chunk `seq`. Stops early when the upload is given up.
   */
  async #copyKept(base: { id: number; gen: number }): Promise<void> {
    const { t, dialect } = this.#s;
    const { tempId, seq: whole, partial, dirId, name } = this.#target;
    const tuning = this.#s.copyTuning;
    const pace = COPY_PACE[dialect];
    // Rows are copied only while the entry is still `base` at the generation the upload continues: a statement
    // that runs after a change copies nothing (one snapshot for both, so never rows of two versions in one go).
    const outer = expressionBuilder<Database, never>();
    const isBase = outer.exists(outer.selectFrom(t.inode('e')).select('e.id').where('e.id', '=', base.id).where('e.parent', '=', dirId).where('e.name', '=', name).where('e.gen', '=', base.gen));
    let rows = Math.max(1, tuning?.rows ?? pace.first);
    // A turn first: whoever opened the stream is listening for its errors before the copy can fail.
    await turn();
    for (let from = 0; from < whole; ) {
      if (this.#stopped) return;
      // SQLite: the copy's rows go through the WAL like an upload's (see openSqlite).
      await this.#s.walRoom?.();
      if (this.#stopped) return;
      const to = Math.min(whole, from + rows);
      const t0 = performance.now();
      const copied = await this.#s.tx(async (trx) => {
        const r = await trx
          .insertInto(t.c)
          .columns(['inode', 'seq', 'bytes'])
          .expression((eb) =>
            eb
              .selectFrom(t.chunk('o'))
              .select([sql<number>`${tempId}`.as('inode'), 'o.seq', 'o.bytes'])
              .where('o.inode', '=', base.id)
              .where('o.seq', '>=', from)
              .where('o.seq', '<', to)
              .where(isBase),
          )
          .executeTakeFirst();
        return Number(r.numInsertedOrUpdatedRows ?? 0);
      });
      const ms = performance.now() - t0;
      if (copied !== to - from) throw await this.#whyShort(base);
      if (tuning?.rows === undefined && to - from === rows) rows = nextRows(rows, pace, ms);
      from = to;
      this.#copiedRows = from;
      await tuning?.onBatch?.(from);
      // A turn for every other session (on SQLite the statement itself held the event loop).
      await turn();
    }
    if (partial === 0 || this.#stopped) return;
    const r = await this.#s.db
      .selectFrom(t.chunk('o'))
      .select('o.bytes')
      .where('o.inode', '=', base.id)
      .where('o.seq', '=', whole)
      .where(isBase)
      .executeTakeFirst();
    if (r === undefined) throw await this.#whyShort(base);
    this.#copy(toBuffer(r.bytes).subarray(0, partial), false);
  }

  /** Why rows of `base` were not there: the file changed (EBUSY), or a chunk of it is missing (EIO). */
  async #whyShort(base: { id: number; gen: number }): Promise<VfsError> {
    const { t } = this.#s;
    const e = await this.#s.db.selectFrom(t.inode('e')).select(['e.id', 'e.gen']).where('e.parent', '=', this.#target.dirId).where('e.name', '=', this.#target.name).executeTakeFirst();
    if (e === undefined || Number(e.id) !== base.id || Number(e.gen) !== base.gen) return changedError(this.path);
    return new VfsError('EIO', 'EIO: a chunk of the file is missing', { path: this.path });
  }

  /** Copies bytes into the current chunk; returns the full chunks to store. */
  #copy(data: Uint8Array, count: boolean): Buffer[] {
    const full: Buffer[] = [];
    let off = 0;
    while (off < data.length) {
      if (this.#cur === null) {
        this.#cur = Buffer.allocUnsafeSlow(CHUNK_SIZE);
        this.#used = 0;
      }
      const n = Math.min(CHUNK_SIZE - this.#used, data.length - off);
      this.#cur.set(data.subarray(off, off + n), this.#used);
      this.#used += n;
      this.#size += n;
      if (count) this.#written += n;
      off += n;
      if (this.#used === CHUNK_SIZE) {
        full.push(this.#cur);
        this.#cur = null;
      }
    }
    return full;
  }

  /** Queues a full chunk; a full batch is stored. */
  async #queue(chunk: Buffer): Promise<void> {
    this.#batch.push(chunk);
    if (this.#batch.length >= CHUNKS_PER_INSERT) await this.#store();
  }

  /** Stores the batch: waits for a free INSERT slot, then starts it without waiting for it. */
  async #store(): Promise<void> {
    while (this.#inflight.length >= INSERTS_IN_FLIGHT) await this.#inflight[0];
    // SQLite: while its WAL checkpointer catches up (see openSqlite). An upload given up meanwhile stores nothing more.
    await this.#s.walRoom?.();
    if (this.#batch.length === 0 || this.#abortion !== undefined) return;
    const rows = this.#batch.map((bytes) => ({ inode: this.#target.tempId, seq: this.#seq++, bytes }));
    this.#batch = [];
    const { db, t, raw } = this.#s;
    const insert = db.insertInto(t.c).values(rows);
    // MySQL: as a prepared statement (the chunks go as bytes; through Kysely's query() mysql2 hex-encodes them into
    // the SQL text on this thread: see executeMysql).
    const p: Promise<void> = (raw?.dialect === 'mysql' ? executeMysql(raw.pool, insert.compile()) : insert.execute().then(() => undefined))
      .then(() => {
        this.#inflight = this.#inflight.filter((x) => x !== p);
      });
    // Awaited by a later store, by _final and by the abort; this only keeps an early failure from being "unhandled".
    p.catch(() => undefined);
    this.#inflight.push(p);
    // A turn of the event loop before the next data. SQLite's statements run on this thread and resolve in
    // microtasks: without it the socket's read loop handed over tens of MiB in one turn, holding every other
    // session for 80–500 ms at a time during a fast upload. (Elsewhere it costs nothing: a turn per MiB.)
    await turn();
    if (Date.now() - this.#beat > HEARTBEAT_MS) {
      this.#beat = Date.now();
      await db.updateTable(t.i).set({ mtime: this.#beat }).where('id', '=', this.#target.tempId).where('name', '=', this.#target.tempName).execute();
    }
  }

  async #take(data: Uint8Array): Promise<void> {
    if (this.#failed !== undefined) throw this.#failed;
    if (this.#written + data.length > this.#target.allowance) {
      throw new VfsError('ENOSPC', 'ENOSPC: the upload exceeds the quota of this filesystem', { path: this.path });
    }
    this.#hash?.update(data);
    for (const chunk of this.#copy(data, true)) await this.#queue(chunk);
  }

  /** Appends zeros before the data (REST beyond the end). */
  async #zeroFill(): Promise<void> {
    let n = this.#target.gap;
    this.#target.gap = 0;
    const zeros = Buffer.alloc(Math.min(n, CHUNK_SIZE));
    while (n > 0) {
      const k = Math.min(n, zeros.length);
      for (const chunk of this.#copy(k === zeros.length ? zeros : zeros.subarray(0, k), false)) await this.#queue(chunk);
      n -= k;
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const run = async (): Promise<void> => {
      if (this.#target.gap > 0) await this.#zeroFill();
      await this.#take(chunk);
    };
    run().then(() => cb(), (err: unknown) => cb(dbError(err, this.#s.where, this.path)));
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#commit().then(
      () => cb(),
      (err: unknown) => {
        // A failed COMMIT (a connection dropped before its reply) may have committed all the same: the abort then
        // finds the upload in the tree, and it did complete.
        void this.#abort().then((landed) => cb(landed ? null : dbError(err, this.#s.where, this.path)));
      },
    );
  }

  async #commit(): Promise<void> {
    if (this.#failed !== undefined) throw this.#failed;
    if (this.#target.gap > 0) await this.#zeroFill();
    if (this.#cur !== null && this.#used > 0) {
      this.#batch.push(this.#cur.subarray(0, this.#used));
      this.#cur = null;
    }
    await this.#store();
    await Promise.all(this.#inflight);
    const { tempId, tempName, dirId, name } = this.#target;
    const sha256 = this.#hash?.digest('hex') ?? null;
    const size = this.#size;
    const { base } = this.#target;
    const replaced = await this.#s.tx(async (trx): Promise<number | undefined> => {
      const { t } = this.#s;
      if (!(await this.#s.lockDir(trx, dirId))) throw fsError('ENOENT', 'open', this.path);
      let q = trx.selectFrom(t.inode('i')).select(INODE_COLUMNS.map((c) => `i.${c}` as const)).where('i.parent', '=', dirId).where('i.name', '=', name);
      // A conditional commit also locks the file's row: a file handle's in-place write (which bumps gen without the
      // directory's lock) then either committed before this read, and is seen, or waits for this transaction.
      if (base !== undefined && this.#s.dialect !== 'sqlite') q = q.forUpdate();
      const row = await q.executeTakeFirst();
      const existing = row === undefined ? undefined : toInode(row);
      if (existing?.type === T_DIR) throw fsError('EISDIR', 'open', this.path);
      if (base !== undefined && (base === null ? existing !== undefined : existing?.id !== base.id || existing.gen !== base.gen)) {
        throw changedError(this.path);
      }
      if (this.#s.quota !== undefined) {
        const left = await this.#s.available(trx);
        const freed = existing?.type === T_FILE ? existing.size : 0;
        if (size - freed > left) throw new VfsError('ENOSPC', 'ENOSPC: the upload exceeds the quota of this filesystem', { path: this.path });
      }
      // The old version leaves the tree here; its rows are reclaimed after the commit (a small one's go now).
      let reclaim = false;
      if (existing !== undefined) {
        if (existing.type === T_FILE) reclaim = await this.#s.removeFile(trx, existing.id);
        else await trx.deleteFrom(t.i).where('id', '=', existing.id).execute();
      }
      const now = Date.now();
      const linked = await trx
        .updateTable(t.i)
        .set({ parent: dirId, name, size, mtime: now, sha256 })
        .where('id', '=', tempId)
        .where('parent', 'is', null)
        .where('name', '=', tempName)
        .executeTakeFirst();
      // Swept as the upload of a dead process (untouched for a day), its rows going: nothing to swap in.
      if (Number(linked.numUpdatedRows) !== 1) throw new VfsError('EIO', 'EIO: the upload was discarded as stale before it completed', { path: this.path });
      await trx.updateTable(t.i).set({ mtime: now }).where('id', '=', dirId).execute();
      return reclaim ? existing?.id : undefined;
    });
    this.#done = true;
    if (replaced !== undefined) void this.#s.reclaim(replaced);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.#done) return cb(err);
    this.#abort().finally(() => cb(err));
  }

  /** The transfer failed: discard what was received (the target keeps its previous content). */
  transferError(err: Error): void {
    this.#failed ??= err;
    void this.#abort();
  }

  /**
   * Deletes the temporary inode and its chunks, once the INSERT in flight (if any) or the copy's statement has landed:
   * in one transaction for a few chunks; otherwise the inode is marked as removed (one statement) and its rows are
   * reclaimed in the background, in bounded statements ({@link settled} waits for that too). Only while the inode is
   * still the unlinked upload: resolves true when it is in the tree instead (its swap committed after all).
   */
  #abort(): Promise<boolean> {
    if (this.#done && this.#abortion === undefined) return Promise.resolve(false);
    this.#abortion ??= (async () => {
      this.#cur = null;
      this.#batch = [];
      // Let the INSERTs in flight land first, or their rows would outlive the cleanup (a failed one wrote nothing);
      // the copy stops after its running statement (the upload is given up, see #stopped).
      await Promise.allSettled([...this.#inflight, this.#copying]);
      const { tempId, tempName } = this.#target;
      const { t } = this.#s;
      let landed = false;
      try {
        // Only while it is still the unlinked upload, and its chunk rows only with it: the failure may be a COMMIT of
        // the swap that went through with its reply lost (a dropped connection), and then the inode is the file:
        // deleting it by id lost both versions. An abort racing a swap waits for the swap's row lock, then sees it.
        let discarded: boolean;
        // #seq: the next chunk row, so at least as many as the upload wrote (or copied).
        if (this.#seq <= INLINE_ROWS) {
          discarded = await this.#s.tx(async (trx) => {
            const r = await trx.deleteFrom(t.i).where('id', '=', tempId).where('parent', 'is', null).where('name', '=', tempName).executeTakeFirst();
            if (Number(r.numDeletedRows) === 0) return false;
            await trx.deleteFrom(t.c).where('inode', '=', tempId).execute();
            return true;
          });
        } else {
          const r = await this.#s.db
            .updateTable(t.i)
            .set({ name: detachedName(tempId), mtime: 0 })
            .where('id', '=', tempId)
            .where('parent', 'is', null)
            .where('name', '=', tempName)
            .executeTakeFirst();
          discarded = Number(r.numUpdatedRows) > 0;
          if (discarded) this.#reclaiming = this.#s.reclaim(tempId);
        }
        // Not discarded: either a sweep marked it already (and reclaims it), or it was linked by the swap. Only that
        // swap ever links it; the version it replaced is left to the periodic sweep (its id went with the reply).
        if (!discarded) {
          const row = await this.#s.db.selectFrom(t.inode('u')).select('u.parent').where('u.id', '=', tempId).executeTakeFirst();
          landed = row !== undefined && row.parent !== null;
        }
      } catch {
        // The database is failing or closed: the stale temporary inode is swept by age later.
      }
      this.#done = true;
      return landed;
    })();
    return this.#abortion;
  }

  /**
   * Resolves once an interrupted upload's rows are gone, or left for a later sweep (the provider closed meanwhile, the
   * database failing): for tests and orderly shutdowns.
   */
  get settled(): Promise<void> {
    return (this.#abortion ?? Promise.resolve()).then(() => this.#reclaiming);
  }
}

import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { fsError } from '@ftp/vfs';
import type { DialectName } from './dialects.js';
import { LEASE_MS } from './read-stream.js';
import { removedInline } from './reclaim.js';
import { nameOf } from './schema.js';
import type { Database, Tables } from './schema.js';
import type { Store } from './store.js';

const DETACHED_PREFIX = '.detached-';

/**
 * The name of a removed inode: unlinked (`parent` NULL) for good, its content waiting for its readers to end, then
 * for the reclaim (see {@link Reclaimer}). Its `mtime` is the expiry of the reclaimer's claim (0: unclaimed).
 */
export function detachedName(id: number): string {
  return `${DETACHED_PREFIX}${id}`;
}

/** The row of an inode as its lock reads it. */
interface LockedRow {
  parent: number | null;
  name: string;
  size: number;
  mtime: number;
}

/**
 * The end of an inode's life, and the reader leases that postpone it: a file deleted or replaced is unlinked and
 * marked ({@link detachedName}) in the transaction that removes it, and its content is reclaimed once no download
 * (in any process) holds a live lease on it — in that transaction for a small file, otherwise in the background, in
 * bounded statements ({@link Reclaimer}).
 */
export class InodeLifecycle {
  /** @param tx the provider's transaction runner (READ COMMITTED, retried on deadlocks). */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly tables: Tables,
    private readonly dialect: DialectName,
    private readonly tx: Store['tx'],
  ) {}

  /** Row lock on an inode (deleters, reclaimers and readers taking or ending a lease serialise on it). */
  async lockInode(trx: Kysely<Database>, id: number): Promise<LockedRow | undefined> {
    let q = trx.selectFrom(this.tables.inode('n')).select(['n.parent', 'n.name', 'n.size', 'n.mtime']).where('n.id', '=', id);
    if (this.dialect !== 'sqlite') q = q.forUpdate();
    const r = await q.executeTakeFirst();
    if (r === undefined) return undefined;
    return { parent: r.parent === null ? null : Number(r.parent), name: nameOf(r.name), size: Number(r.size), mtime: Number(r.mtime) };
  }

  /** Leases on `id` that have not expired. */
  async liveLeases(trx: Kysely<Database>, id: number): Promise<number> {
    const r = await trx
      .selectFrom(this.tables.reader('r'))
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('r.inode', '=', id)
      .where('r.expires', '>', Date.now())
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /** Deletes an inode with its chunks and leases (inside the caller's transaction): for inodes of a few chunks. */
  async deleteInode(trx: Kysely<Database>, id: number): Promise<void> {
    const t = this.tables;
    await trx.deleteFrom(t.c).where('inode', '=', id).execute();
    await trx.deleteFrom(t.r).where('inode', '=', id).execute();
    await trx.deleteFrom(t.i).where('id', '=', id).execute();
  }

  /**
   * Removes a file (inside the caller's transaction). A small one that no live lease holds is deleted with its rows;
   * any other is only unlinked and marked: true when its rows are then to be reclaimed (after the commit), false when
   * readers hold it (the last one schedules the reclaim, see {@link release}).
   */
  async removeFile(trx: Kysely<Database>, id: number): Promise<boolean> {
    const row = await this.lockInode(trx, id);
    if (row === undefined) return false;
    const leased = (await this.liveLeases(trx, id)) > 0;
    if (!leased && removedInline(row.size)) {
      await this.deleteInode(trx, id);
      return false;
    }
    await trx.updateTable(this.tables.i).set({ parent: null, name: detachedName(id), mtime: 0 }).where('id', '=', id).execute();
    return !leased;
  }

  /** Takes a lease on `id` for a download; ENOENT when the inode is gone or unlinked. */
  async lease(id: number, path: string): Promise<string> {
    const token = randomUUID();
    await this.tx(async (trx) => {
      // Under the inode's lock: a deleter either went first (the row is gone or unlinked: ENOENT, and the caller looks
      // the path up again) or will see this lease. A removed inode takes no new lease: its content may be going.
      const row = await this.lockInode(trx, id);
      if (row === undefined || row.parent === null) throw fsError('ENOENT', 'open', path);
      await trx.insertInto(this.tables.r).values({ inode: id, token, expires: Date.now() + LEASE_MS }).execute();
    });
    return token;
  }

  /** Extends a lease (never shortens it: a renewal that hung and lands after a later one changes nothing). */
  async renew(id: number, token: string): Promise<void> {
    const expires = Date.now() + LEASE_MS;
    await this.db.updateTable(this.tables.r).set({ expires }).where('inode', '=', id).where('token', '=', token).where('expires', '<', expires).execute();
  }

  /**
   * Ends a lease. The last one of a removed inode deletes it when it is small; returns true when a big one is then to
   * be reclaimed (by the caller, in the background). Never throws.
   */
  async release(id: number, token: string): Promise<boolean> {
    try {
      return await this.tx(async (trx) => {
        const row = await this.lockInode(trx, id);
        await trx.deleteFrom(this.tables.r).where('inode', '=', id).where('token', '=', token).execute();
        if (row === undefined || row.parent !== null || row.name !== detachedName(id) || (await this.liveLeases(trx, id)) > 0) return false;
        if (!removedInline(row.size)) return true;
        await this.deleteInode(trx, id);
        return false;
      });
    } catch {
      // The lease expires by itself; the removed inode is then found by a sweep.
      return false;
    }
  }

  /**
   * Claims a removed inode for its reclaim: under its row lock, when it is marked, unclaimed (or the claim expired)
   * and no live lease holds it. Its dead leases go; its `mtime` becomes the claim's expiry, returned (undefined: not
   * claimed).
   */
  async claim(id: number, ms: number): Promise<number | undefined> {
    return this.tx(async (trx) => {
      const row = await this.lockInode(trx, id);
      if (row === undefined || row.parent !== null || row.name !== detachedName(id)) return undefined;
      const now = Date.now();
      if (row.mtime > now) return undefined;
      if ((await this.liveLeases(trx, id)) > 0) return undefined;
      await trx.deleteFrom(this.tables.r).where('inode', '=', id).execute();
      const until = now + ms;
      await trx.updateTable(this.tables.i).set({ mtime: until }).where('id', '=', id).execute();
      return until;
    });
  }

  /** Extends a claim still held (`mtime` still `until`); undefined when it is not (the inode gone, or claimed anew). */
  async renewClaim(id: number, until: number, ms: number): Promise<number | undefined> {
    const next = Date.now() + ms;
    return (await this.#setClaim(id, until, next)) ? next : undefined;
  }

  /** Gives a claim back (a reclaim stopped mid-way): the next sweep may take the inode at once. */
  async unclaim(id: number, until: number): Promise<void> {
    await this.#setClaim(id, until, 0);
  }

  /** Sets the claim of a marked inode whose claim is still `until`; false when it was not. */
  async #setClaim(id: number, until: number, next: number): Promise<boolean> {
    const r = await this.db
      .updateTable(this.tables.i)
      .set({ mtime: next })
      .where('id', '=', id)
      .where('parent', 'is', null)
      .where('name', '=', detachedName(id))
      .where('mtime', '=', until)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** The end of a reclaim: the marked inode row goes, with its leases and any chunk row left (none, normally). */
  async finish(id: number): Promise<void> {
    await this.tx(async (trx) => {
      const row = await this.lockInode(trx, id);
      if (row === undefined || row.parent !== null || row.name !== detachedName(id)) return;
      await this.deleteInode(trx, id);
    });
  }

  /**
   * Deletes dead leases; marks unlinked inodes untouched since `staleBefore` (uploads of processes that died) for
   * reclaim; returns the marked inodes that no unexpired claim holds (those still leased are skipped by the claim).
   * Two short statements, and one per stale upload: the rows themselves are the reclaimer's.
   */
  async sweep(staleBefore: number): Promise<number[]> {
    const t = this.tables;
    const now = Date.now();
    await this.db.deleteFrom(t.r).where('expires', '<', now).execute();
    // Unlinked inodes that are marked or stale: uploads in progress (fresh mtime, not marked) are not even read.
    const rows = await this.db
      .selectFrom(t.inode('s'))
      .select(['s.id', 's.name', 's.mtime'])
      .where('s.parent', 'is', null)
      .where((eb) => eb.or([eb('s.mtime', '<', staleBefore), eb('s.name', 'like', `${DETACHED_PREFIX}%`)]))
      .execute();
    const ids: number[] = [];
    for (const r of rows) {
      const id = Number(r.id);
      const mtime = Number(r.mtime);
      if (nameOf(r.name) === detachedName(id)) {
        if (mtime <= now) ids.push(id);
        continue;
      }
      if (mtime >= staleBefore) continue;
      // Only while it is still that stale (an upload alive after all refreshes its mtime, then commits by its name).
      const u = await this.db
        .updateTable(t.i)
        .set({ name: detachedName(id), mtime: 0 })
        .where('id', '=', id)
        .where('parent', 'is', null)
        .where('mtime', '<', staleBefore)
        .executeTakeFirst();
      if (Number(u.numUpdatedRows) > 0) ids.push(id);
    }
    return ids;
  }
}

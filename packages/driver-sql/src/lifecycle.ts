import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { fsError } from '@ftp/vfs';
import type { DialectName } from './dialects.js';
import { LEASE_MS } from './read-stream.js';
import { nameOf } from './schema.js';
import type { Database, Tables } from './schema.js';
import type { Store } from './store.js';

/** Name prefix of a file unlinked while readers still hold it. */
const DETACHED = '.detached-';

/**
 * The end of an inode's life, and the reader leases that postpone it: a file deleted or replaced while some
 * download (in any process) holds a live lease on it is only unlinked, and the last reader deletes it.
 */
export class InodeLifecycle {
  /** @param tx the provider's transaction runner (READ COMMITTED, retried on deadlocks). */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly tables: Tables,
    private readonly dialect: DialectName,
    private readonly tx: Store['tx'],
  ) {}

  /** Row lock on an inode (deleters and readers taking or ending a lease serialise on it). */
  async lockInode(trx: Kysely<Database>, id: number): Promise<{ parent: number | null; name: string } | undefined> {
    let q = trx.selectFrom(this.tables.inode('n')).select(['n.parent', 'n.name']).where('n.id', '=', id);
    if (this.dialect !== 'sqlite') q = q.forUpdate();
    const r = await q.executeTakeFirst();
    return r === undefined ? undefined : { parent: r.parent === null ? null : Number(r.parent), name: nameOf(r.name) };
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

  /** Deletes an inode with its chunks and leases (inside the caller's transaction). */
  async deleteInode(trx: Kysely<Database>, id: number): Promise<void> {
    const t = this.tables;
    await trx.deleteFrom(t.c).where('inode', '=', id).execute();
    await trx.deleteFrom(t.r).where('inode', '=', id).execute();
    await trx.deleteFrom(t.i).where('id', '=', id).execute();
  }

  /** Deletes a file, or unlinks it while live leases hold it (inside the caller's transaction). */
  async removeFile(trx: Kysely<Database>, id: number): Promise<void> {
    await this.lockInode(trx, id);
    if ((await this.liveLeases(trx, id)) > 0) {
      // Detached: unlinked but kept for its readers (in any process); the last one deletes it.
      await trx.updateTable(this.tables.i).set({ parent: null, name: `${DETACHED}${id}`, mtime: Date.now() }).where('id', '=', id).execute();
      return;
    }
    await this.deleteInode(trx, id);
  }

  /** Takes a lease on `id` for a download; ENOENT when the inode is gone. */
  async lease(id: number, path: string): Promise<string> {
    const token = randomUUID();
    await this.tx(async (trx) => {
      // Under the inode's lock: a deleter either went first (the row is gone: ENOENT) or will see this lease.
      if ((await this.lockInode(trx, id)) === undefined) throw fsError('ENOENT', 'open', path);
      await trx.insertInto(this.tables.r).values({ inode: id, token, expires: Date.now() + LEASE_MS }).execute();
    });
    return token;
  }

  /** Extends a lease. */
  async renew(id: number, token: string): Promise<void> {
    await this.db.updateTable(this.tables.r).set({ expires: Date.now() + LEASE_MS }).where('inode', '=', id).where('token', '=', token).execute();
  }

  /** Ends a lease; the last one of a detached inode deletes it. Never throws. */
  async release(id: number, token: string): Promise<void> {
    try {
      await this.tx(async (trx) => {
        const row = await this.lockInode(trx, id);
        await trx.deleteFrom(this.tables.r).where('inode', '=', id).where('token', '=', token).execute();
        if (row !== undefined && row.parent === null && row.name.startsWith(DETACHED) && (await this.liveLeases(trx, id)) === 0) {
          await this.deleteInode(trx, id);
        }
      });
    } catch {
      // The lease expires by itself; a detached inode is then swept by migrate().
    }
  }

  /** Deletes dead leases, and unlinked inodes untouched since `before` that no live lease holds. */
  async sweep(before: number): Promise<void> {
    const t = this.tables;
    await this.tx(async (trx) => {
      await trx.deleteFrom(t.r).where('expires', '<', Date.now()).execute();
      const old = trx.selectFrom(t.inode('s')).select('s.id').where('s.parent', 'is', null).where('s.mtime', '<', before);
      const ids = (await old.execute()).map((r) => Number(r.id));
      for (const id of ids) if ((await this.liveLeases(trx, id)) === 0) await this.deleteInode(trx, id);
    });
  }
}

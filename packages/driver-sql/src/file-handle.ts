import { fsError, VfsError, VfsStats } from '@ftp/vfs';
import type { OpenFlags } from '@ftp/vfs';
import { dbError } from './errors.js';
import { CHUNK_SIZE, INODE_COLUMNS, toBuffer, toInode } from './schema.js';
import type { Inode } from './schema.js';
import type { Store } from './store.js';
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

/**
 * A file handle (`open()`), for callers of the `@platformatic/vfs` API. Unlike the streams it reads and writes
 * chunks in place, one transaction per write (read-modify-write of the chunks touched): not atomic, no stored
 * digest. FTP transfers use the streams.
 */
export class SqlFileHandle {
  /** Position of reads and writes without an explicit one. */
  position = 0;
  #closed = false;

  /** @internal */
  constructor(
    private readonly s: Store,
    private readonly id: number,
    private readonly flags: OpenFlags,
    readonly path: string,
    private readonly statsOf: (i: Inode) => VfsStats,
  ) {}

  async #row(q: Kysely<Database> = this.s.db): Promise<Inode> {
    const r = await q.selectFrom(this.s.t.inode('i')).select(INODE_COLUMNS.map((c) => `i.${c}` as const)).where('i.id', '=', this.id).executeTakeFirst();
    // Unlinked: the file was deleted or replaced, and its rows may be going (reclaimed in the background).
    if (r === undefined || r.parent === null) throw fsError('ENOENT', 'read', this.path);
    return toInode(r);
  }

  #check(op: 'read' | 'write'): void {
    if (this.#closed || !(op === 'read' ? this.flags.read : this.flags.write)) throw fsError('EINVAL', op, this.path);
  }

  async #chunks(q: Kysely<Database>, from: number, to: number): Promise<Map<number, Buffer>> {
    const rows = await q
      .selectFrom(this.s.t.chunk('c'))
      .select(['c.seq', 'c.bytes'])
      .where('c.inode', '=', this.id)
      .where('c.seq', '>=', from)
      .where('c.seq', '<=', to)
      .execute();
    return new Map(rows.map((r) => [Number(r.seq), toBuffer(r.bytes)]));
  }

  /** Reads up to `length` bytes at `position` (or the current position). */
  async read<T extends Uint8Array>(buffer: T, offset = 0, length = buffer.byteLength - offset, position: number | null = null): Promise<{ bytesRead: number; buffer: T }> {
    this.#check('read');
    try {
      const pos = position ?? this.position;
      const size = (await this.#row()).size;
      const end = Math.min(size, pos + length);
      let n = 0;
      if (end > pos) {
        const chunks = await this.#chunks(this.s.db, Math.floor(pos / CHUNK_SIZE), Math.floor((end - 1) / CHUNK_SIZE));
        for (let p = pos; p < end; ) {
          const seq = Math.floor(p / CHUNK_SIZE);
          const chunk = chunks.get(seq) ?? Buffer.alloc(0);
          const a = p - seq * CHUNK_SIZE;
          const b = Math.min(chunk.length, end - seq * CHUNK_SIZE);
          if (b <= a) {
            // Short of the size read above: truncated meanwhile (a short read, as a file system gives), or removed
            // (ENOENT: its rows are going); never a short read of a file that still has the bytes.
            if ((await this.#row()).size <= p) break;
            throw new VfsError('EIO', `EIO: chunk ${seq} of the file is missing`, { path: this.path, syscall: 'read' });
          }
          buffer.set(chunk.subarray(a, b), offset + (p - pos));
          p = seq * CHUNK_SIZE + b;
          n = p - pos;
        }
      }
      if (position === null) this.position = pos + n;
      return { bytesRead: n, buffer };
    } catch (err) {
      throw dbError(err, this.s.where, this.path);
    }
  }

  /** Writes `length` bytes at `position` (the end with `'a'`), in one transaction. */
  async write<T extends Uint8Array>(buffer: T, offset = 0, length = buffer.byteLength - offset, position: number | null = null): Promise<{ bytesWritten: number; buffer: T }> {
    this.#check('write');
    const data = buffer.subarray(offset, offset + length);
    try {
      const pos = await this.s.tx(async (trx) => {
        const size = (await this.#row(trx)).size;
        const at = this.flags.append ? size : (position ?? this.position);
        await this.#splice(trx, size, at, data);
        return at;
      });
      if (position === null || this.flags.append) this.position = pos + length;
      return { bytesWritten: length, buffer };
    } catch (err) {
      throw dbError(err, this.s.where, this.path);
    }
  }

  /** Puts `data` at `at` (zeros between the old end and `at`), chunk by chunk, inside the caller's transaction. */
  async #splice(trx: Kysely<Database>, size: number, at: number, data: Uint8Array): Promise<void> {
    const start = Math.min(size, at);
    const end = Math.max(size, at + data.length);
    const newSize = Math.max(size, at + data.length);
    if (end <= start) return;
    const first = Math.floor(start / CHUNK_SIZE);
    const last = Math.floor((Math.max(end, start + 1) - 1) / CHUNK_SIZE);
    const old = await this.#chunks(trx, first, last);
    const { t } = this.s;
    for (let seq = first; seq <= last; seq++) {
      const base = seq * CHUNK_SIZE;
      const len = Math.min(CHUNK_SIZE, newSize - base);
      const chunk = Buffer.alloc(len);
      old.get(seq)?.copy(chunk, 0, 0, Math.min(len, old.get(seq)?.length ?? 0));
      const a = Math.max(at, base);
      const b = Math.min(at + data.length, base + len);
      if (b > a) chunk.set(data.subarray(a - at, b - at), a - base);
      await trx.deleteFrom(t.c).where('inode', '=', this.id).where('seq', '=', seq).execute();
      await trx.insertInto(t.c).values({ inode: this.id, seq, bytes: chunk }).execute();
    }
    // gen + 1: an APPE or REST + STOR that copied the previous content must not commit over this write.
    await this.#bump(trx, newSize);
  }

  /**
   * Sets the new size (gen + 1) of the file while it is still in the tree; ENOENT (the transaction rolls back, with
   * the chunk rows it wrote) when a deletion committed meanwhile: rows written under a removed inode would outlive
   * its reclaim.
   */
  async #bump(trx: Kysely<Database>, size: number): Promise<void> {
    const r = await trx
      .updateTable(this.s.t.i)
      .set((eb) => ({ size, mtime: Date.now(), sha256: null, gen: eb('gen', '+', 1) }))
      .where('id', '=', this.id)
      .where('parent', 'is not', null)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) throw fsError('ENOENT', 'write', this.path);
  }

  /** Cuts or zero-extends the file to `len` bytes. */
  async truncate(len = 0): Promise<void> {
    this.#check('write');
    try {
      await this.s.tx(async (trx) => {
        const size = (await this.#row(trx)).size;
        const { t } = this.s;
        if (len >= size) {
          if (len > size) await this.#splice(trx, size, len, new Uint8Array(0));
          return;
        }
        const keep = Math.ceil(len / CHUNK_SIZE);
        await trx.deleteFrom(t.c).where('inode', '=', this.id).where('seq', '>=', keep).execute();
        if (len % CHUNK_SIZE !== 0) {
          const seq = keep - 1;
          const chunk = (await this.#chunks(trx, seq, seq)).get(seq);
          if (chunk !== undefined) {
            await trx.deleteFrom(t.c).where('inode', '=', this.id).where('seq', '=', seq).execute();
            await trx.insertInto(t.c).values({ inode: this.id, seq, bytes: Buffer.from(chunk.subarray(0, len % CHUNK_SIZE)) }).execute();
          }
        }
        await this.#bump(trx, len);
      });
    } catch (err) {
      throw dbError(err, this.s.where, this.path);
    }
  }

  /** Stats of the open file. */
  async stat(): Promise<VfsStats> {
    try {
      return this.statsOf(await this.#row());
    } catch (err) {
      throw dbError(err, this.s.where, this.path);
    }
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}

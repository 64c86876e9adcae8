import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { Readable, Writable } from 'node:stream';
import type { MkdirOptions, ReaddirOptions } from '@platformatic/vfs';
import { fsError, toVfsError, VfsError } from '../errors.js';
import { basename, dirname, normalizePath, resolvePath, splitPath } from '../paths.js';
import { SPEC_VERSION } from '../spec.js';
import { slicesFromGenerator } from '../listing.js';
import { SyncBackedProvider } from './sync-backed.js';
import type { DirEntry, DirSlices, FsProvider, ReadStreamOptions, UploadStream, WriteStreamOptions } from '../spec.js';
import { parseOpenFlags, VfsDirent, VfsStats } from '../stats.js';
import type { NodeKind, OpenFlags } from '../stats.js';
import { checkStreamOptions, countWhileOpen } from '../streams.js';
import { RunningUploads } from '../upload-holds.js';
import { ReadTurns } from './read-turns.js';
import { WalCheckpointer } from './sqlite-checkpointer.js';

/**
 * `node:sqlite`, loaded when the first provider is created: importing this package does not load it (it is
 * experimental, and behind a flag before Node 22.13).
 */
function sqlite(): typeof import('node:sqlite') {
  const mod = process.getBuiltinModule('node:sqlite') as typeof import('node:sqlite') | undefined;
  if (mod === undefined) throw new VfsError('ENOTSUP', 'ENOTSUP: node:sqlite is not available in this Node.js');
  return mod;
}

const ROOT_ID = 1;
const T_FILE = 0;
const T_DIR = 1;
const T_LINK = 2;
const KINDS: readonly NodeKind[] = ['file', 'directory', 'symlink'];
const MAX_SYMLINK_HOPS = 40;
/**
 * Pending uploads and detached files older than this are deleted (in the background, in batches) when a database is
 * opened and every {@link SWEEP_EVERY_MS} after: those of a process that died, or stopped deleting them.
 */
const STALE_MS = 24 * 3600 * 1000;
const SWEEP_EVERY_MS = 3600 * 1000;
/** Tries of a batch that fails (SQLITE_BUSY from another process, say) before its file is left to the sweep. */
const RECLAIM_TRIES = 3;

/** Options of {@link SqliteProvider}. */
export interface SqliteProviderOptions {
  /**
   * Bytes per stored chunk (default 256 KiB). Recorded in the database when it is created; an existing database
   * keeps its own.
   */
  chunkSize?: number;
  /** Chunks an upload buffers before writing them in one transaction (default 4: 1 MiB with the default size). */
  batchChunks?: number;
  /** How long a statement waits for another process's lock, in ms (default 5000). */
  busyTimeout?: number;
}

interface Row {
  id: number;
  type: number;
  size: number;
  mtime: number;
  birthtime: number;
  mode: number;
  target: string | null;
  /** Content generation: + 1 on every in-place change of the content (file handles); see {@link SqliteProvider}. */
  gen: number;
}

/**
 * The version of a file an upload continues (APPE, REST + STOR): its node id and generation, `null` when there was
 * no file. Stream uploads never change a node's content (they swap in a new node) and file handles bump `gen`, so
 * (id, gen) names one content. Node ids are not reused while the upload runs: SQLite gives a new row the largest
 * rowid + 1, and the upload's own temporary node, newer than the file, exists until the commit.
 */
type Base = { id: number; gen: number } | null;

/** The name of a file detached to be deleted: what its background deletion checks it still has. */
const orphanName = (id: number): string => `.orphan-${id}`;

/**
 * What an upload that continues a file (APPE, REST + STOR) copies of it before its own bytes: the first `chunks`
 * whole chunks of the version it continues (its `Base`; in SQL, row to row), then the first `tail` bytes of the next
 * one, then `gap` zeros.
 */
interface KeptPart {
  chunks: number;
  tail: number;
  gap: number;
}

/**
 * Bytes of kept chunks copied per transaction (rounded to whole chunks, at least one). SQLite runs on this thread:
 * one `INSERT … SELECT` of a whole 1.5 GiB file held every session for 43 s; a batch this size takes ~10–20 ms,
 * then the other sessions get their turn.
 */
const COPY_BATCH_BYTES = 2 * 1024 * 1024;

/**
 * Content up to this size is deleted with its file, in the same statement; a bigger file is detached (parentless)
 * and its chunks deleted afterwards, {@link COPY_BATCH_BYTES} per transaction with turns between: one DELETE of 1 GiB
 * of chunks held every session for 0.6–0.8 s (a DELE, or the commit of an upload replacing the file).
 */
const DELETE_INLINE_BYTES = 1024 * 1024;

interface Location {
  /** Undefined for the root. */
  dirId: number | undefined;
  dirPath: string;
  name: string;
  row: Row | undefined;
  path: string;
}

function toBuffer(data: unknown): Buffer {
  const u8 = data as Uint8Array;
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

/** Internals the streams and handles of the provider use. */
interface Internals {
  chunkSize: number;
  batchChunks: number;
  db: DatabaseSync;
  st: Statements;
  /** Runs `fn` in a write transaction; `walBytes`: about what it writes, for the checkpointer. */
  tx<T>(fn: () => T, walBytes?: number): T;
  /** Undefined when uploads may write now; else a promise of when they may (the WAL is being checkpointed). */
  walRoom(): Promise<void> | undefined;
  addReader(id: number): void;
  removeReader(id: number): void;
  removeFile(id: number, size: number): void;
  statsOf(row: Row): VfsStats;
  getNode(id: number): Row | undefined;
  /** Temporary nodes of this process's uploads still running: the stale sweep leaves them alone. */
  liveUploads: Set<number>;
}

/**
 * Brings a database made by an earlier version up to date, in place and keeping everything: `nodes.gen` (the content
 * generation, see {@link Base}) is added with the constant default 0, a schema-only change in SQLite (no row is
 * rewritten, instant whatever the size). Checked and done under the write lock, so two processes opening one old
 * file at once add it once. Earlier versions still open an upgraded file (they name their columns).
 */
function upgradeSchema(db: DatabaseSync): void {
  const hasGen = (): boolean => (db.prepare('PRAGMA table_info(nodes)').all() as { name: string }[]).some((c) => c.name === 'gen');
  if (hasGen()) return;
  db.exec('BEGIN IMMEDIATE');
  try {
    if (!hasGen()) db.exec('ALTER TABLE nodes ADD COLUMN gen INTEGER NOT NULL DEFAULT 0');
    db.exec('COMMIT');
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
}

/** Entries per slice of a sliced listing (`listSlices`): the local provider's slice, a few hundred KB of entries. */
const LIST_SLICE = 500;

type Statements = Record<
  | 'getChild'
  | 'getNode'
  | 'children'
  | 'childrenAfter'
  | 'hasChild'
  | 'insertNode'
  | 'deleteNode'
  | 'deleteChunks'
  | 'deleteChunksFrom'
  | 'deleteSomeChunks'
  | 'detachedName'
  | 'staleDetached'
  | 'detachNode'
  | 'moveNode'
  | 'setMtime'
  | 'setBirthtime'
  | 'setMode'
  | 'setSize'
  | 'setContentSize'
  | 'getChunk'
  | 'putChunk'
  | 'copyChunkRange'
  | 'parentOf',
  StatementSync
>;

/** Streams a file chunk by chunk (one SELECT per 256 KiB chunk by default). */
class SqliteReadStream extends Readable {
  #id: number;
  #pos: number;
  #end: number;
  #in: Internals;
  #released = false;
  readonly #turns = new ReadTurns();

  constructor(internals: Internals, row: Row, start: number, endInclusive: number | undefined) {
    super({ highWaterMark: internals.chunkSize });
    this.#in = internals;
    this.#id = row.id;
    this.#pos = start;
    this.#end = Math.min(row.size, endInclusive === undefined ? Infinity : endInclusive + 1);
    internals.addReader(row.id);
  }

  override _read(): void {
    if (this.#turns.waiting) return;
    try {
      const cs = this.#in.chunkSize;
      while (this.#pos < this.#end) {
        if (this.#turns.due(() => !this.destroyed && this._read())) return;
        const seq = Math.floor(this.#pos / cs);
        const r = this.#in.st.getChunk.get(this.#id, seq);
        if (r === undefined) throw new VfsError('EIO', `EIO: chunk ${seq} of a file is missing`);
        const chunk = toBuffer(r.data);
        const a = this.#pos - seq * cs;
        const b = Math.min(chunk.length, this.#end - seq * cs);
        if (b <= a) throw new VfsError('EIO', `EIO: chunk ${seq} of a file is short`);
        this.#pos = seq * cs + b;
        this.#turns.count(b - a);
        if (!this.push(a === 0 && b === chunk.length ? chunk : chunk.subarray(a, b))) return;
        // A read inside that push (a consumer that takes the chunk at once) may have begun the wait for a turn.
        if (this.#turns.waiting) return;
      }
      this.push(null);
    } catch (err) {
      this.destroy(err as Error);
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.#released) {
      this.#released = true;
      this.#in.removeReader(this.#id);
    }
    cb(err);
  }
}

/**
 * An upload into a temporary node (no parent, invisible), in chunks written `batchChunks` at a time in one
 * transaction; on `end()` the node replaces the target in one transaction. An interrupted upload (`transferError`,
 * or `destroy()` before the end) deletes the temporary node and its chunks.
 */
class SqliteWriteStream extends Writable implements UploadStream {
  #in: Internals;
  #tempId: number;
  #dirId: number;
  #name: string;
  #seq: number;
  #cur: Buffer | null = null;
  #curUsed = 0;
  #batch: Buffer[] = [];
  /** {@link #takeSome} stopped after writing a batch. */
  #wroteBatch = false;
  #size: number;
  #done = false;
  #failed: Error | undefined;
  /** See {@link Base}; undefined for a whole-file upload (STOR), which replaces whatever is there. */
  #base: Base | undefined;
  /** Bytes stored so far, the kept part being copied included (see {@link UploadStream.storedBytes}). */
  get storedBytes(): number {
    return this.#size;
  }

  /** Copied in `_construct`, before the first write is taken. */
  #kept: KeptPart | undefined;
  /** Every chunk is copied into chunk buffers of the stream's own before its callback. */
  readonly releasesChunks = true;

  /**
   * @param kept what the upload keeps of the file it continues, copied before its first byte.
   * @param base for an upload that continues the file, the version it copied from: the commit happens only if the
   *   entry is still that version (or still absent), else EBUSY. Undefined for a whole-file upload.
   */
  constructor(
    internals: Internals,
    tempId: number,
    dirId: number,
    name: string,
    kept: KeptPart | undefined,
    base: Base | undefined,
    private readonly path: string,
  ) {
    super({ highWaterMark: internals.chunkSize });
    this.#in = internals;
    this.#base = base;
    this.#tempId = tempId;
    internals.liveUploads.add(tempId);
    this.#dirId = dirId;
    this.#name = name;
    this.#seq = 0;
    this.#size = 0;
    this.#kept = kept;
  }

  // Writable holds writes, `end()` and `destroy()` until this calls back.
  override _construct(cb: (err?: Error | null) => void): void {
    const kept = this.#kept;
    this.#kept = undefined;
    if (kept === undefined) return cb();
    this.#copyKept(kept).then(
      () => cb(),
      (err: unknown) => cb(toVfsError(err)),
    );
  }

  /**
   * Copies the kept part a batch of chunks per transaction, giving the thread back between batches. Each batch
   * first checks that the file is still the version being copied: a change makes the upload fail (EBUSY) at once
   * rather than copy a mix of versions (the commit would refuse it anyway). A destroyed stream stops copying.
   */
  async #copyKept(kept: KeptPart): Promise<void> {
    const { chunkSize: cs, st } = this.#in;
    // Kept bytes come from an existing file: the version the upload continues (gap-only keeps nothing of one).
    const source = this.#base ?? { id: 0, gen: 0 };
    const perBatch = Math.max(1, Math.floor(COPY_BATCH_BYTES / cs));
    // A turn first: whoever opened the stream is listening for its errors before the first batch can fail.
    await new Promise(setImmediate);
    for (let copied = kept.chunks === 0 && kept.tail === 0; !copied; ) {
      // Destroyed, or discarded by `transferError` (its node already deleted): copy nothing more.
      if (this.destroyed || this.#done) return;
      await this.#in.walRoom();
      if (this.destroyed || this.#done) return;
      copied = this.#in.tx(() => {
        // Still the file at this path, at the version copied: a delete or a replacement detaches it with its gen.
        const from = this.#in.st.getChild.get(this.#dirId, this.#name) as Row | undefined;
        if (from === undefined || from.id !== source.id || from.gen !== source.gen) throw this.#changed();
        const end = Math.min(kept.chunks, this.#seq + perBatch);
        if (end > this.#seq) st.copyChunkRange.run(this.#tempId, source.id, this.#seq, end);
        this.#seq = end;
        this.#size = end * cs;
        if (end < kept.chunks) return false;
        if (kept.tail > 0) {
          const r = st.getChunk.get(source.id, kept.chunks);
          if (r === undefined) throw new VfsError('EIO', 'EIO: missing chunk', { path: this.path });
          this.#take(toBuffer(r.data).subarray(0, kept.tail));
        }
        return true;
      }, perBatch * cs);
      if (!copied) await new Promise(setImmediate);
    }
    for (let gap = kept.gap; gap > 0; ) {
      if (this.destroyed || this.#done) return;
      const n = Math.min(gap, perBatch * cs);
      this.zeroFill(n);
      gap -= n;
      await new Promise(setImmediate);
    }
  }

  #changed(): VfsError {
    return new VfsError('EBUSY', `EBUSY: '${this.path}' was changed by another client while this upload continued it; nothing was written, try again`, {
      path: this.path,
      syscall: 'write',
    });
  }

  /** Copies `data` into chunk buffers; full chunks go to the batch, a full batch to the database. */
  #take(data: Uint8Array): void {
    for (let off = 0; off < data.length; ) off = this.#takeSome(data, off);
    this.#wroteBatch = false;
  }

  /**
   * Copies `data` from `from` on, as {@link #take}, but stops after a batch went to the database (`#wroteBatch`
   * set): returns the offset reached.
   */
  #takeSome(data: Uint8Array, from: number): number {
    const cs = this.#in.chunkSize;
    let off = from;
    while (off < data.length) {
      if (this.#cur === null) {
        this.#cur = Buffer.allocUnsafeSlow(cs);
        this.#curUsed = 0;
      }
      const n = Math.min(cs - this.#curUsed, data.length - off);
      this.#cur.set(data.subarray(off, off + n), this.#curUsed);
      this.#curUsed += n;
      this.#size += n;
      off += n;
      if (this.#curUsed === cs) {
        this.#batch.push(this.#cur);
        this.#cur = null;
        if (this.#batch.length >= this.#in.batchChunks) {
          this.#in.tx(() => this.#flush(), this.#in.batchChunks * cs);
          this.#wroteBatch = true;
          return off;
        }
      }
    }
    return off;
  }

  /** Writes the batched chunks (inside the caller's transaction). */
  #flush(): void {
    for (const chunk of this.#batch) this.#in.st.putChunk.run(this.#tempId, this.#seq++, chunk);
    this.#batch = [];
    this.#in.st.setSize.run(this.#seq * this.#in.chunkSize, Date.now(), this.#tempId);
  }

  /** Appends zeros (REST beyond the end of the file). */
  zeroFill(n: number): void {
    const zeros = Buffer.alloc(Math.min(n, this.#in.chunkSize));
    while (n > 0) {
      const k = Math.min(n, zeros.length);
      this.#take(k === zeros.length ? zeros : zeros.subarray(0, k));
      n -= k;
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#writeAll([chunk], cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.#writeAll(
      chunks.map((c) => c.chunk),
      cb,
    );
  }

  /**
   * Stores `list`, giving the event loop a turn after each batch written. The database writes are synchronous: a
   * write that called back at once would let the sender hand over the next data in the same turn, for as long as
   * data keeps arriving (a socket's read loop handed over tens of MiB at a time, holding every other session for
   * 80–600 ms during a fast upload). While the checkpointer catches up ({@link Internals.walRoom}) the data waits
   * here, and the client behind it (TCP's window). An upload discarded or destroyed meanwhile stores nothing more.
   */
  #writeAll(list: Uint8Array[], cb: (err?: Error | null) => void): void {
    let i = 0;
    let off = 0;
    const step = (): void => {
      if (this.#done || this.destroyed) return cb();
      const wait = this.#in.walRoom();
      if (wait !== undefined) {
        void wait.then(step);
        return;
      }
      try {
        while (i < list.length) {
          const data = list[i]!;
          off = this.#takeSome(data, off);
          if (off >= data.length) {
            i++;
            off = 0;
          }
          if (this.#wroteBatch) {
            this.#wroteBatch = false;
            setImmediate(step);
            return;
          }
        }
      } catch (err) {
        return cb(toVfsError(err));
      }
      cb();
    };
    step();
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.#failed !== undefined) {
      this.#abort();
      return cb(this.#failed);
    }
    try {
      // What this commit writes: the last chunks, for the checkpointer's count.
      const last = this.#batch.length * this.#in.chunkSize + (this.#cur === null ? 0 : this.#curUsed);
      this.#in.tx(() => {
        if (this.#cur !== null && this.#curUsed > 0) this.#batch.push(this.#cur.subarray(0, this.#curUsed));
        this.#cur = null;
        this.#flush();
        const st = this.#in.st;
        const dir = this.#in.getNode(this.#dirId);
        if (dir === undefined || dir.type !== T_DIR) throw fsError('ENOENT', 'open', this.#name);
        const existing = st.getChild.get(this.#dirId, this.#name) as Row | undefined;
        // Under BEGIN IMMEDIATE (the database's write lock, across processes too): nothing changes the entry between
        // this check and the swap.
        const base = this.#base;
        if (base !== undefined && (base === null ? existing !== undefined : existing?.id !== base.id || existing.gen !== base.gen)) {
          throw this.#changed();
        }
        if (existing !== undefined) {
          if (existing.type === T_DIR) throw fsError('EISDIR', 'open', this.#name);
          if (existing.type === T_FILE) this.#in.removeFile(existing.id, existing.size);
          else st.deleteNode.run(existing.id);
        }
        const now = Date.now();
        // The upload's own node, or it is gone (deleted under it): nothing may be reported stored.
        if (Number(st.moveNode.run(this.#dirId, this.#name, this.#tempId).changes) !== 1) throw new VfsError('EIO', 'EIO: the upload was lost before it could be stored', { path: this.path });
        st.setSize.run(this.#size, now, this.#tempId);
        st.setMtime.run(now, this.#dirId);
      }, last);
      this.#done = true;
      this.#in.liveUploads.delete(this.#tempId);
      cb();
    } catch (err) {
      this.#abort();
      cb(toVfsError(err));
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.#done) this.#abort();
    cb(err);
  }

  /** Discards the upload: the target keeps its previous content. */
  transferError(err: Error): void {
    this.#failed = err;
    this.#abort();
  }

  #abort(): void {
    if (this.#done) return;
    this.#done = true;
    this.#in.liveUploads.delete(this.#tempId);
    this.#cur = null;
    this.#batch = [];
    try {
      this.#in.tx(() => {
        this.#in.st.deleteChunks.run(this.#tempId);
        this.#in.st.deleteNode.run(this.#tempId);
      });
    } catch {
      // The database is closed or failing: the stale temporary node is removed the next time it is opened.
    }
  }
}

/** A file handle of {@link SqliteProvider}: reads and writes chunks in place (not atomic, unlike the streams). */
export class SqliteFileHandle {
  /** Current position of reads and writes without an explicit position. */
  position = 0;
  #closed = false;

  /** @internal */
  constructor(
    private readonly internals: Internals,
    private readonly id: number,
    private readonly openFlags: OpenFlags,
    readonly path: string,
    readonly flags: string | number,
    readonly mode: number,
  ) {
    if (openFlags.append) this.position = this.#size();
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #row(): Row {
    const row = this.internals.getNode(this.id);
    if (row === undefined) throw fsError('ENOENT', 'read', this.path);
    return row;
  }

  #size(): number {
    return this.#row().size;
  }

  #check(op: 'read' | 'write'): void {
    if (this.#closed) throw fsError('EINVAL', op, this.path);
    if (op === 'read' ? !this.openFlags.read : !this.openFlags.write) throw fsError('EINVAL', op, this.path);
  }

  readSync(buffer: Uint8Array, offset = 0, length = buffer.byteLength - offset, position: number | null = null): number {
    this.#check('read');
    const pos = position ?? this.position;
    const end = Math.min(this.#size(), pos + length);
    const cs = this.internals.chunkSize;
    let p = pos;
    while (p < end) {
      const seq = Math.floor(p / cs);
      const r = this.internals.st.getChunk.get(this.id, seq);
      if (r === undefined) throw new VfsError('EIO', 'EIO: missing chunk', { path: this.path });
      const chunk = toBuffer(r.data);
      const a = p - seq * cs;
      const b = Math.min(chunk.length, end - seq * cs);
      if (b <= a) throw new VfsError('EIO', 'EIO: short chunk', { path: this.path });
      buffer.set(chunk.subarray(a, b), offset + (p - pos));
      p = seq * cs + b;
    }
    const n = p - pos;
    if (position === null || position === undefined) this.position = pos + n;
    return n;
  }

  async read<T extends Uint8Array>(buffer: T, offset?: number, length?: number, position?: number | null): Promise<{ bytesRead: number; buffer: T }> {
    return { bytesRead: this.readSync(buffer, offset, length, position), buffer };
  }

  /** Writes in place, chunk by chunk (read-modify-write of the chunks touched), in one transaction. */
  writeSync(buffer: Uint8Array, offset = 0, length = buffer.byteLength - offset, position: number | null = null): number {
    this.#check('write');
    const data = buffer.subarray(offset, offset + length);
    const { st, chunkSize: cs } = this.internals;
    let pos = 0;
    this.internals.tx(() => {
      const size = this.#size();
      pos = this.openFlags.append ? size : (position ?? this.position);
      if (pos > size) this.#zeroExtend(size, pos);
      let p = pos;
      const end = pos + data.length;
      while (p < end) {
        const seq = Math.floor(p / cs);
        const a = p - seq * cs;
        const b = Math.min(cs, end - seq * cs);
        const r = st.getChunk.get(this.id, seq);
        const old = r === undefined ? Buffer.alloc(0) : toBuffer(r.data);
        const chunk = Buffer.alloc(Math.max(old.length, b));
        old.copy(chunk);
        chunk.set(data.subarray(p - pos, p - pos + (b - a)), a);
        st.putChunk.run(this.id, seq, chunk);
        p = seq * cs + b;
      }
      st.setContentSize.run(Math.max(size, end), Date.now(), this.id);
    });
    if (position === null || position === undefined || this.openFlags.append) this.position = pos + length;
    return length;
  }

  async write<T extends Uint8Array>(buffer: T, offset?: number, length?: number, position?: number | null): Promise<{ bytesWritten: number; buffer: T }> {
    return { bytesWritten: this.writeSync(buffer, offset, length, position), buffer };
  }

  /** Grows the file from `size` to `len` with zeros (inside the caller's transaction). */
  #zeroExtend(size: number, len: number): void {
    const { st, chunkSize: cs } = this.internals;
    let p = size;
    while (p < len) {
      const seq = Math.floor(p / cs);
      const b = Math.min(cs, len - seq * cs);
      const r = st.getChunk.get(this.id, seq);
      const old = r === undefined ? Buffer.alloc(0) : toBuffer(r.data);
      const chunk = Buffer.alloc(b);
      old.copy(chunk, 0, 0, Math.min(old.length, b));
      st.putChunk.run(this.id, seq, chunk);
      p = seq * cs + b;
    }
    st.setContentSize.run(len, Date.now(), this.id);
  }

  truncateSync(len = 0): void {
    this.#check('write');
    const { st, chunkSize: cs } = this.internals;
    this.internals.tx(() => {
      const size = this.#size();
      if (len >= size) {
        this.#zeroExtend(size, len);
        return;
      }
      const keep = Math.ceil(len / cs);
      st.deleteChunksFrom.run(this.id, keep);
      if (len % cs !== 0) {
        const seq = keep - 1;
        const r = st.getChunk.get(this.id, seq);
        if (r !== undefined) st.putChunk.run(this.id, seq, toBuffer(r.data).subarray(0, len % cs));
      }
      st.setContentSize.run(len, Date.now(), this.id);
    });
  }

  async truncate(len?: number): Promise<void> {
    this.truncateSync(len);
  }

  readFileSync(options?: BufferEncoding | { encoding?: BufferEncoding | null } | null): Buffer | string {
    const buf = Buffer.allocUnsafe(this.#size());
    const n = this.readSync(buf, 0, buf.length, 0);
    const out = buf.subarray(0, n);
    const encoding = typeof options === 'string' ? options : options?.encoding;
    return encoding ? out.toString(encoding) : out;
  }

  async readFile(options?: BufferEncoding | { encoding?: BufferEncoding | null } | null): Promise<Buffer | string> {
    return this.readFileSync(options);
  }

  writeFileSync(data: string | Uint8Array, options?: BufferEncoding | { encoding?: BufferEncoding } | null): void {
    const encoding = typeof options === 'string' ? options : (options?.encoding ?? 'utf8');
    const buf = typeof data === 'string' ? Buffer.from(data, encoding) : data;
    if (!this.openFlags.append) this.truncateSync(0);
    this.writeSync(buf, 0, buf.length, this.openFlags.append ? null : 0);
  }

  async writeFile(data: string | Uint8Array, options?: BufferEncoding | { encoding?: BufferEncoding } | null): Promise<void> {
    this.writeFileSync(data, options);
  }

  statSync(): VfsStats {
    return this.internals.statsOf(this.#row());
  }

  async stat(): Promise<VfsStats> {
    return this.statSync();
  }

  closeSync(): void {
    this.#closed = true;
  }

  async close(): Promise<void> {
    this.closeSync();
  }
}

/**
 * A SQLite file (or `:memory:`) as the tree, on `node:sqlite`'s `DatabaseSync`, built to stream: tables
 * `nodes(id, parent, name, type, size, mtime, birthtime, mode, target, gen)` and `chunks(node, seq, data)` (fixed-size
 * chunks, 256 KiB by default), WAL mode. No transfer holds a file in memory (the `@platformatic/vfs`
 * `SqliteProvider` keeps each file as one blob, rewritten on every write).
 *
 * - Downloads read one chunk per SELECT.
 * - Uploads (`createWriteStream`) write chunks under a temporary, parentless node, `batchChunks` per transaction,
 *   and replace the target atomically in one transaction at the end: readers see the old version until then, two
 *   concurrent whole-file uploads (STOR) end as one whole version (the last to finish), an interrupted upload
 *   leaves no trace.
 * - APPE and REST + STOR are copy-on-write: the kept prefix is copied (in SQL, chunk by chunk, 2 MiB per transaction
 *   with other sessions running in between) into the new node first, so they cost O(file size). They never lose a
 *   racing write: they commit only if the file is still the version they copied — the same node id and the same
 *   `gen`, a generation that file handles' in-place writes bump (or still no file, for an APPE that creates it) — and
 *   otherwise fail with EBUSY (FTP 450), leaving nothing.
 *   So of two overlapping APPEs the first to finish is kept and the second fails; an APPE overtaken by a STOR, a
 *   delete or a rename onto the path fails and the other change stands; a STOR that finishes after an APPE replaces
 *   it (both succeed, as if one minute later). MFMT and CHMOD are not content: they fail nothing. The check is one
 *   compare on the row the commit reads anyway, under the write lock (processes sharing the file included).
 * - A file deleted or replaced while this process reads it is kept, detached, until the reader closes.
 * - Rename is one UPDATE, whatever the size of the subtree; `list` is one query.
 * - Symlinks are stored as given and resolved inside the provider, like {@link MemoryProvider}'s.
 * - File handles (`open`) read and write chunks in place (not atomic). Sync methods all work (for
 *   `@platformatic/vfs`'s `create()`).
 * - No `availableSpace`/`allocate`: the capabilities are absent.
 */
export class SqliteProvider extends SyncBackedProvider<SqliteFileHandle> implements FsProvider {
  /** The contract version this provider implements. */
  readonly specVersion = SPEC_VERSION;
  /** Uploads become visible atomically at their end; concurrent ones end as one whole version. */
  readonly atomicUploads = true;
  /** An upload is a hidden node until `end()` swaps it in. */
  readonly uploadsVisibleWhenComplete = true;
  /** Bytes per chunk of this database. */
  readonly chunkSize: number;
  #db: DatabaseSync;
  #st: Statements;
  #readers = new Map<number, number>();
  #doomed = new Set<number>();
  /** Detached files whose chunks are being deleted in the background, in order, with the name each must still have. */
  #reclaiming: { id: number; name: string }[] = [];
  #queued = new Set<number>();
  #liveUploads = new Set<number>();
  #sweeper: NodeJS.Timeout | undefined;
  /** Checkpoints a database file's WAL off the event loop's thread; undefined in memory (see {@link WalCheckpointer}). */
  #wal: WalCheckpointer | undefined;
  #internals: Internals;
  #tempCounter = 0;
  /**
   * This provider's uploads running now, by the id of the folder they write into. An upload is swapped in only when
   * it completes, so the folder does not show it: without this, RMD removed a folder an upload was writing into, and
   * the upload failed at its end (551).
   */
  readonly #uploadFolders = new Map<number, number>();
  /** This provider's uploads running or announced, by folder id and name (see {@link uploadBusy}). */
  readonly #uploads = new RunningUploads<string>();

  /**
   * @param filename a database file (created when missing) or `':memory:'` (the default).
   * @param options chunk size, upload batch size, busy timeout.
   */
  constructor(filename = ':memory:', options: SqliteProviderOptions = {}) {
    super();
    const requested = options.chunkSize ?? 256 * 1024;
    if (!Number.isSafeInteger(requested) || requested < 1) throw new VfsError('EINVAL', 'EINVAL: chunkSize must be a positive integer');
    const batch = options.batchChunks ?? 4;
    if (!Number.isSafeInteger(batch) || batch < 1) throw new VfsError('EINVAL', 'EINVAL: batchChunks must be a positive integer');
    try {
      const { DatabaseSync: Database } = sqlite();
      const busyTimeout = options.busyTimeout ?? 5000;
      this.#db = new Database(filename, { timeout: busyTimeout });
      // Checkpoints run on a worker's connection; should it fail, this connection checkpoints by itself again.
      this.#wal = WalCheckpointer.forConnection(this.#db, filename, busyTimeout);
      this.#db.exec(`
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
        CREATE TABLE IF NOT EXISTS nodes (
          id INTEGER PRIMARY KEY,
          parent INTEGER,
          name TEXT NOT NULL,
          type INTEGER NOT NULL,
          size INTEGER NOT NULL DEFAULT 0,
          mtime REAL NOT NULL,
          birthtime REAL NOT NULL,
          mode INTEGER NOT NULL,
          target TEXT,
          gen INTEGER NOT NULL DEFAULT 0,
          UNIQUE (parent, name)
        );
        CREATE TABLE IF NOT EXISTS chunks (
          node INTEGER NOT NULL,
          seq INTEGER NOT NULL,
          data BLOB NOT NULL,
          PRIMARY KEY (node, seq)
        );
      `);
      upgradeSchema(this.#db);
      const now = Date.now();
      this.#db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run('chunkSize', requested);
      this.#db.prepare('INSERT OR IGNORE INTO nodes (id, parent, name, type, size, mtime, birthtime, mode) VALUES (?, NULL, ?, ?, 0, ?, ?, ?)').run(ROOT_ID, '', T_DIR, now, now, 0o755);
      this.chunkSize = Number((this.#db.prepare('SELECT value FROM meta WHERE key = ?').get('chunkSize') as { value: number }).value);
    } catch (err) {
      throw toVfsError(err, filename);
    }
    const cols = 'id, type, size, mtime, birthtime, mode, target, gen';
    const db = this.#db;
    this.#st = {
      getChild: db.prepare(`SELECT ${cols} FROM nodes WHERE parent = ? AND name = ?`),
      getNode: db.prepare(`SELECT ${cols} FROM nodes WHERE id = ?`),
      children: db.prepare(`SELECT name, ${cols} FROM nodes WHERE parent = ?`),
      // Keyset paging on the UNIQUE (parent, name) index: each slice is one index range, whatever the folder's size.
      childrenAfter: db.prepare(`SELECT name, ${cols} FROM nodes WHERE parent = ? AND name > ? ORDER BY name LIMIT ${LIST_SLICE}`),
      hasChild: db.prepare('SELECT 1 AS x FROM nodes WHERE parent = ? LIMIT 1'),
      insertNode: db.prepare('INSERT INTO nodes (parent, name, type, size, mtime, birthtime, mode, target) VALUES (?, ?, ?, 0, ?, ?, ?, ?)'),
      deleteNode: db.prepare('DELETE FROM nodes WHERE id = ?'),
      deleteChunks: db.prepare('DELETE FROM chunks WHERE node = ?'),
      deleteChunksFrom: db.prepare('DELETE FROM chunks WHERE node = ? AND seq >= ?'),
      detachedName: db.prepare('SELECT name FROM nodes WHERE id = ? AND parent IS NULL'),
      staleDetached: db.prepare('SELECT id, name FROM nodes WHERE parent IS NULL AND id != ? AND mtime < ?'),
      deleteSomeChunks: db.prepare('DELETE FROM chunks WHERE node = ? AND seq IN (SELECT seq FROM chunks WHERE node = ? ORDER BY seq LIMIT ?)'),
      detachNode: db.prepare('UPDATE nodes SET parent = NULL, name = ?, mtime = ? WHERE id = ?'),
      moveNode: db.prepare('UPDATE nodes SET parent = ?, name = ? WHERE id = ?'),
      setMtime: db.prepare('UPDATE nodes SET mtime = ? WHERE id = ?'),
      setBirthtime: db.prepare('UPDATE nodes SET birthtime = ? WHERE id = ?'),
      setMode: db.prepare('UPDATE nodes SET mode = ? WHERE id = ?'),
      setSize: db.prepare('UPDATE nodes SET size = ?, mtime = ? WHERE id = ?'),
      // File handles change content in place: gen + 1, so an upload that copied the previous content cannot commit.
      setContentSize: db.prepare('UPDATE nodes SET size = ?, mtime = ?, gen = gen + 1 WHERE id = ?'),
      getChunk: db.prepare('SELECT data FROM chunks WHERE node = ? AND seq = ?'),
      putChunk: db.prepare('INSERT OR REPLACE INTO chunks (node, seq, data) VALUES (?, ?, ?)'),
      copyChunkRange: db.prepare('INSERT INTO chunks (node, seq, data) SELECT ?, seq, data FROM chunks WHERE node = ? AND seq >= ? AND seq < ?'),
      parentOf: db.prepare('SELECT parent FROM nodes WHERE id = ?'),
    };
    this.#internals = {
      chunkSize: this.chunkSize,
      batchChunks: batch,
      db: this.#db,
      st: this.#st,
      tx: (fn, walBytes) => this.#tx(fn, walBytes),
      walRoom: () => this.#wal?.room(),
      addReader: (id) => this.#readers.set(id, (this.#readers.get(id) ?? 0) + 1),
      removeReader: (id) => this.#removeReader(id),
      removeFile: (id, size) => this.#removeFile(id, size),
      statsOf: (row) => this.#statsOf(row),
      getNode: (id) => this.#st.getNode.get(id) as Row | undefined,
      liveUploads: this.#liveUploads,
    };
    // Pending uploads and detached files of a process that died: deleted in the background, and again every hour.
    this.#sweepStale();
    this.#sweeper = setInterval(() => this.#sweepStale(), SWEEP_EVERY_MS).unref();
  }

  override get readonly(): boolean {
    return false;
  }

  override get supportsSymlinks(): boolean {
    return true;
  }

  override get supportsWatch(): boolean {
    return false;
  }

  /**
   * Checkpoints of the database file's WAL run so far by the provider's checkpoint thread (see the README); undefined
   * for an in-memory database, which has no WAL.
   */
  get walCheckpoints(): number | undefined {
    return this.#wal?.checkpoints;
  }

  /** Closes the database. Later calls fail. */
  close(): void {
    clearInterval(this.#sweeper);
    this.#wal?.close();
    if (this.#db.isOpen) this.#db.close();
  }

  // ---------------------------------------------------------------- helpers

  #tx<T>(fn: () => T, walBytes = 0): T {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const r = fn();
      this.#db.exec('COMMIT');
      // At least a page or two: a transaction of small changes still adds frames to the WAL.
      this.#wal?.committed(walBytes + 8192);
      return r;
    } catch (err) {
      try {
        this.#db.exec('ROLLBACK');
      } catch {
        // already rolled back
      }
      throw err;
    }
  }

  /** Runs a sync operation, turning whatever it throws into a VfsError naming `path`. */
  #run<T>(path: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw toVfsError(err, path);
    }
  }

  #statsOf(row: Row): VfsStats {
    const kind = KINDS[row.type] ?? 'file';
    return new VfsStats({
      kind,
      size: kind === 'directory' ? 4096 : kind === 'symlink' ? Buffer.byteLength(row.target ?? '') : row.size,
      mode: row.mode,
      mtimeMs: row.mtime,
      birthtimeMs: row.birthtime,
      ino: row.id,
    });
  }

  #removeReader(id: number): void {
    const n = (this.#readers.get(id) ?? 1) - 1;
    if (n > 0) {
      this.#readers.set(id, n);
      return;
    }
    this.#readers.delete(id);
    if (!this.#doomed.delete(id) || !this.#db.isOpen) return;
    // Doomed inside a transaction that may have rolled back since (a failing COMMIT, a failed move): only a node still
    // detached under its orphan name goes, as in #reclaimLoop.
    if ((this.#internals.getNode(id)?.size ?? 0) > DELETE_INLINE_BYTES) return this.#reclaim(id, orphanName(id));
    this.#tx(() => {
      if ((this.#st.detachedName.get(id) as { name: string } | undefined)?.name === orphanName(id)) this.#deleteWithChunks(id);
    });
  }

  #deleteWithChunks(id: number): void {
    this.#st.deleteChunks.run(id);
    this.#st.deleteNode.run(id);
  }

  /**
   * Deletes a file (called inside a transaction). A small one goes at once; a bigger one, or one read in this
   * process, is detached (parentless, so invisible, with a fresh mtime so that no other process's open sweeps it
   * within a day) and its chunks are deleted after its last reader closes, in batches (see {@link DELETE_INLINE_BYTES}).
   */
  #removeFile(id: number, size: number): void {
    const read = (this.#readers.get(id) ?? 0) > 0;
    if (!read && size <= DELETE_INLINE_BYTES) return this.#deleteWithChunks(id);
    this.#st.detachNode.run(orphanName(id), Date.now(), id);
    if (read) this.#doomed.add(id);
    // After the caller's transaction: each batch checks the node is still detached under its orphan name, so a
    // rolled-back detach leaves the file whole, and a later node that got its id back is never touched.
    else queueMicrotask(() => this.#reclaim(id, orphanName(id)));
  }

  /** Queues a detached node's chunks for deletion (once); one loop works through the queue. */
  #reclaim(id: number, name: string): void {
    if (this.#queued.has(id)) return;
    this.#queued.add(id);
    this.#reclaiming.push({ id, name });
    if (this.#reclaiming.length === 1) void this.#reclaimLoop();
  }

  /** Queues the pending uploads and detached files left for a day (a process died, or stopped deleting them). */
  #sweepStale(): void {
    if (!this.#db.isOpen) return;
    try {
      for (const r of this.#st.staleDetached.all(ROOT_ID, Date.now() - STALE_MS) as { id: number; name: string }[]) {
        if (!this.#doomed.has(r.id) && !this.#readers.has(r.id) && !this.#liveUploads.has(r.id)) this.#reclaim(r.id, r.name);
      }
    } catch {
      // A failing database: the next sweep tries again.
    }
  }

  /**
   * Deletes the queued files' chunks a batch per transaction, the event loop free between two, then their nodes.
   * A node found attached (its detaching rolled back) is left alone; closing the database stops the loop, and what
   * is left (parentless, a day old by then) goes with the sweep of a later open.
   */
  async #reclaimLoop(): Promise<void> {
    const perBatch = Math.max(1, Math.floor(COPY_BATCH_BYTES / this.chunkSize));
    while (this.#reclaiming.length > 0) {
      const { id, name } = this.#reclaiming[0]!;
      for (let done = false, failures = 0; !done; ) {
        await new Promise(setImmediate);
        if (!this.#db.isOpen) return;
        try {
          done = this.#tx(() => {
            if ((this.#st.detachedName.get(id) as { name: string } | undefined)?.name !== name) return true;
            if (Number(this.#st.deleteSomeChunks.run(id, id, perBatch).changes) === perBatch) return false;
            this.#st.deleteNode.run(id);
            return true;
          });
        } catch {
          // Busy (another process) or failing: a few tries, then the file is left to the sweep.
          if (++failures >= RECLAIM_TRIES) break;
          await new Promise((resolve) => setTimeout(resolve, 1000 * failures).unref());
        }
      }
      this.#reclaiming.shift();
      this.#queued.delete(id);
    }
  }

  #drop(row: Row): void {
    if (row.type === T_FILE) this.#removeFile(row.id, row.size);
    else this.#st.deleteNode.run(row.id);
  }

  #insert(parent: number | null, name: string, type: number, mode: number, target: string | null = null): number {
    const now = Date.now();
    return Number(this.#st.insertNode.run(parent, name, type, now, now, mode & 0o7777, target).lastInsertRowid);
  }

  #touch(id: number): void {
    this.#st.setMtime.run(Date.now(), id);
  }

  // ---------------------------------------------------------------- lookup

  #locate(path: string, followLast: boolean, syscall: string, hops = { n: 0 }): Location {
    const p = normalizePath(path);
    if (p === '/') return { dirId: undefined, dirPath: '/', name: '', row: this.#st.getNode.get(ROOT_ID) as unknown as Row, path: '/' };
    const parent = this.#walkDir(dirname(p), syscall, path, hops);
    const name = basename(p);
    const row = this.#st.getChild.get(parent.id, name) as Row | undefined;
    if (row !== undefined && row.type === T_LINK && followLast) {
      if (++hops.n > MAX_SYMLINK_HOPS) throw fsError('ELOOP', syscall, path);
      return this.#locate(resolvePath(parent.path, row.target ?? ''), true, syscall, hops);
    }
    return { dirId: parent.id, dirPath: parent.path, name, row, path: parent.path === '/' ? `/${name}` : `${parent.path}/${name}` };
  }

  #walkDir(path: string, syscall: string, original: string, hops: { n: number }): { id: number; path: string } {
    const loc = this.#locate(path, true, syscall, hops);
    if (loc.row === undefined) throw fsError('ENOENT', syscall, original);
    if (loc.row.type !== T_DIR) throw fsError('ENOTDIR', syscall, original);
    return { id: loc.row.id, path: loc.path };
  }

  #existing(path: string, followLast: boolean, syscall: string): Location & { row: Row } {
    const loc = this.#locate(path, followLast, syscall);
    if (loc.row === undefined) throw fsError('ENOENT', syscall, path);
    return loc as Location & { row: Row };
  }

  /** True when directory `id` is `ancestor` or lies below it. */
  #isWithin(id: number, ancestor: number): boolean {
    let cur: number | null = id;
    while (cur !== null) {
      if (cur === ancestor) return true;
      const r = this.#st.parentOf.get(cur) as { parent: number | null } | undefined;
      cur = r === undefined ? null : r.parent;
    }
    return false;
  }

  // ---------------------------------------------------------------- sync core

  override statSync(path: string): VfsStats {
    return this.#run(path, () => this.#statsOf(this.#existing(path, true, 'stat').row));
  }

  override lstatSync(path: string): VfsStats {
    return this.#run(path, () => this.#statsOf(this.#existing(path, false, 'lstat').row));
  }

  override readdirSync(path: string, options?: ReaddirOptions): string[] | VfsDirent[] {
    return this.#run(path, () => {
      const dir = this.#walkDir(path, 'scandir', path, { n: 0 });
      const rows = this.#st.children.all(dir.id) as unknown as (Row & { name: string })[];
      if (options?.withFileTypes === true) {
        const p = normalizePath(path);
        return rows.map((r) => new VfsDirent(r.name, KINDS[r.type] ?? 'file', p));
      }
      return rows.map((r) => r.name);
    });
  }

  override mkdirSync(path: string, options?: MkdirOptions): string | undefined {
    return this.#run(path, () =>
      this.#tx(() => {
        const p = normalizePath(path);
        const mode = options?.mode ?? 0o755;
        if (options?.recursive !== true) {
          if (p === '/') throw fsError('EEXIST', 'mkdir', path);
          const loc = this.#locate(p, false, 'mkdir');
          if (loc.row !== undefined) throw fsError('EEXIST', 'mkdir', path);
          this.#insert(loc.dirId as number, loc.name, T_DIR, mode);
          this.#touch(loc.dirId as number);
          return undefined;
        }
        let first: string | undefined;
        let cur = '/';
        const segs = splitPath(p);
        for (let i = 0; i < segs.length; i++) {
          const next = cur === '/' ? `/${segs[i]}` : `${cur}/${segs[i]}`;
          const loc = this.#locate(next, true, 'mkdir');
          if (loc.row === undefined) {
            this.#insert(loc.dirId as number, loc.name, T_DIR, mode);
            this.#touch(loc.dirId as number);
            first ??= next;
          } else if (loc.row.type !== T_DIR) {
            throw fsError(i === segs.length - 1 ? 'EEXIST' : 'ENOTDIR', 'mkdir', path);
          }
          cur = next;
        }
        return first;
      }),
    );
  }

  override rmdirSync(path: string): void {
    this.#run(path, () =>
      this.#tx(() => {
        const loc = this.#existing(path, false, 'rmdir');
        // The root: EPERM (550), not EBUSY (450: a transient refusal that clients retry).
        if (loc.dirId === undefined) throw fsError('EPERM', 'rmdir', path);
        if (loc.row.type !== T_DIR) throw fsError('ENOTDIR', 'rmdir', path);
        // An upload into it shows in the folder only once it completes: busy (450) until then, not empty.
        if (this.#uploadFolders.has(loc.row.id)) throw fsError('EBUSY', 'rmdir', path);
        if (this.#st.hasChild.get(loc.row.id) !== undefined) throw fsError('ENOTEMPTY', 'rmdir', path);
        this.#st.deleteNode.run(loc.row.id);
        this.#touch(loc.dirId);
      }),
    );
  }

  override unlinkSync(path: string): void {
    this.#run(path, () =>
      this.#tx(() => {
        const loc = this.#existing(path, false, 'unlink');
        if (loc.row.type === T_DIR || loc.dirId === undefined) throw fsError('EISDIR', 'unlink', path);
        this.#drop(loc.row);
        this.#touch(loc.dirId);
      }),
    );
  }

  override renameSync(oldPath: string, newPath: string): void {
    this.#run(oldPath, () =>
      this.#tx(() => {
        const src = this.#existing(oldPath, false, 'rename');
        const dst = this.#locate(newPath, false, 'rename');
        if (src.dirId === undefined || dst.dirId === undefined) throw fsError('EPERM', 'rename', oldPath);
        if (dst.row !== undefined && dst.row.id === src.row.id) return;
        if (src.row.type === T_DIR && this.#isWithin(dst.dirId, src.row.id)) throw fsError('EINVAL', 'rename', newPath);
        if (dst.row !== undefined) {
          if (src.row.type === T_DIR) {
            if (dst.row.type !== T_DIR) throw fsError('ENOTDIR', 'rename', newPath);
            if (this.#st.hasChild.get(dst.row.id) !== undefined) throw fsError('ENOTEMPTY', 'rename', newPath);
          } else if (dst.row.type === T_DIR) {
            throw fsError('EISDIR', 'rename', newPath);
          }
          this.#drop(dst.row);
        }
        this.#st.moveNode.run(dst.dirId, dst.name, src.row.id);
        this.#touch(src.dirId);
        if (dst.dirId !== src.dirId) this.#touch(dst.dirId);
      }),
    );
  }

  override openSync(path: string, flags: string | number = 'r', mode?: number): SqliteFileHandle {
    return this.#run(path, () => {
      const f = parseOpenFlags(flags);
      const id = this.#tx(() => {
        const loc = this.#locate(path, true, 'open');
        if (loc.row === undefined) {
          if (!f.create) throw fsError('ENOENT', 'open', path);
          const newId = this.#insert(loc.dirId as number, loc.name, T_FILE, mode ?? 0o644);
          this.#touch(loc.dirId as number);
          return newId;
        }
        if (f.create && f.exclusive) throw fsError('EEXIST', 'open', path);
        if (loc.row.type === T_DIR) throw fsError('EISDIR', 'open', path);
        return loc.row.id;
      });
      const handle = new SqliteFileHandle(this.#internals, id, f, normalizePath(path), flags, mode ?? 0o644);
      if (f.truncate && f.write) handle.truncateSync(0);
      return handle;
    });
  }

  override readlinkSync(path: string): string {
    return this.#run(path, () => {
      const loc = this.#existing(path, false, 'readlink');
      if (loc.row.type !== T_LINK) throw fsError('EINVAL', 'readlink', path);
      return loc.row.target ?? '';
    });
  }

  override symlinkSync(target: string, path: string): void {
    this.#run(path, () => {
      if (typeof target !== 'string' || target === '' || target.includes('\0')) throw fsError('EINVAL', 'symlink', path);
      this.#tx(() => {
        const loc = this.#locate(path, false, 'symlink');
        if (loc.row !== undefined || loc.dirId === undefined) throw fsError('EEXIST', 'symlink', path);
        this.#insert(loc.dirId, loc.name, T_LINK, 0o777, target);
        this.#touch(loc.dirId);
      });
    });
  }

  override realpathSync(path: string): string {
    return this.#run(path, () => this.#existing(path, true, 'realpath').path);
  }

  override accessSync(path: string): void {
    this.#run(path, () => this.#existing(path, true, 'access'));
  }

  override existsSync(path: string): boolean {
    try {
      this.accessSync(path);
      return true;
    } catch {
      return false;
    }
  }

  // ---------------------------------------------------------------- capabilities

  /** Entries with their stats (links as links), in one query. */
  async list(path: string): Promise<DirEntry[]> {
    return this.#run(path, () => {
      const dir = this.#walkDir(path, 'scandir', path, { n: 0 });
      const rows = this.#st.children.all(dir.id) as unknown as (Row & { name: string })[];
      return rows.map((r) => ({ name: r.name, stats: this.#statsOf(r) }));
    });
  }

  /**
   * Entries with their stats {@link LIST_SLICE} at a time in name order, one indexed query per slice: a listing of a
   * huge folder holds one slice, and the database is never busy for the whole folder at once. The folder is found
   * when it is called (ENOENT, ENOTDIR there); entries added or removed meanwhile are listed if the listing has not
   * passed their name yet, and a folder removed meanwhile ends the listing.
   */
  async listSlices(path: string): Promise<DirSlices> {
    const dir = this.#run(path, () => this.#walkDir(path, 'scandir', path, { n: 0 }).id);
    const page = (after: string): (Row & { name: string })[] =>
      this.#run(path, () => this.#st.childrenAfter.all(dir, after) as unknown as (Row & { name: string })[]);
    const statsOf = (r: Row): VfsStats => this.#statsOf(r);
    async function* slices(): AsyncGenerator<DirEntry[], undefined> {
      // Names strictly increase from slice to slice: the loop ends however the folder changes meanwhile.
      for (let after = ''; ; ) {
        const rows = page(after);
        if (rows.length > 0) yield rows.map((r) => ({ name: r.name, stats: statsOf(r) }));
        if (rows.length < LIST_SLICE) return undefined;
        after = rows[rows.length - 1]!.name;
      }
    }
    return slicesFromGenerator(slices());
  }

  /** Streams a file chunk by chunk, `end` inclusive. */
  async createReadStream(path: string, options: ReadStreamOptions = {}): Promise<Readable> {
    checkStreamOptions(options, path);
    return this.#run(path, () => {
      const row = this.#existing(path, true, 'open').row;
      if (row.type === T_DIR) throw fsError('EISDIR', 'open', path);
      return new SqliteReadStream(this.#internals, row, options.start ?? 0, options.end);
    });
  }

  /**
   * Opens an upload that becomes visible atomically when the stream finishes: replaces the file (default), keeps
   * its first `start` bytes (REST + STOR, zero-filled past the end), or appends (`append`; the file is created when
   * missing). `start` and `append` copy the kept prefix first (copy-on-write), and commit only if the file is still
   * the version they copied (same node, same generation; or still missing): otherwise the stream fails with EBUSY
   * and nothing of it is written. A whole-file upload replaces whatever is there when it finishes.
   */
  async createWriteStream(path: string, options: WriteStreamOptions = {}): Promise<UploadStream> {
    checkStreamOptions(options, path);
    return this.#run(path, () =>
      this.#tx(() => {
        const loc = this.#locate(path, true, 'open');
        if (loc.dirId === undefined || loc.row?.type === T_DIR) throw fsError('EISDIR', 'open', path);
        const tempId = this.#insert(null, `.upload-${++this.#tempCounter}-${process.pid}`, T_FILE, options.mode ?? loc.row?.mode ?? 0o644);
        const old = loc.row?.type === T_FILE ? loc.row : undefined;
        const keep = old === undefined ? 0 : options.append === true ? old.size : Math.min(options.start ?? 0, old.size);
        const gap = options.append === true ? 0 : Math.max(0, (options.start ?? 0) - (old?.size ?? 0));
        // APPE and REST + STOR commit only over the version they copied from (or still no file); STOR replaces.
        const continues = options.append === true || (options.start ?? 0) > 0;
        const base = continues ? (old === undefined ? null : { id: old.id, gen: old.gen }) : undefined;
        // The copy runs in the stream's construction, in batches: opening stays one short transaction whatever the size.
        const kept: KeptPart | undefined =
          keep === 0 && gap === 0 ? undefined : { chunks: Math.floor(keep / this.chunkSize), tail: keep % this.chunkSize, gap };
        const stream = new SqliteWriteStream(this.#internals, tempId, loc.dirId, loc.name, kept, base, normalizePath(path));
        countWhileOpen(this.#uploadFolders, loc.dirId, stream);
        this.#uploads.opened(`${loc.dirId}/${loc.name}`, stream);
        return stream;
      }),
    );
  }

  /**
   * Whether an upload of `path` with `options` would now race another upload of this provider to the file: one that
   * continues it (APPE, REST + STOR) commits only over the version it started from, so the first of the two to end
   * makes the other fail at its end (EBUSY, after its client sent everything). A plain upload replaces the file
   * (last one wins) and is never busy. With `hold`, a file found free is held for the upload that asked until it opens
   * (see `RunningUploads`).
   */
  async uploadBusy(path: string, options: WriteStreamOptions = {}, hold: boolean | object = false): Promise<boolean> {
    if (!this.#uploads.mayBeBusy(options, hold)) return false;
    let key: string;
    try {
      const loc = this.#run(path, () => this.#locate(path, true, 'open'));
      if (loc.dirId === undefined) return false;
      key = `${loc.dirId}/${loc.name}`;
    } catch {
      return false;
    }
    return this.#uploads.busy(key, hold);
  }

  /** Gives back `owner`'s hold of `path` (see `FsProvider.releaseUploadHold`). */
  async releaseUploadHold(path: string, owner: object): Promise<void> {
    if (!this.#uploads.holding) return;
    try {
      const loc = this.#run(path, () => this.#locate(path, true, 'open'));
      if (loc.dirId !== undefined) this.#uploads.releaseHold(`${loc.dirId}/${loc.name}`, owner);
    } catch {
      // Gone: its hold expires on its own.
    }
  }

  /** Sets the modification time. */
  async setTimes(path: string, mtime: Date): Promise<void> {
    this.#run(path, () => {
      const row = this.#existing(path, true, 'utime').row;
      this.#st.setMtime.run(mtime.getTime(), row.id);
    });
  }

  /** Sets the creation time. */
  async setCreationTime(path: string, birthtime: Date): Promise<void> {
    this.#run(path, () => {
      const row = this.#existing(path, true, 'utime').row;
      this.#st.setBirthtime.run(birthtime.getTime(), row.id);
    });
  }

  /** Changes the permission bits. */
  async chmod(path: string, mode: number): Promise<void> {
    this.#run(path, () => {
      const row = this.#existing(path, true, 'chmod').row;
      this.#st.setMode.run(mode & 0o7777, row.id);
    });
  }
}

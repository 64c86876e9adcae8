import { fsError, VfsStats } from '@ftp/vfs';
import type { OpenFlags } from '@ftp/vfs';
import { contentGone, discardContent, getChunk, putChunk } from './content.js';
import type { Internals } from './content.js';
import type { ReaderLease } from './lease.js';
import type { Committer } from './write-stream.js';

/** What a handle works on: a committed inode (read only) or a private copy that `close()` swaps in. */
export interface HandleTarget {
  ino: number;
  size: number;
  mode: number;
  mtimeMs: number;
  /** Set for a writable handle: makes the private inode visible. */
  commit?: Committer;
  /** A read-only handle's lease on the inode, released by `close()`. */
  lease?: ReaderLease;
}

/**
 * A file handle (`open()`), for callers that use positional reads and writes instead of streams. Reads go to one
 * inode, so they never mix versions; a read-only handle holds a reader lease on it until `close()`, as a download
 * does (the content of a file deleted or replaced meanwhile stays readable for the grace period); one dropped without
 * `close()` gives the lease back when it is garbage-collected. A writable handle works on a private copy-on-write
 * inode (a copy of the file for `r+`/`a`, empty for `w`), changed chunk by chunk (read-modify-write) and made visible
 * by `close()`, atomically: other sessions see the file as it was until then. Keep a writable handle busy: its
 * content has the upload TTL.
 */
export class RedisFileHandle {
  /** Position of reads and writes without an explicit position. */
  position = 0;
  #closed = false;
  readonly #fs: Internals;
  readonly #t: HandleTarget;
  readonly #flags: OpenFlags;

  /** @internal */
  constructor(fs: Internals, target: HandleTarget, flags: OpenFlags, readonly path: string) {
    this.#fs = fs;
    this.#t = target;
    // A handle dropped without close() gives its lease back once collected, rather than renew it while the process runs.
    target.lease?.heldBy(this);
    this.#flags = flags;
    if (flags.append) this.position = target.size;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #check(op: 'read' | 'write'): void {
    if (this.#closed || !(op === 'read' ? this.#flags.read : this.#flags.write)) throw fsError('EINVAL', op, this.path);
  }

  async #chunk(seq: number): Promise<Buffer> {
    const c = await getChunk(this.#fs, this.#t.ino, seq);
    if (c === null) throw contentGone(seq);
    return c;
  }

  /** Reads up to `length` bytes at `position` (or the current position) into `buffer`. */
  async read<T extends Uint8Array>(buffer: T, offset = 0, length = buffer.byteLength - offset, position: number | null = null): Promise<{ bytesRead: number; buffer: T }> {
    this.#check('read');
    const pos = position ?? this.position;
    const end = Math.min(this.#t.size, pos + length);
    const cs = this.#fs.chunkSize;
    let p = pos;
    while (p < end) {
      const seq = Math.floor(p / cs);
      const chunk = await this.#chunk(seq);
      const a = p - seq * cs;
      const b = Math.min(chunk.length, end - seq * cs);
      if (b <= a) throw contentGone(seq);
      buffer.set(chunk.subarray(a, b), offset + (p - pos));
      p = seq * cs + b;
    }
    if (position === null) this.position = p;
    return { bytesRead: p - pos, buffer };
  }

  /** Writes `data` at byte `pos` of the private inode, chunk by chunk; a gap before it is filled with zeros. */
  async #writeAt(pos: number, data: Uint8Array): Promise<void> {
    const cs = this.#fs.chunkSize;
    while (this.#t.size < pos) {
      // Fill the hole up to the next chunk boundary (or pos) at a time: bounded memory, bounded steps.
      const n = Math.min(pos - this.#t.size, cs - (this.#t.size % cs));
      await this.#writeAt(this.#t.size, Buffer.alloc(n));
    }
    let off = 0;
    while (off < data.length) {
      const p = pos + off;
      const seq = Math.floor(p / cs);
      const a = p - seq * cs;
      const n = Math.min(cs - a, data.length - off);
      const chunkEnd = Math.min(cs, Math.max(this.#t.size - seq * cs, a + n));
      let buf: Buffer;
      if (a === 0 && n === chunkEnd) buf = Buffer.from(data.subarray(off, off + n));
      else {
        buf = Buffer.alloc(chunkEnd);
        if (seq * cs < this.#t.size) (await this.#chunk(seq)).copy(buf);
        buf.set(data.subarray(off, off + n), a);
      }
      await putChunk(this.#fs, this.#t.ino, seq, buf);
      off += n;
      this.#t.size = Math.max(this.#t.size, p + n);
    }
  }

  /** Writes `length` bytes of `buffer` at `position` (or the current position; at the end in append mode). */
  async write<T extends Uint8Array>(buffer: T, offset = 0, length = buffer.byteLength - offset, position: number | null = null): Promise<{ bytesWritten: number; buffer: T }> {
    this.#check('write');
    const pos = this.#flags.append ? this.#t.size : (position ?? this.position);
    await this.#writeAt(pos, buffer.subarray(offset, offset + length));
    if (position === null || this.#flags.append) this.position = pos + length;
    return { bytesWritten: length, buffer };
  }

  /** Cuts (or extends with zeros) the private copy to `len` bytes. */
  async truncate(len = 0): Promise<void> {
    this.#check('write');
    if (len > this.#t.size) return this.#writeAt(len, Buffer.alloc(0));
    const cs = this.#fs.chunkSize;
    const keep = Math.ceil(len / cs);
    const had = Math.ceil(this.#t.size / cs);
    if (len % cs !== 0) {
      const seq = keep - 1;
      await putChunk(this.#fs, this.#t.ino, seq, (await this.#chunk(seq)).subarray(0, len - seq * cs));
    }
    const drop: string[] = [];
    for (let s = keep; s < had; s++) drop.push(String(s));
    if (drop.length > 0) await this.#fs.client.hdel(this.#fs.keys.content(this.#t.ino), ...drop);
    this.#t.size = len;
  }

  /** Stats of the handle's file as the handle sees it. */
  async stat(): Promise<VfsStats> {
    return new VfsStats({ kind: 'file', size: this.#t.size, mode: this.#t.mode, mtimeMs: this.#t.mtimeMs, ino: this.#t.ino });
  }

  /** Closes the handle; a writable one makes its content visible now. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#t.lease?.release();
    const commit = this.#t.commit;
    if (commit === undefined) return;
    try {
      await commit(this.#t.ino, this.#t.size, Math.ceil(this.#t.size / this.#fs.chunkSize));
    } catch (err) {
      // A commit that timed out or lost its connection may have run all the same: the discard leaves the content
      // of a file that it made visible, and says so.
      if ((await discardContent(this.#fs, this.#t.ino)) !== true) throw err;
    }
  }
}

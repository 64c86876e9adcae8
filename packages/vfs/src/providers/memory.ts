import { Readable, Writable } from 'node:stream';
import type { MkdirOptions, ReaddirOptions } from '@platformatic/vfs';
import { escapedByteLength } from '@ftp/protocol';
import { fsError, takenOverError, VfsError } from '../errors.js';
import { basename, dirname, isInside, normalizePath, resolvePath, splitPath } from '../paths.js';
import { SPEC_VERSION } from '../spec.js';
import { SyncBackedProvider } from './sync-backed.js';
import { ReadTurns } from './read-turns.js';
import type { DirEntry, DirSlices, FsProvider, ListSlicesOptions, NameSlices, ReadStreamOptions, UploadStream, WriteStreamOptions } from '../spec.js';
import { parseOpenFlags, VfsDirent, VfsStats } from '../stats.js';
import type { OpenFlags } from '../stats.js';
import { checkStreamOptions, TRANSFER_CHUNK_SIZE } from '../streams.js';
import { WRITER_TAKEOVER_IDLE_MS } from './local-writers.js';
import { UploadHolds } from '../upload-holds.js';
import { slicesOf } from '../listing.js';
import { namesOf, type Sliced } from '../internal/sliced.js';

/** Writes smaller than this are copied into a shared block; larger ones get an exact block of their own. */
const BLOCK_SIZE = 64 * 1024;
const MAX_SYMLINK_HOPS = 40;
/** Immutable zeros, shared by every gap (REST beyond the end, truncate upwards). */
const ZEROS = Buffer.alloc(1024 * 1024);

/** Byte accounting of a provider (capacity → ENOSPC). */
class Store {
  used = 0;
  constructor(readonly capacity: number) {}
  reserve(n: number): void {
    if (n > 0 && this.used + n > this.capacity) throw fsError('ENOSPC', 'write');
    this.used += n;
  }
  release(n: number): void {
    this.used -= n;
  }
}

/** A frozen view of a file's content: the parts and their cumulative end offsets. */
interface Snapshot {
  parts: readonly Buffer[];
  ends: readonly number[];
  size: number;
}

/** Index of the part that holds byte `pos` (binary search over cumulative ends). */
function partIndex(ends: readonly number[], pos: number): number {
  let lo = 0;
  let hi = ends.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ends[mid] as number) <= pos) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * File content as a list of immutable parts. Appending copies the bytes once (small writes into a shared 64 KiB
 * block, large ones into an exact block) and never moves what is stored; readers take zero-copy views. Parts are
 * never modified in place once visible (the block being filled only grows past the views already handed out), so
 * a reader's snapshot stays valid whatever happens to the file afterwards.
 */
class Content {
  parts: Buffer[] = [];
  ends: number[] = [];
  size = 0;
  /** Backing block of the last part while it has room; the last part is `tail.subarray(0, tailUsed)`. */
  #tail: Buffer | null = null;
  #tailUsed = 0;
  /**
   * Whether this is a file's content: false once the file is deleted or replaced, and for a content being built
   * until `attach()`.
   */
  attached: boolean;
  /**
   * Whether its bytes count against the store. A detached content still counts while its upload runs, as an unlinked
   * file being written still takes room on a disk: otherwise a DELE, a RNTO over it or another STOR of its path would
   * let that upload store without bound past `capacity`.
   */
  counted: boolean;
  /**
   * The upload stream writing this content, until it ends (see {@link endWriter}): an upload that continues the
   * file (APPE, REST + STOR) is refused meanwhile, as it would write into, or keep a prefix of, bytes still arriving.
   */
  writer: object | null = null;

  constructor(readonly store: Store, attached = true) {
    this.attached = this.counted = attached;
  }

  /**
   * A detached content holding the first `len` bytes of `src`, zero-extended past its end. Views, except of a part
   * much smaller than the block under it: REST k + STOR would otherwise keep whole blocks alive while only k bytes
   * count against `capacity`.
   */
  static prefixOf(src: Content, len: number): Content {
    const c = new Content(src.store, false);
    c.#pushViews(src, 0, Math.min(len, src.size), true);
    if (len > c.size) c.#pushZeros(len - c.size);
    return c;
  }

  snapshot(): Snapshot {
    return { parts: this.parts.slice(), ends: this.ends.slice(), size: this.size };
  }

  #push(part: Buffer): void {
    this.size += part.length;
    this.parts.push(part);
    this.ends.push(this.size);
  }

  #pushZeros(n: number): void {
    this.#tail = null;
    while (n > 0) {
      const k = Math.min(n, ZEROS.length);
      this.#push(ZEROS.subarray(0, k));
      n -= k;
    }
  }

  /** Empties the part list; the block being filled goes with it, so that no later append writes into it. */
  #reset(): void {
    this.parts = [];
    this.ends = [];
    this.size = 0;
    this.#tail = null;
  }

  #pushViews(src: { parts: readonly Buffer[]; ends: readonly number[] }, from: number, to: number, compact = false): void {
    if (to <= from) return;
    this.#tail = null;
    let i = partIndex(src.ends, from);
    let pos = from;
    while (pos < to) {
      const part = src.parts[i] as Buffer;
      const partStart = (src.ends[i] as number) - part.length;
      const a = pos - partStart;
      const b = Math.min(part.length, to - partStart);
      let view = a === 0 && b === part.length ? part : part.subarray(a, b);
      if (compact && view.length * 2 < view.buffer.byteLength && view.buffer !== ZEROS.buffer) view = Buffer.from(view);
      this.#push(view);
      pos = partStart + b;
      i++;
    }
  }

  #append(data: Uint8Array): void {
    let off = 0;
    const tail = this.#tail;
    if (tail !== null && this.#tailUsed < tail.length) {
      const n = Math.min(tail.length - this.#tailUsed, data.length);
      tail.set(n === data.length ? data : data.subarray(0, n), this.#tailUsed);
      this.#tailUsed += n;
      const last = this.parts.length - 1;
      this.parts[last] = tail.subarray(0, this.#tailUsed);
      this.size += n;
      this.ends[last] = this.size;
      off = n;
    }
    const rest = data.length - off;
    if (rest === 0) return;
    if (rest >= BLOCK_SIZE) {
      const block = Buffer.allocUnsafeSlow(rest);
      block.set(off === 0 ? data : data.subarray(off));
      this.#tail = null;
      this.#push(block);
    } else {
      const block = Buffer.allocUnsafeSlow(BLOCK_SIZE);
      block.set(data.subarray(off), 0);
      this.#tail = block;
      this.#tailUsed = rest;
      this.#push(block.subarray(0, rest));
    }
  }

  /** Writes `data` at `pos`: an append, a zero-filled gap then an append, or an overwrite (the list is rebuilt). */
  writeAt(pos: number, data: Uint8Array): void {
    if (data.length === 0) return;
    const grow = Math.max(0, pos + data.length - this.size);
    if (this.counted) this.store.reserve(grow);
    if (pos >= this.size) {
      if (pos > this.size) this.#pushZeros(pos - this.size);
      this.#append(data);
      return;
    }
    const old = { parts: this.parts, ends: this.ends, size: this.size };
    const end = pos + data.length;
    this.#reset();
    this.#pushViews(old, 0, pos);
    this.#push(Buffer.from(data));
    if (end < old.size) this.#pushViews(old, end, old.size);
  }

  append(data: Uint8Array): void {
    this.writeAt(this.size, data);
  }

  /** Cuts (views, no copy) or zero-extends to `len` bytes. */
  truncate(len: number): void {
    if (len === this.size) return;
    if (len > this.size) {
      if (this.counted) this.store.reserve(len - this.size);
      this.#pushZeros(len - this.size);
      return;
    }
    if (this.counted) this.store.release(this.size - len);
    const old = { parts: this.parts, ends: this.ends };
    this.#reset();
    this.#pushViews(old, 0, len);
  }

  /** Copies `len` bytes at `pos` into `buf[off…]`; returns the count copied. */
  readInto(buf: Uint8Array, off: number, len: number, pos: number): number {
    const end = Math.min(this.size, pos + len);
    let copied = 0;
    if (pos >= end) return 0;
    let i = partIndex(this.ends, pos);
    while (pos < end) {
      const part = this.parts[i] as Buffer;
      const partStart = (this.ends[i] as number) - part.length;
      const a = pos - partStart;
      const b = Math.min(part.length, end - partStart);
      buf.set(part.subarray(a, b), off + copied);
      copied += b - a;
      pos += b - a;
      i++;
    }
    return copied;
  }

  /** The whole content in one buffer (for `readFile`). */
  toBuffer(): Buffer {
    return Buffer.concat(this.parts, this.size);
  }

  /** Trims the unused room of the block being filled (at most one 64 KiB copy), once a writer is done. */
  seal(): void {
    const tail = this.#tail;
    if (tail === null) return;
    this.#tail = null;
    if (tail.length - this.#tailUsed < 1024) return;
    const exact = Buffer.allocUnsafeSlow(this.#tailUsed);
    tail.copy(exact, 0, 0, this.#tailUsed);
    this.parts[this.parts.length - 1] = exact;
  }

  /** Starts counting this content against the store; ENOSPC when it does not fit. */
  attach(): void {
    if (this.attached) return;
    this.store.reserve(this.size);
    this.attached = this.counted = true;
  }

  /** Bytes that {@link detach} gives back to the store now. */
  get freeable(): number {
    return this.attached && this.writer === null ? this.size : 0;
  }

  /**
   * Made the file's content again by its writer (the upload that replaced it ended first, see
   * `MemoryWriteStream._final`): it still counts, its writer being there.
   */
  reattach(): void {
    if (this.counted) this.attached = true;
    else this.attach();
  }

  /** The file is deleted or replaced: its bytes stop counting, once its upload (if any) ends. */
  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    if (this.writer === null) this.#uncount();
  }

  /** `writer` ends (once: a later writer's registration is left alone); a detached content stops counting. */
  endWriter(writer: object): void {
    if (this.writer !== writer) return;
    this.writer = null;
    if (!this.attached) this.#uncount();
  }

  #uncount(): void {
    if (!this.counted) return;
    this.counted = false;
    this.store.release(this.size);
  }
}

interface NodeBase {
  ino: number;
  mode: number;
  mtimeMs: number;
  ctimeMs: number;
  birthtimeMs: number;
}
interface FileNode extends NodeBase {
  kind: 'file';
  content: Content;
}
interface DirNode extends NodeBase {
  kind: 'directory';
  children: Map<string, MemNode>;
}
interface LinkNode extends NodeBase {
  kind: 'symlink';
  target: string;
}
type MemNode = FileNode | DirNode | LinkNode;

/** Where a path leads: its (canonical) parent directory, name, and the node there if any. */
/** Where a file is: its folder and its name there. */
interface FilePlace {
  dir: DirNode;
  name: string;
}

interface Location {
  /** Undefined for the root. */
  dir: DirNode | undefined;
  dirPath: string;
  name: string;
  node: MemNode | undefined;
  /** Canonical path (symlinks of the parents resolved; of the last too when followed). */
  path: string;
}

/** Options of {@link MemoryProvider}. */
export interface MemoryProviderOptions {
  /** Total bytes of file content allowed; writes past it fail with ENOSPC. Default `Infinity`. */
  capacity?: number;
}

/** Reads a snapshot of a file: zero-copy views of its parts, at most 256 KiB each. */
class MemoryReadStream extends Readable {
  #snap: Snapshot;
  #pos: number;
  #end: number;
  #index: number;
  readonly #turns = new ReadTurns();

  constructor(snap: Snapshot, start: number, endInclusive: number | undefined) {
    super({ highWaterMark: TRANSFER_CHUNK_SIZE });
    this.#snap = snap;
    this.#pos = start;
    this.#end = Math.min(snap.size, endInclusive === undefined ? Infinity : endInclusive + 1);
    this.#index = start < snap.size ? partIndex(snap.ends, start) : snap.parts.length;
  }

  override _read(): void {
    if (this.#turns.waiting) return;
    for (;;) {
      if (this.#pos >= this.#end) {
        this.push(null);
        return;
      }
      if (this.#turns.due(() => !this.destroyed && this._read())) return;
      const part = this.#snap.parts[this.#index] as Buffer;
      const partEnd = this.#snap.ends[this.#index] as number;
      const partStart = partEnd - part.length;
      const a = this.#pos - partStart;
      const b = Math.min(part.length, this.#end - partStart, a + TRANSFER_CHUNK_SIZE);
      this.#pos = partStart + b;
      if (b === part.length) this.#index++;
      this.#turns.count(b - a);
      if (!this.push(a === 0 && b === part.length ? part : part.subarray(a, b))) return;
      // A read inside that push may have begun the wait for a turn (see ReadTurns).
      if (this.#turns.waiting) return;
    }
  }
}

/** An upload into a memory file: visible as it is written; partial data is kept when interrupted (as on a disk). */
/** Bytes an upload stores between two turns of the event loop (see `MemoryWriteStream.#done`). */
const TURN_BYTES = 1024 * 1024;

class MemoryWriteStream extends Writable implements UploadStream {
  #node: FileNode;
  #content: Content;
  #pos: number | null;
  /** The error the server reported for an interrupted transfer, if any. */
  interruptedBy: Error | undefined;

  /**
   * When it last wrote (ms, the monotonic clock): an upload quiet for {@link WRITER_TAKEOVER_IDLE_MS} gives the file
   * up (see {@link busy}).
   */
  idleSince = performance.now();
  /**
   * Every chunk is copied into the file's own blocks before its callback: the server may read the next data into the
   * same memory (uploads then skip a fresh buffer per socket read, most of their CPU here).
   */
  readonly releasesChunks = true;
  /** Bytes stored since the event loop last had a turn (see {@link TURN_BYTES}). */
  #sinceTurn = 0;

  /**
   * For a whole-file upload (its own new content), the folder and name of its file: the file's version if it ends last
   * and the file is still there (see `_final`).
   */
  readonly #place: FilePlace | undefined;

  /** An APPE or a REST + STOR: it writes into the file's content, and has no version of its own to become the file. */
  get continues(): boolean {
    return this.#place === undefined;
  }

  constructor(node: FileNode, content: Content, position: number | null, place?: FilePlace) {
    super({ highWaterMark: TRANSFER_CHUNK_SIZE });
    this.#node = node;
    this.#content = content;
    this.#pos = position;
    this.#place = place;
    content.writer = this;
    let writers = writersOf.get(node);
    if (writers === undefined) writersOf.set(node, (writers = new Set()));
    writers.add(this);
  }

  /** Lets other uploads continue the content again; a detached content stops counting against the store. */
  #release(): void {
    this.#content.endWriter(this);
    const writers = writersOf.get(this.#node);
    if (writers?.delete(this) === true && writers.size === 0) writersOf.delete(this.#node);
  }

  #write(chunk: Buffer): void {
    const pos = this.#pos ?? this.#content.size;
    this.#content.writeAt(pos, chunk);
    if (this.#pos !== null) this.#pos += chunk.length;
    this.#sinceTurn += chunk.length;
    this.#node.mtimeMs = Date.now();
    this.idleSince = performance.now();
  }

  /**
   * Calls back, after a turn of the event loop once {@link TURN_BYTES} were stored since the last: storing is
   * synchronous, and a write that always called back at once would let a fast sender hand over the next data in the
   * same turn, for as long as it keeps arriving (tens of MiB), holding every other session meanwhile.
   */
  #done(cb: (err?: Error | null) => void): void {
    if (this.#sinceTurn < TURN_BYTES) return cb();
    this.#sinceTurn = 0;
    setImmediate(cb);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    try {
      this.#write(chunk);
    } catch (err) {
      return cb(err as Error);
    }
    this.#done(cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    let i = 0;
    // Writes held back while the stream waited come together: a turn per TURN_BYTES among them too.
    const step = (): void => {
      if (this.destroyed) return cb();
      try {
        while (i < chunks.length) {
          this.#write(chunks[i++]!.chunk);
          if (this.#sinceTurn >= TURN_BYTES && i < chunks.length) {
            this.#sinceTurn = 0;
            setImmediate(step);
            return;
          }
        }
      } catch (err) {
        return cb(err as Error);
      }
      this.#done(cb);
    };
    step();
  }

  /** Whether this whole-file upload, replaced by another that has ended (`current`), is to be the file again. */
  #endsLast(current: Content): boolean {
    const place = this.#place;
    if (place === undefined || current === this.#content || this.#content.attached) return false;
    return current.attached && current.writer === null && place.dir.children.get(place.name) === this.#node;
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#content.seal();
    // Replaced meanwhile by a whole-file upload that has ended already: this one, ending last, is the file (as on
    // S3, SQL and Redis: the client told 226 last finds its data). One still running is the file once it ends; a
    // file deleted, renamed over or renamed away since stays so (a folder renamed on the way keeps the file in it).
    const current = this.#node.content;
    if (this.#endsLast(current)) {
      current.detach();
      this.#content.reattach();
      this.#node.content = this.#content;
      this.#node.mtimeMs = Date.now();
    }
    this.#release();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#content.seal();
    this.#release();
    cb(err);
  }

  /** Records the interruption; what was received stays in the file (REST can resume it). */
  transferError(err: Error): void {
    this.interruptedBy = err;
  }
}

/**
 * Whether an upload still writes `content`, so that a download or a continuing upload must be refused (EBUSY). One
 * quiet for {@link WRITER_TAKEOVER_IDLE_MS} has most likely lost its client: it is ended (as on the local disk) and
 * the file is what it wrote.
 */
function busy(content: Content, path: string): boolean {
  if (writing(content)) return true;
  const writer = content.writer;
  if (writer === null) return false;
  (writer as MemoryWriteStream).destroy(takenOverError(path));
  return content.writer !== null;
}


/**
 * The uploads writing into each file: its current content's, and those of whole-file uploads a later one replaced
 * meanwhile (such an upload that ends last becomes the file again: see `MemoryWriteStream._final`). The file is busy
 * for as long as any of them writes. Looking at the current content alone, a DELE after a second upload of the file
 * had ended was allowed while the first still wrote, and the first, told 226, left no file.
 */
const writersOf = new WeakMap<FileNode, Set<MemoryWriteStream>>();

/** Whether an upload has written within {@link WRITER_TAKEOVER_IDLE_MS} (an idle one has most likely lost its client). */
function active(writer: MemoryWriteStream): boolean {
  return performance.now() - writer.idleSince < WRITER_TAKEOVER_IDLE_MS;
}

/** Whether an upload that is not idle writes into `node` (see {@link writersOf}): nothing is ended by asking. */
function nodeWriting(node: FileNode): boolean {
  if (writing(node.content)) return true;
  for (const writer of writersOf.get(node) ?? []) if (active(writer)) return true;
  return false;
}

/** Ends the idle uploads writing into `node` (those continuing it alone with `continuing`): the file is taken over. */
function endIdle(node: FileNode, path: string, continuing = false): void {
  for (const writer of [...(writersOf.get(node) ?? [])]) if (!continuing || writer.continues) writer.destroy(takenOverError(path));
}

/**
 * As {@link busy}, for every upload writing into `node`: when none of them still writes, the idle ones are ended and
 * the file is free. A refusal ends nothing (an idle upload is ended only for an action that then goes ahead).
 */
function nodeBusy(node: FileNode, path: string): boolean {
  if (nodeWriting(node)) return true;
  endIdle(node, path);
  return busy(node.content, path);
}

/** Whether an upload that continues `node`'s content (APPE, REST + STOR) still writes it (see {@link nodeWriting}). */
function continuedNow(node: FileNode): boolean {
  for (const writer of writersOf.get(node) ?? []) if (writer.continues && active(writer)) return true;
  return false;
}

/** Whether an upload writes `content` and is not idle (see {@link busy}): nothing is ended by asking. */
function writing(content: Content): boolean {
  const writer = content.writer;
  if (writer === null) return false;
  return !(writer instanceof MemoryWriteStream) || active(writer);
}

/** A file handle of {@link MemoryProvider} (sync and async, as `@platformatic/vfs` expects). */
export class MemoryFileHandle {
  /** Current position of reads and writes without an explicit position. */
  position = 0;
  #closed = false;

  /** @internal */
  constructor(
    private readonly provider: MemoryProvider,
    private readonly node: FileNode,
    private readonly openFlags: OpenFlags,
    readonly path: string,
    readonly flags: string | number,
    readonly mode: number,
  ) {
    if (openFlags.append) this.position = node.content.size;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #check(op: 'read' | 'write'): void {
    if (this.#closed) throw fsError('EINVAL', op, this.path);
    if (op === 'read' ? !this.openFlags.read : !this.openFlags.write) throw fsError('EINVAL', op, this.path);
  }

  readSync(buffer: Uint8Array, offset = 0, length = buffer.byteLength - offset, position: number | null = null): number {
    this.#check('read');
    const pos = position ?? this.position;
    const n = this.node.content.readInto(buffer, offset, length, pos);
    if (position === null || position === undefined) this.position = pos + n;
    return n;
  }

  async read<T extends Uint8Array>(buffer: T, offset?: number, length?: number, position?: number | null): Promise<{ bytesRead: number; buffer: T }> {
    return { bytesRead: this.readSync(buffer, offset, length, position), buffer };
  }

  writeSync(buffer: Uint8Array, offset = 0, length = buffer.byteLength - offset, position: number | null = null): number {
    this.#check('write');
    const content = this.node.content;
    const pos = this.openFlags.append ? content.size : (position ?? this.position);
    content.writeAt(pos, buffer.subarray(offset, offset + length));
    this.node.mtimeMs = Date.now();
    if (position === null || position === undefined || this.openFlags.append) this.position = pos + length;
    return length;
  }

  async write<T extends Uint8Array>(buffer: T, offset?: number, length?: number, position?: number | null): Promise<{ bytesWritten: number; buffer: T }> {
    return { bytesWritten: this.writeSync(buffer, offset, length, position), buffer };
  }

  readFileSync(options?: BufferEncoding | { encoding?: BufferEncoding | null } | null): Buffer | string {
    this.#check('read');
    const buf = this.node.content.toBuffer();
    const encoding = typeof options === 'string' ? options : options?.encoding;
    return encoding ? buf.toString(encoding) : buf;
  }

  async readFile(options?: BufferEncoding | { encoding?: BufferEncoding | null } | null): Promise<Buffer | string> {
    return this.readFileSync(options);
  }

  writeFileSync(data: string | Uint8Array, options?: BufferEncoding | { encoding?: BufferEncoding } | null): void {
    this.#check('write');
    const encoding = typeof options === 'string' ? options : (options?.encoding ?? 'utf8');
    const buf = typeof data === 'string' ? Buffer.from(data, encoding) : data;
    if (!this.openFlags.append) this.node.content.truncate(0);
    this.node.content.append(buf);
    this.node.content.seal();
    this.node.mtimeMs = Date.now();
    this.position = this.node.content.size;
  }

  async writeFile(data: string | Uint8Array, options?: BufferEncoding | { encoding?: BufferEncoding } | null): Promise<void> {
    this.writeFileSync(data, options);
  }

  statSync(): VfsStats {
    if (this.#closed) throw fsError('EINVAL', 'fstat', this.path);
    return this.provider.statsOf(this.node);
  }

  async stat(): Promise<VfsStats> {
    return this.statSync();
  }

  truncateSync(len = 0): void {
    this.#check('write');
    this.node.content.truncate(len);
    this.node.mtimeMs = Date.now();
  }

  async truncate(len?: number): Promise<void> {
    this.truncateSync(len);
  }

  closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.openFlags.write) this.node.content.seal();
  }

  async close(): Promise<void> {
    this.closeSync();
  }
}

/** Entries per slice of a sliced listing: a few hundred KB of entries, as the other providers' slices. */
const LIST_SLICE = 500;

/**
 * An in-memory provider built for uploads: file content is a list of chunks, so appending never copies what is
 * already stored (the `@platformatic/vfs` `MemoryProvider` reallocates the whole buffer on every extending write),
 * and downloads are zero-copy views of those chunks.
 *
 * - Uploads are visible as they are written (like a local disk). A whole-file upload replaces the file's content
 *   object when it opens, so two concurrent uploads to one path never interleave: the file ends as the version of
 *   the upload that ended last (`atomicUploads`; as on S3, SQL and Redis). An upload that continues a file (APPE,
 *   REST + STOR) while another upload still writes it is refused with EBUSY when it opens (FTP 450), so that it never
 *   interleaves its bytes with the other's nor keeps a prefix of a half-written file; so is a download (it would send
 *   a prefix as if it were the file). So is a whole-file upload while an APPE or a REST + STOR writes the file (it
 *   would replace the content they write into). While any upload writes a file, a replaced one included (it is the
 *   file again if it ends last), deleting it or renaming it away or over is refused with EBUSY too. A reader sees the
 *   content as it was when its stream opened, whatever uploads do after.
 * - Symlinks: targets are stored as given and resolved inside the provider (`/` is the provider's root; `..` stops
 *   there).
 * - Renames of files and whole directories are O(1).
 * - `capacity` (default Infinity) bounds the bytes stored: writes past it fail with ENOSPC; `availableSpace` and
 *   `allocate` report against it. An upload whose file is deleted or replaced meanwhile counts until it ends.
 * - Every sync method of `VirtualProvider` works too, so it can be mounted with `@platformatic/vfs`'s `create()`.
 */
export class MemoryProvider extends SyncBackedProvider<MemoryFileHandle> implements FsProvider {
  /** Files held for an announced continuing upload (APPE, REST + STOR) not opened yet, by path: see `uploadBusy`. */
  readonly #holds = new UploadHolds<string>();
  /** The contract version this provider implements. */
  readonly specVersion = SPEC_VERSION;
  /** Concurrent whole-file uploads to one path end as one whole version. */
  readonly atomicUploads = true;
  /**
   * True: names are kept as the very strings given (`Map` keys, no normalisation, no UTF-8 round trip), byte escapes
   * included (see `FsProvider.rawNames`).
   */
  readonly rawNames = true;
  #store: Store;
  #nextIno = 1;
  #root: DirNode;

  /** @param options `capacity` in bytes (default Infinity). */
  constructor(options: MemoryProviderOptions = {}) {
    super();
    const capacity = options.capacity ?? Infinity;
    if (!(capacity >= 0)) throw new VfsError('EINVAL', 'EINVAL: capacity must be a non-negative number');
    this.#store = new Store(capacity);
    this.#root = this.#newDir(0o755);
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

  /** Bytes of file content stored. */
  get usedBytes(): number {
    return this.#store.used;
  }

  // ---------------------------------------------------------------- nodes

  #base(mode: number): NodeBase {
    const now = Date.now();
    return { ino: this.#nextIno++, mode: mode & 0o7777, mtimeMs: now, ctimeMs: now, birthtimeMs: now };
  }

  #newDir(mode: number): DirNode {
    return { ...this.#base(mode), kind: 'directory', children: new Map() };
  }

  #newFile(mode: number): FileNode {
    return { ...this.#base(mode), kind: 'file', content: new Content(this.#store) };
  }

  /** @internal Stats of a node. */
  statsOf(node: MemNode): VfsStats {
    return new VfsStats({
      kind: node.kind,
      size: node.kind === 'file' ? node.content.size : node.kind === 'symlink' ? escapedByteLength(node.target) : 4096,
      mode: node.mode,
      mtimeMs: node.mtimeMs,
      ctimeMs: node.ctimeMs,
      birthtimeMs: node.birthtimeMs,
      ino: node.ino,
    });
  }

  #touch(dir: DirNode): void {
    dir.mtimeMs = dir.ctimeMs = Date.now();
  }

  #drop(node: MemNode): void {
    if (node.kind === 'file') node.content.detach();
  }

  // ---------------------------------------------------------------- lookup

  /** Resolves a path; symlinks of the parents are always followed, the last one when `followLast`. */
  #locate(path: string, followLast: boolean, syscall: string, hops = { n: 0 }): Location {
    const p = normalizePath(path);
    if (p === '/') return { dir: undefined, dirPath: '/', name: '', node: this.#root, path: '/' };
    const parent = this.#walkDir(dirname(p), syscall, path, hops);
    const name = basename(p);
    const node = parent.dir.children.get(name);
    if (node !== undefined && node.kind === 'symlink' && followLast) {
      if (++hops.n > MAX_SYMLINK_HOPS) throw fsError('ELOOP', syscall, path);
      return this.#locate(resolvePath(parent.path, node.target), true, syscall, hops);
    }
    return { dir: parent.dir, dirPath: parent.path, name, node, path: parent.path === '/' ? `/${name}` : `${parent.path}/${name}` };
  }

  #walkDir(path: string, syscall: string, original: string, hops: { n: number }): { dir: DirNode; path: string } {
    const loc = this.#locate(path, true, syscall, hops);
    if (loc.node === undefined) throw fsError('ENOENT', syscall, original);
    if (loc.node.kind !== 'directory') throw fsError('ENOTDIR', syscall, original);
    return { dir: loc.node, path: loc.path };
  }

  #existing(path: string, followLast: boolean, syscall: string): Location & { node: MemNode } {
    const loc = this.#locate(path, followLast, syscall);
    if (loc.node === undefined) throw fsError('ENOENT', syscall, path);
    return loc as Location & { node: MemNode };
  }

  // ---------------------------------------------------------------- sync core

  override statSync(path: string): VfsStats {
    return this.statsOf(this.#existing(path, true, 'stat').node);
  }

  override lstatSync(path: string): VfsStats {
    return this.statsOf(this.#existing(path, false, 'lstat').node);
  }

  override readdirSync(path: string, options?: ReaddirOptions): string[] | VfsDirent[] {
    const dir = this.#walkDir(path, 'scandir', path, { n: 0 });
    if (options?.withFileTypes === true) {
      const p = normalizePath(path);
      return [...dir.dir.children].map(([name, node]) => new VfsDirent(name, node.kind, p));
    }
    return [...dir.dir.children.keys()];
  }

  override mkdirSync(path: string, options?: MkdirOptions): string | undefined {
    const p = normalizePath(path);
    const mode = options?.mode ?? 0o755;
    if (options?.recursive !== true) {
      if (p === '/') throw fsError('EEXIST', 'mkdir', path);
      const loc = this.#locate(p, false, 'mkdir');
      if (loc.node !== undefined) throw fsError('EEXIST', 'mkdir', path);
      (loc.dir as DirNode).children.set(loc.name, this.#newDir(mode));
      this.#touch(loc.dir as DirNode);
      return undefined;
    }
    let first: string | undefined;
    let cur = '/';
    const segs = splitPath(p);
    for (let i = 0; i < segs.length; i++) {
      const next = cur === '/' ? `/${segs[i]}` : `${cur}/${segs[i]}`;
      const loc = this.#locate(next, true, 'mkdir');
      if (loc.node === undefined) {
        (loc.dir as DirNode).children.set(loc.name, this.#newDir(mode));
        this.#touch(loc.dir as DirNode);
        first ??= next;
      } else if (loc.node.kind !== 'directory') {
        throw fsError(i === segs.length - 1 ? 'EEXIST' : 'ENOTDIR', 'mkdir', path);
      }
      cur = next;
    }
    return first;
  }

  override rmdirSync(path: string): void {
    const loc = this.#existing(path, false, 'rmdir');
    // The root: EPERM (550), not EBUSY (450: a transient refusal that clients retry).
    if (loc.dir === undefined) throw fsError('EPERM', 'rmdir', path);
    if (loc.node.kind !== 'directory') throw fsError('ENOTDIR', 'rmdir', path);
    if (loc.node.children.size > 0) throw fsError('ENOTEMPTY', 'rmdir', path);
    loc.dir.children.delete(loc.name);
    this.#touch(loc.dir);
  }

  override unlinkSync(path: string): void {
    const loc = this.#existing(path, false, 'unlink');
    if (loc.node.kind === 'directory' || loc.dir === undefined) throw fsError('EISDIR', 'unlink', path);
    // An upload under way would go on into a file no longer in the tree, and be told it completed: 450.
    if (loc.node.kind === 'file' && nodeBusy(loc.node, path)) throw fsError('EBUSY', 'unlink', path);
    loc.dir.children.delete(loc.name);
    this.#drop(loc.node);
    this.#touch(loc.dir);
  }

  override renameSync(oldPath: string, newPath: string): void {
    const src = this.#existing(oldPath, false, 'rename');
    const dst = this.#locate(newPath, false, 'rename');
    if (src.dir === undefined || dst.dir === undefined) throw fsError('EPERM', 'rename', oldPath);
    if (src.node === dst.node) return;
    if (src.node.kind === 'directory' && isInside(src.path, dst.path)) throw fsError('EINVAL', 'rename', newPath);
    // Neither an upload under way nor the file it writes may be moved away or replaced (see unlinkSync). Both are
    // looked at before an idle one is ended: a rename refused ends nothing.
    if (src.node.kind === 'file' && nodeWriting(src.node)) throw fsError('EBUSY', 'rename', oldPath);
    if (dst.node?.kind === 'file' && nodeWriting(dst.node)) throw fsError('EBUSY', 'rename', newPath);
    if (dst.node !== undefined) {
      if (src.node.kind === 'directory') {
        if (dst.node.kind !== 'directory') throw fsError('ENOTDIR', 'rename', newPath);
        if (dst.node.children.size > 0) throw fsError('ENOTEMPTY', 'rename', newPath);
      } else if (dst.node.kind === 'directory') {
        throw fsError('EISDIR', 'rename', newPath);
      }
    }
    // Nothing refused it: idle uploads of either file end now, right before the rename.
    if (src.node.kind === 'file' && nodeBusy(src.node, oldPath)) throw fsError('EBUSY', 'rename', oldPath);
    if (dst.node?.kind === 'file' && nodeBusy(dst.node, newPath)) throw fsError('EBUSY', 'rename', newPath);
    if (dst.node !== undefined) this.#drop(dst.node);
    src.dir.children.delete(src.name);
    dst.dir.children.set(dst.name, src.node);
    src.node.ctimeMs = Date.now();
    this.#touch(src.dir);
    this.#touch(dst.dir);
  }

  override openSync(path: string, flags: string | number = 'r', mode?: number): MemoryFileHandle {
    const f = parseOpenFlags(flags);
    const node = this.#openFile(path, f.create, f.exclusive, mode ?? 0o644, 'open');
    if (f.truncate && f.write) this.#install(node, new Content(this.#store));
    return new MemoryFileHandle(this, node, f, normalizePath(path), flags, mode ?? node.mode);
  }

  #openFile(path: string, create: boolean, exclusive: boolean, mode: number, syscall: string): FileNode {
    return this.#openFileAt(path, create, exclusive, mode, syscall).node;
  }

  /** {@link #openFile}, with the folder and name the file is under (a file is never the root: it has a folder). */
  #openFileAt(path: string, create: boolean, exclusive: boolean, mode: number, syscall: string): FilePlace & { node: FileNode } {
    const loc = this.#locate(path, true, syscall);
    const dir = loc.dir as DirNode;
    if (loc.node === undefined) {
      if (!create) throw fsError('ENOENT', syscall, path);
      const node = this.#newFile(mode);
      dir.children.set(loc.name, node);
      this.#touch(dir);
      return { node, dir, name: loc.name };
    }
    if (exclusive) throw fsError('EEXIST', syscall, path);
    if (loc.node.kind === 'directory') throw fsError('EISDIR', syscall, path);
    return { node: loc.node as FileNode, dir, name: loc.name };
  }

  /** Makes `next` the content of `node`; the old one is detached (readers keep their snapshots). */
  #install(node: FileNode, next: Content): void {
    const old = node.content;
    if (!next.attached) {
      if (next.size > this.#store.capacity - this.#store.used + old.freeable) throw fsError('ENOSPC', 'write');
      old.detach();
      next.attach();
    } else {
      old.detach();
    }
    node.content = next;
    node.mtimeMs = Date.now();
  }

  override readlinkSync(path: string): string {
    const loc = this.#existing(path, false, 'readlink');
    if (loc.node.kind !== 'symlink') throw fsError('EINVAL', 'readlink', path);
    return loc.node.target;
  }

  override symlinkSync(target: string, path: string): void {
    if (typeof target !== 'string' || target === '' || target.includes('\0')) throw fsError('EINVAL', 'symlink', path);
    const loc = this.#locate(path, false, 'symlink');
    if (loc.node !== undefined || loc.dir === undefined) throw fsError('EEXIST', 'symlink', path);
    loc.dir.children.set(loc.name, { ...this.#base(0o777), kind: 'symlink', target });
    this.#touch(loc.dir);
  }

  override realpathSync(path: string): string {
    return this.#existing(path, true, 'realpath').path;
  }

  override accessSync(path: string): void {
    this.#existing(path, true, 'access');
  }

  override existsSync(path: string): boolean {
    try {
      this.#existing(path, true, 'access');
      return true;
    } catch {
      return false;
    }
  }

  // ---------------------------------------------------------------- capabilities

  /** Entries of a directory with their stats (links as links), in one call. */
  async list(path: string): Promise<DirEntry[]> {
    const dir = this.#walkDir(path, 'scandir', path, { n: 0 });
    return [...dir.dir.children].map(([name, node]) => ({ name, stats: this.statsOf(node) }));
  }

  /**
   * Entries with their stats {@link LIST_SLICE} at a time, from a snapshot of the folder's names taken when it is
   * opened; sorted by name when it holds at most `sortedUpTo` (`sorted` says so). Making every entry's stats at
   * once, as `list` does, took 150–290 ms for 100,000 entries, with every other session waiting.
   */
  async listSlices(path: string, options: ListSlicesOptions = {}): Promise<DirSlices> {
    // A subclass that lists otherwise (its own `list`) keeps its listing.
    if (this.list !== MemoryProvider.prototype.list) return slicesOf([await this.list(path)]);
    return this.#slices(path, options, ([name, node]) => ({ name, stats: this.statsOf(node) }));
  }

  /** The names of {@link listSlices}, without their stats. */
  async listNameSlices(path: string, options: ListSlicesOptions = {}): Promise<NameSlices> {
    // A subclass that lists otherwise has NLST show what LIST shows: the names of its own listing.
    if (this.listSlices !== MemoryProvider.prototype.listSlices || this.list !== MemoryProvider.prototype.list) {
      return namesOf(await this.listSlices(path, options));
    }
    return this.#slices(path, options, ([name]) => name);
  }

  #slices<T>(path: string, options: ListSlicesOptions, make: (child: [string, MemNode]) => T): Sliced<T> {
    const folder = this.#walkDir(path, 'scandir', path, { n: 0 }).dir.children;
    const children = [...folder];
    const max = options.sortedUpTo;
    const sorted = max === undefined ? undefined : children.length <= max;
    if (sorted === true) children.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    let at = 0;
    const done = (): IteratorResult<T[]> => ({ done: true, value: undefined });
    return {
      sorted,
      async next() {
        if (at >= children.length) return done();
        // Entries removed (or replaced) since the listing opened are left out, as the contract says.
        const slice = children.slice(at, (at += LIST_SLICE)).filter(([name, node]) => folder.get(name) === node);
        return { done: false, value: slice.map(make) };
      },
      async return() {
        at = children.length;
        return done();
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  /**
   * Streams a snapshot of the file (content as of now) as zero-copy views, `end` inclusive.
   * @throws VfsError EBUSY while an upload is still writing the file.
   */
  async createReadStream(path: string, options: ReadStreamOptions = {}): Promise<Readable> {
    checkStreamOptions(options, path);
    const node = this.#existing(path, true, 'open').node;
    if (node.kind === 'directory') throw fsError('EISDIR', 'open', path);
    const file = node as FileNode;
    // A snapshot of an upload still writing would be a prefix of the file, sent as if whole: busy (450) instead, as
    // on the local disk.
    if (busy(file.content, path)) throw fsError('EBUSY', 'open', path);
    return new MemoryReadStream(file.content.snapshot(), options.start ?? 0, options.end);
  }

  /**
   * Opens an upload: replaces the content (default), keeps the first `start` bytes and writes after them (REST +
   * STOR), or appends (`append`, creating the file when missing).
   *
   * @throws VfsError EBUSY for an append or a REST + STOR while another upload of the file is still writing it.
   */
  async createWriteStream(path: string, options: WriteStreamOptions = {}): Promise<UploadStream> {
    checkStreamOptions(options, path);
    const { node, ...place } = this.#openFileAt(path, true, false, options.mode ?? 0o644, 'open');
    // The upload announced for it opens (see uploadBusy).
    this.#holds.release(normalizePath(path));
    const continues = options.append === true || (options.start ?? 0) > 0;
    if (continues && nodeBusy(node, path)) throw fsError('EBUSY', 'open', path);
    // A whole-file upload replaces the content an APPE or a REST + STOR still writes into: their bytes, told 226 at
    // their end, would go with the replaced content. Refused as a continuing upload is (the local disk refuses both);
    // one gone idle is ended, as a continuing upload's open ends it (it has lost its client: 451 there, not 226).
    if (!continues) {
      if (continuedNow(node)) throw fsError('EBUSY', 'open', path);
      endIdle(node, path, true);
    }
    if (options.append === true) return new MemoryWriteStream(node, node.content, null);
    const content = options.start === undefined ? new Content(this.#store) : Content.prefixOf(node.content, options.start);
    this.#install(node, content);
    // Where the file is, for a whole-file upload: it becomes the file again only if the file is still there.
    // REST 0 + STOR is a whole-file upload too: its own version, the file again if it ends last.
    return new MemoryWriteStream(node, content, content.size, continues ? undefined : place);
  }

  /** Sets the modification time. */
  async setTimes(path: string, mtime: Date): Promise<void> {
    const node = this.#existing(path, true, 'utime').node;
    node.mtimeMs = mtime.getTime();
    node.ctimeMs = Date.now();
  }

  /** Sets the creation time. */
  async setCreationTime(path: string, birthtime: Date): Promise<void> {
    const node = this.#existing(path, true, 'utime').node;
    node.birthtimeMs = birthtime.getTime();
    node.ctimeMs = Date.now();
  }

  /** Changes the permission bits. */
  async chmod(path: string, mode: number): Promise<void> {
    const node = this.#existing(path, true, 'chmod').node;
    node.mode = mode & 0o7777;
    node.ctimeMs = Date.now();
  }

  /**
   * Whether an upload of `path` with `options` opened now would be refused (EBUSY): an append or a REST + STOR
   * while another upload still writes the file, or another announced one holds it; a whole-file upload while an append
   * or a REST + STOR writes it (it replaces another whole-file upload: see `atomicUploads`). With `hold`, a free file
   * is held for this upload until it opens.
   */
  async uploadBusy(path: string, options: WriteStreamOptions = {}, hold: boolean | object = false): Promise<boolean> {
    const continues = options.append === true || (options.start ?? 0) > 0;
    let node: MemNode;
    try {
      node = this.#existing(path, true, 'open').node;
    } catch {
      return false;
    }
    if (node.kind !== 'file') return false;
    // A whole-file upload may replace another whole-file upload (see `atomicUploads`), not an APPE or a REST + STOR,
    // running or announced (held: it got its 150 and has not opened yet; this ask takes no hold of its own).
    if (!continues) return continuedNow(node as FileNode) || this.#holds.heldAgainst(normalizePath(path), hold);
    return nodeWriting(node as FileNode) || this.#holds.ask(normalizePath(path), hold);
  }

  /** Gives back `owner`'s hold of `path` (see `FsProvider.releaseUploadHold`). */
  async releaseUploadHold(path: string, owner: object): Promise<void> {
    this.#holds.releaseOwned(normalizePath(path), owner);
  }

  /** Bytes that can still be stored (`Infinity` without a capacity). */
  async availableSpace(path: string): Promise<number> {
    this.#existing(path, true, 'statfs');
    return Math.max(0, this.#store.capacity - this.#store.used);
  }

  /** Fails with ENOSPC when `size` more bytes would not fit. */
  async allocate(path: string, size: number): Promise<void> {
    if (size > (await this.availableSpace(dirname(normalizePath(path))))) throw fsError('ENOSPC', 'allocate', path);
  }
}

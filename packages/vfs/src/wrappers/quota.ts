import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { fsError, toVfsError, vfsError } from '../errors.js';
import { listDirectory } from '../listing.js';
import { joinPath } from '../paths.js';
import { SPEC_VERSION } from '../spec.js';
import type { FsProvider, UploadStream, WriteStreamOptions } from '../spec.js';
import { openWriteStream } from '../streams.js';

/** Options of {@link quota}. */
export interface QuotaOptions {
  /** Bytes the files under the provider may take in total. */
  bytes: number;
}

/** Deepest folder the first usage count descends into; deeper trees are not counted (and said so nowhere else). */
const MAX_DEPTH = 64;

/**
 * A provider whose files may take at most `bytes` in total (a per-user quota): an upload that would pass it fails
 * with EDQUOT (552) as soon as it does, `availableSpace` (AVBL) and `allocate` (ALLO) answer against it. Usage is
 * counted once by walking the tree (on first need), then kept up to date by the uploads, deletes and renames that go
 * through this wrapper; concurrent uploads reserve what they write, so together they cannot pass the quota either.
 * Changes made to the inner provider by other means are seen at the next count (after a write through a file
 * handle, which is not metered). The wrapper never closes the inner provider.
 */
export function quota(p: FsProvider, options: QuotaOptions): FsProvider {
  const limit = options.bytes;
  if (!(limit >= 0)) throw new TypeError('quota: bytes must be a non-negative number');
  /** Bytes the files take, once counted; null until then. */
  let used: number | null = null;
  /**
   * Bumped whenever `used` may have gone wrong (an unmetered change, or a failed upload that may have left part of
   * itself): `used` is counted again at the next upload or query, by a count that starts after the bump (one that was
   * already running may have missed it, and one that fails settles nothing). Until then uploads in progress go on with
   * the last figure, never with none.
   */
  let changes = 0;
  /** `changes` as it was when the count that set `used` began (-1: never counted). */
  let countedAt = -1;
  let counting: { at: number; total: Promise<number> } | null = null;
  /** Bytes written by uploads in progress. */
  let reserved = 0;

  async function count(dir: string, depth: number): Promise<number> {
    let sum = 0;
    for (const e of await listDirectory(p, dir)) {
      if (e.stats.isDirectory()) {
        if (depth < MAX_DEPTH) sum += await count(joinPath(dir, e.name), depth + 1);
      } else if (e.stats.isFile()) {
        sum += e.stats.size;
      }
    }
    return sum;
  }
  const usage = async (): Promise<number> => {
    if (used !== null && countedAt === changes) return used;
    const at = changes;
    if (counting?.at !== at) {
      const mine: { at: number; total: Promise<number> } = { at, total: count('/', 0) };
      counting = mine;
      mine.total.then(
        () => (counting === mine ? (counting = null) : undefined),
        () => (counting === mine ? (counting = null) : undefined),
      );
    }
    const total = await counting!.total;
    // A count begun later may have settled first: the newer figure stays.
    if (at >= countedAt) {
      used = total;
      countedAt = at;
    }
    return used ?? total;
  };
  const adjust = (delta: number): void => {
    if (used !== null) used = Math.max(0, used + delta);
  };
  const sizeOf = async (path: string): Promise<number> => {
    try {
      const st = typeof p.lstat === 'function' ? await p.lstat(path) : await p.stat(path);
      return st.isFile() ? st.size : 0;
    } catch {
      return 0;
    }
  };

  const w = delegate(p);
  w.availableSpace = async (path) => {
    const left = Math.max(0, limit - (await usage()) - reserved);
    const inner = typeof p.availableSpace === 'function' ? await p.availableSpace(path) : Infinity;
    return Math.min(left, inner);
  };
  w.allocate = async (path, size) => {
    if ((await usage()) + reserved + size > limit) throw fsError('EDQUOT', 'allocate', path);
    if (typeof p.allocate === 'function') await p.allocate(path, size);
  };
  w.unlink = async (path) => {
    const size = await sizeOf(path);
    await p.unlink(path);
    adjust(-size);
  };
  w.rename = async (from, to) => {
    const replaced = from === to ? 0 : await sizeOf(to);
    await p.rename(from, to);
    adjust(-replaced);
  };
  w.open = async (path, flags, mode) => {
    // Writes through file handles are not metered: count again next time.
    if (flags !== undefined && (typeof flags !== 'string' || /[wa+]/.test(flags))) changes++;
    return p.open(path, flags, mode);
  };
  if (typeof p.concat === 'function') {
    const concat = p.concat;
    w.concat = async (target, parts) => {
      await concat.call(p, target, parts);
      changes++;
    };
  }
  w.createWriteStream = async (path: string, opts: WriteStreamOptions = {}): Promise<UploadStream> => {
    await usage();
    const old = await sizeOf(path);
    // What stays of the old file: all of it for APPE, the first `start` bytes for REST, nothing otherwise.
    const kept = opts.append ? old : Math.min(old, opts.start ?? 0);
    const room = (): number => limit - ((used ?? 0) - old + kept) - reserved;
    if (room() < 0) throw vfsError('EDQUOT', 'Storage quota exceeded.', path);
    const inner = await openWriteStream(p, path, opts);
    return new MeteredUpload(inner, path, {
      room,
      reserve: (n) => (reserved += n),
      // A completed upload, and a failed one alike (a provider that writes in place keeps its partial data): what it
      // wrote moves from reserved to used in one step, so that no upload running beside it sees room in between.
      settle: (written) => {
        reserved -= written;
        adjust(kept + written - old);
      },
      // What a failed upload left is known once its inner upload has closed (its last write landed): counted again.
      recount: () => changes++,
    });
  };
  return w;
}

/** A provider object whose every method calls `p`'s (bound: class providers keep private state). */
function delegate(p: FsProvider): { -readonly [K in keyof FsProvider]: FsProvider[K] } {
  const w: Record<string, unknown> = { specVersion: SPEC_VERSION };
  for (const key of METHODS) {
    const fn = (p as unknown as Record<string, unknown>)[key];
    if (typeof fn === 'function') w[key] = (fn as (...args: unknown[]) => unknown).bind(p);
  }
  for (const flag of ['readonly', 'supportsSymlinks', 'atomicUploads', 'uploadsVisibleWhenComplete', 'rawNames'] as const) {
    if (p[flag] !== undefined) w[flag] = p[flag];
  }
  return w as unknown as { -readonly [K in keyof FsProvider]: FsProvider[K] };
}

const METHODS = [
  'stat', 'lstat', 'readdir', 'mkdir', 'rmdir', 'unlink', 'rename', 'open', 'readlink', 'symlink', 'list', 'listSlices', 'setTimes', 'setCreationTime', 'chmod',
  'hash', 'availableSpace', 'allocate', 'concat', 'createReadStream', 'createWriteStream',
] as const;

interface Meter {
  /** Bytes this upload may still write. */
  room(): number;
  reserve(n: number): void;
  /** The upload ended (completed or failed) after writing `written` bytes: reserved becomes used. */
  settle(written: number): void;
  /** What the failed upload left is known only once its inner upload has closed: count again then. */
  recount(): void;
}

/** An upload that counts its bytes against the quota and fails with EDQUOT past it. */
class MeteredUpload extends Writable implements UploadStream {
  private written = 0;
  /** The reservation has been given back (by `_final` or `_destroy`): never twice. */
  private settled = false;

  constructor(
    private readonly inner: UploadStream,
    private readonly path: string,
    private readonly meter: Meter,
  ) {
    super({ highWaterMark: inner.writableHighWaterMark });
    inner.on('error', (err) => this.destroy(toVfsError(err, path)));
  }

  /** The inner upload's progress while it copies what it keeps (see {@link UploadStream.storedBytes}). */
  get storedBytes(): number | undefined {
    return this.inner.storedBytes;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (chunk.length > this.meter.room()) return cb(vfsError('EDQUOT', 'Storage quota exceeded.', this.path));
    this.written += chunk.length;
    this.meter.reserve(chunk.length);
    if (this.inner.write(chunk)) cb();
    else this.inner.once('drain', () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.inner.end();
    finished(this.inner).then(
      () => {
        if (!this.settled) {
          this.settled = true;
          this.meter.settle(this.written);
        }
        cb();
      },
      (err: unknown) => cb(toVfsError(err, this.path)),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // `_final` may have settled already (a destroy between its callback and 'finish').
    const failed = !this.settled;
    this.settled = true;
    // The reservation goes back in the same step as the bytes are counted as used: given back alone (as it once was,
    // until the inner upload closed), it opened room that uploads running in parallel took (16 of them passed a
    // 20 MiB quota by 1.2 MB); waiting for the inner upload instead could hold it for as long as that takes.
    if (failed) this.meter.settle(this.written);
    if (!this.inner.destroyed) this.inner.destroy(err ?? undefined);
    // Closed once the inner upload is: a write still running there lands before anyone is told the upload is over,
    // and the usage is counted again only after it (else the count could miss it and stay wrong).
    const closed = (): void => {
      if (failed) this.meter.recount();
      cb(err);
    };
    finished(this.inner).then(closed, closed);
  }

  transferError(err: Error): void {
    this.inner.transferError?.(err);
  }
}

import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { fsError, toVfsError, vfsError } from '../errors.js';
import { listDirectory, statEntry } from '../listing.js';
import { basename, dirname, joinPath } from '../paths.js';
import { SPEC_VERSION } from '../spec.js';
import type { FileStats, FsProvider, UploadStream, WriteStreamOptions } from '../spec.js';
import { openWriteStream } from '../streams.js';

/** Options of {@link quota}. */
export interface QuotaOptions {
  /** Bytes the files under the provider may take in total. */
  bytes: number;
}

/**
 * An upload in progress, as the count sees it. Uploads are told apart by their folder entry (the folder's identity,
 * `dev` + `ino`, and the name) rather than by path: a path through a symbolic link names the same entry, and the
 * SQLite provider commits to the folder it opened in even when that folder is renamed meanwhile.
 */
interface Upload {
  dir: string;
  name: string;
  /** What stays of the file it replaces (APPE, REST). */
  kept: number;
  /** What `used` holds for the file at the upload's entry: what the upload frees when it replaces it. */
  counted: number;
  /** Its entry was touched by something else while it ran: its settlement may be off, so usage is counted again. */
  disturbed: boolean;
  /** Once settled: what it changed relative to `counted` bytes held for its entry (the count may have seen another). */
  delta?: (counted: number) => number;
}

/** A count of the whole tree, running. */
interface Count {
  at: number;
  total: Promise<number>;
  /** Uploads in progress when the folder of their entry began to be listed, with the size the listing saw there. */
  seen: Map<Upload, number>;
  /** Folders whose listing has begun. */
  listed: Set<string>;
  /** Settlements the walk cannot have seen, added to its total. */
  correction: number;
}

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
  /**
   * The file an upload replaces is gone as soon as it opens (memory, local disk: the upload writes in place), or
   * only once it completes (SQLite): then an upload that fails leaves it, and until the commit it still takes room.
   */
  const inPlace = p.uploadsVisibleWhenComplete !== true;
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
  let counting: Count | null = null;
  const running = new Set<Count>();
  /** Bytes written by uploads in progress. */
  let reserved = 0;
  const uploads = new Set<Upload>();
  /**
   * In place, the sum of `counted - kept` of the uploads in progress: bytes `used` still holds for files they have
   * already replaced (or, after a count, for what they have written so far, which `reserved` holds too).
   */
  let replacing = 0;
  /**
   * Deletes, renames and the look at the file an upload replaces run one at a time: the size each takes off must be
   * that of the file it really removes, not one that a concurrent delete or rename already took off.
   */
  let queue: Promise<unknown> = Promise.resolve();
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  const folderKey = (path: string, st: FileStats): string =>
    typeof st.ino === 'number' && st.ino > 0 ? `${String(st.dev ?? 0)}:${st.ino}` : `@${path}`;
  /** The identity of the folder `path` is in; undefined when it cannot be had. */
  const folderOf = async (path: string): Promise<string | undefined> => {
    const dir = dirname(path);
    try {
      return folderKey(dir, await p.stat(dir));
    } catch {
      return undefined;
    }
  };

  const setCounted = (u: Upload, n: number): void => {
    if (inPlace) replacing += n - u.counted;
    u.counted = n;
  };
  const disturb = (u: Upload): void => {
    u.disturbed = true;
    // What the wrapper holds for the entry is no longer what the upload will replace: it frees nothing at its end.
    setCounted(u, 0);
  };
  /** A delete or rename is about to touch the entry at `path`: the uploads writing there settle with a count. */
  const touch = async (path: string): Promise<void> => {
    if (uploads.size === 0) return;
    const dir = await folderOf(path);
    const name = basename(path);
    for (const u of uploads) if (dir === undefined || (u.dir === dir && u.name === name)) disturb(u);
  };

  async function count(c: Count): Promise<number> {
    // Depth-first with a list of folders still to read, not recursion: as deep as the storage goes (the server allows
    // deeper paths than any fixed limit here would, and what lies below such a limit would escape the quota).
    const stack: { dir: string; key: string }[] = [{ dir: '/', key: folderKey('/', await p.stat('/')) }];
    let sum = 0;
    for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
      const { dir, key } = next;
      c.listed.add(key);
      const here: Upload[] = [];
      for (const u of uploads) {
        if (u.dir === key) {
          here.push(u);
          c.seen.set(u, 0);
        }
      }
      for (const e of await listDirectory(p, dir)) {
        if (e.stats.isDirectory()) {
          const sub = joinPath(dir, e.name);
          stack.push({ dir: sub, key: folderKey(sub, e.stats) });
        } else if (e.stats.isFile()) {
          sum += e.stats.size;
          for (const u of here) if (u.name === e.name) c.seen.set(u, e.stats.size);
        }
      }
    }
    return sum;
  }
  const startCount = (at: number): Count => {
    const c = { at, seen: new Map(), listed: new Set(), correction: 0 } as Partial<Count> as Count;
    running.add(c);
    // Taken in the same step as the walk ends: no upload may settle between the two.
    c.total = count(c).then(
      (total) => {
        running.delete(c);
        if (counting === c) counting = null;
        if (at >= countedAt) {
          let sum = total + c.correction;
          for (const [u, size] of c.seen) {
            // Settled since the walk saw its entry: what it did after that is not in the walk's total.
            if (u.delta !== undefined) sum += u.delta(size);
            // Still running: what the walk saw at its entry (in place: its bytes so far, which `reserved` holds too)
            // is what `used` now holds for it, and what it gives back when it settles.
            else if (uploads.has(u)) setCounted(u, size);
          }
          used = Math.max(0, sum);
          countedAt = at;
        }
        return used ?? total;
      },
      (err: unknown) => {
        running.delete(c);
        if (counting === c) counting = null;
        throw err;
      },
    );
    return c;
  };
  const usage = async (): Promise<number> => {
    if (used !== null && countedAt === changes) return used;
    if (counting?.at !== changes) counting = startCount(changes);
    // A count begun later may have settled first: the newer figure stays.
    return counting.total;
  };
  /** Counts again soon, so that a figure left too high does not refuse uploads for long. */
  const recount = (): void => {
    changes++;
    usage().catch(() => undefined);
  };
  const adjust = (delta: number): void => {
    if (used !== null) used = Math.max(0, used + delta);
  };
  /** A delete or rename during a count: the walk may have seen the tree before or after it: counted again. */
  const afterChange = (): void => {
    if (running.size > 0) changes++;
  };
  const fileStats = (path: string): Promise<FileStats | undefined> => statEntry(p, path).catch(() => undefined);
  const sizeOf = (st: FileStats | undefined): number => (st?.isFile() ? st.size : 0);
  const sameObject = (a: FileStats | undefined, b: FileStats | undefined): boolean =>
    a !== undefined && b !== undefined && typeof a.ino === 'number' && a.ino > 0 && a.ino === b.ino && (a.dev ?? 0) === (b.dev ?? 0);

  const settle = (u: Upload, written: number, ok: boolean): void => {
    const grown = u.kept + written;
    // A failed upload never frees anything: where it does not write in place the file it meant to replace is still
    // there; in place, what it left is counted again. A count corrects what this leaves too high.
    u.delta = ok ? (counted) => grown - counted : inPlace ? (counted) => Math.max(0, grown - counted) : () => 0;
    uploads.delete(u);
    if (inPlace) replacing -= u.counted - u.kept;
    reserved -= written;
    adjust(u.delta(u.counted));
    // A count running meanwhile that listed the upload's folder before the upload began saw what was there before
    // it; one that saw the upload running adds its settlement when it ends; one yet to list it will see what it left.
    for (const c of running) if (!c.seen.has(u) && c.listed.has(u.dir)) c.correction += u.delta(u.counted);
    // A failed one is counted again once its inner upload has closed (`recount` below).
    if (u.disturbed && ok) recount();
  };

  const w = delegate(p);
  const charged = (): number => Math.max(0, (used ?? 0) - (inPlace ? replacing : 0)) + reserved;
  w.availableSpace = async (path) => {
    await usage();
    const left = Math.max(0, limit - charged());
    const inner = typeof p.availableSpace === 'function' ? await p.availableSpace(path) : Infinity;
    return Math.min(left, inner);
  };
  w.allocate = async (path, size) => {
    await usage();
    if (charged() + size > limit) throw fsError('EDQUOT', 'allocate', path);
    if (typeof p.allocate === 'function') await p.allocate(path, size);
  };
  w.unlink = (path) =>
    serially(async () => {
      const st = await fileStats(path);
      await touch(path);
      await p.unlink(path);
      adjust(-sizeOf(st));
      afterChange();
    });
  w.rename = (from, to) =>
    serially(async () => {
      const [a, b] = await Promise.all([fileStats(from), fileStats(to)]);
      // The same file under two names (a folder reached through a link, a hard link): the rename changes nothing.
      const replaced = from === to || sameObject(a, b) ? 0 : sizeOf(b);
      await touch(from);
      await touch(to);
      await p.rename(from, to);
      adjust(-replaced);
      afterChange();
    });
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
    /** What the inner open refuses at once (a missing folder, a directory): opened now, so that it is refused now. */
    let refusable = false;
    const u = await serially(async () => {
      const [dir, st] = await Promise.all([folderOf(path), fileStats(path)]);
      refusable = dir === undefined || st?.isDirectory() === true;
      const old = sizeOf(st);
      // What stays of the old file: all of it for APPE, the first `start` bytes for REST, nothing otherwise.
      const kept = opts.append ? old : Math.min(old, opts.start ?? 0);
      const u: Upload = { dir: dir ?? `@${dirname(path)}`, name: basename(path), kept, counted: kept, disturbed: false };
      setCounted(u, old);
      for (const v of uploads) {
        // Two uploads of one file: which replaces what depends on the order they end in.
        if (v.dir === u.dir && v.name === u.name) {
          disturb(v);
          disturb(u);
        }
      }
      uploads.add(u);
      return u;
    });
    const room = (): number =>
      limit - (inPlace ? charged() : Math.max(0, (used ?? 0) - u.counted) + u.kept + reserved);
    if (room() < 0) {
      drop(u);
      throw vfsError('EDQUOT', 'Storage quota exceeded.', path);
    }
    // Opened at the first byte the quota lets through (or at the end of an empty upload): an upload refused at its
    // first chunk leaves the file it would have replaced as it was, and makes no empty file (the inner open empties
    // an old file at once). Unless the open would be refused anyway: then here, as for any provider.
    let early: UploadStream | null = null;
    if (refusable) {
      try {
        early = await openWriteStream(p, path, opts);
      } catch (err) {
        drop(u);
        throw err;
      }
    }
    return new MeteredUpload(path, early !== null, {
      open: () => (early !== null ? Promise.resolve(early) : openWriteStream(p, path, opts)),
      drop: () => drop(u),
      room,
      reserve: (n) => (reserved += n),
      // A completed upload, and a failed one alike (a provider that writes in place keeps its partial data): what it
      // wrote moves from reserved to used in one step, so that no upload running beside it sees room in between.
      settle: (written, ok) => settle(u, written, ok),
      // What a failed upload left is known once its inner upload has closed (its last write landed): counted again.
      recount: () => {
        if (inPlace || u.disturbed) recount();
      },
    });
  };
  /** An upload that never opened: it wrote nothing and replaced nothing. */
  const drop = (u: Upload): void => {
    if (!uploads.delete(u)) return;
    if (inPlace) replacing -= u.counted - u.kept;
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
  'stat', 'lstat', 'readdir', 'mkdir', 'rmdir', 'unlink', 'rename', 'open', 'readlink', 'symlink', 'list', 'listSlices', 'listNameSlices', 'setTimes', 'setCreationTime', 'chmod',
  'hash', 'availableSpace', 'allocate', 'concat', 'createReadStream', 'createWriteStream', 'uploadBusy', 'releaseUploadHold', 'checkUpload', 'checkEnter',
] as const;

interface Meter {
  /** Opens the inner upload. */
  open(): Promise<UploadStream>;
  /** The inner upload never opened (refused at its first chunk, or failed to open): it wrote and replaced nothing. */
  drop(): void;
  /** Bytes this upload may still write. */
  room(): number;
  reserve(n: number): void;
  /** The upload ended (completed, or failed: `ok` false) after writing `written` bytes: reserved becomes used. */
  settle(written: number, ok: boolean): void;
  /** What the failed upload left is known only once its inner upload has closed: count again then. */
  recount(): void;
}

/**
 * An upload that counts its bytes against the quota and fails with EDQUOT past it; its inner upload is opened at the
 * first chunk that fits (see `createWriteStream` above).
 */
class MeteredUpload extends Writable implements UploadStream {
  private written = 0;
  /** The reservation has been given back (by `_final` or `_destroy`): never twice. */
  private settled = false;
  private inner: UploadStream | null = null;
  private opening: Promise<UploadStream> | null = null;
  /** The inner open failed: it replaced nothing. */
  private openFailed = false;

  constructor(
    private readonly path: string,
    openNow: boolean,
    private readonly meter: Meter,
  ) {
    super({ highWaterMark: METERED_HIGH_WATER_MARK });
    // Already open (see createWriteStream): its errors and its end are this upload's from now on.
    if (openNow) void this.opened().catch(() => undefined);
  }

  /** The inner upload, opened on first need. */
  private opened(): Promise<UploadStream> {
    this.opening ??= this.meter.open().then(
      (inner) => {
        this.inner = inner;
        inner.on('error', (err) => this.destroy(toVfsError(err, this.path)));
        return inner;
      },
      (err: unknown) => {
        this.openFailed = true;
        throw err;
      },
    );
    return this.opening;
  }

  /** Not opened yet (refused at its first chunk, or ended before one), or its open failed: the file is as it was. */
  get untouched(): boolean {
    return this.opening === null || this.openFailed;
  }

  /** The inner upload's progress while it copies what it keeps (see {@link UploadStream.storedBytes}). */
  get storedBytes(): number | undefined {
    return this.inner?.storedBytes;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.inner !== null) return this.writeOn(this.inner, chunk, cb);
    // Refused before the open: the file it would replace stays as it was.
    if (chunk.length > this.meter.room()) return cb(vfsError('EDQUOT', 'Storage quota exceeded.', this.path));
    this.opened().then(
      (inner) => this.writeOn(inner, chunk, cb),
      (err: unknown) => cb(toVfsError(err, this.path)),
    );
  }

  private writeOn(inner: UploadStream, chunk: Buffer, cb: (err?: Error | null) => void): void {
    // Checked here for every chunk (again for the first: another upload may have taken room while this one opened).
    if (chunk.length > this.meter.room()) return cb(vfsError('EDQUOT', 'Storage quota exceeded.', this.path));
    this.written += chunk.length;
    this.meter.reserve(chunk.length);
    if (inner.write(chunk)) cb();
    else inner.once('drain', () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.opened()
      .then((inner) => {
        inner.end();
        return finished(inner);
      })
      .then(
        () => {
          if (!this.settled) {
            this.settled = true;
            this.meter.settle(this.written, true);
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
    const opening = this.opening;
    // Never opened: nothing was written, nothing replaced.
    if (opening === null) {
      if (failed) this.meter.drop();
      return cb(err);
    }
    opening.then(
      (inner) => {
        // The reservation goes back in the same step as the bytes are counted as used: given back alone (as it once
        // was, until the inner upload closed), it opened room that uploads running in parallel took (16 of them
        // passed a 20 MiB quota by 1.2 MB); waiting for the inner upload instead could hold it for as long as that takes.
        if (failed) this.meter.settle(this.written, false);
        if (!inner.destroyed) inner.destroy(err ?? undefined);
        // Closed once the inner upload is: a write still running there lands before anyone is told the upload is
        // over, and the usage is counted again only after it (else the count could miss it and stay wrong).
        const closed = (): void => {
          if (failed) this.meter.recount();
          cb(err);
        };
        finished(inner).then(closed, closed);
      },
      () => {
        // The open failed: as for an upload never opened.
        if (failed) this.meter.drop();
        cb(err);
      },
    );
  }

  transferError(err: Error): void {
    this.inner?.transferError?.(err);
  }
}

/** What a metered upload buffers before it waits for its storage (the inner upload is not there to ask at first). */
const METERED_HIGH_WATER_MARK = 64 * 1024;

import type { Readable } from 'node:stream';
import { attachFileSize, checkStreamOptions, countWhileOpen, RunningUploads, createDigest, digestStream, dirname, fsError, normalizePath, parseOpenFlags, SPEC_VERSION, toVfsError, TRANSFER_CHUNK_SIZE, VfsError } from '@ftp/vfs';
import type { DirEntry, DirSlices, FsProvider, HashAlgorithm, HashOptions, ReadStreamOptions, UploadStream, VfsDirent, VfsStats, WriteStreamOptions } from '@ftp/vfs';
import { connect, evalScript, newCallId, RootMissing, runFs } from './client.js';
import type { RedisClient, RedisTarget } from './client.js';
import { contentGone, copyChunks, discardContent, getChunk } from './content.js';
import type { Internals } from './content.js';
import { redisError } from './errors.js';
import { RedisFileHandle } from './file-handle.js';
import { Keys } from './keys.js';
import { LIST_PAGE_SIZE, pagedSlices, pageOf } from './list-slices.js';
import type { ListPage } from './list-slices.js';
import { MAX_READER_LEASE_MS, READER_LEASE_MS, ReaderLease, newReaderId } from './lease.js';
import { RedisReadStream } from './read-stream.js';
import { COMMIT, INIT, LIST, LIST_PAGE, MEMORY_INFO, MKDIR, OPEN_READ, PREPARE, RENAME, RMDIR, SETATTR, STAT, SYMLINK, UNLINK } from './scripts.js';
import type { LuaScript } from './scripts.js';
import { direntsOf, entriesOf, namesOf, nodeAt, num, str } from './stats.js';
import { RedisWriteStream } from './write-stream.js';
import type { Committer, KeptCopy } from './write-stream.js';

/** Options of {@link RedisProvider}. */
export interface RedisProviderOptions {
  /**
   * The Redis to use: a `redis://` URL or ioredis options (the provider then owns the connection and `close()` ends
   * it), or an ioredis `Redis` / `Cluster` instance (shared; `close()` leaves it open).
   */
  redis: RedisTarget;
  /**
   * Names this filesystem: every key is `{prefix}:…`, so many filesystems share one Redis, and the braces (a hash
   * tag) keep all keys of one filesystem in one Cluster slot. Default `ftp`. Must not contain `{` or `}`.
   */
  prefix?: string;
  /**
   * Bytes per content chunk (default 256 KiB): the unit of every read and write, and what a transfer holds in memory
   * (a few of them). Fixed when the filesystem is created: an existing filesystem keeps its own.
   */
  chunkSize?: number;
  /** TTL of an upload's content while it is written, refreshed by every chunk (default 10 minutes). */
  uploadTtlMs?: number;
  /**
   * How long the content of a replaced or deleted file stays readable for downloads (and read-only handles) that
   * were reading it then (default 10 minutes). Content that nobody reads is deleted at once, and content that is read
   * as soon as its last reader ends: the grace period only bounds how long a stalled or dead reader holds it.
   * 0 deletes content at once whatever its readers (such downloads then fail with EIO), and readers take no lease.
   */
  gracePeriodMs?: number;
  /** Chunk writes of one upload in flight at once (default 4). */
  maxInFlightChunks?: number;
  /**
   * @internal For tests: the length of a reader's lease, ms (default {@link READER_LEASE_MS}, 60 s), renewed every
   * third of it.
   */
  readerLeaseMs?: number;
}

/** An upload started by `#prepare`: its new inode and what of the current file it already holds. */
interface PreparedUpload {
  fs: Internals;
  ino: number;
  /** Whole chunks copied into the new inode. */
  fullChunks: number;
  /** The partial chunk that follows them (popPartial), for the writer to continue. */
  head: Buffer;
  /** The inode the path named when the upload started (undefined: no file there). */
  baseIno: number | undefined;
  baseSize: number;
  baseMode: number | undefined;
  /** Bytes of the current file the upload keeps (copied, or to be copied with `copy`). */
  kept: number;
  /**
   * Where the upload commits: the id of the folder the file is in and its name there, so that the upload follows a
   * rename of that folder (or of one above it) while it runs, as on a disk. Undefined from an older PREPARE script.
   */
  entry: { dir: string; name: string } | undefined;
  /**
   * With `deferCopy`: the copy not made yet, for the upload stream to make (chunks `0 … fullChunks-1`, then the
   * head); it resolves to the head.
   */
  copy?: KeptCopy;
}

/**
 * Bytes per chunk of a new filesystem: 256 KiB less 64. A chunk is a Redis string of its bytes plus a ~10-byte
 * header, and jemalloc (Redis's allocator) serves 256 KiB + 10 from its 320 KiB size class: chunks of exactly
 * 256 KiB cost 1.25 times their size in Redis memory (`MEMORY USAGE` 327,848 bytes for one). These fit the 256 KiB
 * class. Uploads copy into chunk buffers anyway, so chunks need not match the server's 256 KiB transfer buffers.
 */
const DEFAULT_CHUNK_SIZE = TRANSFER_CHUNK_SIZE - 64;

const DEFAULTS = { prefix: 'ftp', chunkSize: DEFAULT_CHUNK_SIZE, uploadTtlMs: 600_000, gracePeriodMs: 600_000, maxInFlightChunks: 4, readerLeaseMs: READER_LEASE_MS };

/**
 * A whole filesystem in Redis (see the package README for the data model): directories are hashes of name → inode,
 * inodes are hashes, file content is a hash of fixed-size chunks per inode. Every operation is one Lua script and one
 * round-trip (plus one per symbolic link met on the path); rename moves one directory entry, whatever it names;
 * uploads are written under a new inode and swapped in whole (`atomicUploads`).
 */
export class RedisProvider implements FsProvider {
  /** @inheritdoc */
  readonly specVersion = SPEC_VERSION;
  /** Symbolic links are stored and followed (SITE SYMLINK). */
  readonly supportsSymlinks = true;
  /** Concurrent uploads to one path end as one whole version: each writes its own inode, swapped in by a script. */
  readonly atomicUploads = true;
  /** An upload's inode is hidden until the commit swaps it in; an interrupted one leaves the old version. */
  readonly uploadsVisibleWhenComplete = true;
  /** The ioredis client in use. */
  readonly client: RedisClient;
  /** The key names of this filesystem. */
  readonly keys: Keys;
  readonly #owned: boolean;
  /**
   * This provider's uploads running now, by the path of the folder they write into. An upload is swapped in only when
   * it completes, so the folder does not show it: without this, RMD removed a folder an upload was writing into, and
   * the upload failed at its end (551). By path: an upload through a link to the folder, or another server's, is not
   * seen.
   */
  readonly #uploadFolders = new Map<string, number>();
  /** This provider's uploads running or announced, by path (see {@link uploadBusy}). */
  readonly #uploads = new RunningUploads<string>();
  readonly #options: typeof DEFAULTS;
  #ready: Promise<Internals> | undefined;

  /** @param options where the filesystem lives; see {@link RedisProviderOptions}. */
  constructor(options: RedisProviderOptions) {
    const { client, owned } = connect(options.redis);
    this.client = client;
    this.#owned = owned;
    this.#options = {
      prefix: options.prefix ?? DEFAULTS.prefix,
      chunkSize: options.chunkSize ?? DEFAULTS.chunkSize,
      uploadTtlMs: options.uploadTtlMs ?? DEFAULTS.uploadTtlMs,
      gracePeriodMs: options.gracePeriodMs ?? DEFAULTS.gracePeriodMs,
      maxInFlightChunks: options.maxInFlightChunks ?? DEFAULTS.maxInFlightChunks,
      readerLeaseMs: options.readerLeaseMs ?? DEFAULTS.readerLeaseMs,
    };
    for (const k of ['chunkSize', 'uploadTtlMs', 'maxInFlightChunks', 'readerLeaseMs'] as const) {
      if (!(Number.isSafeInteger(this.#options[k]) && this.#options[k] > 0)) throw new RangeError(`${k} must be a positive integer`);
    }
    if (!(Number.isSafeInteger(this.#options.gracePeriodMs) && this.#options.gracePeriodMs >= 0)) throw new RangeError('gracePeriodMs must be an integer >= 0');
    if (this.#options.readerLeaseMs > MAX_READER_LEASE_MS) throw new RangeError(`readerLeaseMs must be at most ${MAX_READER_LEASE_MS}`);
    this.keys = new Keys(this.#options.prefix);
  }

  /** Creates the root on first use and adopts the chunk size the filesystem was created with. */
  #init(): Promise<Internals> {
    this.#ready ??= (async () => {
      const [cs] = await runFs(this.client, this.keys.tag, this.keys.route, INIT, 'init', [], [this.#options.chunkSize, Date.now()]);
      return {
        client: this.client,
        keys: this.keys,
        chunkSize: num(cs, this.#options.chunkSize),
        uploadTtlMs: this.#options.uploadTtlMs,
        gracePeriodMs: this.#options.gracePeriodMs,
        // Without a grace period content goes at once whatever its readers: a lease would protect nothing.
        leaseMs: this.#options.gracePeriodMs > 0 ? this.#options.readerLeaseMs : 0,
        maxInFlight: this.#options.maxInFlightChunks,
      };
    })();
    // A failed start (Redis down) is retried by the next call rather than remembered.
    this.#ready.catch(() => {
      this.#ready = undefined;
    });
    return this.#ready;
  }

  async #run(s: LuaScript, syscall: string, paths: readonly string[], args: readonly (string | number)[] = [], binary = false): Promise<unknown[]> {
    await this.#init();
    try {
      return await runFs(this.client, this.keys.tag, this.keys.route, s, syscall, paths.map(normalizePath), args, binary);
    } catch (err) {
      if (!(err instanceof RootMissing)) throw err;
      // Redis lost the filesystem (a restart without persistence, FLUSHDB): an empty one is made again, as at the
      // first start, and the call runs once more. Still missing: EIO.
      this.#ready = undefined;
      await this.#init();
      try {
        return await runFs(this.client, this.keys.tag, this.keys.route, s, syscall, paths.map(normalizePath), args, binary);
      } catch (again) {
        throw again instanceof RootMissing ? redisError(new Error('the filesystem root is missing in Redis'), syscall, again.path) : again;
      }
    }
  }

  async #stat(path: string, follow: boolean, syscall: string): Promise<VfsStats> {
    return nodeAt(await this.#run(STAT, syscall, [path], [follow ? '1' : '0']), 0).stats;
  }

  /** Stats of what `path` leads to (links followed). */
  stat(path: string): Promise<VfsStats> {
    return this.#stat(path, true, 'stat');
  }

  /** Stats of `path` itself (a link is reported as a link). */
  lstat(path: string): Promise<VfsStats> {
    return this.#stat(path, false, 'lstat');
  }

  /** Names in a directory, or `Dirent`s with `{ withFileTypes: true }`. */
  async readdir(path: string, options?: { withFileTypes?: boolean }): Promise<string[] | VfsDirent[]> {
    if (options?.withFileTypes === true) return direntsOf(await this.#run(LIST, 'scandir', [path], ['1']), normalizePath(path));
    return namesOf(await this.#run(LIST, 'scandir', [path], ['0']));
  }

  /** Entries of a directory with their stats, in one round-trip (one script over the directory hash). */
  async list(path: string): Promise<DirEntry[]> {
    return entriesOf(await this.#run(LIST, 'scandir', [path], ['1']));
  }

  /**
   * Entries of a directory with their stats, a page of {@link LIST_PAGE_SIZE} at a time, one script call each (see
   * {@link pagedSlices}): a big directory never holds Redis for longer than a page, nor the server's memory with
   * more than a page of stats. The first page is read as the directory is opened, so a small directory costs one
   * round-trip, as {@link list} does.
   */
  async listSlices(path: string): Promise<DirSlices> {
    const read = async (ino: string, cursor: string): Promise<ListPage> => pageOf(await this.#run(LIST_PAGE, 'scandir', [path], [ino, cursor, LIST_PAGE_SIZE]));
    return pagedSlices(await read('', '0'), read, normalizePath(path));
  }

  /** Creates a directory (and its parents with `recursive`). */
  async mkdir(path: string, options?: { recursive?: boolean; mode?: number }): Promise<undefined> {
    await this.#run(MKDIR, 'mkdir', [path], [options?.recursive === true ? '1' : '0', (options?.mode ?? 0o755) & 0o7777, Date.now(), newCallId()]);
    return undefined;
  }

  /** Removes an empty directory. */
  async rmdir(path: string): Promise<void> {
    // An upload into it shows in the folder only once it completes: busy (450) until then, not empty.
    if (this.#uploadFolders.has(normalizePath(path))) throw fsError('EBUSY', 'rmdir', path);
    await this.#run(RMDIR, 'rmdir', [path], [Date.now(), newCallId()]);
  }

  /** Removes a file or link; a file's content is deleted at once, or kept for the grace period while it is read. */
  async unlink(path: string): Promise<void> {
    await this.#run(UNLINK, 'unlink', [path], [Date.now(), this.#options.gracePeriodMs, newCallId()]);
  }

  /** Moves one directory entry, atomically, in O(1) whatever it names; replaces a file or an empty directory. */
  async rename(oldPath: string, newPath: string): Promise<void> {
    await this.#run(RENAME, 'rename', [oldPath, newPath], [Date.now(), this.#options.gracePeriodMs, newCallId()]);
  }

  /** Creates a symbolic link at `path` pointing to `target` (stored as given). */
  async symlink(target: string, path: string): Promise<void> {
    if (typeof target !== 'string' || target === '' || target.includes('\0')) throw fsError('EINVAL', 'symlink', path);
    await this.#run(SYMLINK, 'symlink', [path], [target, Date.now(), newCallId()]);
  }

  /** The target of a symbolic link. */
  async readlink(path: string): Promise<string> {
    const node = nodeAt(await this.#run(STAT, 'readlink', [path], ['0']), 0);
    if (node.kind !== 'symlink' || node.target === undefined) throw fsError('EINVAL', 'readlink', path);
    return node.target;
  }

  /** Sets the modification time (MFMT). */
  async setTimes(path: string, mtime: Date): Promise<void> {
    await this.#run(SETATTR, 'utimes', [path], ['m', mtime.getTime()]);
  }

  /** Sets the permission bits (SITE CHMOD). */
  async chmod(path: string, mode: number): Promise<void> {
    await this.#run(SETATTR, 'chmod', [path], ['o', mode & 0o7777]);
  }

  /**
   * The commit of an upload of `path`: swaps the new inode in (see the COMMIT script). With `base` (an upload that
   * continues the file: APPE, REST+STOR, a writable handle without truncation) the swap happens only if the path
   * still names the inode the upload started from (`null`: still no file); otherwise the upload is discarded with
   * EBUSY. Without it (a whole-file STOR) the last upload to commit wins.
   */
  #committer(path: string, mode: number, exclusive: boolean, start: PreparedUpload, continues: boolean): Committer {
    const expected = !continues ? '*' : start.baseIno === undefined ? '' : String(start.baseIno);
    const dir = start.entry?.dir ?? '';
    const name = start.entry?.name ?? '';
    return async (ino, size, chunks) => {
      try {
        await this.#run(COMMIT, 'write', [path], [ino, size, chunks, mode, Date.now(), exclusive ? '1' : '0', this.#options.gracePeriodMs, expected, dir, name]);
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'EBUSY') throw err;
        throw new VfsError('EBUSY', `EBUSY: '${normalizePath(path)}' was changed by another client while this upload continued it; nothing was written, try again`, {
          syscall: 'write',
          path,
        });
      }
    };
  }

  /**
   * Starts an upload: a new inode, with the first `keep` bytes of the current file (-1: all of it) copied to it inside
   * Redis (copy-on-write for `start`/`append` and writable handles). With `popPartial` the last partial chunk of the
   * kept prefix is not copied but answered as `head`, for a writer to continue it.
   */
  async #prepare(path: string, keep: number, popPartial: boolean, exclusive: boolean, mustExist: boolean, deferCopy = false): Promise<PreparedUpload> {
    const fs = await this.#init();
    const r = await this.#run(PREPARE, 'open', [path], [exclusive ? '1' : '0', mustExist ? '1' : '0']);
    const ino = num(r[0], 0);
    const baseIno = r[1] === null || r[1] === undefined ? undefined : num(r[1], 0);
    const baseSize = num(r[2], 0);
    const baseMode = r[3] === null || r[3] === undefined ? undefined : num(r[3], 0o644);
    const entry = typeof r[4] === 'string' && typeof r[5] === 'string' ? { dir: r[4], name: r[5] } : undefined;
    const prepared: PreparedUpload = { fs, ino, fullChunks: 0, head: Buffer.alloc(0), baseIno, baseSize, baseMode, kept: 0, entry };
    if (baseIno === undefined || keep === 0 || baseSize === 0) return prepared;
    const cs = fs.chunkSize;
    const kept = keep < 0 || keep > baseSize ? baseSize : keep;
    const rest = popPartial ? kept % cs : 0;
    const full = popPartial ? Math.floor(kept / cs) : Math.ceil(kept / cs);
    // The copy takes no reader lease: were the file replaced or deleted meanwhile, the upload could not commit anyway
    // (it commits only over the version it copies), so it fails now with the EBUSY the commit would answer, and the
    // old content is not held for it.
    const changed = (): VfsError =>
      new VfsError('EBUSY', `EBUSY: '${normalizePath(path)}' was replaced or deleted by another client while this upload copied it; nothing was written, try again`, {
        syscall: 'write',
        path,
      });
    const copy: KeptCopy = async (onStep, stopped) => {
      try {
        if (!(await copyChunks(fs, baseIno, ino, full, onStep, stopped))) throw changed();
        if (rest === 0 || stopped?.()) return Buffer.alloc(0);
        const chunk = await getChunk(fs, baseIno, full);
        if (chunk === null) throw changed();
        if (chunk.length < rest) throw contentGone(full);
        return Buffer.from(chunk.subarray(0, rest));
      } catch (err) {
        throw toVfsError(err, path);
      }
    };
    prepared.fullChunks = full;
    prepared.kept = kept;
    if (deferCopy) {
      prepared.copy = copy;
      return prepared;
    }
    try {
      prepared.head = await copy();
    } catch (err) {
      await discardContent(fs, ino);
      throw err;
    }
    return prepared;
  }

  /**
   * Resolves a file to read (OPEN_READ) and, with `lease`, registers a reader's lease on its inode in the same script
   * (no delete can come between). Answers the fields after 'OK' and the lease (undefined without one).
   */
  async #openRead(path: string, lease: boolean): Promise<{ fs: Internals; reply: unknown[]; lease: ReaderLease | undefined }> {
    const fs = await this.#init();
    const id = lease && fs.leaseMs > 0 ? newReaderId() : '';
    const reply = await this.#run(OPEN_READ, 'open', [path], [id, fs.leaseMs]);
    // OPEN_READ takes no lease on an empty file (nothing to keep): answered by a size of 0.
    return { fs, reply, lease: id === '' || num(reply[1], 0) === 0 ? undefined : new ReaderLease(fs, num(reply[0], 0), id) };
  }

  /** A download of one version of the file, chunk by chunk (`end` inclusive), holding a reader's lease on it. */
  async createReadStream(path: string, options: ReadStreamOptions = {}): Promise<Readable> {
    checkStreamOptions(options, path);
    // A range that is known to be empty reads no chunk: no lease (nor its release) for it.
    const empty = options.end !== undefined && options.end < (options.start ?? 0);
    const { fs, reply, lease } = await this.#openRead(path, !empty);
    const total = num(reply[1], 0);
    const end = Math.min(total, options.end === undefined ? Infinity : options.end + 1);
    // The size of the version this stream reads: the server's 150 reply needs no STAT of its own (which could see a
    // newer version).
    return attachFileSize(new RedisReadStream(fs, num(reply[0], 0), Math.min(options.start ?? 0, end), end, lease), total);
  }

  /**
   * An upload, visible whole once the stream has finished. `append` and `start` copy the kept part of the current
   * file to the new inode inside Redis (copy-on-write: cheap for small files, a server-side memory copy for big ones),
   * and commit only if the file is still the version they started from (EBUSY otherwise: no lost write). A plain
   * upload replaces whatever is there when it commits (last writer wins).
   */
  async createWriteStream(path: string, options: WriteStreamOptions = {}): Promise<UploadStream> {
    checkStreamOptions(options, path);
    const continues = options.append === true || (options.start ?? 0) > 0;
    const keep = options.append === true ? -1 : (options.start ?? 0);
    // The copy of the kept part is the stream's, before its first write: opening stays one round-trip.
    const start = await this.#prepare(path, keep, true, false, false, true);
    const hole = options.append === true ? 0 : Math.max(0, (options.start ?? 0) - start.kept);
    const mode = options.mode ?? start.baseMode ?? 0o644;
    const commit = this.#committer(path, mode & 0o7777, false, start, continues);
    const stream = new RedisWriteStream(start.fs, { ino: start.ino, fullChunks: start.fullChunks, head: start.head, hole, copy: start.copy }, commit);
    countWhileOpen(this.#uploadFolders, dirname(normalizePath(path)), stream);
    this.#uploads.opened(normalizePath(path), stream);
    return stream;
  }

  /**
   * Whether an upload of `path` with `options` would now race another upload of this provider to the file: one that
   * continues it (APPE, REST + STOR) commits only over the version it started from, so the first of the two to end
   * makes the other fail at its end (EBUSY, after its client sent everything). A plain upload replaces the file
   * (last one wins) and is never busy. With `hold`, a file found free is held for the upload that
   * asked until it opens (see `RunningUploads`). Uploads of other processes are not seen; the file is told by its path.
   */
  async uploadBusy(path: string, options: WriteStreamOptions = {}, hold: boolean | object = false): Promise<boolean> {
    return this.#uploads.mayBeBusy(options, hold) && this.#uploads.busy(normalizePath(path), hold);
  }

  /** Gives back `owner`'s hold of `path` (see `FsProvider.releaseUploadHold`). */
  async releaseUploadHold(path: string, owner: object): Promise<void> {
    this.#uploads.releaseHold(normalizePath(path), owner);
  }

  /**
   * A file handle. Read-only handles read one version; writable ones (`w`, `a`, `r+`, `wx`…) work on a private copy
   * that `close()` makes visible atomically (so a file opened with `w` appears at `close()`, not at `open()`).
   */
  async open(path: string, flags: string | number = 'r', mode = 0o644): Promise<RedisFileHandle> {
    const f = parseOpenFlags(flags);
    if (!f.write) {
      const { fs, reply, lease } = await this.#openRead(path, true);
      const [ino, size, fileMode, mtime] = reply;
      return new RedisFileHandle(fs, { ino: num(ino, 0), size: num(size, 0), mode: num(fileMode, 0o644), mtimeMs: num(mtime, 0), lease }, f, normalizePath(path));
    }
    const start = await this.#prepare(path, f.truncate ? 0 : -1, false, f.exclusive, !f.create);
    const fileMode = (start.baseMode ?? mode) & 0o7777;
    // A handle that keeps the content (r+, a) commits only over the version it copied; `w` replaces (last wins).
    const commit = this.#committer(path, fileMode, f.exclusive, start, !f.truncate);
    return new RedisFileHandle(start.fs, { ino: start.ino, size: f.truncate ? 0 : start.baseSize, mode: fileMode, mtimeMs: Date.now(), commit }, f, normalizePath(path));
  }

  /** Digest of `[start, end)` of a file, streamed over its chunks (HASH). */
  async hash(path: string, algorithm: HashAlgorithm, start?: number, end?: number, options: HashOptions = {}): Promise<string> {
    const digest = createDigest(algorithm);
    const from = start ?? 0;
    if (end !== undefined && end <= from) {
      await this.#openRead(path, false);
      return digest.digest();
    }
    const stream = await this.createReadStream(path, end === undefined ? { start: from } : { start: from, end: end - 1 });
    return digestStream(stream, digest, options.signal);
  }

  /** Free bytes under `maxmemory` of the node that holds this filesystem (Infinity without `maxmemory`). */
  async availableSpace(_path: string): Promise<number> {
    let info: string;
    try {
      info = str(await evalScript(this.client, MEMORY_INFO, [this.keys.route], [])) ?? '';
    } catch (err) {
      throw redisError(err, 'statfs');
    }
    const field = (name: string): number => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
    const max = field('maxmemory');
    const used = field('used_memory');
    if (!(max > 0)) return Infinity;
    return Math.max(0, max - (Number.isFinite(used) ? used : 0));
  }

  /**
   * ALLO: checks that `size` more bytes fit under `maxmemory` now (ENOSPC otherwise). Redis cannot reserve memory,
   * so this is advice to the client, not a guarantee that the upload will fit.
   */
  async allocate(path: string, size: number): Promise<void> {
    if (size > (await this.availableSpace(path))) throw fsError('ENOSPC', 'allocate', path);
  }

  /** Ends the connection when the provider opened it (a client passed in is left open). */
  async close(): Promise<void> {
    if (!this.#owned) return;
    if (this.client.status !== 'ready') {
      this.client.disconnect();
      return;
    }
    try {
      await this.client.quit();
    } catch {
      // Already closing: nothing left to release.
    }
  }
}

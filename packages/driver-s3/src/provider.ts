import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  checkStreamOptions,
  RunningUploads,
  dirname,
  fsError,
  normalizePath,
  parseOpenFlags,
  SPEC_VERSION,
  VfsDirent,
  type DirEntry,
  type DirSlices,
  type FileStats,
  type FsProvider,
  type HashAlgorithm,
  type HashOptions,
  type ReadStreamOptions,
  type WriteStreamOptions,
} from '@ftp/vfs';
import type { UploadMemoryBudget } from './budget.js';
import type { S3Context } from './context.js';
import { openDownload } from './download.js';
import { S3ReadHandle, S3WriteHandle } from './handles.js';
import { hashObject } from './hash.js';
import { listDir, listDirSlices } from './listing.js';
import { dirStats, fileStats, kindOf, requireDirectory } from './objects.js';
import { createClient, MAX_PART_SIZE, resolveOptions, type S3ProviderOptions } from './options.js';
import { S3_PART_SCHEDULE, type PartSchedule } from './parts.js';
import { KeyMapper } from './paths.js';
import { deleteKey, putMarker } from './remove.js';
import { renamePath } from './rename.js';
import { setObjectTime } from './times.js';
import { S3UploadStream, tooLarge, type UploadPlan } from './upload.js';

/**
 * An S3 bucket (or a key prefix of one) as an `@ftp/vfs` filesystem, for AWS S3 and S3-compatible stores (MinIO, R2,
 * Ceph RGW...). Files are objects, directories are key prefixes with an empty marker object (`dir/`) so that an empty
 * directory persists. Transfers stream both ways: ranged GETs down, multipart uploads up, with bounded memory.
 *
 * @example
 * ```ts
 * const fs = new S3Provider({ bucket: 'ftp', prefix: 'users/alice/', region: 'eu-west-1' });
 * ```
 */
export class S3Provider implements FsProvider {
  /** The contract version this provider implements. */
  readonly specVersion = SPEC_VERSION;
  /** S3 has no links. */
  readonly supportsSymlinks = false;
  /** An upload appears only once complete, whole; of two concurrent uploads, the one completed last wins. */
  readonly atomicUploads = true;
  /** A multipart upload is no object until completed; an aborted one leaves the previous object as it was. */
  readonly uploadsVisibleWhenComplete = true;
  /** The S3 client in use. */
  readonly client: S3Client;
  readonly #ctx: S3Context;
  readonly #ownsClient: boolean;
  /** This provider's uploads running or announced, by path (see {@link uploadBusy}). */
  readonly #uploads = new RunningUploads<string>();

  /** @param options bucket, prefix, client or connection settings, part size and concurrency. */
  constructor(options: S3ProviderOptions) {
    const resolved = resolveOptions(options);
    this.client = options.client ?? createClient(options);
    this.#ownsClient = options.client === undefined;
    this.#ctx = {
      client: this.client,
      bucket: resolved.bucket,
      keys: new KeyMapper(resolved.prefix),
      options: resolved,
      partCopyUnsupported: false,
      conditionalWritesUnsupported: false,
      conditionalDeletesUnsupported: false,
      multipartCopyThreshold: MAX_PART_SIZE,
      multipartCopyPartSize: 512 * 1024 * 1024,
      partSchedule: S3_PART_SCHEDULE,
    };
  }

  /** The bucket. */
  get bucket(): string {
    return this.#ctx.bucket;
  }

  /** The budget the part buffers of this provider's uploads are taken from (`held`, `peak`, `waiting` for metrics). */
  get uploadMemory(): UploadMemoryBudget {
    return this.#ctx.options.uploadMemory;
  }

  /** The normalised key prefix (`''` or `'users/alice/'`). */
  get prefix(): string {
    return this.#ctx.keys.prefix;
  }

  /**
   * @internal Test hook: copy objects above `threshold` bytes with multipart UploadPartCopy ranges of `partSize`
   * (S3's values, 5 GiB and 512 MiB, cannot be exercised against a test store in reasonable time).
   */
  setMultipartCopy(threshold: number, partSize: number): void {
    (this.#ctx as { multipartCopyThreshold: number }).multipartCopyThreshold = threshold;
    (this.#ctx as { multipartCopyPartSize: number }).multipartCopyPartSize = partSize;
  }

  /**
   * @internal Test hook: replaces S3's part limits (10,000 parts, doubling every 800, up to ~1 GiB, 5 GiB parts,
   * 5 TiB objects) for the uploads and copies started afterwards, so that reaching them takes megabytes.
   */
  setPartSchedule(schedule: Partial<PartSchedule>): void {
    (this.#ctx as { partSchedule: PartSchedule }).partSchedule = { ...this.#ctx.partSchedule, ...schedule };
  }

  /** Stats of a file (HEAD) or a directory (a prefix with a marker or objects below it). */
  async stat(path: string): Promise<FileStats> {
    if (path === '/') return dirStats();
    const k = await kindOf(this.#ctx, path);
    if (k.kind === 'file') return fileStats(k.head);
    if (k.kind === 'directory') return dirStats(k.probe.markerMtimeMs);
    throw fsError('ENOENT', 'stat', path);
  }

  /** Same as {@link stat}: there are no links. */
  lstat(path: string): Promise<FileStats> {
    return this.stat(path);
  }

  /** Names in a directory (`withFileTypes`: Dirents). */
  async readdir(path: string, options?: { withFileTypes?: boolean }): Promise<string[] | VfsDirent[]> {
    const entries = await listDir(this.#ctx, path);
    if (options?.withFileTypes === true) return entries.map((e) => new VfsDirent(e.name, e.stats.isDirectory() ? 'directory' : 'file', path));
    return entries.map((e) => e.name);
  }

  /** Entries with their stats, from the listing pages alone (ListObjectsV2, `/` delimiter, every page). */
  list(path: string): Promise<DirEntry[]> {
    return listDir(this.#ctx, path);
  }

  /**
   * Entries with their stats a listing page (up to 1,000 entries) at a time, the next page fetched while the
   * caller sends the last: a listing of a huge prefix holds one or two pages, never the whole folder.
   */
  listSlices(path: string): Promise<DirSlices> {
    return listDirSlices(this.#ctx, path);
  }

  /** Creates a directory marker (`dir/`); `recursive` creates the missing parents' markers too. */
  async mkdir(path: string, options?: { recursive?: boolean; mode?: number }): Promise<undefined> {
    if (path === '/') {
      if (options?.recursive === true) return undefined;
      throw fsError('EEXIST', 'mkdir', path);
    }
    const k = await kindOf(this.#ctx, path);
    if (k.kind === 'file') throw fsError('EEXIST', 'mkdir', path);
    if (k.kind === 'directory') {
      if (options?.recursive === true) return undefined;
      throw fsError('EEXIST', 'mkdir', path);
    }
    const parent = dirname(path);
    if (options?.recursive === true) {
      if (parent !== '/') {
        const up = await kindOf(this.#ctx, parent);
        if (up.kind === 'file') throw fsError('ENOTDIR', 'mkdir', path);
        if (up.kind === 'none') await this.mkdir(parent, { recursive: true });
      }
    } else {
      await requireDirectory(this.#ctx, parent, 'mkdir', path);
    }
    await putMarker(this.#ctx, path, 'mkdir');
    return undefined;
  }

  /** Removes an empty directory (its marker); ENOTEMPTY while anything lies below it. */
  async rmdir(path: string): Promise<void> {
    // The root: EPERM (FTP 550), for good; EBUSY would be 450 "try again later", which clients retry for ever.
    if (path === '/') throw fsError('EPERM', 'rmdir', path);
    const k = await kindOf(this.#ctx, path);
    if (k.kind === 'file') throw fsError('ENOTDIR', 'rmdir', path);
    if (k.kind === 'none') throw fsError('ENOENT', 'rmdir', path);
    if (k.probe.nonEmpty) throw fsError('ENOTEMPTY', 'rmdir', path);
    // An upload into it has no object yet (the folder looks empty) and would bring it back at its end.
    this.#refuseWhileUploaded(path, 'rmdir');
    await deleteKey(this.#ctx, this.#ctx.keys.dirKey(path), path);
    // The parent stays, even if this was all it held.
    await putMarker(this.#ctx, dirname(path), 'rmdir');
  }

  /** Deletes a file. */
  async unlink(path: string): Promise<void> {
    const k = await kindOf(this.#ctx, path);
    if (k.kind === 'directory') throw fsError('EISDIR', 'unlink', path);
    if (k.kind === 'none') throw fsError('ENOENT', 'unlink', path);
    this.#refuseWhileUploaded(path, 'unlink');
    await deleteKey(this.#ctx, this.#ctx.keys.fileKey(path), path);
    await putMarker(this.#ctx, dirname(path), 'unlink');
  }

  /** Renames a file or a whole directory (server-side copies, then deletes; see the README for the guarantees). */
  async rename(oldPath: string, newPath: string): Promise<void> {
    this.#refuseWhileUploaded(oldPath, 'rename');
    this.#refuseWhileUploaded(newPath, 'rename');
    return renamePath(this.#ctx, oldPath, newPath);
  }

  /**
   * EBUSY (the server's 450) while an upload of this provider writes `path` or below it: its object appears only when
   * it completes, at the key it began with, so a delete or rename meanwhile would be undone then (the file, or the
   * folder, back where it was), as the other backends never let happen. Uploads of other processes are not seen.
   */
  #refuseWhileUploaded(path: string, syscall: string): void {
    const p = normalizePath(path);
    const below = p === '/' ? '/' : `${p}/`;
    if (this.#uploads.runningWhere((key) => key === p || key.startsWith(below))) throw fsError('EBUSY', syscall, path);
  }

  /**
   * A minimal file handle: `'r'` reads with ranged GETs, `'w'`/`'wx'`/`'a'` write sequentially into an upload that
   * completes on `close()`. Random-access writes (`'r+'`) are not supported (ENOTSUP): S3 objects are immutable.
   */
  async open(path: string, flags?: string | number, mode?: number): Promise<S3ReadHandle | S3WriteHandle> {
    const f = parseOpenFlags(flags);
    if (!f.write) {
      const k = await kindOf(this.#ctx, path);
      if (k.kind === 'directory') throw fsError('EISDIR', 'open', path);
      if (k.kind === 'none') throw fsError('ENOENT', 'open', path);
      return new S3ReadHandle(this.#ctx, path, k.head);
    }
    if (f.read || (!f.truncate && !f.append)) throw fsError('ENOTSUP', 'open', path);
    if (f.exclusive && (await kindOf(this.#ctx, path)).kind !== 'none') throw fsError('EEXIST', 'open', path);
    const upload = await this.createWriteStream(path, f.append ? { append: true } : mode === undefined ? {} : { mode });
    return new S3WriteHandle(path, upload);
  }

  /** Downloads a file or a byte range of it (`end` inclusive) with one streamed, ranged GET. */
  createReadStream(path: string, options: ReadStreamOptions = {}): Promise<Readable> {
    checkStreamOptions(options, path);
    return openDownload(this.#ctx, path, options);
  }

  /**
   * Uploads a file as a multipart upload (a single PutObject when it fits in one part). `append` keeps the existing
   * bytes, `start` keeps the first `start` bytes (zero-filled past the end): kept bytes are copied server-side when
   * there are at least 5 MiB of them, else re-uploaded from a ranged GET.
   *
   * @throws VfsError ENOENT when the parent directory is missing, EISDIR for a directory, ENOSPC for a REST offset
   * past S3's 5 TiB object limit. The stream itself fails with ENOSPC at the write that would pass that limit.
   */
  async createWriteStream(path: string, options: WriteStreamOptions = {}): Promise<S3UploadStream> {
    checkStreamOptions(options, path);
    if (path === '/') throw fsError('EISDIR', 'open', path);
    const [self] = await Promise.all([kindOf(this.#ctx, path), requireDirectory(this.#ctx, dirname(path), 'open', path)]);
    if (self.kind === 'directory') throw fsError('EISDIR', 'open', path);
    const plan: UploadPlan = { path, key: this.#ctx.keys.fileKey(path) };
    if (self.kind === 'file' && (options.append === true || (options.start ?? 0) > 0)) {
      const size = self.head.ContentLength ?? 0;
      const keep = options.append === true ? size : Math.min(options.start ?? 0, size);
      plan.keep = { size: keep, etag: self.head.ETag };
      // The new object replaces exactly the version whose bytes it keeps: completed only if that is still there.
      if (self.head.ETag !== undefined) plan.replaces = { etag: self.head.ETag };
      if (options.start !== undefined && options.start > size) plan.zeroFill = options.start - size;
    } else if (self.kind === 'none' && (options.append === true || (options.start ?? 0) > 0)) {
      if ((options.start ?? 0) > 0) plan.zeroFill = options.start;
      // APPE / REST onto no file: it must still be missing at the end (a file created meanwhile is not overwritten).
      plan.replaces = 'nothing';
    }
    // A REST offset past S3's object limit: refused before the transfer starts (FTP 452), not after zero-filling.
    const { maxObjectSize } = this.#ctx.partSchedule;
    if ((plan.keep?.size ?? 0) + (plan.zeroFill ?? 0) > maxObjectSize) throw tooLarge(path, maxObjectSize, this.#ctx.partSchedule);
    const stream = new S3UploadStream(this.#ctx, plan);
    this.#uploads.opened(normalizePath(path), stream);
    return stream;
  }

  /**
   * Whether an upload of `path` with `options` would now race another upload of this provider to the file: one that
   * continues it (APPE, REST + STOR) completes only over the version it started from, so the first of the two to end
   * makes the other fail at its end (EBUSY, after its client sent everything). A plain upload replaces the object
   * (last one wins) and is never busy. With `hold`, a file found free is held for the upload that
   * asked until it opens (see `RunningUploads`). Uploads of other processes are not seen.
   */
  async uploadBusy(path: string, options: WriteStreamOptions = {}, hold: boolean | object = false): Promise<boolean> {
    return this.#uploads.mayBeBusy(options, hold) && this.#uploads.busy(normalizePath(path), hold);
  }

  /** Gives back `owner`'s hold of `path` (see `FsProvider.releaseUploadHold`). */
  async releaseUploadHold(path: string, owner: object): Promise<void> {
    this.#uploads.releaseHold(normalizePath(path), owner);
  }

  /** HASH: a digest stored with the object when there is one for the whole file, else streamed. */
  hash(path: string, algorithm: HashAlgorithm, start?: number, end?: number, options: HashOptions = {}): Promise<string> {
    return hashObject(this.#ctx, path, algorithm, start, end, options.signal);
  }

  /**
   * MFMT: stores the time in the object's metadata (`x-amz-meta-mtime`) with a server-side self-copy; `stat`
   * reports it, listings cannot (see {@link setObjectTime}).
   */
  setTimes(path: string, mtime: Date): Promise<void> {
    return setObjectTime(this.#ctx, path, mtime);
  }

  /** AVBL: a bucket has no size limit. */
  async availableSpace(_path: string): Promise<number> {
    return Infinity;
  }

  /** Releases the client's sockets (only a client this provider created). */
  close(): void {
    if (this.#ownsClient) this.client.destroy();
  }
}


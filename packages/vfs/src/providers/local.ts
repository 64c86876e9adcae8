import fs from 'node:fs';
import type { Stats } from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import nodePath from 'node:path';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { openBeneath, openBeneathOrErrno, openPathFlag } from '@ftp/native';
import { hasByteEscapes } from '@ftp/protocol';
import { VirtualProvider } from '@platformatic/vfs';
import type { MkdirOptions, ReaddirOptions } from '@platformatic/vfs';
import { errorCodeOf, fsError, toVfsError, VfsError } from '../errors.js';
import { inHand, mapErrors, namesOf } from '../internal/sliced.js';
import { mapStreamErrors } from '../internal/stream-errors.js';
import { dirname, normalizePath, resolvePath } from '../paths.js';
import { SPEC_VERSION } from '../spec.js';
import type { DirEntry, DirSlices, FileStats, FsProvider, ListSlicesOptions, NameSlices, ReadStreamOptions, UploadStream, WriteStreamOptions } from '../spec.js';
import { mapSliceErrors, slicesOf } from '../listing.js';
import { parseOpenFlags, VfsDirent } from '../stats.js';
import type { NodeKind } from '../stats.js';
import { attachChunkReader, attachFileDescriptor, attachFileDescriptorSink, attachFileSize, checkStreamOptions, TRANSFER_CHUNK_SIZE, type DescriptorWriter } from '../streams.js';
import * as hostFs from '../internal/host-names.js';
import { makeFoldersSync } from '../make-folders.js';
import { hostArg } from '../internal/host-names.js';
import { lstatAll, lstatAllSync, lstatSlices, nameSlices, noteNamespaceChange } from './local-listing.js';
import { anyHeld, releaseHeld, releaseHeldFile, clearForRemoval, endIdleWriter, lendPages, newFileRefused, readerClaimLost, releaseNewFile, refuseWhileWritten, releaseClaim, transfersMayRun, uploadsMayRun, releaseReader, releaseWriter, takeReader, takeWriter, writerRefused, type FileClaim, type ReaderClaim, type WriterClaim } from './local-writers.js';

const MAX_SYMLINK_HOPS = 40;

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_APPEND, O_NONBLOCK, O_NOFOLLOW } = fs.constants;
const ENOENT_ERRNO = -(os.constants.errno.ENOENT as number);

/** Options of {@link LocalProvider}. */
export interface LocalProviderOptions {
  /** Create the root directory (and its parents) when missing. Default false: a missing root throws ENOENT. */
  create?: boolean;
  /**
   * Make metadata calls (`realpath`, `stat`, `open`, `close`, `readdir`, `mkdir`, `rename`, `unlink`…), writes of
   * at most 64 KiB (a small file's only one), and the reads of files of at most 1 MiB, synchronously on the main
   * thread. Bulk reads and writes, deleting a file above 64 MiB, and emptying an existing file above 64 KiB an
   * upload replaces (freeing its blocks took 0.2–0.45 ms even for 16 KiB on ext4), stay in the thread pool; a
   * smaller one is overwritten in place and cut to the upload's length at its end. So do the calls in which the
   * file system writes data out: closing an upload of more than 64 KiB that emptied an old file, and renaming a file
   * of more than 64 KiB over an existing one, or any file over one above 64 MiB.
   *
   * Default `true`. On a local disk such a call takes a few microseconds, while handing it to Node's
   * thread pool costs 100–150 µs of latency and ~90 µs of CPU (measured on a 2-core VM). That hand-off made most
   * of the cost of a small-file transfer. Set it to `false` for network or FUSE file systems (NFS, SMB, sshfs),
   * where one call can stall for seconds and would stall every session with it. The same holds for a cold cache on
   * a spinning disk, where a listing's lstat calls cost milliseconds each.
   */
  syncMetadata?: boolean;
  /**
   * With `syncMetadata`, let a worker thread look up the slices of 500 entries of a big folder it has room for
   * while the main thread does the rest: the lookups of a 10,000-entry LIST take ~14 ms instead of ~25 on two cores.
   * One thread serves every provider of the process; it starts with the first big listing and ends after 30 s
   * unused. Default `true` (it is never used on a one-CPU machine).
   */
  listingThread?: boolean;
}

function kindOf(d: { isDirectory(): boolean; isSymbolicLink(): boolean }): NodeKind {
  return d.isSymbolicLink() ? 'symlink' : d.isDirectory() ? 'directory' : 'file';
}

/**
 * A file handle of {@link LocalProvider} over a file descriptor (sync and async, as `@platformatic/vfs` expects).
 * One opened for writing holds the file's writer registration, one opened read-only its reader registration (see
 * {@link LocalProvider}), until it is closed.
 */
export class LocalFileHandle {
  #closed = false;
  /** The writer or reader registration this handle releases when closed, if it holds one. */
  #claim: FileClaim | null;

  /** @internal */
  constructor(
    readonly fd: number,
    readonly path: string,
    readonly flags: string | number,
    readonly mode: number,
    claim: FileClaim | null = null,
  ) {
    this.#claim = claim;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Refuses a call after `close()` with EINVAL, as `MemoryFileHandle` does: the descriptor number is free by then,
   * and the next open may be given it, so a late read or write would reach that other file (past its registration).
   */
  #check(syscall: string): void {
    if (this.#closed) throw fsError('EINVAL', syscall, this.path);
  }

  /** `#check` for the promise methods: their refusal is a rejection, never a throw. */
  #refused(syscall: string): Promise<never> | null {
    return this.#closed ? Promise.reject(fsError('EINVAL', syscall, this.path)) : null;
  }

  read<T extends NodeJS.ArrayBufferView>(buffer: T, offset = 0, length = buffer.byteLength - offset, position: number | null = null): Promise<{ bytesRead: number; buffer: T }> {
    return (
      this.#refused('read') ??
      new Promise((resolve, reject) => {
        fs.read(this.fd, buffer, offset, length, position, (err, bytesRead) => (err ? reject(toVfsError(err, this.path)) : resolve({ bytesRead, buffer })));
      })
    );
  }
  readSync(buffer: NodeJS.ArrayBufferView, offset = 0, length = buffer.byteLength - offset, position: number | null = null): number {
    this.#check('read');
    return fs.readSync(this.fd, buffer, offset, length, position);
  }
  write<T extends NodeJS.ArrayBufferView>(buffer: T, offset = 0, length = buffer.byteLength - offset, position: number | null = null): Promise<{ bytesWritten: number; buffer: T }> {
    return (
      this.#refused('write') ??
      new Promise((resolve, reject) => {
        fs.write(this.fd, buffer, offset, length, position, (err, bytesWritten) => (err ? reject(toVfsError(err, this.path)) : resolve({ bytesWritten, buffer })));
      })
    );
  }
  writeSync(buffer: NodeJS.ArrayBufferView, offset = 0, length = buffer.byteLength - offset, position: number | null = null): number {
    this.#check('write');
    return fs.writeSync(this.fd, buffer, offset, length, position);
  }
  readFile(options?: BufferEncoding | { encoding?: BufferEncoding | null } | null): Promise<Buffer | string> {
    return (
      this.#refused('read') ??
      new Promise((resolve, reject) => {
        fs.readFile(this.fd, options ?? null, (err, data) => (err ? reject(toVfsError(err, this.path)) : resolve(data)));
      })
    );
  }
  readFileSync(options?: BufferEncoding | { encoding?: BufferEncoding | null } | null): Buffer | string {
    this.#check('read');
    const encoding = typeof options === 'string' ? options : options?.encoding;
    return encoding ? fs.readFileSync(this.fd, encoding) : fs.readFileSync(this.fd);
  }
  writeFile(data: string | NodeJS.ArrayBufferView, options?: BufferEncoding | { encoding?: BufferEncoding } | null): Promise<void> {
    return (
      this.#refused('write') ??
      new Promise((resolve, reject) => {
        fs.writeFile(this.fd, data, options ?? null, (err) => (err ? reject(toVfsError(err, this.path)) : resolve()));
      })
    );
  }
  writeFileSync(data: string | NodeJS.ArrayBufferView, options?: BufferEncoding | { encoding?: BufferEncoding } | null): void {
    this.#check('write');
    fs.writeFileSync(this.fd, data, options ?? null);
  }
  stat(): Promise<Stats> {
    return (
      this.#refused('fstat') ??
      new Promise((resolve, reject) => {
        fs.fstat(this.fd, (err, st) => (err ? reject(toVfsError(err, this.path)) : resolve(st)));
      })
    );
  }
  statSync(): Stats {
    this.#check('fstat');
    return fs.fstatSync(this.fd);
  }
  truncate(len = 0): Promise<void> {
    return (
      this.#refused('ftruncate') ??
      new Promise((resolve, reject) => {
        fs.ftruncate(this.fd, len, (err) => (err ? reject(toVfsError(err, this.path)) : resolve()));
      })
    );
  }
  truncateSync(len = 0): void {
    this.#check('ftruncate');
    fs.ftruncateSync(this.fd, len);
  }
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#release();
    return new Promise((resolve, reject) => {
      fs.close(this.fd, (err) => (err ? reject(toVfsError(err, this.path)) : resolve()));
    });
  }
  closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#release();
    fs.closeSync(this.fd);
  }
  #release(): void {
    if (this.#claim === null) return;
    releaseClaim(this.#claim);
    this.#claim = null;
  }
}

/** Bytes an upload buffers before it pushes back on the data connection: room for several socket reads per write. */
const UPLOAD_BUFFER = 4 * TRANSFER_CHUNK_SIZE;

/**
 * With `syncMetadata`, reads and writes up to this size are synchronous too: a small file's one read (or one
 * write) from the page cache takes microseconds, its thread-pool round trip ~100 µs. Bulk transfers move 64–256 KiB
 * chunks and stay in the pool.
 */
const SMALL_IO = 64 * 1024;

/**
 * With `syncMetadata`, a file of at most this size is read synchronously, whole (at most four reads of 256 KiB, as
 * the server reads). From the page cache a 256 KiB read takes ~10 µs here, a thread-pool round trip ~56 µs of
 * latency and most of that in CPU: 200 clients each downloading 1 MiB files went from ~1,100 to ~1,400 transfers/s
 * with ~30 % less server CPU per transfer. Bigger files stream through the pool, where the read of one buffer
 * overlaps the sending of the other.
 */
const SYNC_READ_FILE = 1024 * 1024;

/**
 * The most one write call hands the kernel. Linux picks the page-cache folios of a write by its length: a write of
 * 1 MiB or more fills 1–2 MiB folios, which a virtual machine that hands freed memory back to its host must have
 * faulted in again, page by page. Measured on a 2-core VM (Linux 6.18, ext4), 1 GiB written to a new file, same
 * data, 3 s apart: 512 KiB writes 8.4 GB/s and 0.12 s of CPU, 1 MiB writes 1.1–1.5 GB/s and 0.73–0.96 s, 2 MiB
 * writes 0.6 GB/s (dd and a Python loop alike). Uploads hand storage up to 1 MiB at once, so a write is split
 * into calls of at most this size; two calls per MiB cost nothing next to the copy itself.
 */
const MAX_WRITE_CALL = 2 * TRANSFER_CHUNK_SIZE;

/** Files above this size are unlinked in the thread pool even with `syncMetadata`. */
const BIG_FILE = 64 * 1024 * 1024;

/**
 * ext4, XFS and btrfs write out a file's pending data inside `close` once the file has been emptied (truncated to
 * 0) since it was opened, and inside `rename` over an existing file (ext4, btrfs): their guard against a crash
 * leaving an empty file where a program replaced one. The call then lasts as long as submitting that data takes:
 * 140–200 ms for a 1 GiB upload over an old file, 580 ms for a rename of a just-uploaded 1 GiB file over another,
 * measured on ext4 in a 2-core VM. On the main thread (`syncMetadata`) every session waited that long, so such
 * calls go to the thread pool when more than this was written (the data a small file's sync path writes).
 */
const FLUSHING_CALL_BYTES = SMALL_IO;

/** `fs.close` with the signature of the callback one, done synchronously (sync mode). */
function closeSyncTo(fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void {
  let failure: NodeJS.ErrnoException | null = null;
  try {
    fs.closeSync(fd);
  } catch (err) {
    failure = err as NodeJS.ErrnoException;
  }
  cb(failure);
}

/**
 * `fs` overrides for a read stream: its reader registration is released as its descriptor is closed (at the end,
 * on an error, when destroyed), synchronously in sync mode.
 */
function readStreamFs(reader: ReaderClaim, syncClose: boolean, atEnd: () => VfsError | null): Pick<typeof fs, 'read' | 'close'> {
  const close = syncClose ? closeSyncTo : fs.close;
  return {
    // Without shared claims there is nothing to check at the end: fs.read as it is, no wrapper per chunk.
    read:
      reader.shared === null
        ? fs.read
        : (((fd: number, buffer: Buffer, offset: number, length: number, position: number | null, cb: (err: NodeJS.ErrnoException | null, n: number, b: Buffer) => void) =>
            fs.read(fd, buffer, offset, length, position, (err, n, b) => cb(err ?? (n === 0 ? atEnd() : null), n, b))) as typeof fs.read),
    close: ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
      releaseReader(reader);
      close(fd, cb);
    }) as typeof fs.close,
  };
}

/**
 * The error that ends a download whose claim shared with other processes was lost while it read (the claims folder
 * cleaned under it: see `shared-claims.ts`) and whose file changed meanwhile: another process may have rewritten it
 * under the download, which must then not look complete (226). Null otherwise; nothing to check without sharing.
 */
function lostClaimError(reader: ReaderClaim, fd: number, opened: Stats, path: string): VfsError | null {
  if (!readerClaimLost(reader)) return null;
  try {
    // Size and modification time: what a write changes (ctime also moves with a rename or a chmod, which leave the
    // contents as they were).
    const now = fs.fstatSync(fd);
    if (now.size === opened.size && now.mtimeMs === opened.mtimeMs) return null;
  } catch {
    // Cannot tell: as changed.
  }
  return new VfsError('EIO', `EIO: ${path} changed while it was being read and its claim was lost (the file claims folder was cleaned up): the copy may mix two versions`, { path });
}

/** The first `limit` bytes of `chunks` (views, not copies). */
function firstBytes(chunks: Buffer[], limit: number): Buffer[] {
  const out: Buffer[] = [];
  let left = limit;
  for (const c of chunks) {
    if (left === 0) break;
    out.push(c.length <= left ? c : c.subarray(0, left));
    left -= Math.min(left, c.length);
  }
  return out;
}

/** What follows the first `skip` bytes of `chunks` (views, not copies). */
function afterBytes(chunks: Buffer[], skip: number): Buffer[] {
  const rest: Buffer[] = [];
  for (const c of chunks) {
    if (skip >= c.length) skip -= c.length;
    else {
      rest.push(skip > 0 ? c.subarray(skip) : c);
      skip = 0;
    }
  }
  return rest;
}

/**
 * An upload to a local file: positional writes (batched with `writev`), truncation to the final length for REST.
 * It works on the bare descriptor with callback calls: a `FileHandle`'s promise per write costs more than the
 * write itself at these sizes.
 */
class LocalWriteStream extends Writable implements UploadStream {
  #fd: number;
  #pos: number | null;
  #truncateAtEnd: boolean;
  /** The descriptor is closed, or its close is queued: nothing may use it any more. */
  #closed = false;
  #destroyed = false;
  /** A write or truncate is running in the thread pool. */
  #busy = false;
  /** The close `_destroy` asked for while an operation was still running. */
  #closeWhenIdle: (() => void) | null = null;
  /** Close synchronously, and hold a small first chunk: see {@link LocalProviderOptions.syncMetadata}. */
  #syncClose: boolean;
  /**
   * A small first chunk, acknowledged but not yet written (sync mode): if the upload ends right after it, as a
   * small file does, it is written synchronously in `_final`; otherwise it goes out with the next write.
   */
  #held: Buffer | null = null;
  /** The descriptor is lent (see {@link FileDescriptorSink}); `#endLend` ends the borrower's writing early. */
  #lending = false;
  #endLend: (() => void) | null = null;
  /** A write or the end that came while the descriptor was lent: it runs once the borrower is done. */
  #afterLend: (() => void) | null = null;
  /** Whether anything has been handed to `_write` yet (only a first chunk is held). */
  #started = false;
  /** The file's writer registration (see {@link takeWriter}), released when the descriptor is closed. */
  #writer: WriterClaim | null;
  /**
   * The size of the file this upload overwrites in place (0: none): what lies past the upload's end is cut at the
   * end, and when the upload is interrupted, so the file holds what was received, as if it had been emptied first.
   */
  #overwritten: number;
  /**
   * REST: the file's size when the upload opened (0 for other uploads). An upload interrupted short of it is cut
   * where it stopped, as one that completes is: the old bytes past what was received would otherwise stay, SIZE
   * would report the old length, and a client resuming from it would leave a stretch of the old file inside the new.
   */
  #restEnd: number;
  /** The old file was emptied (truncated to 0) when the upload opened: closing it then writes out the new data. */
  #emptied: boolean;
  /** Ended by a newcomer taking the file over (see takeWriter, takeReader), which looks at the file right after. */
  #revoked = false;
  /** Ended because another process uses the file now (a claim lost: see `shared-claims.ts`): its bytes are left alone. */
  #untouched = false;
  /** The error the server reported for an interrupted transfer, if any. */
  interruptedBy: Error | undefined;
  /** A chunk is written (or copied, when held) before its callback runs. */
  readonly releasesChunks = true;

  constructor(fd: number, position: number | null, truncateAtEnd: boolean, syncClose: boolean, writer: WriterClaim, overwritten = 0, restEnd = 0, emptied = false) {
    super({ highWaterMark: UPLOAD_BUFFER });
    this.#overwritten = overwritten;
    this.#emptied = emptied;
    this.#restEnd = restEnd;
    this.#fd = fd;
    this.#pos = position;
    this.#truncateAtEnd = truncateAtEnd;
    this.#syncClose = syncClose;
    this.#writer = writer;
    attachFileDescriptorSink(this, {
      lend: (write) => this.#lend(write),
      progressed: () => {
        if (this.#lending && this.#writer !== null) this.#writer.idleSince = performance.now();
      },
    });
    // An upload idle long enough gives the file up to a newcomer (its client is most likely gone): see takeWriter.
    writer.revoke = (err, untouched = false) => {
      this.#revoked = !untouched;
      this.#untouched = untouched;
      this.destroy(err);
    };
  }

  /**
   * Closes the descriptor (called once, when no operation is running on it any more); `cb` gets close's error, if
   * any. The writer registration goes first: by the time the stream says `finish` or `close`, the file may be
   * uploaded or downloaded again.
   */
  #closeFd(cb: (err: NodeJS.ErrnoException | null) => void): void {
    if (this.#writer !== null) {
      releaseWriter(this.#writer);
      this.#writer = null;
    }
    // A file emptied at open writes out what this upload wrote inside `close` (see FLUSHING_CALL_BYTES).
    const flushes = this.#emptied && (this.#pos ?? 0) > FLUSHING_CALL_BYTES;
    (this.#syncClose && !flushes ? closeSyncTo : fs.close)(this.#fd, cb);
  }

  /**
   * Runs one operation on the descriptor. `Writable` calls `_destroy` without waiting for a `_write` or `_final`
   * in progress: the descriptor is closed only once that operation has returned, or its number could be reused by
   * another open and the late write land in someone else's file.
   */
  #io<A extends unknown[]>(start: (done: (err: NodeJS.ErrnoException | null, ...rest: A) => void) => void, cb: (err: NodeJS.ErrnoException | null, ...rest: A) => void, pinned = true): void {
    if (this.#destroyed) {
      cb(Object.assign(new Error('upload destroyed'), { code: 'ECANCELED' }) as NodeJS.ErrnoException, ...([] as unknown as A));
      return;
    }
    this.#busy = true;
    const writer = this.#writer;
    // Pinned: not idle while it runs. A lent descriptor is not: its borrower says when it wrote (`progressed`), so
    // an upload whose client went quiet mid-way can still be taken over.
    if (writer !== null) writer.idleSince = pinned ? 0 : performance.now();
    start((err, ...rest) => {
      this.#busy = false;
      if (writer !== null) writer.idleSince = performance.now();
      const close = this.#closeWhenIdle;
      this.#closeWhenIdle = null;
      // The operation's own callback first: it records what was written (the position), which the close of a
      // destroyed upload cuts an overwritten file at; another operation it starts fails at once (destroyed).
      cb(err, ...rest);
      close?.();
    });
  }

  /**
   * Writes all of `chunks`, in calls of at most {@link MAX_WRITE_CALL} bytes (a short write is resumed where it
   * stopped, as is the rest of a longer batch).
   */
  #writeAll(chunks: Buffer[], cb: (err?: Error | null) => void): void {
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const call = total <= MAX_WRITE_CALL ? chunks : firstBytes(chunks, MAX_WRITE_CALL);
    const done = (err: NodeJS.ErrnoException | null, written: number): void => {
      if (err) return cb(err);
      if (this.#pos !== null) this.#pos += written;
      if (written >= total) return cb();
      this.#writeAll(afterBytes(chunks, written), cb);
    };
    if (call.length === 1) this.#io<[number]>((d) => fs.write(this.#fd, call[0]!, 0, call[0]!.length, this.#pos, d), done);
    else this.#io<[number]>((d) => fs.writev(this.#fd, call, this.#pos, d), done);
  }

  override _write(chunk: Buffer, enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#lending) {
      this.#afterLend = () => this._write(chunk, enc, cb);
      return;
    }
    if (!this.#started) {
      this.#started = true;
      if (this.#syncClose && chunk.length <= SMALL_IO) {
        // A copy: the caller may reuse the chunk's memory once called back (`releasesChunks`).
        this.#held = Buffer.from(chunk);
        return cb();
      }
    }
    this.#writeAll(this.#withHeld([chunk]), cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    if (this.#lending) {
      this.#afterLend = () => this._writev(chunks, cb);
      return;
    }
    this.#started = true;
    this.#writeAll(this.#withHeld(chunks.map((c) => c.chunk)), cb);
  }

  /** See {@link FileDescriptorSink.lend}: the descriptor, as one long write of the stream's own. */
  #lend(write: DescriptorWriter): boolean {
    // A write that failed has set `errored` before its callback ran (the stream's error event comes after).
    if (this.#busy || this.#closed || this.#destroyed || this.writableLength > 0 || this.writableEnded || this.errored !== null) return false;
    this.#started = true;
    // The held first chunk belongs before whatever the borrower writes.
    const failed = this.#flushHeldSync();
    if (failed !== null) {
      this.destroy(failed);
      return false;
    }
    this.#lending = true;
    this.#io<[number]>(
      (d) => {
        let returned = false;
        const end = write(this.#fd, this.#pos, (written, err) => {
          returned = true;
          this.#endLend = null;
          d(err, written);
        });
        if (!returned) this.#endLend = end;
      },
      (err, written) => {
        this.#lending = false;
        if (this.#pos !== null) this.#pos += written;
        if (err) this.destroy(err);
        const next = this.#afterLend;
        this.#afterLend = null;
        next?.();
      },
      false,
    );
    return true;
  }

  /** `chunks`, after the held first chunk if there is one (which is then no longer held). */
  #withHeld(chunks: Buffer[]): Buffer[] {
    const held = this.#held;
    if (held === null) return chunks;
    this.#held = null;
    return [held, ...chunks];
  }

  /** Writes the held chunk synchronously (small files end right after it). */
  #flushHeldSync(): NodeJS.ErrnoException | null {
    const held = this.#held;
    if (held === null) return null;
    this.#held = null;
    try {
      let done = 0;
      while (done < held.length) {
        const n = fs.writeSync(this.#fd, held, done, held.length - done, this.#pos);
        done += n;
        if (this.#pos !== null) this.#pos += n;
      }
      return null;
    } catch (err) {
      return err as NodeJS.ErrnoException;
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.#lending) {
      this.#afterLend = () => this._final(cb);
      return;
    }
    const close = (err?: Error | null): void => {
      if (err) return cb(err);
      if (this.#closed) return cb();
      this.#closed = true;
      this.#closeFd((e) => cb(e));
    };
    // An old file overwritten in place whose new content is all in the held chunk is cut to its new length first:
    // should the cut fail, the file is still the old one, whole, rather than new bytes over an old tail.
    const held = this.#held?.length ?? 0;
    if (held > 0 && this.#pos !== null && this.#pos + held < this.#overwritten) {
      const length = this.#pos + held;
      this.#overwritten = 0;
      this.#io<[]>(
        (d) => fs.ftruncate(this.#fd, length, d),
        (err) => {
          if (!err) return close(this.#flushHeldSync());
          // Not written then, not even as what was received: the old file stays as it was.
          this.#held = null;
          close(err);
        },
      );
      return;
    }
    const failed = this.#flushHeldSync();
    if (failed) return close(failed);
    // REST cuts what lay past the end; an in-place overwrite cuts the old file's longer tail.
    const cut = this.#pos !== null && (this.#truncateAtEnd || this.#pos < this.#overwritten);
    if (cut) this.#io<[]>((d) => fs.ftruncate(this.#fd, this.#pos!, d), (err) => close(err));
    else close();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#destroyed = true;
    if (this.#closed) return cb(err);
    this.#closed = true;
    const close = (): void => {
      if (this.#untouched) {
        // Its contents are left as they are, but its modification time is now: a download another process began
        // while this upload ran unclaimed sees the file changed at its end (a part of this upload in it), and fails.
        try {
          fs.futimesSync(this.#fd, fs.fstatSync(this.#fd).atime, new Date());
        } catch {
          // the descriptor is being closed anyway
        }
        return this.#closeFd(() => cb(err));
      }
      // An interrupted upload keeps what was received, the held first chunk included (REST resumes from it), and
      // no more: an old file overwritten in place, or one a REST upload stopped short of the end of, is cut there
      // (the memory and SQLite providers keep the same).
      let failed = this.#flushHeldSync();
      const pos = this.#pos;
      const done = (): void => this.#closeFd(() => cb(err ?? failed));
      // Nothing of the old file lies past what was received (a new file, APPE, REST from the end): no call at all.
      if (pos === null || (pos >= this.#overwritten && pos >= this.#restEnd)) return done();
      // At once for a small file overwritten in place (at most SMALL_IO of it), and when a newcomer took the file
      // over, even without syncMetadata: the newcomer reads the file's size as soon as this returns (a rare case,
      // an upload idle for seconds).
      if (pos < this.#overwritten || this.#revoked) {
        try {
          fs.ftruncateSync(this.#fd, pos);
        } catch (e) {
          failed ??= e as NodeJS.ErrnoException;
        }
        return done();
      }
      // A REST tail may be gigabytes, and without syncMetadata the disk a network one: cut in the thread pool. The
      // registration is kept until the descriptor closes, marked busy so that no newcomer takes the file over (and
      // looks at its size) before the cut lands.
      if (this.#writer !== null) this.#writer.idleSince = 0;
      fs.ftruncate(this.#fd, pos, (e) => {
        failed ??= e;
        done();
      });
    };
    if (this.#busy) {
      this.#closeWhenIdle = close;
      // A borrower of the descriptor stops writing (its `done` follows): destroyed, taken over or failed, the
      // upload takes no more bytes.
      this.#endLend?.();
    } else close();
  }

  /** Records the interruption; what was received stays on disk (REST can resume it). */
  transferError(err: Error): void {
    this.interruptedBy = err;
  }
}

/**
 * Whether renaming `from` over `to` belongs in the thread pool with `syncMetadata`: it replaces an existing entry,
 * and either `from` is a file of more than {@link FLUSHING_CALL_BYTES} (whose pending data the call may write out)
 * or the file replaced is above {@link BIG_FILE} (freeing its blocks, as an unlink of it would). One `lstat` for a
 * rename to a new name, two otherwise: microseconds on a local disk.
 */
function renameInPool(from: string, to: string): boolean {
  try {
    const replaced = fs.lstatSync(hostArg(to), { throwIfNoEntry: false });
    if (replaced === undefined) return false;
    if (replaced.isFile() && replaced.size > BIG_FILE) return true;
    const source = fs.lstatSync(hostArg(from), { throwIfNoEntry: false });
    return source !== undefined && source.isFile() && source.size > FLUSHING_CALL_BYTES;
  } catch {
    // ENOTDIR, EACCES…: the rename itself reports it.
    return false;
  }
}

/** `fs.open` with a callback, as a promise: a bare descriptor for the streams. */
function openFd(path: string, flags: number, mode = 0o666): Promise<number> {
  return new Promise((resolve, reject) => fs.open(hostArg(path), flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
}

function ftruncateFd(fd: number, length: number): Promise<void> {
  return new Promise((resolve, reject) => fs.ftruncate(fd, length, (err) => (err ? reject(err) : resolve())));
}

function closeFd(fd: number): Promise<void> {
  return new Promise((resolve) => fs.close(fd, () => resolve()));
}

/**
 * The host path link target `target` leads to from the real folder `dir`, as the kernel walks it. A `..` right
 * after a name climbs from where that name really leads, which may be another folder entirely (the name a link):
 * the path up to it is yielded, to be given back resolved. `nodePath.resolve` folds `name/..` away instead. Targets
 * without such a `..` (nearly all) yield nothing.
 */
function* walkTarget(dir: string, target: string): Generator<string, string, string> {
  let at = target.startsWith('/') ? '/' : dir;
  let real = true;
  for (const name of target.split('/')) {
    if (name === '' || name === '.') continue;
    if (name !== '..') {
      at = nodePath.join(at, name);
      real = false;
      continue;
    }
    if (!real) at = yield at;
    real = true;
    at = nodePath.dirname(at);
  }
  return at;
}

/** The target of the link at host path `path`; undefined when it is no link (or is gone). */
function linkTargetSync(path: string): string | undefined {
  try {
    return hostFs.readlinkSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Registers an opened regular file as its writer when `write`, else as a reader; the claim is released when the
 * descriptor closes. Directories, FIFOs and devices are not registered.
 * @throws VfsError EBUSY (a writer while the file is read or written, a reader while it is written)
 */
function claimFile(st: Stats, f: { write: boolean; truncate: boolean; append: boolean }, path: string): FileClaim | null {
  if (!st.isFile()) return null;
  // Written at any offset of what the file holds, unless emptied first or only appended to (see takeWriter's inPlace).
  return f.write ? takeWriter(st, path, !f.truncate && !f.append) : takeReader(st, path);
}

/**
 * A local directory as the root of the tree, hardened against escapes: every path is resolved lexically under the
 * real root, then its symlinks are resolved (`realpath`; for a path that does not exist yet, the deepest existing
 * ancestor, following dangling links from the folder they really are in, as the kernel does) and the result must
 * lie inside the real root. A symlink planted inside the root that points outside (`ln -s /etc root/etc`, a link
 * to `../..`) is therefore never followed out: `stat`, `open`, `readdir`, `list`, streams, `mkdir`, `rename`,
 * `unlink`… through it fail with **EACCES**. `lstat` and `readlink` of the link itself work, so listings still show
 * it. Opened files are verified once more through `/proc/self/fd` (Linux), and writes open without `O_TRUNC` and
 * truncate only after that check, so a link swapped between check and open cannot truncate an outside file. (A race
 * on a *parent* directory between the check and a `mkdir`/`rename` remains possible: Node has no `openat`.)
 *
 * Symlinks created through it (`symlink`) must resolve inside the root (else EACCES). Absolute targets, and relative
 * ones with `..`, are stored as absolute host paths (`readlink` gives them back as virtual paths), so that no rename of
 * the link or of a folder above it changes where it leads; targets below the link's folder stay relative.
 *
 * Names are the bytes on disk: one that is not valid UTF-8 comes with byte escapes (`rawNames`), and is opened,
 * renamed or deleted through them. Paths without escapes (nearly all) stay plain strings all the way.
 *
 * Uploads are written in place (visible as written); an interrupted upload keeps what was received, and nothing of
 * the old file past it, so that REST can resume it from SIZE. Sync methods work too (for `@platformatic/vfs`'s
 * `create()`).
 *
 * **One writer per file, and no writer while it is read.** Node has no fcntl locks, so the provider keeps its own
 * registry of the files open, by device and inode, shared by every `LocalProvider` of the process (vsftpd's
 * `lock_upload_files`, in process, both ways). A file is registered as soon as it is opened, after the
 * `/proc/self/fd` check and before anything is truncated: as written when opened for writing (`createWriteStream`,
 * whatever its `start` or `append`; `open`/`openSync` with a write flag, so `writeFile`, `appendFile` and `copyFile`
 * too), as read when opened for reading (`createReadStream`, hence a download and its chunk reader; `open`/`openSync`
 * read-only, so `readFile`). It is released when the descriptor is closed: when the upload finishes, fails or is
 * destroyed, when the download ends, fails or is destroyed, or when the handle is closed. Then:
 * - a second writer is refused with **EBUSY** (the server's "450 File busy, try again later"): two uploads to one
 *   file would otherwise interleave their blocks, and both be reported complete;
 * - a reader of a file being written is refused with EBUSY too: it would read a mix of old and new bytes, and a
 *   truncated file as complete;
 * - a writer of a file being read is refused with EBUSY, before it truncates or writes anything: the download would
 *   otherwise send the start of the old file and the rest of the new one, as complete.
 *
 * Readers do not block each other. The refusal is immediate, never a wait. The registry is per process: several
 * `ftpd --workers` processes, or other programs, writing one folder do not see each other's readers and writers, so
 * `atomicUploads` stays false. Its cost is a string and a `Map` lookup or two per open, on the `fstat` it does anyway.
 */
export class LocalProvider extends VirtualProvider implements FsProvider {
  /** The contract version this provider implements. */
  readonly specVersion = SPEC_VERSION;
  /**
   * False: uploads write in place. In one process an upload of a file being written or read is refused (EBUSY), but
   * uploads from several processes to one path may still interleave.
   */
  readonly atomicUploads = false;
  /**
   * True: a name that is not valid UTF-8 on disk is listed with a byte escape for each such byte (`caf\xe9.txt` as
   * `'caf\udce9.txt'`), and a path holding escapes reaches the kernel as those very bytes (see `FsProvider.rawNames`).
   */
  readonly rawNames = true;
  #root: string;
  /** See {@link LocalProviderOptions.syncMetadata}. */
  #sync: boolean;
  /** See {@link LocalProviderOptions.listingThread}. */
  #listingThread: boolean;

  /**
   * @param rootDir the directory that becomes `/`; it is resolved with `realpath` once, here.
   * @throws VfsError ENOENT when it is missing (unless `create`), ENOTDIR when it is not a directory.
   */
  constructor(rootDir: string, options: LocalProviderOptions = {}) {
    super();
    this.#sync = options.syncMetadata !== false;
    this.#listingThread = options.listingThread !== false;
    try {
      if (options.create === true) {
        const host = hostArg(rootDir);
        if (typeof host === 'string') makeFoldersSync(host);
        else fs.mkdirSync(host, { recursive: true });
      }
      this.#root = hostFs.realpathSync(rootDir);
    } catch (err) {
      throw toVfsError(err, rootDir);
    }
    if (!fs.statSync(hostArg(this.#root)).isDirectory()) throw fsError('ENOTDIR', 'open', rootDir);
  }

  /** The real (symlink-free) path of the root directory. */
  get rootDir(): string {
    return this.#root;
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

  // ---------------------------------------------------------------- confinement

  #host(v: string): string {
    const p = normalizePath(v);
    if (p === '/') return this.#root;
    return this.#root === '/' ? p : this.#root + p;
  }

  #inside(real: string): boolean {
    return real === this.#root || this.#root === '/' || real.startsWith(this.#root + nodePath.sep);
  }

  #toVirtual(real: string): string {
    if (real === this.#root) return '/';
    return this.#root === '/' ? real : real.slice(this.#root.length);
  }

  /**
   * The host path to operate on for virtual path `v`, checked to stay inside the root once symlinks are resolved
   * (the last component's only when `followLast`). Returns the resolved path when it exists, else the lexical one.
   */
  async #confine(v: string, followLast: boolean, syscall: string): Promise<string> {
    const host = this.#host(v);
    if (host === this.#root) return host;
    if (followLast) return this.#confinePath(host, syscall, v);
    const parent = await this.#confinePath(nodePath.dirname(host), syscall, v);
    return nodePath.join(parent, nodePath.basename(host));
  }

  async #confinePath(host: string, syscall: string, v: string): Promise<string> {
    let probe = host;
    let hops = 0;
    for (;;) {
      let real: string | undefined;
      try {
        real = await hostFs.realpath(probe);
      } catch (err) {
        const code = errorCodeOf(err);
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw toVfsError(err, v);
      }
      if (real !== undefined) {
        if (!this.#inside(real)) throw fsError('EACCES', syscall, v);
        return probe === host ? real : host;
      }
      // `probe` does not resolve: a dangling link (follow it by hand) or a missing entry (check its parent).
      let st: Stats | undefined;
      try {
        st = await fsp.lstat(hostArg(probe));
      } catch {
        st = undefined;
      }
      if (st?.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS) throw fsError('ELOOP', syscall, v);
        probe = await this.#danglingTarget(probe, syscall, v);
        continue;
      }
      // The root itself is missing (removed, or a mount not there): nothing below it exists, as the client is told;
      // walking on up would reach a folder outside it and answer "permission denied".
      if (probe === this.#root) throw fsError('ENOENT', syscall, v);
      const up = nodePath.dirname(probe);
      if (up === probe) return host;
      probe = up;
    }
  }

  #confineSync(v: string, followLast: boolean, syscall: string): string {
    const host = this.#host(v);
    if (host === this.#root) return host;
    if (followLast) return this.#confinePathSync(host, syscall, v);
    const parent = this.#confinePathSync(nodePath.dirname(host), syscall, v);
    return nodePath.join(parent, nodePath.basename(host));
  }

  #confinePathSync(host: string, syscall: string, v: string): string {
    let probe = host;
    let hops = 0;
    for (;;) {
      let real: string | undefined;
      try {
        real = hostFs.realpathSync(probe);
      } catch (err) {
        const code = errorCodeOf(err);
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw toVfsError(err, v);
      }
      if (real !== undefined) {
        if (!this.#inside(real)) throw fsError('EACCES', syscall, v);
        return probe === host ? real : host;
      }
      // Any error (ENOTDIR, EACCES…) is treated as "not there", as the async variant does: an error that differed
      // would tell a client what lies behind a link it may not follow.
      let st: Stats | undefined;
      try {
        st = fs.lstatSync(hostArg(probe), { throwIfNoEntry: false });
      } catch {
        st = undefined;
      }
      if (st?.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS) throw fsError('ELOOP', syscall, v);
        probe = this.#danglingTargetSync(probe, syscall, v);
        continue;
      }
      // The root itself is missing (removed, or a mount not there): nothing below it exists, as the client is told;
      // walking on up would reach a folder outside it and answer "permission denied".
      if (probe === this.#root) throw fsError('ENOENT', syscall, v);
      const up = nodePath.dirname(probe);
      if (up === probe) return host;
      probe = up;
    }
  }

  /**
   * Where the kernel goes through the dangling link at host path `link`. Its target is taken from the folder the
   * link really is in, which the path that led to it may not show: through `a/b/d -> /`, the link `a/b/d/sub/l` is
   * `sub/l`, and its `../../x` leads out of the root, while taken from `a/b/d/sub` it looked like `a/b/x`. That
   * folder must be inside the root: a chain that has left it is not followed any further.
   * @throws VfsError EACCES when the link's folder is outside the root or cannot be resolved
   */
  async #danglingTarget(link: string, syscall: string, v: string): Promise<string> {
    let dir: string;
    try {
      dir = await hostFs.realpath(nodePath.dirname(link));
    } catch {
      throw fsError('EACCES', syscall, v);
    }
    if (!this.#inside(dir)) throw fsError('EACCES', syscall, v);
    const walk = walkTarget(dir, await hostFs.readlink(link));
    for (let step = walk.next(); ; ) {
      if (step.done === true) return step.value;
      const at = step.value;
      // One that does not resolve is kept as it is: the kernel cannot walk through it either, and fails there.
      step = walk.next(await hostFs.realpath(at).catch(() => at));
    }
  }

  #danglingTargetSync(link: string, syscall: string, v: string): string {
    let dir: string;
    try {
      dir = hostFs.realpathSync(nodePath.dirname(link));
    } catch {
      throw fsError('EACCES', syscall, v);
    }
    if (!this.#inside(dir)) throw fsError('EACCES', syscall, v);
    const walk = walkTarget(dir, hostFs.readlinkSync(link));
    for (let step = walk.next(); ; ) {
      if (step.done === true) return step.value;
      let real = step.value;
      try {
        real = hostFs.realpathSync(step.value);
      } catch {
        // It does not resolve: the kernel cannot walk through it either, and fails there.
      }
      step = walk.next(real);
    }
  }

  /**
   * Opens `v` (downloads, uploads) confined by the kernel where it can (@ftp/native's openBeneath: openat2 with
   * RESOLVE_BENEATH from the root): one walk of the path instead of realpath's walk per component, the open, and
   * the /proc/self/fd check, which a descriptor opened this way does not need: the kernel refused any step out of
   * the root, checked that the file found is below it when the walk ended, and opened the root itself without
   * following a link (a root swapped for one since the constructor resolved it is refused, as the careful path
   * refuses it). Null, with nothing opened, for a path with byte escapes, the root itself, a kernel or machine
   * without it, and every failure (a link leading out, or an absolute one, which may still lead inside; a missing
   * file; a refusal): the careful path then opens or gives the error, as it always did. Synchronous, so for
   * `syncMetadata` only.
   */
  #openBeneath(v: string, flags: number, mode?: number): number | null {
    const p = normalizePath(v);
    if (p === '/' || hasByteEscapes(p)) return null;
    return openBeneath(this.#root, p.slice(1), flags, mode);
  }

  /**
   * The stats of `v` read through a descriptor the kernel opened confined ({@link #openBeneath}, with O_PATH: it only
   * stands for the entry, so nothing is opened, a FIFO or a device included), `follow`ing a last symlink or not.
   * One walk of the path, where the careful path has realpath walk it a component at a time and stat walk it again
   * (an upload's check of its name: ~35 → ~12 us of the event loop's time here). Undefined, with nothing opened,
   * wherever {@link #openBeneath} would give null, except for a name missing below the root: ENOENT at once (a new
   * upload's name is the common case, and must not pay for both). The careful path says the same but for a link
   * whose target climbs out of the root through a missing folder (`missing/../../x`): EACCES there, ENOENT here,
   * and nothing outside is reached either way (an open of it is still refused).
   */
  #statBeneath(v: string, follow: boolean, syscall: string): Stats | undefined {
    const p = normalizePath(v);
    if (p === '/' || hasByteEscapes(p)) return undefined;
    const pathOnly = openPathFlag();
    if (pathOnly === null) return undefined;
    const fd = openBeneathOrErrno(this.#root, p.slice(1), pathOnly | (follow ? 0 : O_NOFOLLOW));
    if (fd === ENOENT_ERRNO) throw fsError('ENOENT', syscall, v);
    if (fd === null || fd < 0) return undefined;
    try {
      return fs.fstatSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Checks, through /proc/self/fd (Linux), that an opened descriptor is a file inside the root. Synchronous in
   * both modes: /proc/self/fd is in memory and never waits on a disk, and an async readlink would cost a
   * thread-pool round trip on every open.
   */
  #verifyFd(fd: number, v: string): void {
    let target: string;
    try {
      target = hostFs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return;
    }
    this.#checkFdTarget(target, v);
  }

  #checkFdTarget(target: string, v: string): void {
    if (target.endsWith(' (deleted)')) target = target.slice(0, -' (deleted)'.length);
    if (!this.#inside(target)) throw fsError('EACCES', 'open', v);
  }

  /** Runs `fn`, turning whatever it throws into a VfsError naming `v`. */
  async #run<T>(v: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toVfsError(err, v);
    }
  }

  #runSync<T>(v: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw toVfsError(err, v);
    }
  }

  /** A sync method's outcome as a promise (sync metadata mode). */
  #settle<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  // ---------------------------------------------------------------- core (async)

  override stat(path: string): Promise<Stats> {
    if (this.#sync) return this.#settle(() => this.statSync(path));
    return this.#run(path, async () => fsp.stat(hostArg(await this.#confine(path, true, 'stat'))));
  }

  override lstat(path: string): Promise<Stats> {
    if (this.#sync) return this.#settle(() => this.lstatSync(path));
    return this.#run(path, async () => fsp.lstat(hostArg(await this.#confine(path, false, 'lstat'))));
  }

  override readdir(path: string, options?: ReaddirOptions): Promise<string[] | VfsDirent[]> {
    if (this.#sync) return this.#settle(() => this.readdirSync(path, options));
    return this.#run(path, async () => {
      const real = await this.#confine(path, true, 'scandir');
      if (options?.withFileTypes !== true) return hostFs.readdir(real);
      const p = normalizePath(path);
      return (await hostFs.readdirTyped(real)).map((d) => new VfsDirent(d.name, kindOf(d), p));
    });
  }

  override mkdir(path: string, options?: MkdirOptions): Promise<string | undefined> {
    if (this.#sync) return this.#settle(() => this.mkdirSync(path, options));
    return this.#run(path, async () => {
      const recursive = options?.recursive === true;
      const target = await this.#confine(path, recursive, 'mkdir');
      if (target === this.#root) {
        if (recursive) return undefined;
        throw fsError('EEXIST', 'mkdir', path);
      }
      const made = await fsp.mkdir(hostArg(target), { recursive, mode: options?.mode ?? 0o777 });
      const first = made === undefined ? undefined : hostFs.firstCreated(target, made);
      return first !== undefined && this.#inside(first) ? this.#toVirtual(first) : undefined;
    });
  }

  override rmdir(path: string): Promise<void> {
    if (this.#sync) return this.#settle(() => this.rmdirSync(path));
    return this.#run(path, async () => {
      if (normalizePath(path) === '/') throw fsError('EPERM', 'rmdir', path);
      await fsp.rmdir(hostArg(await this.#confine(path, false, 'rmdir')));
    });
  }

  override unlink(path: string): Promise<void> {
    return this.#run(path, async () => {
      if (normalizePath(path) === '/') throw fsError('EISDIR', 'unlink', path);
      if (!this.#sync) {
        const target = hostArg(await this.#confine(path, false, 'unlink'));
        // Best effort in this mode: an upload that opens the file between this look and the unlink is not seen.
        const st = uploadsMayRun() ? await fsp.lstat(target).catch(() => undefined) : undefined;
        if (st !== undefined) clearForRemoval(st, path, 'unlink');
        return fsp.unlink(target);
      }
      const target = hostArg(this.#confineSync(path, false, 'unlink'));
      // Freeing a big file's blocks can take milliseconds: those are unlinked in the thread pool.
      const st = fs.lstatSync(target, { throwIfNoEntry: false });
      if (st !== undefined) clearForRemoval(st, path, 'unlink');
      if (st !== undefined && st.size > BIG_FILE) return fsp.unlink(target);
      fs.unlinkSync(target);
    });
  }

  override rename(oldPath: string, newPath: string): Promise<void> {
    if (this.#sync) {
      let paths: { from: string; to: string };
      try {
        paths = this.#renamePathsSync(oldPath, newPath);
      } catch (err) {
        return Promise.reject(err);
      }
      const { from, to } = paths;
      if (!renameInPool(from, to)) return this.#settle(() => this.#runSync(oldPath, () => fs.renameSync(hostArg(from), hostArg(to))));
      return this.#run(oldPath, () => fsp.rename(hostArg(from), hostArg(to))).finally(noteNamespaceChange);
    }
    return (async () => {
      if (normalizePath(oldPath) === '/' || normalizePath(newPath) === '/') throw fsError('EPERM', 'rename', oldPath);
      const from = await this.#run(oldPath, () => this.#confine(oldPath, false, 'rename'));
      // A target that may not be used is named as such (RNTO's path, not RNFR's).
      const to = await this.#run(newPath, () => this.#confine(newPath, false, 'rename'));
      // Best effort in this mode: an upload that opens either file between this look and the rename is not seen.
      const [source, replaced] = uploadsMayRun() ? await Promise.all([fsp.lstat(hostArg(from)).catch(() => undefined), fsp.lstat(hostArg(to)).catch(() => undefined)]) : [];
      if (source !== undefined) refuseWhileWritten(source, oldPath, 'rename');
      if (replaced !== undefined) refuseWhileWritten(replaced, newPath, 'rename');
      const target = await hostFs.readlink(from).catch(() => undefined);
      // Resolved as the kernel will (through any link on the way), as a link being made is.
      if (target !== undefined) await this.#confinePath(nodePath.resolve(nodePath.dirname(to), target), 'rename', oldPath);
      // Nothing refused it: idle uploads of either file end now, right before the rename.
      if (source !== undefined) endIdleWriter(source, oldPath);
      if (replaced !== undefined) endIdleWriter(replaced, newPath);
      noteNamespaceChange();
      try {
        await this.#run(oldPath, () => fsp.rename(hostArg(from), hostArg(to)));
      } finally {
        noteNamespaceChange();
      }
    })();
  }

  override open(path: string, flags: string | number = 'r', mode?: number): Promise<LocalFileHandle> {
    if (this.#sync) {
      let handle: LocalFileHandle | null;
      try {
        handle = this.#openSync(path, flags, mode, true);
      } catch (err) {
        return Promise.reject(err);
      }
      // A FIFO or a device would block the event loop: those are opened in the thread pool.
      if (handle !== null) return Promise.resolve(handle);
    }
    return this.#run(path, async () => {
      const f = parseOpenFlags(flags);
      const real = await this.#confine(path, true, 'open');
      const bits = (f.write ? (f.read ? O_RDWR : O_WRONLY) : O_RDONLY) | (f.create ? O_CREAT : 0) | (f.exclusive ? O_EXCL : 0) | (f.append ? O_APPEND : 0);
      const fd = await openFd(real, bits, mode ?? 0o666);
      let claim: FileClaim | null = null;
      try {
        this.#verifyFd(fd, path);
        // fstat of an open descriptor reads the in-memory inode, as the streams do.
        claim = claimFile(fs.fstatSync(fd), f, path);
        if (f.truncate && f.write) await ftruncateFd(fd, 0);
      } catch (err) {
        if (claim !== null) releaseClaim(claim);
        await closeFd(fd);
        throw err;
      }
      return new LocalFileHandle(fd, normalizePath(path), flags, mode ?? 0o666, claim);
    });
  }

  /** Reads a link; an absolute target inside the root is returned as a virtual path. */
  override readlink(path: string): Promise<string> {
    if (this.#sync) return this.#settle(() => this.readlinkSync(path));
    return this.#run(path, async () => {
      const target = await hostFs.readlink(await this.#confine(path, false, 'readlink'));
      return nodePath.isAbsolute(target) && this.#inside(target) ? this.#toVirtual(target) : target;
    });
  }

  /**
   * Creates a symlink. An absolute `target` is a virtual path; a relative one must not climb out of the root. Either
   * must resolve inside the root, else EACCES. Absolute and climbing targets are stored as absolute host paths (see
   * `#linkTarget`: a rename must not change where a link leads).
   */
  override symlink(target: string, path: string): Promise<void> {
    if (this.#sync) return this.#settle(() => this.symlinkSync(target, path));
    return this.#run(path, async () => {
      const link = await this.#confine(path, false, 'symlink');
      const stored = this.#linkTarget(target, link, path);
      await this.#confinePath(nodePath.resolve(nodePath.dirname(link), stored), 'symlink', path);
      noteNamespaceChange();
      try {
        await fsp.symlink(hostArg(stored), hostArg(link));
      } finally {
        noteNamespaceChange();
      }
    });
  }

  /**
   * The target to store for a link at host path `link`: one whose meaning no rename can change. A target that
   * climbs (any `..`) would point elsewhere once the link, or a folder above it, is moved: `a/l -> ../x` moved to
   * `/l` leads out of the user's home or the root, and a client racing renames against another command could then
   * use it (with async metadata or several workers, where the confinement check and the operation are not one
   * step). So absolute targets and climbing ones are stored as absolute host paths (read back as virtual paths by
   * `readlink`), and only targets that stay below the link's folder are kept relative.
   */
  #linkTarget(target: string, link: string, v: string): string {
    if (typeof target !== 'string' || target === '' || target.includes('\0')) throw fsError('EINVAL', 'symlink', v);
    if (target.startsWith('/')) return this.#host(resolvePath('/', target));
    const resolved = nodePath.resolve(nodePath.dirname(link), target);
    if (!this.#inside(resolved)) throw fsError('EACCES', 'symlink', v);
    return target.split('/').includes('..') ? resolved : target;
  }

  override realpath(path: string): Promise<string> {
    if (this.#sync) return this.#settle(() => this.realpathSync(path));
    return this.#run(path, async () => this.#toVirtual(await hostFs.realpath(await this.#confine(path, true, 'realpath'))));
  }

  override access(path: string, mode?: number): Promise<void> {
    if (this.#sync) return this.#settle(() => this.accessSync(path, mode));
    return this.#run(path, async () => fsp.access(hostArg(await this.#confine(path, true, 'access')), mode));
  }

  // ---------------------------------------------------------------- core (sync)

  override statSync(path: string): Stats {
    return this.#runSync(path, () => this.#statBeneath(path, true, 'stat') ?? fs.statSync(hostArg(this.#confineSync(path, true, 'stat'))));
  }

  override lstatSync(path: string): Stats {
    return this.#runSync(path, () => this.#statBeneath(path, false, 'lstat') ?? fs.lstatSync(hostArg(this.#confineSync(path, false, 'lstat'))));
  }

  override readdirSync(path: string, options?: ReaddirOptions): string[] | VfsDirent[] {
    return this.#runSync(path, () => {
      const real = this.#confineSync(path, true, 'scandir');
      if (options?.withFileTypes !== true) return hostFs.readdirSync(real);
      const p = normalizePath(path);
      return hostFs.readdirTypedSync(real).map((d) => new VfsDirent(d.name, kindOf(d), p));
    });
  }

  override mkdirSync(path: string, options?: MkdirOptions): string | undefined {
    return this.#runSync(path, () => {
      const recursive = options?.recursive === true;
      const target = this.#confineSync(path, recursive, 'mkdir');
      if (target === this.#root) {
        if (recursive) return undefined;
        throw fsError('EEXIST', 'mkdir', path);
      }
      const made = fs.mkdirSync(hostArg(target), { recursive, mode: options?.mode ?? 0o777 });
      const first = made === undefined ? undefined : hostFs.firstCreated(target, made);
      return first !== undefined && this.#inside(first) ? this.#toVirtual(first) : undefined;
    });
  }

  override rmdirSync(path: string): void {
    this.#runSync(path, () => {
      // EPERM, not EBUSY: that is "450 try again later", and a client would retry this for ever.
      if (normalizePath(path) === '/') throw fsError('EPERM', 'rmdir', path);
      fs.rmdirSync(hostArg(this.#confineSync(path, false, 'rmdir')));
    });
  }

  override unlinkSync(path: string): void {
    this.#runSync(path, () => {
      if (normalizePath(path) === '/') throw fsError('EISDIR', 'unlink', path);
      const target = hostArg(this.#confineSync(path, false, 'unlink'));
      const st = uploadsMayRun() ? fs.lstatSync(target, { throwIfNoEntry: false }) : undefined;
      if (st !== undefined) clearForRemoval(st, path, 'unlink');
      fs.unlinkSync(target);
    });
  }

  override renameSync(oldPath: string, newPath: string): void {
    const { from, to } = this.#renamePathsSync(oldPath, newPath);
    this.#runSync(oldPath, () => fs.renameSync(hostArg(from), hostArg(to)));
  }

  /** The host paths of a rename, checked as `renameSync` needs them; the listings are told the namespace changes. */
  #renamePathsSync(oldPath: string, newPath: string): { from: string; to: string } {
    // EPERM (550), not EBUSY (450: a transient refusal that clients retry).
    if (normalizePath(oldPath) === '/' || normalizePath(newPath) === '/') throw fsError('EPERM', 'rename', oldPath);
    const from = this.#runSync(oldPath, () => this.#confineSync(oldPath, false, 'rename'));
    // A target that may not be used is named as such (RNTO's path, not RNFR's).
    const to = this.#runSync(newPath, () => this.#confineSync(newPath, false, 'rename'));
    // Neither an upload under way nor the file it writes may be moved away or replaced (see refuseWhileWritten).
    const look = uploadsMayRun();
    const source = look ? this.#runSync(oldPath, () => fs.lstatSync(hostArg(from), { throwIfNoEntry: false })) : undefined;
    if (source !== undefined) refuseWhileWritten(source, oldPath, 'rename');
    const replaced = look ? this.#runSync(newPath, () => fs.lstatSync(hostArg(to), { throwIfNoEntry: false })) : undefined;
    if (replaced !== undefined) refuseWhileWritten(replaced, newPath, 'rename');
    this.#refuseOutwardLinkSync(linkTargetSync(from), to, oldPath);
    // Nothing refused it: idle uploads of either file end now, right before the rename.
    if (source !== undefined) endIdleWriter(source, oldPath);
    if (replaced !== undefined) endIdleWriter(replaced, newPath);
    noteNamespaceChange();
    return { from, to };
  }

  /**
   * Refuses (EACCES) to move a link (`target`: what the entry to move holds) that would lead out of the root from
   * its new place `to`, through any link on the way (the async rename does the same): links made through this provider never do (see `#linkTarget`), but one placed by an
   * administrator (`ln -s /etc`) or an older version (`../..`) may. Unusable where it is, it could otherwise be
   * renamed over a folder while another command is between its confinement check and its operation (a race open
   * with async metadata or several processes).
   */
  #refuseOutwardLinkSync(target: string | undefined, to: string, v: string): void {
    // No target: not a link, or gone (the rename itself says so). Resolved through any link on the way.
    if (target !== undefined) this.#confinePathSync(nodePath.resolve(nodePath.dirname(to), target), 'rename', v);
  }

  override openSync(path: string, flags: string | number = 'r', mode?: number): LocalFileHandle {
    return this.#openSync(path, flags, mode, false)!;
  }

  /**
   * `openSync`; with `plainOnly`, opened with O_NONBLOCK (opening a FIFO never waits for its other end) and null,
   * with nothing left open, when the path is not a regular file or a directory.
   */
  #openSync(path: string, flags: string | number, mode: number | undefined, plainOnly: boolean): LocalFileHandle | null {
    return this.#runSync(path, () => {
      const f = parseOpenFlags(flags);
      const real = this.#confineSync(path, true, 'open');
      const bits = (f.write ? (f.read ? O_RDWR : O_WRONLY) : O_RDONLY) | (f.create ? O_CREAT : 0) | (f.exclusive ? O_EXCL : 0) | (f.append ? O_APPEND : 0);
      if (plainOnly) {
        // A FIFO is not opened here at all: even a non-blocking open and close would wake its other end.
        const before = fs.statSync(hostArg(real), { throwIfNoEntry: false });
        if (before !== undefined && !before.isFile() && !before.isDirectory()) return null;
      }
      let fd: number;
      try {
        fd = fs.openSync(hostArg(real), bits | (plainOnly ? O_NONBLOCK : 0), mode ?? 0o666);
      } catch (err) {
        // ENXIO: a FIFO opened for writing with no reader.
        if (plainOnly && (err as NodeJS.ErrnoException).code === 'ENXIO') return null;
        throw err;
      }
      let st: Stats | undefined;
      if (plainOnly) {
        st = fs.fstatSync(fd);
        if (!st.isFile() && !st.isDirectory()) {
          fs.closeSync(fd);
          return null;
        }
      }
      let claim: FileClaim | null = null;
      try {
        this.#verifyFd(fd, path);
        claim = claimFile(st ?? fs.fstatSync(fd), f, path);
        if (f.truncate && f.write) fs.ftruncateSync(fd, 0);
      } catch (err) {
        if (claim !== null) releaseClaim(claim);
        fs.closeSync(fd);
        throw err;
      }
      return new LocalFileHandle(fd, normalizePath(path), flags, mode ?? 0o666, claim);
    });
  }

  override readlinkSync(path: string): string {
    return this.#runSync(path, () => {
      const target = hostFs.readlinkSync(this.#confineSync(path, false, 'readlink'));
      return nodePath.isAbsolute(target) && this.#inside(target) ? this.#toVirtual(target) : target;
    });
  }

  override symlinkSync(target: string, path: string): void {
    this.#runSync(path, () => {
      const link = this.#confineSync(path, false, 'symlink');
      const stored = this.#linkTarget(target, link, path);
      this.#confinePathSync(nodePath.resolve(nodePath.dirname(link), stored), 'symlink', path);
      noteNamespaceChange();
      fs.symlinkSync(hostArg(stored), hostArg(link));
    });
  }

  override realpathSync(path: string): string {
    return this.#runSync(path, () => this.#toVirtual(hostFs.realpathSync(this.#confineSync(path, true, 'realpath'))));
  }

  override accessSync(path: string, mode?: number): void {
    this.#runSync(path, () => fs.accessSync(hostArg(this.#confineSync(path, true, 'access')), mode));
  }

  // ---------------------------------------------------------------- capabilities

  /**
   * {@link list} a slice at a time (see {@link lstatSlices}), with `syncMetadata`; without it, the whole
   * {@link list} as one slice. With `sortedUpTo`, a folder of at most that many entries has its names read and
   * sorted first and is looked up in name order, so a sorted listing streams too instead of being gathered whole.
   */
  async listSlices(path: string, options: ListSlicesOptions = {}): Promise<DirSlices> {
    if (!this.#sync) return slicesOf([await this.list(path)]);
    const real = this.#runSync(path, () => this.#confineSync(path, true, 'scandir'));
    return mapSliceErrors(
      this.#runSync(path, () => lstatSlices(real, { thread: this.#listingThread, sortedUpTo: options.sortedUpTo })),
      path,
    );
  }

  /**
   * {@link listSlices} with names only (see `FsProvider.listNameSlices`): no entry is looked up. With `syncMetadata`
   * the folder is read a slice at a time as {@link listSlices} reads it (see {@link nameSlices}); without it, one
   * `readdir` as one slice (what {@link list} reads).
   */
  async listNameSlices(path: string, options: ListSlicesOptions = {}): Promise<NameSlices> {
    // A subclass that lists otherwise (hiding or adding entries in its `list` or `listSlices` methods) has NLST show
    // what LIST shows: the names of its own listing, not the disk's.
    const own = Object.getPrototypeOf(this) as LocalProvider;
    if (own.listSlices !== LocalProvider.prototype.listSlices || own.list !== LocalProvider.prototype.list) {
      return namesOf(await this.listSlices(path, options));
    }
    if (!this.#sync) return this.#run(path, async () => inHand([await hostFs.readdir(await this.#confine(path, true, 'scandir'))]));
    const real = this.#runSync(path, () => this.#confineSync(path, true, 'scandir'));
    return mapErrors(
      this.#runSync(path, () => nameSlices(real, { sortedUpTo: options.sortedUpTo })),
      path,
    );
  }

  /**
   * Entries with their lstat, from one `readdir` and a sliding window of `lstat` calls (see {@link lstatAll}), or
   * with `syncMetadata` synchronous calls a slice at a time, shared with the listing thread (see
   * {@link lstatAllSync}); vanished entries are skipped.
   */
  async list(path: string): Promise<DirEntry[]> {
    if (this.#sync) {
      const real = this.#runSync(path, () => this.#confineSync(path, true, 'scandir'));
      return this.#run(path, () => lstatAllSync(real, { thread: this.#listingThread }));
    }
    return this.#run(path, async () => {
      const real = await this.#confine(path, true, 'scandir');
      return lstatAll(real, await hostFs.readdir(real));
    });
  }

  /**
   * `fs.createReadStream` over a descriptor opened and checked first (open errors reject here). Reads are 256 KiB,
   * or the size of what is left to read when less: a small file does not cost a 256 KiB buffer per download.
   */
  async createReadStream(path: string, options: ReadStreamOptions = {}): Promise<Readable> {
    checkStreamOptions(options, path);
    return this.#run(path, async () => {
      // O_NONBLOCK: opening a FIFO must not hold a thread-pool thread until some writer shows up.
      const confined = this.#sync ? this.#openBeneath(path, O_RDONLY | O_NONBLOCK) : null;
      const fd = confined ?? (this.#sync ? fs.openSync(hostArg(this.#confineSync(path, true, 'open')), O_RDONLY | O_NONBLOCK) : await openFd(await this.#confine(path, true, 'open'), O_RDONLY | O_NONBLOCK));
      let size: number;
      let reader: ReaderClaim;
      let st: Stats;
      try {
        if (confined === null) this.#verifyFd(fd, path);
        // fstat of an open descriptor reads the in-memory inode: no thread-pool round trip needed.
        st = fs.fstatSync(fd);
        if (st.isDirectory()) throw fsError('EISDIR', 'open', path);
        // Only regular files are streamed: a FIFO or a device (/dev/zero) would block or never end.
        if (!st.isFile()) throw fsError('EINVAL', 'open', path);
        // Refused while an upload rewrites it (it would be read half old, half new, and look complete); registered
        // as a reader until its descriptor closes, so that no upload rewrites it under this download either.
        reader = takeReader(st, path);
        // An idle upload this download ended wrote out what it held and cut the file as it closed: the size is
        // looked up again then, or the download would promise bytes the file no longer has (the server's 451 "ended
        // the file after N of M bytes"). Otherwise the fstat above stands: no second call on every download.
        if (reader.tookOver) st = fs.fstatSync(fd);
        size = st.size;
      } catch (err) {
        await this.#closeQuietly(fd);
        throw err;
      }
      const opened = st;
      const atEnd = (): VfsError | null => lostClaimError(reader, fd, opened, path);
      const from = options.start ?? 0;
      const to = Math.min(options.end ?? Infinity, size - 1);
      // At least 1 byte: a file that grows after the open is still read to its end, a small buffer at a time.
      const highWaterMark = Math.max(1, Math.min(TRANSFER_CHUNK_SIZE, to - from + 1));
      let stream: fs.ReadStream;
      try {
        // The stream closes the descriptor (end, error, destroy), and releases the reader registration as it does.
        stream = fs.createReadStream('', { fd, start: options.start, end: options.end, highWaterMark, autoClose: true, fs: readStreamFs(reader, this.#sync, atEnd) });
      } catch (err) {
        // Refused options (a start past the end): the descriptor is not the stream's yet.
        releaseReader(reader);
        await this.#closeQuietly(fd);
        throw err;
      }
      const sync = this.#sync;
      let pos = from;
      const limit = options.end === undefined ? Infinity : options.end + 1;
      attachFileSize(stream, size);
      const ended = (): Promise<number> => {
        const lost = atEnd();
        return lost === null ? Promise.resolve(0) : Promise.reject(lost);
      };
      // Sending straight from the descriptor (sendfile) reads the same bytes: on this thread only where the chunk
      // reader below would (a file of at most SYNC_READ_FILE, with synchronous metadata); a big file's first read
      // from a cold cache would hold every session up.
      // Not a file an upload may overwrite in place (at most SMALL_IO, with synchronous metadata: see
      // createWriteStream): sendfile leaves the client's bytes in the socket as references to the file's pages until
      // the client has them, after the download's 226 and the release of its claim; an upload rewriting those pages
      // then changed what the client received (another version's bytes, or zeros past its end). Copied, they are
      // the client's (and as cheap: 16 KiB downloads measured the same either way).
      if (!(sync && size <= SMALL_IO)) {
        attachFileDescriptor(stream, { fd, start: from, end: limit, inlineBytes: sync && size <= SYNC_READ_FILE ? SYNC_READ_FILE : 0, atEnd, lendPages: (socket) => lendPages(opened, socket) });
      }
      /**
       * A read gave less than it asked for at or past the size the file had when opened: its end, as it was then.
       * Only there: a FUSE mount with direct I/O (a network filesystem) may read short anywhere, and is read again.
       */
      let short = false;
      attachChunkReader(stream, (into) => {
        const want = Math.min(into.length, limit - pos);
        // Not asked again after a short read: one system call less per small download, which would read nothing.
        if (want <= 0 || short) return ended();
        // The size of the file as seen at open decides, not the caller's buffer (servers read into 256 KiB).
        // A file that grows after the open is read synchronously to SYNC_READ_FILE (and one buffer past it) at most.
        const syncBytes = !sync ? 0 : size <= SYNC_READ_FILE ? (pos <= SYNC_READ_FILE ? want : 0) : size - pos <= SMALL_IO ? SMALL_IO : 0;
        if (syncBytes > 0) {
          try {
            const asked = Math.min(want, syncBytes);
            const n = fs.readSync(fd, into, 0, asked, pos);
            pos += n;
            short = n < asked && pos >= size;
            return n === 0 ? ended() : Promise.resolve(n);
          } catch (err) {
            return Promise.reject(toVfsError(err, path));
          }
        }
        return new Promise((resolve, reject) =>
          fs.read(fd, into, 0, want, pos, (err, n) => {
            if (err) return reject(toVfsError(err, path));
            pos += n;
            short = n < want && pos >= size;
            const lost = n === 0 ? atEnd() : null;
            if (lost !== null) reject(lost);
            else resolve(n);
          }),
        );
      });
      return mapStreamErrors(stream, path);
    });
  }

  /**
   * Opens an upload: truncates (default), writes from `start` keeping the bytes before it and truncating to the
   * final length at the end (REST + STOR; the file is created when missing), or appends (`append`).
   */
  async createWriteStream(path: string, options: WriteStreamOptions = {}): Promise<UploadStream> {
    checkStreamOptions(options, path);
    return this.#run(path, async () => {
      const append = options.append === true;
      // O_NONBLOCK: opening a FIFO must not wait for a reader (it fails with ENXIO instead); it has no effect on a
      // regular file's reads and writes.
      const flags = O_WRONLY | O_CREAT | O_NONBLOCK | (append ? O_APPEND : 0);
      const mode = options.mode ?? 0o666;
      let fd: number;
      // Confined by the kernel where it can, as downloads are (see #openBeneath): it also creates only below the root.
      const confined = this.#sync ? this.#openBeneath(path, flags, mode) : null;
      try {
        fd = confined ?? (this.#sync ? fs.openSync(hostArg(this.#confineSync(path, true, 'open')), flags, mode) : await openFd(await this.#confine(path, true, 'open'), flags, mode));
      } catch (err) {
        throw (err as NodeJS.ErrnoException).code === 'ENXIO' ? fsError('EINVAL', 'open', path) : err;
      }
      let writer: WriterClaim | null = null;
      /** The size of a small file this upload overwrites in place (0: none; see below). */
      let overwritten = 0;
      /** REST: the size of the file it writes into (see LocalWriteStream's `#restEnd`). */
      let restEnd = 0;
      /** An old file was emptied (see LocalWriteStream's `#emptied`). */
      let emptied = false;
      try {
        if (confined === null) this.#verifyFd(fd, path);
        const st = fs.fstatSync(fd);
        // Only regular files are written: a FIFO with a reader or a device would take the upload somewhere else.
        if (!st.isFile()) throw fsError(st.isDirectory() ? 'EISDIR' : 'EINVAL', 'open', path);
        // One writer at a time and none while the file is being read, registered before anything is truncated: a
        // second upload would interleave its blocks with the first one's, a download would get a torn mix of old
        // and new bytes as complete.
        // A restart point inside the file rewrites bytes it has: not while a download's socket still holds them.
        writer = takeWriter(st, path, options.start !== undefined && options.start < st.size);
        // An idle upload ended by this one wrote out what it held as it went: what to empty or cut is decided on
        // the size now (it was decided on the size before, and a shorter upload left the other's tail behind).
        const size = writer.tookOver ? fs.fstatSync(fd).size : st.size;
        // A new (empty) file needs no truncation: one call fewer per upload of a new file. An old one of at most
        // SMALL_IO (with syncMetadata) is overwritten in place instead, and cut to the upload's length at its end or
        // when it is interrupted: emptying it first freed its blocks for the upload to allocate again, a quarter of
        // the server's CPU per 16 KiB upload (0.51 → 0.38 ms, 1,165 → 1,608 uploads/s in `pnpm bench`'s rounds
        // of overwrites), and a thread-pool round trip. Its new content mostly comes in one write, at the end (the
        // held first chunk); a process killed before that leaves the old file whole. A bigger old file is emptied
        // first, in the thread pool (freeing even a 16 KiB file's blocks took 0.2–0.45 ms on ext4 here, and on the
        // event loop every other session waited for it), before the stream exists, so that a process killed during
        // its upload leaves what was received, which REST resumes, never new bytes over an old tail.
        const replaces = !append && options.start === undefined && size > 0;
        if (replaces && this.#sync && size <= SMALL_IO) overwritten = size;
        else if (replaces) {
          await ftruncateFd(fd, 0);
          emptied = true;
        }
        restEnd = options.start === undefined ? 0 : size;
      } catch (err) {
        if (writer !== null) releaseWriter(writer);
        await this.#closeQuietly(fd);
        throw err;
      }
      // A hold of this path as a new file (see uploadBusy) is the upload's that now opens it, or no longer needed.
      releaseNewFile(() => this.#newFileKey(path));
      const stream = new LocalWriteStream(fd, append ? null : (options.start ?? 0), options.start !== undefined, this.#sync, writer, overwritten, restEnd, emptied);
      return mapStreamErrors(stream, path);
    });
  }

  /** Closes a descriptor a failed open leaves behind, ignoring errors. */
  async #closeQuietly(fd: number): Promise<void> {
    if (this.#sync) closeSyncTo(fd, () => undefined);
    else await closeFd(fd);
  }

  /** Sets the modification time (`fs.utimes`, access time kept). */
  async setTimes(path: string, mtime: Date): Promise<void> {
    if (this.#sync) {
      return this.#runSync(path, () => {
        const real = hostArg(this.#confineSync(path, true, 'utime'));
        fs.utimesSync(real, fs.statSync(real).atime, mtime);
      });
    }
    return this.#run(path, async () => {
      const real = hostArg(await this.#confine(path, true, 'utime'));
      await fsp.utimes(real, (await fsp.stat(real)).atime, mtime);
    });
  }

  /** Changes the permission bits (`fs.chmod`). */
  async chmod(path: string, mode: number): Promise<void> {
    if (this.#sync) return this.#runSync(path, () => fs.chmodSync(hostArg(this.#confineSync(path, true, 'chmod')), mode & 0o7777));
    return this.#run(path, async () => fsp.chmod(hostArg(await this.#confine(path, true, 'chmod')), mode & 0o7777));
  }

  /**
   * Whether an upload of `path` opened now would be refused (EBUSY): another upload still writes the file, or a
   * download reads it, or another announced upload holds it (see `local-writers.ts`); with `hold`, a free file is held
   * for this upload until it opens. Without a transfer under way anywhere and without `hold`, nothing is looked up.
   */
  async uploadBusy(path: string, options?: WriteStreamOptions, hold: boolean | object = false, known?: FileStats | null): Promise<boolean> {
    // With nothing under way nothing refuses it; a hold is taken all the same (another upload may ask next).
    if (hold === false && !transfersMayRun()) return false;
    // The caller's own lookup of a moment ago, when it is this provider's (it carries the file's identity); else one
    // here, in the thread pool without syncMetadata (a lookup on a network filesystem may stall for seconds).
    const own = known !== undefined && known !== null && typeof known.dev === 'number' && typeof known.ino === 'number';
    const st = known === null ? null : own ? (known as Stats) : await this.stat(path).catch(() => null);
    if (st !== null) return st.isFile() && writerRefused(st, hold, options?.start !== undefined && options.start < st.size);
    // A new file: held by its path under this root (a missing folder's too: the open answers for it).
    return hold !== false && newFileRefused(this.#newFileKey(path), hold);
  }

  /** Gives back `owner`'s hold of `path` (see `FsProvider.releaseUploadHold`): as a new name, and as the file there now. */
  async releaseUploadHold(path: string, owner: object): Promise<void> {
    if (!anyHeld()) return;
    releaseHeld(this.#newFileKey(path), owner);
    const st = await this.stat(path).catch(() => null);
    if (st !== null && st.isFile()) releaseHeldFile(st as Stats, owner);
  }

  /**
   * Rejects with what the upload's open would say where the system can tell without opening anything (see
   * `FsProvider.checkUpload`): access(2) of the file for writing, or of its folder for adding a name. The open still
   * decides.
   */
  async checkUpload(path: string, _options?: WriteStreamOptions, known?: FileStats | null): Promise<void> {
    const exists = known !== undefined ? known !== null : (await this.stat(path).catch(() => null)) !== null;
    if (exists) return this.#access(path, path, fs.constants.W_OK);
    try {
      await this.#access(path, dirname(path), fs.constants.W_OK | fs.constants.X_OK);
    } catch (err) {
      // Unless the name is a dangling link: the open creates its target where the link leads, and answers for it.
      // Looked at only on a refusal, so that a new file's upload pays for no lookup more.
      if (!(await this.lstat(path).catch(() => null))?.isSymbolicLink()) throw err;
    }
  }

  /** Rejects where the server's user may not search folder `path` (see `FsProvider.checkEnter`): access(2), execute. */
  async checkEnter(path: string): Promise<void> {
    return this.#access(path, path, fs.constants.X_OK);
  }

  /**
   * access(2) of `target` with `mode`, for the process's user (its real uid and gids, as access(2) asks; root passes
   * the permission bits, but not an immutable file or a read-only mount); a refusal names `path`. The entry is looked
   * up confined, as an open would be (with O_PATH where it can: it only stands for the entry), and asked about
   * through its /proc/self/fd link; a refusal there, or no /proc (a chroot, a sandbox), is asked again through the
   * careful path, whose answer stands (refusals are rare: the second look costs nothing on the common path).
   */
  async #access(path: string, target: string, mode: number): Promise<void> {
    const pathOnly = this.#sync ? openPathFlag() : null;
    const fd = pathOnly === null ? null : this.#openBeneath(target, pathOnly);
    if (fd !== null) {
      try {
        fs.accessSync(`/proc/self/fd/${fd}`, mode);
        return;
      } catch {
        // Refused, or no /proc (a chroot), or a sandbox denying /proc itself: the careful path below has the last word.
      } finally {
        fs.closeSync(fd);
      }
    }
    if (this.#sync) return this.#runSync(path, () => fs.accessSync(hostArg(this.#confineSync(target, true, 'access')), mode));
    return this.#run(path, async () => fsp.access(hostArg(await this.#confine(target, true, 'access')), mode));
  }

  /** The key of a new file's hold: this provider's root and the path (see `newFileRefused`). */
  #newFileKey(path: string): string {
    return `${this.#root}\0${normalizePath(path)}`;
  }

  /** Bytes available to this process on the file system of `path` (`fs.statfs`: `bavail × bsize`). */
  async availableSpace(path: string): Promise<number> {
    if (this.#sync) {
      return this.#runSync(path, () => {
        const s = fs.statfsSync(hostArg(this.#confineSync(path, true, 'statfs')));
        return s.bavail * s.bsize;
      });
    }
    return this.#run(path, async () => {
      const s = await fsp.statfs(hostArg(await this.#confine(path, true, 'statfs')));
      return s.bavail * s.bsize;
    });
  }

  /** Fails with ENOSPC when `size` bytes would not fit in the file system of the file's directory. */
  async allocate(path: string, size: number): Promise<void> {
    if (size > (await this.availableSpace(dirname(normalizePath(path))))) throw fsError('ENOSPC', 'allocate', path);
  }
}


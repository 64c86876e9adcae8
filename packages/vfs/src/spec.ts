import type { Readable, Writable } from 'node:stream';

/** Options of a `hash` call. */
export interface HashOptions {
  /** Stops the hash: the file stops being read, and the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Version of the provider contract described in this file. A provider may declare the version it was written
 * for (`specVersion`) so that a future v2 can ship beside v1.
 */
export const SPEC_VERSION = 1 as const;

/**
 * What the server needs to know of a file. `fs.Stats` and `@platformatic/vfs`'s `VirtualStats` both satisfy it.
 */
export interface FileStats {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  /** Size in bytes (0 for directories is fine). */
  size: number;
  /** Last modification, in milliseconds since the epoch. */
  mtimeMs: number;
  /** Creation time where the backend knows it. */
  birthtimeMs?: number;
  /** Unix mode bits (type bits optional; the permission bits are what matter). */
  mode: number;
  /** A stable id of the object where the backend has one (inode number, row id): with `dev`, the MLSx `unique` fact. */
  ino?: number;
  /**
   * The device the object lives on (`fs.Stats.dev`): `ino` is unique within it. 0 or absent for backends without
   * devices; the mounts wrapper then gives each mounted provider one of its own, set on the stats it returns (stats
   * are the caller's: return a fresh object per call, as `fs.stat` does).
   */
  dev?: number;
  nlink?: number;
  uid?: number;
  gid?: number;
}

/** One entry of a directory listing together with its stats (the `list` capability). */
export interface DirEntry {
  name: string;
  stats: FileStats;
}

/**
 * A directory's entries a slice at a time (the `listSlices` capability). `next()` gives the next slice as it is
 * read; `return()` releases what the listing holds (an open directory) when it is stopped early. Entries that
 * vanish while it runs are left out.
 */
export interface DirSlices extends AsyncIterableIterator<DirEntry[]> {
  return(): Promise<IteratorResult<DirEntry[]>>;
  /**
   * True when every slice comes sorted by name (`a < b`, UTF-16 code units, as `Array.prototype.sort`), across
   * slices too: what {@link ListSlicesOptions.sortedUpTo} asks for. Settled once the first `next()` has resolved.
   */
  readonly sorted?: boolean;
  /**
   * Names the provider has read ahead and holds for this listing (to sort them, see {@link ListSlicesOptions.sortedUpTo}),
   * once a `next()` has resolved: a caller that budgets what listings hold gives back the rest. Unset: unknown.
   */
  readonly held?: number;
}

/**
 * A directory's names a slice at a time, without their stats (the `listNameSlices` capability): what
 * {@link DirSlices} gives, each entry its name only. Same contract: `next()` gives the next slice, `return()` stops
 * the listing early, names that vanish while it runs may be left out, `sorted` and `held` as there.
 */
export interface NameSlices extends AsyncIterableIterator<string[]> {
  return(): Promise<IteratorResult<string[]>>;
  /** As {@link DirSlices.sorted}. */
  readonly sorted?: boolean;
  /** As {@link DirSlices.held}. */
  readonly held?: number;
}

/** Options of {@link OptionalCapabilities.listSlices} and {@link OptionalCapabilities.listNameSlices}. */
export interface ListSlicesOptions {
  /**
   * Sort the entries by name when the folder has at most this many, and say so with {@link DirSlices.sorted}. A
   * provider that can sort before it looks entries up (the local disk reads names, sorts them, then looks them up
   * a slice at a time) spares its caller holding every entry to sort them. A provider may ignore it.
   */
  sortedUpTo?: number;
}

/** A file handle as `@platformatic/vfs` providers return from `open()`. */
export interface FileHandleLike {
  read(buffer: Buffer, offset: number, length: number, position: number | null): Promise<{ bytesRead: number }>;
  write(buffer: Buffer, offset: number, length: number, position: number | null): Promise<{ bytesWritten: number } | unknown>;
  close(): Promise<void>;
  stat?(): Promise<FileStats>;
  truncate?(len?: number): Promise<void>;
}

/** Options of {@link StreamingCapability.createReadStream}. */
export interface ReadStreamOptions {
  /** First byte to read (REST offset). */
  start?: number;
  /** Last byte to read, inclusive. */
  end?: number;
}

/** Options of {@link StreamingCapability.createWriteStream}. Exactly one of `start` / `append`, or neither (truncate). */
export interface WriteStreamOptions {
  /** Overwrite from this offset, keeping the bytes before it (REST + STOR). Bytes after the written ones are dropped. */
  start?: number;
  /** Append to the existing content (APPE); creates the file when missing. */
  append?: boolean;
  /** Permission bits for a file that is created. */
  mode?: number;
}

/**
 * A writable that a backend returns for uploads. Before an interrupted upload's stream is destroyed the server
 * calls `transferError(err)` (if present), so that the backend can keep or discard what it received.
 * Completion is signalled by the stream's `finish`/`close` after `end()`: only then is the upload complete.
 */
export interface UploadStream extends Writable {
  transferError?(err: Error): void;
  /**
   * True when the stream keeps no reference to a chunk once that chunk's write callback has run, so the caller
   * may reuse the chunk's memory for later data. The server then reads an upload straight into a few reused
   * buffers instead of a fresh one per socket read (much less CPU per GiB). Leave it unset when chunks outlive
   * their callback (queued for a batch or a multipart part, say).
   */
  readonly releasesChunks?: boolean;
  /**
   * Bytes the upload has stored so far, the part of the file it keeps included (APPE, REST + STOR), while it copies
   * that part (in SQL, in Redis, by UploadPartCopy) before it takes the caller's first byte. The server takes a change
   * as progress: such a copy can outlast its stall timeout without the storage being stuck. Leave it unset when the
   * upload prepares nothing that takes long.
   */
  readonly storedBytes?: number;
  /**
   * True while the upload has neither created nor changed its file: a backend that opens its file at the first byte
   * it takes (the quota wrapper does) and has not yet. The server then leaves the path alone when it discards a failed
   * upload (`partialUploads: 'discard'`): deleting it would delete the file the upload never replaced.
   */
  readonly untouched?: boolean;
}

/** The fast path for transfers. Without it the server streams through file handles (`open`). */
export interface StreamingCapability {
  createReadStream(path: string, options?: ReadStreamOptions): Readable | Promise<Readable>;
  createWriteStream(path: string, options?: WriteStreamOptions): UploadStream | Promise<UploadStream>;
}

/** Hash algorithms of the HASH extension. */
export type HashAlgorithm = 'SHA-1' | 'SHA-256' | 'SHA-512' | 'MD5' | 'CRC32';

/** Optional capabilities that FTP needs and `fs` lacks. The server detects each one and falls back where it can. */
export interface OptionalCapabilities extends Partial<StreamingCapability> {
  /** Entries of a directory with their stats, in one call (one query, one page, one round-trip). */
  list?(path: string): Promise<DirEntry[]>;
  /**
   * The entries of a directory a slice at a time, read as they are consumed, so that a listing of any size is
   * served holding a few slices rather than every entry. Resolves once the directory is open (its own errors,
   * such as ENOENT or ENOTDIR, reject here); the caller iterates to the end or calls `return()`. A `next()` that
   * rejects ends the listing: the provider releases what it held, and `return()` after it must still resolve.
   */
  listSlices?(path: string, options?: ListSlicesOptions): Promise<DirSlices>;
  /**
   * {@link listSlices} with names only: for a caller that needs no stats (NLST, a wildcard matched against names),
   * a provider that reads names apart from their stats (the local disk) spares one lookup per entry. Same
   * contract as {@link listSlices}: the same names, in the same order, under the same confinement. Without it,
   * `listNameSlices()` of this package takes the names of {@link listSlices} (or `list`, or `readdir`).
   */
  listNameSlices?(path: string, options?: ListSlicesOptions): Promise<NameSlices>;
  /** Sets the modification time (MFMT). */
  setTimes?(path: string, mtime: Date): Promise<void>;
  /** Sets the creation time (MFCT), for backends that store one. */
  setCreationTime?(path: string, birthtime: Date): Promise<void>;
  /** Changes permission bits (SITE CHMOD). */
  chmod?(path: string, mode: number): Promise<void>;
  /**
   * Digest of a byte range of a file, hex-encoded (HASH); `end` exclusive, omitted for "to the end". With
   * `options.signal`, stops reading when it aborts and rejects with its reason (`digestStream` does both).
   */
  hash?(path: string, algorithm: HashAlgorithm, start?: number, end?: number, options?: HashOptions): Promise<string>;
  /**
   * Whether `createWriteStream(path, options)` called now would be refused with EBUSY because another transfer of
   * the file is under way (an upload still writing it; on the local disk, a download reading it too). The server asks
   * before its 150 and answers 450, so that the client is refused before it sends a byte: a refusal after the 150
   * comes once the client has sent data, and clients then resume (REST, APPE) onto whatever the file holds by then.
   * The open still decides. With `hold` (the server's call, right before its 150), a file found free is held for
   * this upload until it opens (briefly: a client that never connects its data connection does not hold it long),
   * and another upload asking meanwhile is told busy: two uploads announced at the same moment must not both get a
   * 150. `hold` may be an object naming the upload's owner (the server passes its session): that owner's next ask is
   * not refused by a hold its own failed transfer left. Without `hold` nothing is taken. Leave it out where uploads
   * never refuse each other (`UploadHolds` keeps holds for a provider). `known`: what the caller's own `stat` of
   * `path` has just answered (null: no such file), for a provider that can use it instead of looking again.
   */
  uploadBusy?(path: string, options?: WriteStreamOptions, hold?: boolean | object, known?: FileStats | null): Promise<boolean>;
  /**
   * Gives back, now, the hold that {@link uploadBusy} took for `owner`'s upload of `path`, when that upload ended
   * without opening the file (refused at its first byte by a quota, its data connection never came, …); else the
   * hold would refuse other uploads of the file until it expires (`UPLOAD_HOLD_MS`). Only `owner`'s hold goes: one
   * taken since by another upload stays. Implement it with `uploadBusy`'s holds.
   */
  releaseUploadHold?(path: string, owner: object): Promise<void>;
  /**
   * Rejects with the error `createWriteStream(path, options)` would give, where the provider can tell without opening
   * or creating anything: the local disk asks the system whether it may write the file, or add a file to its folder
   * (no write permission for the server's user, an immutable file or folder, a read-only mount). The server asks
   * before its 150, so that such an upload is refused (553, or 550 for APPE) before the client sends a byte, not after
   * it (551). The open still decides. `known`: as for {@link uploadBusy}.
   */
  checkUpload?(path: string, options?: WriteStreamOptions, known?: FileStats | null): Promise<void>;
  /**
   * Rejects with the error a lookup inside folder `path` would give for want of permission, where the provider can
   * tell: the local disk asks the system whether the server's user may search the folder (access(2), execute). The
   * server asks at CWD and CDUP, so that a folder nothing inside can be reached from is refused there (550), as
   * chdir(2) refuses it, rather than entered and then every command in it refused.
   */
  checkEnter?(path: string): Promise<void>;
  /** Free bytes available under a path (AVBL); `Infinity` for unlimited. */
  availableSpace?(path: string): Promise<number>;
  /** Reserves room for an upload of `size` bytes (ALLO); throws ENOSPC when it cannot. */
  allocate?(path: string, size: number): Promise<void>;
  /** Concatenates `parts` into `target`, in order (COMB). */
  concat?(target: string, parts: string[]): Promise<void>;
}

/**
 * The filesystem contract the server talks to: the async core of a `@platformatic/vfs` `VirtualProvider`, plus
 * optional capabilities. Every `@platformatic/vfs` provider satisfies the core, so any of them is an FTP backend.
 *
 * Paths handed to a provider are absolute, POSIX and normalised (`/a/b`, never `..`, never a trailing slash
 * except for `/`). Errors are Node-style: an `Error` with a `code` such as `ENOENT` (see {@link VfsErrorCode}).
 */
export interface FsProvider extends OptionalCapabilities {
  /** The contract version the provider was written for. */
  readonly specVersion?: number;
  /** True when every mutation fails with EROFS. */
  readonly readonly?: boolean;
  /**
   * `@platformatic/vfs`'s flag: `false` means that `symlink`/`readlink`, although present (every `VirtualProvider`
   * inherits them), only throw. Absent means "decide by the presence of the methods".
   */
  readonly supportsSymlinks?: boolean;
  /**
   * True when concurrent whole-file uploads (`createWriteStream` without `start`/`append`) to one path never
   * interleave: the file ends as exactly one of the uploaded versions, whole. It says nothing of whether a partial
   * upload is visible while it is written.
   */
  readonly atomicUploads?: boolean;
  /**
   * True when an upload becomes visible only once it completes: while it is written, and after it is interrupted
   * (`transferError` then destroy), the path shows its previous version (or nothing). The server then has nothing
   * partial to discard, and must not delete the path for an interrupted upload.
   */
  readonly uploadsVisibleWhenComplete?: boolean;
  /**
   * True when names may hold **byte escapes** and the provider keeps them as exactly those bytes (a disk) or that
   * string (memory). A byte escape is a lone low surrogate U+DC80 … U+DCFF standing for one raw byte 0x80 … 0xFF
   * of a name that is not valid UTF-8 (PEP 383's "surrogateescape"; `@ftp/protocol`'s `decodeEscaped` /
   * `encodeEscaped`): a client's `caf\xe9.txt` arrives as `'caf\udce9.txt'`, and names the provider returns
   * (`readdir`, `list`, `realpath`, `readlink`) carry escapes for such bytes the same way. Valid UTF-8 never
   * produces one, so the escape is unambiguous.
   *
   * Without it the server hands the provider no escapes: it turns each into the Latin-1 character of its byte
   * first (`latin1ForEscapes`), since storage that keeps names as UTF-8 text would turn a lone surrogate into
   * U+FFFD, and `caf\xe9` and `caf\xe8` into one name.
   */
  readonly rawNames?: boolean;
  stat(path: string): Promise<FileStats>;
  lstat?(path: string): Promise<FileStats>;
  readdir(path: string): Promise<unknown[]>;
  mkdir(path: string, options?: { recursive?: boolean; mode?: number }): Promise<unknown>;
  rmdir(path: string): Promise<void>;
  unlink(path: string): Promise<void>;
  rename(oldPath: string, newPath: string): Promise<void>;
  open(path: string, flags?: string, mode?: number): Promise<unknown>;
  readlink?(path: string): Promise<string>;
  symlink?(target: string, path: string): Promise<void>;
  /** Releases connections and file descriptors. */
  close?(): void | Promise<void>;
}

/** The Node-style error codes of the contract. */
export type VfsErrorCode =
  | 'ENOENT'
  | 'EEXIST'
  | 'ENOTDIR'
  | 'EISDIR'
  | 'ENOTEMPTY'
  | 'EACCES'
  | 'EPERM'
  | 'EROFS'
  | 'ENOSPC'
  | 'EDQUOT'
  | 'ENOTSUP'
  | 'EINVAL'
  | 'ENAMETOOLONG'
  | 'ELOOP'
  | 'EXDEV'
  | 'EBUSY'
  | 'EIO';

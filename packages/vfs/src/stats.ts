import { constants } from 'node:fs';
import { VfsError } from './errors.js';
import type { FileStats } from './spec.js';

/** File type bits of `mode`. */
export const S_IFMT = 0o170000;
/** Regular file type bits. */
export const S_IFREG = 0o100000;
/** Directory type bits. */
export const S_IFDIR = 0o040000;
/** Symbolic link type bits. */
export const S_IFLNK = 0o120000;

/** The kinds of node the providers of this package store. */
export type NodeKind = 'file' | 'directory' | 'symlink';

/** Input of {@link VfsStats}. */
export interface VfsStatsInit {
  kind: NodeKind;
  size: number;
  /** Permission bits (type bits are added from `kind`). */
  mode: number;
  mtimeMs: number;
  birthtimeMs?: number;
  ctimeMs?: number;
  atimeMs?: number;
  ino?: number;
  nlink?: number;
  uid?: number;
  gid?: number;
}

const UID = process.getuid?.() ?? 0;
const GID = process.getgid?.() ?? 0;
const TYPE_BITS: Record<NodeKind, number> = { file: S_IFREG, directory: S_IFDIR, symlink: S_IFLNK };

/**
 * Stats as providers of this package return them: a {@link FileStats} with every field of `fs.Stats` /
 * `@platformatic/vfs`'s `VirtualStats`, so it can be returned through either API.
 */
export class VfsStats implements FileStats {
  dev = 0;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev = 0;
  blksize = 4096;
  ino: number;
  size: number;
  blocks: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  birthtimeMs: number;

  /** @param init kind, size, permission bits and times. */
  constructor(init: VfsStatsInit) {
    this.mode = (init.mode & 0o7777) | TYPE_BITS[init.kind];
    this.nlink = init.nlink ?? (init.kind === 'directory' ? 2 : 1);
    this.uid = init.uid ?? UID;
    this.gid = init.gid ?? GID;
    this.ino = init.ino ?? 0;
    this.size = init.size;
    this.blocks = Math.ceil(init.size / 512);
    this.mtimeMs = init.mtimeMs;
    this.atimeMs = init.atimeMs ?? init.mtimeMs;
    this.ctimeMs = init.ctimeMs ?? init.mtimeMs;
    this.birthtimeMs = init.birthtimeMs ?? init.mtimeMs;
  }

  /** Last access. */
  get atime(): Date {
    return new Date(this.atimeMs);
  }
  /** Last modification. */
  get mtime(): Date {
    return new Date(this.mtimeMs);
  }
  /** Last status change. */
  get ctime(): Date {
    return new Date(this.ctimeMs);
  }
  /** Creation. */
  get birthtime(): Date {
    return new Date(this.birthtimeMs);
  }
  isFile(): boolean {
    return (this.mode & S_IFMT) === S_IFREG;
  }
  isDirectory(): boolean {
    return (this.mode & S_IFMT) === S_IFDIR;
  }
  isSymbolicLink(): boolean {
    return (this.mode & S_IFMT) === S_IFLNK;
  }
  isBlockDevice(): boolean {
    return false;
  }
  isCharacterDevice(): boolean {
    return false;
  }
  isFIFO(): boolean {
    return false;
  }
  isSocket(): boolean {
    return false;
  }
}

/** A directory entry as `readdir(path, { withFileTypes: true })` returns it (an `fs.Dirent` look-alike). */
export class VfsDirent {
  /** @param name entry name; @param kind its type; @param parentPath the directory listed. */
  constructor(
    readonly name: string,
    private readonly kind: NodeKind,
    readonly parentPath: string,
  ) {}
  /** Alias of `parentPath`, as in `fs.Dirent`. */
  get path(): string {
    return this.parentPath;
  }
  isFile(): boolean {
    return this.kind === 'file';
  }
  isDirectory(): boolean {
    return this.kind === 'directory';
  }
  isSymbolicLink(): boolean {
    return this.kind === 'symlink';
  }
  isBlockDevice(): boolean {
    return false;
  }
  isCharacterDevice(): boolean {
    return false;
  }
  isFIFO(): boolean {
    return false;
  }
  isSocket(): boolean {
    return false;
  }
}

/** What an `open()` flag asks for. */
export interface OpenFlags {
  read: boolean;
  write: boolean;
  /** Create when missing (O_CREAT). */
  create: boolean;
  /** Fail when it exists (O_EXCL). */
  exclusive: boolean;
  /** Truncate to 0 (O_TRUNC). */
  truncate: boolean;
  /** Every write goes to the end (O_APPEND). */
  append: boolean;
}

const { O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND } = constants;

/**
 * Parses `fs.open` flags: the strings (`'r'`, `'r+'`, `'rs+'`, `'w'`, `'wx'`, `'w+'`, `'a'`, `'ax'`, `'a+'`, `'as'`, …)
 * or a number of `O_*` bits. Undefined means `'r'`.
 * @throws VfsError `EINVAL` for an unknown string.
 */
export function parseOpenFlags(flags: string | number | undefined): OpenFlags {
  if (flags === undefined || flags === null) flags = 'r';
  if (typeof flags === 'number') {
    const acc = flags & 3;
    return {
      read: acc !== O_WRONLY,
      write: acc === O_WRONLY || acc === O_RDWR,
      create: (flags & O_CREAT) !== 0,
      exclusive: (flags & O_EXCL) !== 0,
      truncate: (flags & O_TRUNC) !== 0,
      append: (flags & O_APPEND) !== 0,
    };
  }
  const f = flags.replace(/s/g, '');
  const plus = f.includes('+');
  const x = f.includes('x');
  switch (f.replace(/[+x]/g, '')) {
    case 'r':
      if (x) break;
      return { read: true, write: plus, create: false, exclusive: false, truncate: false, append: false };
    case 'w':
      return { read: plus, write: true, create: true, exclusive: x, truncate: true, append: false };
    case 'a':
      return { read: plus, write: true, create: true, exclusive: x, truncate: false, append: true };
  }
  throw new VfsError('EINVAL', `EINVAL: invalid open flags '${flags}'`, { syscall: 'open' });
}

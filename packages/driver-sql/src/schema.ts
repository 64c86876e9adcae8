import type { Generated, Selectable } from 'kysely';

/** Bytes per stored content chunk. Fixed by the storage format: every chunk but a file's last one is full. */
export const CHUNK_SIZE = 256 * 1024;

/** `inodes.type` values. */
export const T_FILE = 0;
/** A directory. */
export const T_DIR = 1;
/** A symbolic link (`target` holds the link text). */
export const T_LINK = 2;

/**
 * `inodes.parent` of the root directory. Ids start at 1, so no inode has id 0; an inode whose parent is NULL is
 * unlinked (an upload in progress, or a deleted file that readers still hold).
 */
export const ROOT_PARENT = 0;

/** Longest name, in UTF-8 bytes (the MySQL column is VARBINARY of this size, part of the unique key). */
export const NAME_MAX_BYTES = 1024;

/** One row of `<prefix>inodes`. */
export interface InodeTable {
  id: Generated<number>;
  /** Parent directory id; {@link ROOT_PARENT} for the root; NULL while unlinked. */
  parent: number | null;
  name: string;
  type: number;
  size: number;
  /** Milliseconds since the epoch. */
  mtime: number;
  /** Milliseconds since the epoch. */
  birthtime: number;
  mode: number;
  /** Link text of a symlink. */
  target: string | null;
  /** Hex SHA-256 of the whole content, computed while a whole-file upload streamed; NULL when unknown. */
  sha256: string | null;
  /**
   * Content generation: bumped by every in-place change of the content (file handle writes and truncations).
   * Stream uploads never change an inode's content (they swap in a new inode), so (id, gen) names one content:
   * an upload that continues a file (APPE, REST + STOR) commits only if the file is still that (id, gen).
   */
  gen: Generated<number>;
}

/** One row of `<prefix>chunks`: bytes `[seq * CHUNK_SIZE, seq * CHUNK_SIZE + bytes.length)` of inode `inode`. */
export interface ChunkTable {
  inode: number;
  seq: number;
  bytes: Uint8Array;
}

/**
 * One row of `<prefix>readers`: a download in progress of inode `inode`, by any process. While a live lease exists
 * a deleted or replaced file is only unlinked, and its last reader deletes it.
 */
export interface ReaderTable {
  inode: number;
  /** Random id of the download. */
  token: string;
  /** Milliseconds since the epoch after which the lease is dead (its process stopped renewing it). */
  expires: number;
}

/**
 * The database as the queries see it. Table names carry a runtime prefix, so the queries always alias them to
 * these names (`<prefix>inodes as inodes`, see {@link Tables}): the types and the SQL then agree.
 */
export interface Database {
  inodes: InodeTable;
  chunks: ChunkTable;
  readers: ReaderTable;
}

/** Real (prefixed) table names, and typed aliases for queries. */
export class Tables {
  /** `<prefix>inodes`. */
  readonly inodes: string;
  /** `<prefix>chunks`. */
  readonly chunks: string;
  /** `<prefix>readers`. */
  readonly readers: string;
  /** Kysely's migration bookkeeping tables, prefixed as well so several filesystems share one database. */
  readonly migration: string;
  /** Kysely's migration lock table. */
  readonly migrationLock: string;

  /** @param prefix prepended to every table name. */
  constructor(readonly prefix: string) {
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,39}$/.test(prefix) && prefix !== '') {
      throw new TypeError(`@ftp/driver-sql: tablePrefix must match [A-Za-z_][A-Za-z0-9_]{0,39}, got ${JSON.stringify(prefix)}`);
    }
    this.inodes = `${prefix}inodes`;
    this.chunks = `${prefix}chunks`;
    this.readers = `${prefix}readers`;
    this.migration = `${prefix}kysely_migration`;
    this.migrationLock = `${prefix}kysely_migration_lock`;
  }

  /** The inodes table under alias `alias` (typed as Kysely expects `'inodes as alias'`). */
  inode<A extends string>(alias: A): `inodes as ${A}` {
    return `${this.inodes} as ${alias}` as `inodes as ${A}`;
  }

  /** The chunks table under alias `alias`. */
  chunk<A extends string>(alias: A): `chunks as ${A}` {
    return `${this.chunks} as ${alias}` as `chunks as ${A}`;
  }

  /** The readers table under alias `alias`. */
  reader<A extends string>(alias: A): `readers as ${A}` {
    return `${this.readers} as ${alias}` as `readers as ${A}`;
  }

  /** The readers table for INSERT/UPDATE/DELETE. */
  get r(): 'readers' {
    return this.readers as 'readers';
  }

  /** The inodes table for INSERT/UPDATE/DELETE (columns must then stay unqualified). */
  get i(): 'inodes' {
    return this.inodes as 'inodes';
  }

  /** The chunks table for INSERT/UPDATE/DELETE (columns must then stay unqualified). */
  get c(): 'chunks' {
    return this.chunks as 'chunks';
  }
}

/** An inode row as the provider uses it (numbers normalised: pg returns BIGINT as strings). */
export type Inode = Selectable<InodeTable>;

/** Columns selected for an {@link Inode}. */
export const INODE_COLUMNS = ['id', 'parent', 'name', 'type', 'size', 'mtime', 'birthtime', 'mode', 'target', 'sha256', 'gen'] as const;

/** A name column value as a string: MySQL returns VARBINARY as a Buffer. */
export function nameOf(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
  return String(v);
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : num(v);
}

function strOrNull(v: unknown): string | null {
  return v === null || v === undefined ? null : nameOf(v);
}

/** Normalises a raw row into an {@link Inode}. */
export function toInode(r: Record<string, unknown>): Inode {
  return {
    id: num(r.id),
    parent: numOrNull(r.parent),
    name: nameOf(r.name),
    type: num(r.type),
    size: num(r.size),
    mtime: num(r.mtime),
    birthtime: num(r.birthtime),
    mode: num(r.mode),
    target: strOrNull(r.target),
    sha256: strOrNull(r.sha256),
    gen: r.gen === null || r.gen === undefined ? 0 : num(r.gen),
  };
}

/** A chunk's bytes as a Buffer without a copy (node:sqlite returns Uint8Array). */
export function toBuffer(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  const u8 = v as Uint8Array;
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

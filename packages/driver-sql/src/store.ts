import type { Kysely } from 'kysely';
import type { DialectName } from './dialects.js';
import type { Database, Tables } from './schema.js';
import type { CopyTuning } from './write-stream.js';
import type { RawPool } from './raw-io.js';

/** What the streams and file handles share with their provider. */
export interface Store {
  readonly db: Kysely<Database>;
  readonly t: Tables;
  readonly dialect: DialectName;
  /** The database URL, password removed, for error messages. */
  readonly where: string;
  /** Runs `fn` in one transaction (READ COMMITTED where the dialect has levels), retried on deadlocks. */
  tx<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T>;
  /** Locks a directory row until the end of the transaction; false when it is gone or no longer a directory. */
  lockDir(trx: Kysely<Database>, id: number): Promise<boolean>;
  /**
   * Removes a file inside the caller's transaction: a small one with its rows; any other is unlinked and marked, and
   * true says to {@link reclaim} it once the transaction has committed (false while live reader leases hold it).
   */
  removeFile(trx: Kysely<Database>, id: number): Promise<boolean>;
  /** Reclaims a removed inode's rows in the background; resolves when done or given up. Never rejects. */
  reclaim(id: number): Promise<void>;
  /** A reader lease on inode `id` (ENOENT when it is gone); its chunks are kept while the lease lives. */
  lease(id: number, path: string): Promise<string>;
  /** Extends a lease (long downloads). */
  renew(id: number, token: string): Promise<void>;
  /** Ends a lease; a removed inode goes (its rows reclaimed) when it was the last live one. Never throws. */
  release(id: number, token: string): Promise<void>;
  /** Bytes the quota still allows (Infinity without a quota). */
  available(q?: Kysely<Database>): Promise<number>;
  /** The quota, if any. */
  readonly quota: number | undefined;
  /** SQLite database files: a promise while uploads should wait for the WAL's checkpointer (see `openSqlite`). */
  readonly walRoom?: (() => Promise<void> | undefined) | undefined;
  /**
   * The pg / mysql2 pool under `db`, when the driver knows it: uploads' chunk INSERTs on MySQL go as prepared
   * statements, downloads' chunk reads on PostgreSQL as binary COPY (see raw-io.ts).
   */
  readonly raw?: RawPool | undefined;
  /** @internal How uploads copy the kept part of a file (tests; default: see write-stream.ts). */
  readonly copyTuning?: CopyTuning | undefined;
}

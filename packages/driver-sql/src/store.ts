import type { Kysely } from 'kysely';
import type { DialectName } from './dialects.js';
import type { Database, Tables } from './schema.js';

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
  /** Deletes a file's inode and chunks, or detaches it until the last reader of this process is done. */
  removeFile(trx: Kysely<Database>, id: number): Promise<void>;
  /** Counts a reader of inode `id` (its chunks are kept while it reads). */
  addReader(id: number): void;
  /** A reader of `id` is done; removes a detached inode when it was the last. */
  removeReader(id: number): void;
  /** Bytes the quota still allows (Infinity without a quota). */
  available(q?: Kysely<Database>): Promise<number>;
  /** The quota, if any. */
  readonly quota: number | undefined;
}

import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { SqliteDatabase, SqliteStatement } from 'kysely';
import type { WalCheckpointer } from '@ftp/vfs';
import { CHUNK_SIZE } from './schema.js';

/** Prepared statements kept per database; beyond this the cache starts again (the queries of the provider are few). */
const STATEMENT_CACHE = 256;

/**
 * `node:sqlite`, loaded when the first SQLite database is opened: importing this package does not load it (it is
 * experimental, and behind a flag before Node 22.13).
 */
export function loadSqlite(): typeof import('node:sqlite') {
  const mod = process.getBuiltinModule('node:sqlite') as typeof import('node:sqlite') | undefined;
  if (mod === undefined) throw new Error('@ftp/driver-sql: node:sqlite is not available in this Node.js (Node >= 22.13 needed)');
  return mod;
}

type Param = null | number | bigint | string | NodeJS.ArrayBufferView;

/**
 * Kysely's SqliteDialect expects a better-sqlite3 `Database`; this presents node:sqlite's `DatabaseSync` that
 * way: `prepare(sql)` returns a statement with `reader`, `all`, `run`, `iterate`, parameters passed as an array.
 * Statements are cached by SQL text since Kysely prepares every query anew.
 */
export class NodeSqliteDatabase implements SqliteDatabase {
  readonly #db: DatabaseSync;
  readonly #cache = new Map<string, SqliteStatement>();
  readonly #wal: WalCheckpointer | undefined;
  /** About what the writes since the last commit put into the WAL (see {@link #wrote}). */
  #pending = 0;

  /**
   * @param db an open `DatabaseSync`; {@link close} closes it.
   * @param wal the checkpointer of its WAL, told of every commit (see `openSqlite`).
   */
  constructor(db: DatabaseSync, wal?: WalCheckpointer) {
    this.#db = db;
    this.#wal = wal;
  }

  /** Uploads wait on this before writing (undefined: at once), while the checkpointer catches up. */
  walRoom(): Promise<void> | undefined {
    return this.#wal?.room();
  }

  /**
   * After a write statement: adds its size to the pending bytes and, once no transaction is open (an autocommit
   * statement, or the COMMIT itself), reports them. The size is that of its blobs, or for an INSERT of chunk rows
   * copied by SELECT a chunk per row; at least a few pages, as any commit adds frames.
   */
  #wrote(copiesRows: boolean, params: readonly unknown[], changes: number): void {
    if (this.#wal === undefined) return;
    let blobs = 0;
    for (const p of params) if (ArrayBuffer.isView(p)) blobs += p.byteLength;
    this.#pending += blobs > 0 ? blobs : copiesRows ? changes * CHUNK_SIZE : 0;
    if (this.#db.isTransaction) return;
    this.#wal.committed(this.#pending + 8192);
    this.#pending = 0;
  }

  /** The wrapped database. */
  get database(): DatabaseSync {
    return this.#db;
  }

  prepare(text: string): SqliteStatement {
    const cached = this.#cache.get(text);
    if (cached !== undefined) return cached;
    const stmt = this.#db.prepare(text);
    // An INSERT … SELECT (a copy of chunk rows) carries no blob: its size comes from the rows it copied.
    const copiesRows = /^\s*insert\b[\s\S]*\bselect\b/i.test(text);
    const wrapped = wrap(stmt, this.#wal === undefined ? undefined : (params, changes) => this.#wrote(copiesRows, params, changes));
    if (this.#cache.size >= STATEMENT_CACHE) this.#cache.clear();
    this.#cache.set(text, wrapped);
    return wrapped;
  }

  close(): void {
    this.#cache.clear();
    // The worker's connection first: the last one to close folds the WAL into the database file.
    this.#wal?.close();
    if (this.#db.isOpen) this.#db.close();
  }
}

function wrap(stmt: StatementSync, onWrite?: (params: readonly unknown[], changes: number) => void): SqliteStatement {
  // A statement that yields columns (SELECT, or INSERT … RETURNING) is a reader.
  const reader = stmt.columns().length > 0;
  return {
    reader,
    all: (params) => stmt.all(...(params as Param[])),
    run: (params) => {
      const r = stmt.run(...(params as Param[]));
      onWrite?.(params, Number(r.changes));
      return { changes: r.changes, lastInsertRowid: r.lastInsertRowid };
    },
    iterate: (params) => stmt.iterate(...(params as Param[])) as IterableIterator<unknown>,
  };
}

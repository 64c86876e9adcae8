import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

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

  /** @param db an open `DatabaseSync`; {@link close} closes it. */
  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** The wrapped database. */
  get database(): DatabaseSync {
    return this.#db;
  }

  prepare(text: string): SqliteStatement {
    const cached = this.#cache.get(text);
    if (cached !== undefined) return cached;
    const stmt = this.#db.prepare(text);
    const wrapped = wrap(stmt);
    if (this.#cache.size >= STATEMENT_CACHE) this.#cache.clear();
    this.#cache.set(text, wrapped);
    return wrapped;
  }

  close(): void {
    this.#cache.clear();
    if (this.#db.isOpen) this.#db.close();
  }
}

function wrap(stmt: StatementSync): SqliteStatement {
  // A statement that yields columns (SELECT, or INSERT … RETURNING) is a reader.
  const reader = stmt.columns().length > 0;
  return {
    reader,
    all: (params) => stmt.all(...(params as Param[])),
    run: (params) => {
      const r = stmt.run(...(params as Param[]));
      return { changes: r.changes, lastInsertRowid: r.lastInsertRowid };
    },
    iterate: (params) => stmt.iterate(...(params as Param[])) as IterableIterator<unknown>,
  };
}

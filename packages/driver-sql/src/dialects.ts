import { Kysely, MysqlAdapter, MysqlDialect, PostgresAdapter, PostgresDialect, SqliteAdapter, SqliteDialect } from 'kysely';
import type { Dialect } from 'kysely';
import pg from 'pg';
import mysql from 'mysql2';
import type { Pool as MysqlPool } from 'mysql2';
import type { DatabaseSync } from 'node:sqlite';
import type { Database } from './schema.js';
import { loadSqlite, NodeSqliteDatabase } from './sqlite-adapter.js';

/** The three SQL families the driver speaks. */
export type DialectName = 'postgres' | 'mysql' | 'sqlite';

/** A connection: one database, the Kysely instance over it, and how to release it. */
export interface Connection {
  dialect: DialectName;
  db: Kysely<Database>;
  /** Where it points, password removed (for error messages). */
  where: string;
  /** Whether {@link close} ends the pool (false for an instance the caller owns). */
  owned: boolean;
}

/** Options of the pools the driver creates from a URL. */
export interface PoolOptions {
  /** Connections in the pg / mysql2 pool (default 10). SQLite uses one connection. */
  poolSize?: number;
  /** SQLite: how long a statement waits for another process's lock, ms (default 5000). */
  busyTimeout?: number;
}

/** Removes the password of a URL (for messages and logs). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
  }
}

/** The SQLite filename of a `sqlite:` URL: `sqlite::memory:`, `sqlite:/abs/file.db`, `sqlite:///abs/file.db`, `sqlite:rel.db`. */
export function sqliteFilename(url: string): string {
  let rest = url.slice('sqlite:'.length);
  if (rest.startsWith('//')) rest = rest.slice(2);
  if (rest === '' ) throw new TypeError(`@ftp/driver-sql: ${url}: a sqlite URL needs a file name or :memory:`);
  return decodeURIComponent(rest);
}

/** The dialect of a URL, from its scheme. */
export function dialectOfUrl(url: string): DialectName {
  const scheme = url.slice(0, url.indexOf(':')).toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') return 'postgres';
  if (scheme === 'mysql' || scheme === 'mariadb') return 'mysql';
  if (scheme === 'sqlite') return 'sqlite';
  throw new TypeError(`@ftp/driver-sql: unsupported database URL ${redactUrl(url)} (expected postgres://, mysql://, mariadb:// or sqlite:)`);
}

/** Opens a SQLite database for the driver: WAL for a file (readers do not block the writer), a busy timeout. */
export function openSqlite(filename: string, busyTimeout = 5000): DatabaseSync {
  const { DatabaseSync: Db } = loadSqlite();
  const db = new Db(filename, { timeout: busyTimeout });
  if (filename !== ':memory:') db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
  return db;
}

/** Builds the Kysely instance (and pool) of a URL. Nothing connects yet: the first query does. */
export function connectUrl(url: string, options: PoolOptions = {}): Connection {
  const dialect = dialectOfUrl(url);
  const where = redactUrl(url);
  const size = options.poolSize ?? 10;
  let d: Dialect;
  if (dialect === 'postgres') {
    d = new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: size }) });
  } else if (dialect === 'mysql') {
    const uri = url.replace(/^mariadb:/i, 'mysql:');
    // VARBINARY names come back as Buffers (decoded in schema.ts); BIGINTs as numbers (sizes stay below 2^53).
    const pool: MysqlPool = mysql.createPool({ uri, connectionLimit: size, charset: 'utf8mb4' });
    d = new MysqlDialect({ pool });
  } else {
    const filename = sqliteFilename(url);
    const busyTimeout = options.busyTimeout;
    d = new SqliteDialect({ database: async () => new NodeSqliteDatabase(openSqlite(filename, busyTimeout)) });
  }
  return { dialect, db: new Kysely<Database>({ dialect: d }), where, owned: true };
}

/** Kysely's own adapters tell the dialect of an instance the caller built. */
export function dialectOfKysely(db: Kysely<unknown>): DialectName {
  const adapter = db.getExecutor().adapter;
  if (adapter instanceof PostgresAdapter) return 'postgres';
  if (adapter instanceof MysqlAdapter) return 'mysql';
  if (adapter instanceof SqliteAdapter) return 'sqlite';
  throw new TypeError('@ftp/driver-sql: cannot tell the dialect of this Kysely instance; pass `dialect`');
}

import { CompiledQuery, Kysely, MysqlAdapter, MysqlDialect, PostgresAdapter, PostgresDialect, SqliteAdapter, SqliteDialect, SqliteDriver } from 'kysely';
import type { DatabaseConnection, Dialect, Driver } from 'kysely';
import pg from 'pg';
import mysql from 'mysql2';
import type { Pool as MysqlPool } from 'mysql2';
import type { DatabaseSync } from 'node:sqlite';
import { WalCheckpointer } from '@ftp/vfs';
import type { Database } from './schema.js';
import { loadSqlite, NodeSqliteDatabase } from './sqlite-adapter.js';
import type { RawPool } from './raw-io.js';

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
  /**
   * SQLite database files the driver opened: undefined when uploads may write now, else a promise of when they may
   * (the WAL's checkpointer is catching up; see `openSqlite`).
   */
  walRoom?: () => Promise<void> | undefined;
  /** The pg / mysql2 pool under `db`, when known (a URL, or the caller's pool): see {@link RawPool}. */
  raw?: RawPool;
}

/** How long the driver's pools (pg, mysql2) wait for a connection before the query fails (ms). */
export const CONNECT_TIMEOUT_MS = 10_000;

/** Options of the pools the driver creates from a URL. */
export interface PoolOptions {
  /** Connections in the pg / mysql2 pool (default 10). SQLite uses one connection. */
  poolSize?: number;
  /** SQLite: how long a statement waits for another process's lock, ms (default 5000). */
  busyTimeout?: number;
  /**
   * PostgreSQL, MySQL: how long one statement may take, ms (default 60,000). A database that stops answering (a
   * frozen host, a partition) or a statement stuck behind a lock then fails that statement, and the FTP command with
   * it (451), instead of holding the command for ever; its connection is closed (its state is unknown) and the pool
   * opens another. Statements are small (a lookup, a chunk of a file), so a healthy database never comes near it.
   */
  queryTimeoutMs?: number;
}

/** Default of {@link PoolOptions.queryTimeoutMs}. */
export const QUERY_TIMEOUT_MS = 60_000;

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

/**
 * Kysely's SQLite driver with write transactions that take the write lock at BEGIN (`BEGIN IMMEDIATE`): a
 * deferred transaction that reads and then writes fails with SQLITE_BUSY at once when another connection wrote
 * meanwhile; an immediate one waits (busy timeout) instead.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

/** {@link SqliteDialect} with {@link ImmediateSqliteDriver}. */
class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: ConstructorParameters<typeof SqliteDialect>[0];
  constructor(config: ConstructorParameters<typeof SqliteDialect>[0]) {
    super(config);
    this.#config = config;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

/**
 * Opens a SQLite database for the driver: WAL for a file (readers do not block the writer), a busy timeout, and
 * the WAL's checkpoints on a worker thread (`@ftp/vfs`'s {@link WalCheckpointer}): node:sqlite runs on the event
 * loop's thread, and a connection's automatic checkpoint copies the WAL into the database file and fsyncs both
 * inside the commit that crosses ~4 MB. Should the worker fail, the connection checkpoints by itself again.
 */
export function openSqlite(filename: string, busyTimeout = 5000): NodeSqliteDatabase {
  const { DatabaseSync: Db } = loadSqlite();
  const db = new Db(filename, { timeout: busyTimeout });
  const wal = WalCheckpointer.forConnection(db, filename, busyTimeout);
  return new NodeSqliteDatabase(db, wal);
}

/**
 * The Kysely dialect of a URL, with its pool (pg.Pool, mysql2 pool) or SQLite database. Nothing connects yet:
 * the first query does.
 */
export function createDialect(url: string, options: PoolOptions = {}): { name: DialectName; dialect: Dialect; walRoom?: () => Promise<void> | undefined; raw?: RawPool } {
  const name = dialectOfUrl(url);
  const size = options.poolSize ?? 10;
  if (name === 'postgres') {
    const timeout = options.queryTimeoutMs ?? QUERY_TIMEOUT_MS;
    // A connection that never answers (a frozen host, a partition) fails after 10 s instead of waiting for ever;
    // keep-alive finds a dead peer under an idle pooled connection.
    const pool = new pg.Pool({ connectionString: url, max: size, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, keepAlive: true });
    // An idle pooled connection that the server drops (a restart, a failover, pg_terminate_backend) is reported
    // here; pg.Pool discards it and the next query connects again. Without a listener the 'error' event would end
    // the whole process.
    pool.on('error', () => undefined);
    // pg.Pool takes its listener off a connection while it is checked out (a query or a transaction running), and an
    // end of the connection then is an 'error' event of the connection itself: heard here, the query fails instead.
    pool.on('connect', (client) => {
      client.on('error', () => undefined);
      boundPgQueries(client, timeout);
      boundPgStatements(client, timeout);
    });
    return { name, dialect: new PostgresDialect({ pool }), raw: { dialect: 'postgres', pool } };
  }
  if (name === 'mysql') {
    const uri = url.replace(/^mariadb:/i, 'mysql:');
    // VARBINARY names come back as Buffers (decoded in schema.ts); BIGINTs as numbers (sizes stay below 2^53).
    const pool: MysqlPool = mysql.createPool({ uri, connectionLimit: size, charset: 'utf8mb4' });
    const timeout = options.queryTimeoutMs ?? QUERY_TIMEOUT_MS;
    pool.on('connection', (connection) => {
      boundMysqlQueries(connection, timeout);
      boundMysqlLockWaits(connection, timeout);
    });
    boundMysqlWaits(pool, CONNECT_TIMEOUT_MS);
    return { name, dialect: new MysqlDialect({ pool }), raw: { dialect: 'mysql', pool } };
  }
  const filename = sqliteFilename(url);
  const busyTimeout = options.busyTimeout;
  let opened: NodeSqliteDatabase | undefined;
  // One connection (Kysely serialises its use): node:sqlite is synchronous, a second one would not add throughput.
  const dialect = new ImmediateSqliteDialect({ database: async () => (opened = openSqlite(filename, busyTimeout)) });
  return { name, dialect, walRoom: () => opened?.walRoom() };
}

/**
 * Bounds every promise-style query of a pg client (Kysely's, and the driver's own chunk reads and writes) to
 * `timeoutMs`: past it the connection's socket is destroyed, which fails the query at once (the protocol has no
 * way to drop one statement's answer and go on) and has the pool discard the client, whose state is unknown. (mysql2's
 * own per-query timeout was measured to leave the statement on the connection; node-postgres' `query_timeout` is not
 * relied on for the same reason.) Costs ~5 µs a statement: `SELECT 1` took 102 µs against 97 unbounded here.
 */
function boundPgQueries(client: pg.PoolClient, timeoutMs: number): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const result = query(...args);
    // A callback or a submittable (a cursor) runs as it did: only promises are bounded.
    if (!(result instanceof Promise)) return result;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      (client as unknown as { connection?: { stream?: { destroy(err?: Error): void } } }).connection?.stream?.destroy();
    }, timeoutMs);
    return result.then(
      (value: unknown) => {
        clearTimeout(timer);
        return value;
      },
      (err: unknown) => {
        clearTimeout(timer);
        throw timedOut ? queryTimeout(timeoutMs, err) : err;
      },
    );
  };
}

/**
 * Bounds every callback-style `query` and `execute` of a mysql2 pool connection (Kysely's, and the driver's chunk
 * statements) to `timeoutMs`: past it the connection is destroyed (which takes it out of the pool) and the caller
 * told. mysql2's own per-query `timeout` only reports the error: the statement stays on the connection, and every
 * later query on it waited behind it for ever.
 */
function boundMysqlQueries(connection: unknown, timeoutMs: number): void {
  const c = connection as Record<'query' | 'execute', (...args: unknown[]) => unknown> & { destroy(): void };
  for (const method of ['query', 'execute'] as const) {
    const original = c[method].bind(c);
    c[method] = (...args: unknown[]) => {
      const callback = args[args.length - 1];
      if (typeof callback !== 'function') return original(...args);
      let answered = false;
      const timer = setTimeout(() => {
        answered = true;
        c.destroy();
        callback(queryTimeout(timeoutMs, undefined));
      }, timeoutMs);
      args[args.length - 1] = (...result: unknown[]) => {
        clearTimeout(timer);
        if (answered) return;
        answered = true;
        callback(...result);
      };
      return original(...args);
    };
  }
}

/**
 * Bounds the wait for a connection of a mysql2 pool to `timeoutMs`, as pg's `connectionTimeoutMillis` does: mysql2
 * queues a request while every connection is busy and has no limit on that wait, and a request queued behind
 * connections that a hung database then ended was never served (the pool creates connections for new requests only).
 * A connection that comes after the wait ended goes straight back. A pooled connection that has failed (one a
 * query timeout ended: mysql2 takes it back into the pool all the same, and a query on it was never answered) is
 * destroyed, and another asked for.
 */
function boundMysqlWaits(pool: MysqlPool, timeoutMs: number): void {
  type PooledConnection = { release(): void; destroy(): void; _fatalError?: unknown; stream?: { destroyed?: boolean } };
  type Callback = (err: Error | null, connection?: PooledConnection) => void;
  const getConnection = pool.getConnection.bind(pool) as (cb: Callback) => void;
  (pool as unknown as { getConnection: (cb: Callback) => void }).getConnection = (cb: Callback) => {
    let waiting = true;
    const timer = setTimeout(() => {
      waiting = false;
      cb(Object.assign(new Error(`no database connection within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    const take: Callback = (err, connection) => {
      if (connection !== undefined && (connection._fatalError || connection.stream?.destroyed === true)) {
        connection.destroy();
        if (waiting) getConnection(take);
        return;
      }
      if (waiting) {
        clearTimeout(timer);
        waiting = false;
        return cb(err, connection);
      }
      connection?.release();
    };
    getConnection(take);
  };
}

/**
 * The server ends a statement a second after the client's deadline too (`statement_timeout`). Closing the socket
 * (boundPgQueries) does not end it: a backend waiting for a lock notices its client gone only when it answers, so
 * it kept waiting, holding the locks its transaction had, and an autocommit statement would still apply once the
 * lock came free, after the FTP client was told it failed. A second later than the client's, so that the client's
 * deadline decides what the caller is told. Sent as the connection's first statement (pg runs a client's queries in
 * order), not as a start-up parameter: PgBouncer refuses unknown start-up parameters, and every connection failed
 * through it ("unsupported startup parameter"). A pooler or server that refuses the SET leaves the client's deadline.
 */
function boundPgStatements(client: pg.PoolClient, timeoutMs: number): void {
  client.query(`SET statement_timeout = ${Math.ceil(timeoutMs) + SERVER_DEADLINE_MARGIN_MS}`).catch(() => undefined);
}

/** How much later than the client's deadline the database's own ends a statement (see boundPgStatements). */
const SERVER_DEADLINE_MARGIN_MS = 1000;

/**
 * Bounds the server's own lock waits on a mysql2 pool connection to just past `timeoutMs` (whole seconds): row
 * locks (`innodb_lock_wait_timeout`, 50 s by default) and table metadata locks (`lock_wait_timeout`, a year). Past
 * the client's deadline the connection is destroyed (boundMysqlQueries), but the server goes on waiting for the lock
 * until its own timeout, holding the locks its transaction took, and an autocommit statement applies once it gets
 * it. Both variables exist in MySQL and MariaDB. Sent first on the connection: mysql2 runs a connection's commands
 * in order, so every statement after it is bounded.
 */
function boundMysqlLockWaits(connection: unknown, timeoutMs: number): void {
  // Whole seconds, and after the client's deadline: a lock-wait timeout (1205) that came first would be retried as a
  // lock conflict (isRetryable), each try waiting the whole deadline again.
  const seconds = Math.ceil((timeoutMs + SERVER_DEADLINE_MARGIN_MS) / 1000);
  (connection as { query(sql: string, callback: (err: unknown) => void): void }).query(
    `SET SESSION innodb_lock_wait_timeout = ${seconds}, lock_wait_timeout = ${seconds}`,
    // A server that refuses it (an old or restricted one) leaves its defaults: the client's deadline still holds.
    () => undefined,
  );
}

/** The error of a statement that passed `queryTimeoutMs`: EIO for the FTP reply (451), the cause kept. */
function queryTimeout(timeoutMs: number, cause: unknown): Error {
  return Object.assign(new Error(`the database did not answer within ${timeoutMs} ms (queryTimeoutMs)`, { cause }), { code: 'ETIMEDOUT' });
}

/** Builds the Kysely instance (and pool) of a URL. */
export function connectUrl(url: string, options: PoolOptions = {}): Connection {
  const { name, dialect, walRoom, raw } = createDialect(url, options);
  return { dialect: name, db: new Kysely<Database>({ dialect }), where: redactUrl(url), owned: true, walRoom, ...(raw === undefined ? {} : { raw }) };
}

/** An existing pool or database the caller owns (it is not closed by the provider). */
export type ExistingConnection =
  | { dialect: 'postgres'; pool: pg.Pool }
  | { dialect: 'mysql'; pool: MysqlPool }
  | { dialect: 'sqlite'; database: DatabaseSync };

/** Builds a Kysely instance over a pool or database the caller owns. */
export function connectExisting(c: ExistingConnection): Connection {
  let d: Dialect;
  let raw: RawPool | undefined;
  if (c.dialect === 'postgres') {
    d = new PostgresDialect({ pool: c.pool });
    raw = { dialect: 'postgres', pool: c.pool };
  } else if (c.dialect === 'mysql') {
    d = new MysqlDialect({ pool: c.pool });
    raw = { dialect: 'mysql', pool: c.pool };
  } else {
    const wrapped = new NodeSqliteDatabase(c.database);
    d = new ImmediateSqliteDialect({ database: wrapped });
  }
  const where = `${c.dialect} (caller's ${c.dialect === 'sqlite' ? 'database' : 'pool'})`;
  return { dialect: c.dialect, db: new Kysely<Database>({ dialect: d }), where, owned: false, ...(raw === undefined ? {} : { raw }) };
}

/** Kysely's own adapters tell the dialect of an instance the caller built. */
export function dialectOfKysely(db: Kysely<unknown>): DialectName {
  const adapter = db.getExecutor().adapter;
  if (adapter instanceof PostgresAdapter) return 'postgres';
  if (adapter instanceof MysqlAdapter) return 'mysql';
  if (adapter instanceof SqliteAdapter) return 'sqlite';
  throw new TypeError('@ftp/driver-sql: cannot tell the dialect of this Kysely instance; pass `dialect`');
}

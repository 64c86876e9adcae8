import { Kysely } from 'kysely';
import type { LogEvent } from 'kysely';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createDialect, SqlProvider } from '../src/index.js';
import type { Database, SqlProviderOptions } from '../src/index.js';
import { randomPrefix } from './services.js';
import type { TestDb } from './services.js';

/** A provider over a Kysely instance that counts the queries it runs (and the caller's pool). */
export async function countingProvider(db: TestDb, options: Partial<SqlProviderOptions> = {}): Promise<{ p: SqlProvider; queries: () => number; sql: string[]; kysely: Kysely<Database> }> {
  const { dialect } = createDialect(await db.url());
  const sql: string[] = [];
  const kysely = new Kysely<Database>({
    dialect,
    log: (e: LogEvent) => {
      if (e.level === 'query') sql.push(e.query.sql);
    },
  });
  const p = new SqlProvider({ connection: kysely as unknown as Kysely<unknown>, tablePrefix: randomPrefix(), ...options });
  await p.migrate();
  return { p, queries: () => sql.length, sql, kysely };
}

/** Uploads a buffer through the provider's stream. */
export async function put(p: SqlProvider, path: string, data: Buffer | string, options?: { append?: boolean; start?: number }): Promise<void> {
  await pipeline(Readable.from([typeof data === 'string' ? Buffer.from(data) : data]), await p.createWriteStream(path, options));
}

/** Downloads a file through the provider's stream. */
export async function get(p: SqlProvider, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of await p.createReadStream(path)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/**
 * Rows of the provider's tables once the reclaims it has scheduled have ended (removed files' rows go in the
 * background, after the command): what the operations left over.
 */
export async function rowCounts(p: SqlProvider): Promise<{ inodes: number; chunks: number }> {
  await p.reclaimed();
  return rowsNow(p);
}

/** Rows of the provider's tables now, reclaims running or not. */
export async function rowsNow(p: SqlProvider): Promise<{ inodes: number; chunks: number }> {
  const i = await p.db.selectFrom(p.tables.inode('i')).select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
  const c = await p.db.selectFrom(p.tables.chunk('c')).select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
  return { inodes: Number(i.n), chunks: Number(c.n) };
}

/** Pseudo-random bytes (deterministic per seed). */
export function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

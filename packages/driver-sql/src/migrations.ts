import { sql } from 'kysely';
import { Migrator } from 'kysely/migration';
import type { Kysely } from 'kysely';
import type { Migration, MigrationProvider, MigrationResultSet } from 'kysely/migration';
import type { DialectName } from './dialects.js';
import { NAME_MAX_BYTES, ROOT_PARENT, T_DIR } from './schema.js';
import type { Database, Tables } from './schema.js';

/**
 * The migrations of the schema, in code (no migration folder to ship). Each is applied once per table prefix;
 * Kysely records them in `<prefix>kysely_migration` under a lock (`<prefix>kysely_migration_lock`, or an advisory
 * lock), so several processes opening one database at once migrate it once.
 */
export function migrations(t: Tables, dialect: DialectName): Record<string, Migration> {
  // The few column types that differ. MySQL: names are VARBINARY so that comparison is byte-exact (the utf8mb4
  // collations ignore case, accents or trailing spaces, which would make 'a' and 'A' one file).
  const id = dialect === 'postgres' ? 'bigserial' : dialect === 'mysql' ? 'bigint' : 'integer';
  const nameType = dialect === 'mysql' ? sql`varbinary(${sql.raw(String(NAME_MAX_BYTES))})` : sql`text`;
  const bytesType = dialect === 'postgres' ? sql`bytea` : dialect === 'mysql' ? sql`longblob` : sql`blob`;
  const textType = dialect === 'mysql' ? sql`longtext` : sql`text`;
  const tableEnd = dialect === 'mysql' ? sql`engine = InnoDB default character set utf8mb4` : sql``;
  return {
    '0001_inodes_and_chunks': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable(t.inodes)
          .addColumn('id', id, (c) => {
            const pk = c.primaryKey().notNull();
            // SQLite: AUTOINCREMENT so that ids are never reused (a reader in another process holds an id; the
            // MLSx `unique` fact must stay unique). PostgreSQL's bigserial and MySQL's AUTO_INCREMENT never reuse.
            return dialect === 'postgres' ? pk : pk.autoIncrement();
          })
          .addColumn('parent', 'bigint')
          .addColumn('name', nameType, (c) => c.notNull())
          .addColumn('type', 'smallint', (c) => c.notNull())
          .addColumn('size', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('mtime', 'bigint', (c) => c.notNull())
          .addColumn('birthtime', 'bigint', (c) => c.notNull())
          .addColumn('mode', 'integer', (c) => c.notNull())
          .addColumn('target', textType)
          .addColumn('sha256', 'varchar(64)')
          // Also the index of "children of a directory" (its prefix), so a listing is one index range.
          .addUniqueConstraint(`${t.inodes}_parent_name`, ['parent', 'name'])
          .modifyEnd(tableEnd)
          .execute();
        await db.schema
          .createTable(t.chunks)
          .addColumn('inode', 'bigint', (c) => c.notNull())
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('bytes', bytesType, (c) => c.notNull())
          .addPrimaryKeyConstraint(`${t.chunks}_pk`, ['inode', 'seq'])
          .modifyEnd(tableEnd)
          .execute();
        if (dialect === 'postgres') {
          // Chunks are stored out of line without pglz: uploads are mostly compressed already (archives, media),
          // and trying to compress 256 KiB per row costs CPU on every write for nothing.
          await sql`alter table ${sql.table(t.chunks)} alter column bytes set storage external`.execute(db);
        }
        const now = Date.now();
        await (db as unknown as Kysely<Database>)
          .insertInto(t.i)
          .values({ parent: ROOT_PARENT, name: '', type: T_DIR, size: 0, mtime: now, birthtime: now, mode: 0o755, target: null, sha256: null })
          .execute();
      },
      async down(db: Kysely<unknown>): Promise<void> {
        await db.schema.dropTable(t.chunks).ifExists().execute();
        await db.schema.dropTable(t.inodes).ifExists().execute();
      },
    },
    '0002_reader_leases': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable(t.readers)
          .addColumn('inode', 'bigint', (c) => c.notNull())
          .addColumn('token', 'varchar(64)', (c) => c.notNull())
          .addColumn('expires', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint(`${t.readers}_pk`, ['inode', 'token'])
          .modifyEnd(tableEnd)
          .execute();
      },
      async down(db: Kysely<unknown>): Promise<void> {
        await db.schema.dropTable(t.readers).ifExists().execute();
      },
    },
    // The content generation of an inode (see InodeTable.gen). A constant default: instant on PostgreSQL >= 11,
    // MySQL >= 8.0 and MariaDB >= 10.3 (no table rewrite), a schema-only change on SQLite.
    '0003_inode_generation': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .alterTable(t.inodes)
          .addColumn('gen', 'bigint', (c) => c.notNull().defaultTo(0))
          .execute();
      },
      async down(db: Kysely<unknown>): Promise<void> {
        await db.schema.alterTable(t.inodes).dropColumn('gen').execute();
      },
    },
  };
}

class InCodeProvider implements MigrationProvider {
  constructor(private readonly list: Record<string, Migration>) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return this.list;
  }
}

/** A Kysely `Migrator` over the in-code migrations, with prefixed bookkeeping tables. */
export function migrator(db: Kysely<Database>, t: Tables, dialect: DialectName): Migrator {
  return new Migrator({
    db: db as unknown as Kysely<unknown>,
    provider: new InCodeProvider(migrations(t, dialect)),
    migrationTableName: t.migration,
    migrationLockTableName: t.migrationLock,
  });
}

/** Attempts at running the Migrator when another process's DDL disturbs it (see {@link migrateToLatest}). */
const MIGRATE_ATTEMPTS = 8;

/**
 * Applies every pending migration; throws the first failure (Kysely reports it in the result set).
 *
 * A prefix already at the latest migration is recognised with one query on its own bookkeeping table, and the
 * Migrator is not run: it lists every table of the database to find its own, which on a big database is slow, and
 * which on PostgreSQL fails (42P01, undefined table) when another process drops a table meanwhile. When it must
 * run (a new prefix, an upgrade), that failure is retried a few times.
 */
export async function migrateToLatest(db: Kysely<Database>, t: Tables, dialect: DialectName): Promise<void> {
  const names = Object.keys(migrations(t, dialect));
  if (await allApplied(db, t, names)) return;
  for (let attempt = 1; ; attempt++) {
    const result: MigrationResultSet = await migrator(db, t, dialect).migrateToLatest();
    if (result.error === undefined) return;
    if (!isUndefinedTable(result.error) || attempt >= MIGRATE_ATTEMPTS) throw result.error;
    await new Promise((resolve) => setTimeout(resolve, 10 * attempt + Math.random() * 20));
  }
}

/**
 * The migrations not applied to the prefix yet (all of them when it has no bookkeeping): what a provider with
 * `autoMigrate: false` checks once before it serves, so that a schema left behind by an upgrade is named in a
 * clear error instead of failing every query on a missing column.
 */
export async function pendingMigrations(db: Kysely<Database>, t: Tables, dialect: DialectName): Promise<string[]> {
  const names = Object.keys(migrations(t, dialect));
  try {
    const rows = await (db as unknown as Kysely<Record<string, { name: string }>>).selectFrom(t.migration).select('name').execute();
    const applied = new Set(rows.map((r) => r.name));
    return names.filter((n) => !applied.has(n));
  } catch {
    return names;
  }
}

/** Whether the prefix's bookkeeping lists every one of `names` (false when it has no bookkeeping yet). */
async function allApplied(db: Kysely<Database>, t: Tables, names: string[]): Promise<boolean> {
  try {
    const rows = await (db as unknown as Kysely<Record<string, { name: string }>>).selectFrom(t.migration).select('name').execute();
    const applied = new Set(rows.map((r) => r.name));
    return names.every((n) => applied.has(n));
  } catch {
    return false;
  }
}

/** PostgreSQL's "relation does not exist", as raised by the Migrator's listing of the database's tables. */
function isUndefinedTable(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === '42P01';
}

/** Drops every table of a prefix, the migration bookkeeping included (the filesystem is gone afterwards). */
export async function dropTables(db: Kysely<Database>, t: Tables): Promise<void> {
  for (const name of [t.readers, t.chunks, t.inodes, t.migration, t.migrationLock]) {
    await db.schema.dropTable(name).ifExists().execute();
  }
}

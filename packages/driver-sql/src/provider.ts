import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Kysely } from 'kysely';
import { checkStreamOptions, countWhileOpen, RunningUploads, createDigest, digestStream, fsError, normalizePath, parseOpenFlags, SPEC_VERSION, VfsDirent, VfsError, VfsStats } from '@ftp/vfs';
import type { DirEntry, DirSlices, FsProvider, HashAlgorithm, HashOptions, NodeKind, ReadStreamOptions, UploadStream, WriteStreamOptions } from '@ftp/vfs';
import { connectExisting, connectUrl, dialectOfKysely } from './dialects.js';
import type { Connection, DialectName, ExistingConnection, PoolOptions } from './dialects.js';
import { dbError, isRetryable, isUniqueViolation } from './errors.js';
import { SqlFileHandle } from './file-handle.js';
import { dropTables, migrateToLatest, pendingMigrations } from './migrations.js';
import { locate, maxJoins } from './resolve.js';
import type { Location } from './resolve.js';
import { CHUNK_SIZE, INODE_COLUMNS, NAME_MAX_BYTES, T_DIR, T_FILE, T_LINK, Tables, toInode } from './schema.js';
import type { Database, Inode } from './schema.js';
import { SqlReadStream } from './read-stream.js';
import { InodeLifecycle } from './lifecycle.js';
import { Reclaimer } from './reclaim.js';
import type { ReclaimTuning } from './reclaim.js';
import { childrenPage, childSlices } from './list-slices.js';
import type { Store } from './store.js';
import { SqlWriteStream } from './write-stream.js';
import type { CopyTuning } from './write-stream.js';

/** Uploads (unlinked inodes) untouched for this long belong to a dead process: swept (reclaimed). */
const STALE_MS = 24 * 3600 * 1000;
/**
 * How often every provider sweeps: dead leases, stale uploads, and removed files that no process is reclaiming (one
 * that died or closed mid-way, a lease that expired). Two small queries on the `(parent, name)` index and `readers`.
 */
const SWEEP_MS = 60_000;
/** Attempts of a transaction that hit a deadlock or serialization failure. */
const TX_ATTEMPTS = 5;
const KINDS: Record<number, NodeKind> = { [T_FILE]: 'file', [T_DIR]: 'directory', [T_LINK]: 'symlink' };

/** Options of {@link SqlProvider}. */
export interface SqlProviderOptions extends PoolOptions {
  /**
   * The database: a URL (`postgres://user@host:5432/db`, `mysql://root@127.0.0.1:3306/db` (or `mariadb://`),
   * `sqlite:/path/file.db`, `sqlite::memory:`); an existing Kysely instance (its dialect is read from its adapter
   * unless `dialect` says it); or an existing pool / database: `{ dialect: 'postgres', pool }` (pg.Pool),
   * `{ dialect: 'mysql', pool }` (mysql2 callback pool), `{ dialect: 'sqlite', database }` (node:sqlite
   * `DatabaseSync`). What the caller passes in is never closed by {@link SqlProvider.close}.
   */
  connection: string | Kysely<unknown> | ExistingConnection;
  /** The dialect of a Kysely instance whose adapter is not one of Kysely's own (a wrapper, a custom driver). */
  dialect?: DialectName;
  /** Prefix of every table (default `ftp_`), so several filesystems can share one database. `[A-Za-z_][A-Za-z0-9_]*`. */
  tablePrefix?: string;
  /** Create or upgrade the schema on first use (default true). With false, call {@link SqlProvider.migrate}. */
  autoMigrate?: boolean;
  /** Bytes the files may take in total (`availableSpace`, `allocate`, uploads fail with ENOSPC past it). Default: none. */
  quota?: number;
  /** @internal For tests: how an upload that continues a file copies the part it keeps (rows per statement, a hook). */
  uploadCopy?: CopyTuning;
  /** @internal For tests: how removed files are reclaimed (rows per statement, a hook, claim and sweep periods). */
  reclaim?: ReclaimTuning;
}

/**
 * A filesystem in a relational database — PostgreSQL (`pg`), MySQL/MariaDB (`mysql2`) or SQLite (`node:sqlite`) —
 * through one schema and one code path (Kysely):
 *
 * - `inodes(id, parent, name, type, size, mtime, birthtime, mode, target, sha256)` with UNIQUE(parent, name), and
 *   `chunks(inode, seq, bytes)` of 256 KiB;
 * - a path resolves in one query (one self-join per component), `list` is that same query plus a join of the
 *   children, `listSlices` pages through them 1,000 at a time (keyset on the same index); rename of a file or a
 *   whole directory updates one row; every metadata change is one transaction;
 * - uploads stream into a new, unlinked inode and are swapped in by one transaction at the end (atomic; an
 *   interrupted upload leaves nothing); downloads read chunks of one inode id under a reader lease, so a file replaced or
 *   deleted meanwhile, by any server on the database, is kept until its readers are done;
 * - a file deleted or replaced (DELE, STOR, RNTO over it) leaves the tree in the command's short transaction; the
 *   rows of a big one are deleted afterwards, in the background, in bounded statements ({@link Reclaimer});
 * - SHA-256 of whole-file uploads is stored, so `hash(path, 'SHA-256')` answers without reading the file.
 */
export class SqlProvider implements FsProvider {
  /** The contract version this provider implements. */
  readonly specVersion = SPEC_VERSION;
  /** Concurrent whole-file uploads end as one whole version (swapped in by one transaction). */
  readonly atomicUploads = true;
  /**
   * An upload shows nothing until it completes, and an interrupted one leaves the previous version (or nothing):
   * the server has no partial file to discard.
   */
  readonly uploadsVisibleWhenComplete = true;
  /** Symlinks are stored rows, resolved inside the filesystem. */
  readonly supportsSymlinks = true;
  /** Never read-only. */
  readonly readonly = false;
  /** The dialect in use. */
  readonly dialect: DialectName;
  /** The table names. */
  readonly tables: Tables;
  readonly #conn: Connection;
  readonly #store: Store;
  readonly #autoMigrate: boolean;
  /** The one check of the schema made with `autoMigrate: false` (see {@link SqlProvider.#checkSchema}). */
  #schemaChecked: Promise<void> | undefined;
  readonly #life: InodeLifecycle;
  readonly #reclaimer: Reclaimer;
  readonly #sweepMs: number;
  /** The periodic sweep, once the schema is known to be there. */
  #sweeper: NodeJS.Timeout | undefined;
  /** The sweep running, if any. */
  #sweeping: Promise<void> | undefined;
  #ready: Promise<void> | undefined;
  #closed = false;
  /**
   * This provider's uploads running now, by the id of the folder they write into. An upload is swapped in only when
   * it completes, so the folder does not show it: without this, RMD removed a folder an upload was writing into, and
   * the upload failed at its end (551). Other processes' uploads (`ftpd --workers`, several servers) are not seen.
   */
  readonly #uploadFolders = new Map<number, number>();
  /**
   * This provider's uploads running now, by folder id and name (see {@link uploadBusy}): an append or a REST + STOR
   * of a file another upload writes commits only if that one fails, so the server refuses it before its 150.
   */
  readonly #uploads = new RunningUploads<string>();

  /** Builds the provider; nothing connects until the first call (or {@link migrate}). */
  constructor(options: SqlProviderOptions) {
    if (options.quota !== undefined && !(options.quota >= 0)) throw new TypeError('@ftp/driver-sql: quota must be a non-negative number of bytes');
    this.tables = new Tables(options.tablePrefix ?? 'ftp_');
    if (typeof options.connection === 'string') {
      this.#conn = connectUrl(options.connection, options);
    } else if ('pool' in options.connection || 'database' in options.connection) {
      this.#conn = connectExisting(options.connection);
    } else {
      const db = options.connection;
      const dialect = options.dialect ?? dialectOfKysely(db);
      this.#conn = { dialect, db: db as unknown as Kysely<Database>, where: `${dialect} (Kysely instance)`, owned: false };
    }
    this.dialect = this.#conn.dialect;
    this.#autoMigrate = options.autoMigrate ?? true;
    const quota = options.quota;
    this.#life = new InodeLifecycle(this.#conn.db, this.tables, this.dialect, (fn) => this.#tx(fn));
    const tx: Store['tx'] = (fn) => this.#tx(fn);
    this.#reclaimer = new Reclaimer(this.#life, { db: this.#conn.db, t: this.tables, dialect: this.dialect, tx }, options.reclaim);
    this.#sweepMs = options.reclaim?.sweepMs ?? SWEEP_MS;
    this.#store = {
      db: this.#conn.db,
      t: this.tables,
      dialect: this.dialect,
      where: this.#conn.where,
      quota,
      tx,
      lockDir: (trx, id) => this.#lockDir(trx, id),
      removeFile: (trx, id) => this.#life.removeFile(trx, id),
      reclaim: (id) => this.#reclaimer.schedule(id),
      lease: (id, path) => this.#life.lease(id, path),
      renew: (id, token) => this.#life.renew(id, token),
      release: async (id, token) => {
        if (this.#closed) return;
        if (await this.#life.release(id, token)) void this.#reclaimer.schedule(id);
      },
      available: (q) => this.#available(q ?? this.#conn.db),
      copyTuning: options.uploadCopy,
      walRoom: this.#conn.walRoom,
      raw: this.#conn.raw,
    };
  }

  /** The Kysely instance (its tables are named `tables.inodes`, `tables.chunks`). */
  get db(): Kysely<Database> {
    return this.#conn.db;
  }

  /**
   * Creates or upgrades the schema (Kysely Migrator, in-code migrations, bookkeeping in
   * `<prefix>kysely_migration`), and sweeps: the content of removed files left by a process that stopped mid-way, and
   * uploads of dead processes, is reclaimed in the background from then on (see {@link Reclaimer}). Idempotent;
   * concurrent callers share one run.
   */
  async migrate(): Promise<void> {
    this.#ready ??= this.#migrate().catch((err: unknown) => {
      this.#ready = undefined;
      throw dbError(err, this.#conn.where);
    });
    return this.#ready;
  }

  /** With `autoMigrate: false`: fails, once and clearly, when the schema is behind this version (run `migrate()`). */
  async #checkSchema(): Promise<void> {
    const pending = await pendingMigrations(this.#conn.db, this.tables, this.dialect).catch(() => []);
    if (pending.length === 0) {
      // migrate() swept where it ran (a deploy step, another process): this process sweeps too, from now on.
      this.#startSweeps(true);
      return;
    }
    this.#schemaChecked = undefined;
    // Marked as this package's own error, so that its message survives the mapping to a VfsError.
    throw new VfsError('EIO', `EIO: @ftp/driver-sql: ${this.#conn.where}: the schema of ${this.tables.inodes} is behind this version (missing ${pending.join(', ')}): run migrate() first (autoMigrate is false)`);
  }

  async #migrate(): Promise<void> {
    await migrateToLatest(this.#conn.db, this.tables, this.dialect);
    // The sweep's own queries are awaited (a failing database fails here, clearly); the reclaims are not.
    for (const id of await this.#life.sweep(Date.now() - STALE_MS)) void this.#reclaimer.schedule(id);
    this.#startSweeps();
  }

  /** Sweeps every {@link SWEEP_MS} from now on (a timer that keeps no process alive); the first one now when asked. */
  #startSweeps(now = false): void {
    if (this.#closed || this.#sweeper !== undefined) return;
    this.#sweeper = setInterval(() => void this.#sweep(), this.#sweepMs);
    this.#sweeper.unref();
    if (now) void this.#sweep();
  }

  /** One sweep (see {@link InodeLifecycle.sweep}); its reclaims are scheduled. Never rejects. */
  #sweep(): Promise<void> {
    this.#sweeping ??= (async () => {
      try {
        for (const id of await this.#life.sweep(Date.now() - STALE_MS)) void this.#reclaimer.schedule(id);
      } catch {
        // The database is failing or the tables are gone: the next sweep tries again.
      } finally {
        this.#sweeping = undefined;
      }
    })();
    return this.#sweeping;
  }

  /**
   * @internal Sweeps now, and resolves once every reclaim scheduled so far (by it or before) has ended (tests,
   * orderly shutdowns).
   */
  async reclaimNow(): Promise<void> {
    await this.#use(undefined, () => this.#sweep());
    await this.#reclaimer.idle();
  }

  /** @internal Resolves once every reclaim of removed files scheduled so far has ended (tests). */
  reclaimed(): Promise<void> {
    return this.#reclaimer.idle();
  }

  /** Drops every table of this provider's prefix: the filesystem is gone. For tests and decommissioning. */
  async dropTables(): Promise<void> {
    // Reclaims of this filesystem are moot: stopped after their running statement.
    await this.#reclaimer.cancel();
    try {
      await dropTables(this.#conn.db, this.tables);
      this.#ready = undefined;
    } catch (err) {
      throw dbError(err, this.#conn.where);
    }
  }

  /**
   * Ends the pool (or closes the SQLite database) when the provider created it. Idempotent. A reclaim running stops
   * after its statement; what it had not deleted is reclaimed after a later sweep (the next start, or any other
   * process on the database within a minute).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    await this.#sweeping;
    await this.#reclaimer.stop();
    // Kysely.destroy() would end a caller's pool too: only instances built here are destroyed. A connection that
    // had already failed (a handshake a hung database never answered) reports its failure again as the pool ends:
    // nothing for the caller to act on, the pool is gone either way.
    if (this.#conn.owned) await this.#conn.db.destroy().catch(() => undefined);
  }

  // ---------------------------------------------------------------- plumbing

  async #use<T>(path: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      await (this.#autoMigrate ? this.migrate() : (this.#schemaChecked ??= this.#checkSchema()));
      return await fn();
    } catch (err) {
      throw dbError(err, this.#conn.where, path);
    }
  }

  async #tx<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        let b = this.#conn.db.transaction();
        // READ COMMITTED: each statement sees what the transactions it waited for committed (MySQL defaults to
        // REPEATABLE READ, whose snapshot would hide the row a concurrent upload just installed).
        if (this.dialect !== 'sqlite') b = b.setIsolationLevel('read committed');
        return await b.execute((trx) => fn(trx));
      } catch (err) {
        if (attempt >= TX_ATTEMPTS || !isRetryable(err)) throw err;
        await new Promise((r) => setTimeout(r, 5 * attempt + Math.random() * 10));
      }
    }
  }

  /** Row lock on a directory: every change of a directory's entries takes it, so they are serialised. */
  async #lockDir(trx: Kysely<Database>, id: number): Promise<boolean> {
    let q = trx.selectFrom(this.tables.inode('d')).select(['d.id', 'd.type']).where('d.id', '=', id);
    // SQLite has no row locks: its transactions are serialised anyway (one connection, one writer).
    if (this.dialect !== 'sqlite') q = q.forUpdate();
    const r = await q.executeTakeFirst();
    return r !== undefined && Number(r.type) === T_DIR;
  }

  async #available(q: Kysely<Database>): Promise<number> {
    const quota = this.#store.quota;
    if (quota === undefined) return Infinity;
    // The files in the tree, and removed ones that a download still holds (a live lease): a DELE frees its bytes at
    // once unless a download keeps them, so reading removed files slowly does not store past the quota. A removed
    // file's rows still being reclaimed count no more (see the README, "Quota"); an upload counts once complete.
    const r = await q
      .selectFrom(this.tables.inode('i'))
      .select((eb) => eb.fn.sum<number | string>('i.size').as('used'))
      .where('i.type', '=', T_FILE)
      .where((eb) =>
        eb.or([
          eb('i.parent', 'is not', null),
          eb('i.id', 'in', eb.selectFrom(this.tables.reader('r')).select('r.inode').where('r.expires', '>', Date.now())),
        ]),
      )
      .executeTakeFirst();
    return Math.max(0, quota - Number(r?.used ?? 0));
  }

  #statsOf(i: Inode): VfsStats {
    const kind = KINDS[i.type] ?? 'file';
    return new VfsStats({
      kind,
      size: kind === 'directory' ? 0 : kind === 'symlink' ? Buffer.byteLength(i.target ?? '') : i.size,
      mode: i.mode,
      mtimeMs: i.mtime,
      birthtimeMs: i.birthtime,
      ino: i.id,
    });
  }

  #locate(q: Kysely<Database>, path: string, follow: boolean, syscall: string, withChildren = false): Promise<Location> {
    return locate(q, this.tables, normalizePath(path), follow, syscall, withChildren, maxJoins(this.dialect));
  }

  async #existing(q: Kysely<Database>, path: string, follow: boolean, syscall: string): Promise<Location & { node: Inode }> {
    const loc = await this.#locate(q, path, follow, syscall);
    if (loc.node === undefined) throw fsError('ENOENT', syscall, path);
    return loc as Location & { node: Inode };
  }

  /** The entry (parent, name) as it is now, inside a transaction that holds the parent's lock. */
  async #entry(trx: Kysely<Database>, parent: number, name: string): Promise<Inode | undefined> {
    const r = await trx
      .selectFrom(this.tables.inode('e'))
      .select(INODE_COLUMNS.map((c) => `e.${c}` as const))
      .where('e.parent', '=', parent)
      .where('e.name', '=', name)
      .executeTakeFirst();
    return r === undefined ? undefined : toInode(r);
  }

  async #insert(trx: Kysely<Database>, parent: number | null, name: string, type: number, mode: number, target: string | null = null): Promise<number> {
    if (Buffer.byteLength(name) > NAME_MAX_BYTES) throw fsError('ENAMETOOLONG', 'open', name);
    const now = Date.now();
    const values = { parent, name, type, size: 0, mtime: now, birthtime: now, mode: mode & 0o7777, target, sha256: null };
    const t = this.tables;
    if (this.dialect === 'mysql') {
      const r = await trx.insertInto(t.i).values(values).executeTakeFirstOrThrow();
      return Number(r.insertId);
    }
    const r = await trx.insertInto(t.i).values(values).returning('id').executeTakeFirstOrThrow();
    return Number(r.id);
  }

  async #touch(trx: Kysely<Database>, id: number): Promise<void> {
    await trx.updateTable(this.tables.i).set({ mtime: Date.now() }).where('id', '=', id).execute();
  }

  /** Locks the directories in id order (no deadlock between two renames crossing each other). */
  async #lockDirs(trx: Kysely<Database>, ids: number[], path: string, syscall: string): Promise<void> {
    for (const id of [...new Set(ids)].sort((a, b) => a - b)) {
      if (!(await this.#lockDir(trx, id))) throw fsError('ENOENT', syscall, path);
    }
  }

  // ---------------------------------------------------------------- core

  /** Stats, following links. */
  async stat(path: string): Promise<VfsStats> {
    return this.#use(path, async () => this.#statsOf((await this.#existing(this.db, path, true, 'stat')).node));
  }

  /** Stats of a link itself. */
  async lstat(path: string): Promise<VfsStats> {
    return this.#use(path, async () => this.#statsOf((await this.#existing(this.db, path, false, 'lstat')).node));
  }

  /** The directory at `path`, links followed, with its children when asked; ENOENT or ENOTDIR as `scandir`. */
  async #directory(path: string, withChildren: boolean): Promise<Location & { node: Inode }> {
    const loc = await this.#locate(this.db, path, true, 'scandir', withChildren);
    if (loc.node === undefined) throw fsError('ENOENT', 'scandir', path);
    if (loc.node.type !== T_DIR) throw fsError('ENOTDIR', 'scandir', path);
    return loc as Location & { node: Inode };
  }

  async #children(path: string): Promise<Inode[]> {
    return (await this.#directory(path, true)).children ?? [];
  }

  /** A listed entry: its name and its stats (links as links). */
  #entryOf(row: Inode): DirEntry {
    return { name: row.name, stats: this.#statsOf(row) };
  }

  /** Names of a directory's entries (or `VfsDirent`s with `withFileTypes`). */
  async readdir(path: string, options?: { withFileTypes?: false }): Promise<string[]>;
  async readdir(path: string, options: { withFileTypes: true }): Promise<VfsDirent[]>;
  async readdir(path: string, options?: { withFileTypes?: boolean }): Promise<string[] | VfsDirent[]>;
  async readdir(path: string, options?: { withFileTypes?: boolean }): Promise<string[] | VfsDirent[]> {
    return this.#use(path, async () => {
      const rows = await this.#children(path);
      if (options?.withFileTypes === true) return rows.map((r) => new VfsDirent(r.name, KINDS[r.type] ?? 'file', normalizePath(path)));
      return rows.map((r) => r.name);
    });
  }

  /** Entries with their stats (links as links): one query for the path and the listing. */
  async list(path: string): Promise<DirEntry[]> {
    return this.#use(path, async () => (await this.#children(path)).map((r) => this.#entryOf(r)));
  }

  /**
   * {@link list} a page at a time, for folders of any size: the directory is resolved now (its errors reject here,
   * as `list`'s would), then each `next()` reads the next `SLICE_ROWS` (1,000) entries in name order, one query on
   * the `(parent, name)` index (see {@link childSlices}). The directory is followed by id, as an open directory
   * is: renamed meanwhile, it goes on being listed; deleted, its listing ends.
   */
  async listSlices(path: string): Promise<DirSlices> {
    return this.#use(path, async () => {
      const dir = (await this.#directory(path, false)).node.id;
      return childSlices(
        // Not through #use: a page never migrates (tables dropped under a listing fail it rather than come back empty).
        (after, limit) => childrenPage(this.db, this.tables, dir, after, limit).catch((err: unknown) => Promise.reject(dbError(err, this.#conn.where, path))),
        (row) => this.#entryOf(row),
      );
    });
  }

  /** Creates a directory (with its parents when `recursive`; then returns the first one created). */
  async mkdir(path: string, options?: { recursive?: boolean; mode?: number }): Promise<string | undefined> {
    const mode = options?.mode ?? 0o755;
    return this.#use(path, () =>
      this.#tx(async (trx) => {
        const p = normalizePath(path);
        if (options?.recursive !== true) {
          if (p === '/') throw fsError('EEXIST', 'mkdir', path);
          const loc = await this.#locate(trx, p, false, 'mkdir');
          if (loc.node !== undefined) throw fsError('EEXIST', 'mkdir', path);
          await this.#create(trx, loc, T_DIR, mode, null, path, 'mkdir');
          return undefined;
        }
        let first: string | undefined;
        const segs = p.split('/').filter((s) => s !== '');
        for (let i = 1; i <= segs.length; i++) {
          const sub = `/${segs.slice(0, i).join('/')}`;
          const loc = await this.#locate(trx, sub, true, 'mkdir');
          let node = loc.node;
          if (node === undefined && loc.parent !== undefined) {
            // Under the parent's lock: another client may have created it while we waited (mkdir -p races).
            await this.#lockDirs(trx, [loc.parent.id], path, 'mkdir');
            node = await this.#entry(trx, loc.parent.id, loc.name);
            if (node === undefined) {
              await this.#insertChild(trx, loc.parent.id, loc.name, T_DIR, mode, null, path, 'mkdir');
              first ??= sub;
              continue;
            }
            if (node.type === T_LINK) node = (await this.#locate(trx, sub, true, 'mkdir')).node;
          }
          if (node !== undefined && node.type !== T_DIR) throw fsError(i === segs.length ? 'EEXIST' : 'ENOTDIR', 'mkdir', path);
        }
        return first;
      }),
    );
  }

  /** Inserts an entry into a located, locked parent; EEXIST when someone else created the name meanwhile. */
  async #create(trx: Kysely<Database>, loc: Location, type: number, mode: number, target: string | null, path: string, syscall: string): Promise<number> {
    if (loc.parent === undefined) throw fsError('EEXIST', syscall, path);
    await this.#lockDirs(trx, [loc.parent.id], path, syscall);
    if ((await this.#entry(trx, loc.parent.id, loc.name)) !== undefined) throw fsError('EEXIST', syscall, path);
    return this.#insertChild(trx, loc.parent.id, loc.name, type, mode, target, path, syscall);
  }

  /** Inserts an entry into a locked directory and touches the directory. */
  async #insertChild(trx: Kysely<Database>, parent: number, name: string, type: number, mode: number, target: string | null, path: string, syscall: string): Promise<number> {
    try {
      const id = await this.#insert(trx, parent, name, type, mode, target);
      await this.#touch(trx, parent);
      return id;
    } catch (err) {
      // Only without the lock (SQLite shares none across processes): the unique key is the last word.
      if (isUniqueViolation(err)) throw fsError('EEXIST', syscall, path);
      throw err;
    }
  }

  /** Removes an empty directory. */
  async rmdir(path: string): Promise<void> {
    await this.#use(path, () =>
      this.#tx(async (trx) => {
        const loc = await this.#existing(trx, path, false, 'rmdir');
        // The root: EPERM (FTP 550), for good; EBUSY would be 450 "try again later", which clients retry for ever.
        if (loc.parent === undefined) throw fsError('EPERM', 'rmdir', path);
        if (loc.node.type !== T_DIR) throw fsError('ENOTDIR', 'rmdir', path);
        // An upload into it shows in the folder only once it completes: busy (450) until then, not empty.
        if (this.#uploadFolders.has(loc.node.id)) throw fsError('EBUSY', 'rmdir', path);
        await this.#lockDirs(trx, [loc.parent.id, loc.node.id], path, 'rmdir');
        const child = await trx.selectFrom(this.tables.inode('c')).select('c.id').where('c.parent', '=', loc.node.id).limit(1).executeTakeFirst();
        if (child !== undefined) throw fsError('ENOTEMPTY', 'rmdir', path);
        await trx.deleteFrom(this.tables.i).where('id', '=', loc.node.id).execute();
        await this.#touch(trx, loc.parent.id);
      }),
    );
  }

  /**
   * Removes a file or link: one short transaction unlinks it; the rows of a file of more than a few chunks are
   * reclaimed afterwards, in the background (a file with live reader leases once its last reader is done).
   */
  async unlink(path: string): Promise<void> {
    await this.#use(path, async () => {
      const removed = await this.#tx(async (trx) => {
        const loc = await this.#existing(trx, path, false, 'unlink');
        if (loc.parent === undefined || loc.node.type === T_DIR) throw fsError('EISDIR', 'unlink', path);
        await this.#lockDirs(trx, [loc.parent.id], path, 'unlink');
        const now = await this.#entry(trx, loc.parent.id, loc.name);
        if (now === undefined) throw fsError('ENOENT', 'unlink', path);
        if (now.type === T_DIR) throw fsError('EISDIR', 'unlink', path);
        let reclaim = false;
        if (now.type === T_FILE) reclaim = await this.#life.removeFile(trx, now.id);
        else await trx.deleteFrom(this.tables.i).where('id', '=', now.id).execute();
        await this.#touch(trx, loc.parent.id);
        return reclaim ? now.id : undefined;
      });
      if (removed !== undefined) void this.#reclaimer.schedule(removed);
    });
  }

  /**
   * Renames or moves a file, link or whole directory: one row changes, whatever the size of the subtree. A file it
   * replaces is removed as {@link unlink} removes one (its rows reclaimed afterwards).
   */
  async rename(oldPath: string, newPath: string): Promise<void> {
    await this.#use(oldPath, async () => {
      const removed = await this.#tx(async (trx): Promise<number | undefined> => {
        const src = await this.#existing(trx, oldPath, false, 'rename');
        const dst = await this.#locate(trx, newPath, false, 'rename');
        if (src.parent === undefined || dst.parent === undefined) throw fsError('EPERM', 'rename', oldPath);
        if (Buffer.byteLength(dst.name) > NAME_MAX_BYTES) throw fsError('ENAMETOOLONG', 'rename', newPath);
        if (dst.node !== undefined && dst.node.id === src.node.id) return undefined;
        if (src.node.type === T_DIR && dst.chain.includes(src.node.id)) throw fsError('EINVAL', 'rename', newPath);
        // A directory moving to another parent also takes the root's lock: such moves are serialised, so two of
        // them cannot each pass the "not into itself" check and together make a cycle (the kernel's rename lock).
        const crossDir = src.node.type === T_DIR && src.parent.id !== dst.parent.id;
        const root = dst.chain[0];
        await this.#lockDirs(trx, crossDir && root !== undefined ? [root, src.parent.id, dst.parent.id] : [src.parent.id, dst.parent.id], oldPath, 'rename');
        const s = await this.#entry(trx, src.parent.id, src.name);
        if (s === undefined) throw fsError('ENOENT', 'rename', oldPath);
        // Another client replaced the folder between the lookup and the lock: transient, worth a retry (EBUSY, 450).
        if (s.type === T_DIR && s.id !== src.node.id) throw fsError('EBUSY', 'rename', oldPath);
        if (crossDir) {
          // Checked again under the lock: the destination's ancestors as they are now.
          const again = await this.#locate(trx, newPath, false, 'rename');
          if (again.parent?.id !== dst.parent.id || again.chain.includes(s.id)) throw fsError('EINVAL', 'rename', newPath);
        }
        const d = await this.#entry(trx, dst.parent.id, dst.name);
        let removed: number | undefined;
        if (d !== undefined && d.id !== s.id) {
          if (s.type === T_DIR) {
            if (d.type !== T_DIR) throw fsError('ENOTDIR', 'rename', newPath);
            await this.#lockDirs(trx, [d.id], newPath, 'rename');
            const child = await trx.selectFrom(this.tables.inode('c')).select('c.id').where('c.parent', '=', d.id).limit(1).executeTakeFirst();
            if (child !== undefined) throw fsError('ENOTEMPTY', 'rename', newPath);
            await trx.deleteFrom(this.tables.i).where('id', '=', d.id).execute();
          } else if (d.type === T_DIR) {
            throw fsError('EISDIR', 'rename', newPath);
          } else if (d.type === T_FILE) {
            if (await this.#life.removeFile(trx, d.id)) removed = d.id;
          } else {
            await trx.deleteFrom(this.tables.i).where('id', '=', d.id).execute();
          }
        }
        await trx.updateTable(this.tables.i).set({ parent: dst.parent.id, name: dst.name }).where('id', '=', s.id).execute();
        await this.#touch(trx, src.parent.id);
        if (dst.parent.id !== src.parent.id) await this.#touch(trx, dst.parent.id);
        return removed;
      });
      if (removed !== undefined) void this.#reclaimer.schedule(removed);
    });
  }

  /** A file handle (see {@link SqlFileHandle}); `'w'` truncates, `'wx'` fails on an existing file. */
  async open(path: string, flags: string | number = 'r', mode?: number): Promise<SqlFileHandle> {
    const f = parseOpenFlags(flags);
    return this.#use(path, async () => {
      const id = await this.#tx(async (trx) => {
        const loc = await this.#locate(trx, path, true, 'open');
        if (loc.node === undefined) {
          if (!f.create) throw fsError('ENOENT', 'open', path);
          return this.#create(trx, loc, T_FILE, mode ?? 0o644, null, path, 'open');
        }
        if (f.create && f.exclusive) throw fsError('EEXIST', 'open', path);
        if (loc.node.type === T_DIR) throw fsError('EISDIR', 'open', path);
        return loc.node.id;
      });
      const handle = new SqlFileHandle(this.#store, id, f, normalizePath(path), (i) => this.#statsOf(i));
      if (f.truncate && f.write) await handle.truncate(0);
      if (f.append) handle.position = (await handle.stat()).size;
      return handle;
    });
  }

  /** The text of a link. */
  async readlink(path: string): Promise<string> {
    return this.#use(path, async () => {
      const loc = await this.#existing(this.db, path, false, 'readlink');
      if (loc.node.type !== T_LINK) throw fsError('EINVAL', 'readlink', path);
      return loc.node.target ?? '';
    });
  }

  /** Creates a link; the target is stored as given and resolved inside this filesystem. */
  async symlink(target: string, path: string): Promise<void> {
    if (typeof target !== 'string' || target === '' || target.includes('\0')) throw fsError('EINVAL', 'symlink', path);
    await this.#use(path, () =>
      this.#tx(async (trx) => {
        const loc = await this.#locate(trx, path, false, 'symlink');
        if (loc.node !== undefined) throw fsError('EEXIST', 'symlink', path);
        await this.#create(trx, loc, T_LINK, 0o777, target, path, 'symlink');
      }),
    );
  }

  // ---------------------------------------------------------------- capabilities

  /** Streams a file, `end` inclusive, {@link CHUNK_SIZE} chunks, four per query. */
  async createReadStream(path: string, options: ReadStreamOptions = {}): Promise<Readable> {
    checkStreamOptions(options, path);
    return this.#use(path, async () => {
      const { node, token } = await this.#leased(path);
      return new SqlReadStream(this.#store, node.id, token, node.size, options.start ?? 0, options.end, normalizePath(path));
    });
  }

  /**
   * Locates a file and takes a reader lease on it. Between the two another server may have replaced the file
   * (the inode found is gone): then the path is looked up again, a bounded number of times.
   */
  async #leased(path: string): Promise<{ node: Inode; token: string }> {
    for (let attempt = 1; ; attempt++) {
      const { node } = await this.#existing(this.db, path, true, 'open');
      if (node.type === T_DIR) throw fsError('EISDIR', 'open', path);
      try {
        return { node, token: await this.#life.lease(node.id, path) };
      } catch (err) {
        if (attempt >= 3 || (err as { code?: unknown }).code !== 'ENOENT') throw err;
      }
    }
  }

  /**
   * Opens an upload that becomes visible when it finishes: replaces the file, or keeps its first `start` bytes
   * (REST + STOR; zeros past the end), or appends (`append`; created when missing). One short transaction finds the
   * file and makes the new, unlinked inode; the stream then copies the kept part into it, in SQL, chunk rows to chunk
   * rows, a few MiB per statement, before it takes the client's data (see {@link SqlWriteStream}): the call does not
   * wait for the copy, and neither the event loop (SQLite) nor a transaction is held for the whole of it. The old
   * version stays whole for its readers; the upload commits only if the file is still the version it copied from.
   */
  async createWriteStream(path: string, options: WriteStreamOptions = {}): Promise<UploadStream> {
    checkStreamOptions(options, path);
    return this.#use(path, async () => {
      const available = await this.#available(this.db);
      const target = await this.#tx(async (trx) => {
        const loc = await this.#locate(trx, path, true, 'open');
        if (loc.parent === undefined || loc.node?.type === T_DIR) throw fsError('EISDIR', 'open', path);
        if (Buffer.byteLength(loc.name) > NAME_MAX_BYTES) throw fsError('ENAMETOOLONG', 'open', path);
        const old = loc.node?.type === T_FILE ? loc.node : undefined;
        const tempName = `.upload-${randomUUID()}`;
        const tempId = await this.#insert(trx, null, tempName, T_FILE, options.mode ?? old?.mode ?? 0o644);
        const keep = old === undefined ? 0 : options.append === true ? old.size : Math.min(options.start ?? 0, old.size);
        const gap = options.append === true ? 0 : Math.max(0, (options.start ?? 0) - (old?.size ?? 0));
        // Copied by the stream, from `base` (below), before the client's data.
        const whole = Math.floor(keep / CHUNK_SIZE);
        const partial = keep % CHUNK_SIZE;
        // The bytes of the old version that this upload drops come back to the quota when it is swapped in.
        const allowance = available + (old === undefined ? 0 : old.size - keep);
        if (allowance <= 0) throw new VfsError('ENOSPC', 'ENOSPC: the quota of this filesystem is used up', { path });
        // APPE and REST + STOR commit only over the version they copied from (or still no file); STOR replaces.
        const continues = options.append === true || (options.start ?? 0) > 0;
        const base = continues ? (old === undefined ? null : { id: old.id, gen: old.gen }) : undefined;
        return { tempId, tempName, dirId: loc.parent.id, name: loc.name, seq: whole, partial, gap, whole: keep === 0 && gap === 0, allowance, base };
      });
      const stream = new SqlWriteStream(this.#store, target, normalizePath(path));
      countWhileOpen(this.#uploadFolders, target.dirId, stream);
      this.#uploads.opened(`${target.dirId}/${target.name}`, stream);
      return stream;
    });
  }

  /**
   * Whether an upload of `path` with `options` would now race another upload of this provider to the file: one that
   * continues it (APPE, REST + STOR) commits only over the version it started from, so the first of the two to end
   * makes the other fail at its end (EBUSY, after its client sent everything). A plain upload replaces the file
   * (last one wins) and is never busy. With `hold`, a file found free is held for the upload that asked until it opens
   * (see `RunningUploads`). Uploads of other processes are not seen.
   */
  async uploadBusy(path: string, options: WriteStreamOptions = {}, hold: boolean | object = false): Promise<boolean> {
    if (!this.#uploads.mayBeBusy(options, hold)) return false;
    return this.#use(path, async () => {
      const loc = await this.#locate(this.db, path, true, 'open').catch(() => null);
      return loc !== null && loc.parent !== undefined && this.#uploads.busy(`${loc.parent.id}/${loc.name}`, hold);
    });
  }

  /** Gives back `owner`'s hold of `path` (see `FsProvider.releaseUploadHold`). */
  async releaseUploadHold(path: string, owner: object): Promise<void> {
    if (!this.#uploads.holding) return;
    await this.#use(path, async () => {
      const loc = await this.#locate(this.db, path, true, 'open').catch(() => null);
      if (loc !== null && loc.parent !== undefined) this.#uploads.releaseHold(`${loc.parent.id}/${loc.name}`, owner);
    });
  }

  /** Sets the modification time (MFMT). */
  async setTimes(path: string, mtime: Date): Promise<void> {
    await this.#use(path, async () => {
      const { node } = await this.#existing(this.db, path, true, 'utime');
      await this.db.updateTable(this.tables.i).set({ mtime: mtime.getTime() }).where('id', '=', node.id).execute();
    });
  }

  /** Changes the permission bits (SITE CHMOD). */
  async chmod(path: string, mode: number): Promise<void> {
    await this.#use(path, async () => {
      const { node } = await this.#existing(this.db, path, true, 'chmod');
      await this.db.updateTable(this.tables.i).set({ mode: mode & 0o7777 }).where('id', '=', node.id).execute();
    });
  }

  /**
   * Digest of `[start, end)` of a file. The SHA-256 of a whole file uploaded by a stream is stored at upload time
   * and returned without reading; anything else streams the range.
   */
  async hash(path: string, algorithm: HashAlgorithm, start?: number, end?: number, options: HashOptions = {}): Promise<string> {
    // A stopped hash rejects with the signal's reason, not with a storage error made of it.
    const stopped = (err: unknown): never => {
      throw options.signal?.aborted ? options.signal.reason : err;
    };
    return this.#use(path, async () => {
      const digest = createDigest(algorithm);
      const found = await this.#existing(this.db, path, true, 'open');
      if (found.node.type === T_DIR) throw fsError('EISDIR', 'open', path);
      const from = start ?? 0;
      const stored = found.node.sha256;
      if (algorithm === 'SHA-256' && from === 0 && (end === undefined || end >= found.node.size) && stored !== null) return stored;
      if (end !== undefined && end <= from) return digest.digest();
      const { node, token } = await this.#leased(path);
      const stream = new SqlReadStream(this.#store, node.id, token, node.size, from, end === undefined ? undefined : end - 1, normalizePath(path));
      return digestStream(stream, digest, options.signal);
    }).catch(stopped);
  }

  /** Bytes left under the quota (AVBL); Infinity without one. */
  async availableSpace(path: string): Promise<number> {
    return this.#use(path, () => this.#available(this.db));
  }

  /** Checks that `size` bytes fit in the quota (ALLO); ENOSPC when they do not. Nothing is reserved. */
  async allocate(path: string, size: number): Promise<void> {
    await this.#use(path, async () => {
      if (size > (await this.#available(this.db))) throw new VfsError('ENOSPC', `ENOSPC: ${size} bytes do not fit in the quota`, { path });
    });
  }
}

/** Creates a provider and migrates its schema, so that a wrong URL or missing privileges fail here, clearly. */
export async function createSqlProvider(options: SqlProviderOptions): Promise<SqlProvider> {
  const p = new SqlProvider(options);
  try {
    await p.migrate();
  } catch (err) {
    await p.close().catch(() => undefined);
    throw err;
  }
  return p;
}

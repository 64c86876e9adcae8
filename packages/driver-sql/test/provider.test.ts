import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { Kysely, sql } from 'kysely';
import type { DatabaseConnection, Dialect, Driver } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { toVfsError } from '@ftp/vfs';
import type { UploadStream } from '@ftp/vfs';
import { CHUNK_SIZE, createDialect, SqlProvider } from '../src/index.js';
import type { Database } from '../src/index.js';
import { bytes, countingProvider, get, put, rowCounts } from './helpers.js';
import { DBS, disposeProvider, freshProvider, postgresUrl, randomPrefix } from './services.js';
import type { TestDb } from './services.js';

afterAll(() => {
  for (const db of DBS) db.cleanup();
});

async function writeSome(ws: UploadStream, data: Buffer): Promise<void> {
  if (!ws.write(data)) await once(ws, 'drain');
}

async function finish(ws: UploadStream): Promise<void> {
  ws.end();
  await once(ws, 'finish');
}

/**
 * How the next COMMIT fails: `reply-lost`, the server commits and the connection drops before its reply reaches the
 * client (the outcome is unknown to it); `rolled-back`, the connection drops before the COMMIT, nothing committed.
 */
type CommitFault = 'reply-lost' | 'rolled-back';

/** The statement of an upload's swap: the one that links the new inode into the tree (write-stream.ts `#commit`). */
const SWAP_STATEMENT = /^update\s+\S+\s+set\s+["`]parent["`]\s*=/i;

/**
 * A provider over a Kysely instance whose next COMMIT of an upload's swap, once `arm`ed, fails as the fault says.
 * Only a transaction that ran the swap's statement takes the fault: an upload's last chunks may still be committing
 * in transactions of their own when it is armed (under load they commit after it), and must not take it.
 */
async function faultyCommits(db: TestDb): Promise<{ p: SqlProvider; kysely: Kysely<Database>; arm: (fault: CommitFault) => void }> {
  let armed: CommitFault | undefined;
  const swapping = new WeakSet<DatabaseConnection>();
  const dropped = (): Error => Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
  const { dialect: inner } = createDialect(await db.url());
  const dialect: Dialect = {
    createAdapter: () => inner.createAdapter(),
    createQueryCompiler: () => inner.createQueryCompiler(),
    createIntrospector: (k) => inner.createIntrospector(k),
    createDriver: () => {
      const driver = inner.createDriver();
      // Kysely hands the driver back the connection it acquired: the driver's own methods get the real one.
      const real = new WeakMap<DatabaseConnection, DatabaseConnection>();
      const wrappers = new WeakMap<DatabaseConnection, DatabaseConnection>();
      /** The connection, noting when it runs the swap's statement. */
      const watched = (conn: DatabaseConnection): DatabaseConnection => {
        const w: DatabaseConnection = {
          executeQuery: (query) => {
            if (SWAP_STATEMENT.test(query.sql)) swapping.add(w);
            return conn.executeQuery(query);
          },
          streamQuery: (query, chunkSize) => conn.streamQuery(query, chunkSize),
        };
        real.set(w, conn);
        return w;
      };
      return new Proxy(driver, {
        get(target, prop): unknown {
          if (prop === 'acquireConnection') {
            return async (): Promise<DatabaseConnection> => {
              const conn = await target.acquireConnection();
              let w = wrappers.get(conn);
              if (w === undefined) wrappers.set(conn, (w = watched(conn)));
              return w;
            };
          }
          if (prop === 'commitTransaction') {
            return async (w: DatabaseConnection): Promise<void> => {
              const conn = real.get(w) ?? w;
              const fault = swapping.has(w) ? armed : undefined;
              swapping.delete(w);
              if (fault !== undefined) armed = undefined;
              if (fault === 'rolled-back') {
                await target.rollbackTransaction(conn);
                throw dropped();
              }
              await target.commitTransaction(conn);
              if (fault === 'reply-lost') throw dropped();
            };
          }
          const v = Reflect.get(target, prop, target) as unknown;
          if (typeof v !== 'function') return v;
          return (...args: unknown[]): unknown => {
            const [first] = args;
            // A transaction begun, rolled back or a connection released: whatever ran before is not this swap's.
            if (typeof first === 'object' && first !== null) swapping.delete(first as DatabaseConnection);
            return (v as (...a: unknown[]) => unknown).apply(target, args.map((a) => (typeof a === 'object' && a !== null ? (real.get(a as DatabaseConnection) ?? a) : a)));
          };
        },
      }) satisfies Driver;
    },
  };
  const kysely = new Kysely<Database>({ dialect });
  const p = new SqlProvider({ connection: kysely as unknown as Kysely<unknown>, tablePrefix: randomPrefix() });
  await p.migrate();
  return { p, kysely, arm: (fault) => (armed = fault) };
}

for (const db of DBS) {
  describe(`SqlProvider (${db.dialect})`, () => {
    it('renames a directory in O(1): the same queries whatever its size, one row changed', async () => {
      const { p, queries } = await countingProvider(db);
      try {
        const costOfRename = async (dir: string, files: number): Promise<number> => {
          await p.mkdir(`${dir}/sub/deeper`, { recursive: true });
          for (let i = 0; i < files; i++) await put(p, `${dir}/sub/f${i}`, `file ${i}`);
          const before = await p.db.selectFrom(p.tables.inode('i')).selectAll('i').orderBy('i.id').execute();
          const q0 = queries();
          await p.rename(dir, `${dir}-moved`);
          const cost = queries() - q0;
          const after = await p.db.selectFrom(p.tables.inode('i')).selectAll('i').orderBy('i.id').execute();
          const changed = after.filter((r, i) => JSON.stringify(r) !== JSON.stringify(before[i])).map((r) => Number(r.id));
          // The moved directory, and the mtime of the directory it left (and entered): nothing below it.
          const root = (await p.stat('/')).ino;
          const moved = (await p.stat(`${dir}-moved`)).ino;
          expect(changed.sort()).toEqual([root, moved].sort());
          expect((await get(p, `${dir}-moved/sub/f${files - 1}`)).toString()).toBe(`file ${files - 1}`);
          return cost;
        };
        const small = await costOfRename('/small', 1);
        const big = await costOfRename('/big', 120);
        console.log(`[driver-sql ${db.dialect}] rename of a directory: ${small} queries with 1 file, ${big} with 120`);
        expect(big).toBe(small);
      } finally {
        await disposeProvider(p);
      }
    });

    it('resolves a path in one query (up to 8 components on PostgreSQL, 24 elsewhere) and lists a directory in one', async () => {
      const { p, queries } = await countingProvider(db);
      try {
        const deep = `/${Array.from({ length: 20 }, (_, i) => `d${i}`).join('/')}`;
        await p.mkdir(deep, { recursive: true });
        await put(p, `${deep}/f`, 'x');
        await put(p, '/f', 'x');
        let q0 = queries();
        await p.stat('/f');
        expect(queries() - q0).toBe(1);
        q0 = queries();
        await p.stat(`${deep.split('/').slice(0, 8).join('/')}`);
        expect(queries() - q0).toBe(1);
        q0 = queries();
        await p.stat(`${deep}/f`);
        expect(queries() - q0).toBe(db.dialect === 'postgres' ? 3 : 1);
        q0 = queries();
        const list = await p.list(deep.split('/').slice(0, 9).join('/'));
        expect(queries() - q0).toBe(1);
        expect(list.map((e) => e.name)).toEqual(['d8']);
        // Deeper than one query's joins: one more query per `maxJoins` components.
        const deeper = `/${Array.from({ length: 30 }, (_, i) => `e${i}`).join('/')}`;
        await p.mkdir(deeper, { recursive: true });
        q0 = queries();
        expect((await p.stat(deeper)).isDirectory()).toBe(true);
        expect(queries() - q0).toBe(Math.ceil(30 / (db.dialect === 'postgres' ? 8 : 24)));
      } finally {
        await disposeProvider(p);
      }
    });

    it('an upload is invisible until it completes, then whole', async () => {
      const p = await freshProvider(db);
      try {
        await put(p, '/f', 'old');
        const data = bytes(2_500_000, 3);
        const ws = await p.createWriteStream('/f');
        const wn = await p.createWriteStream('/new');
        await writeSome(ws, data.subarray(0, 2_000_000));
        await writeSome(wn, data.subarray(0, 2_000_000));
        // Chunks were written (a batch of four per upload at least reaches the database), but nothing shows.
        const deadline = Date.now() + 5000;
        while ((await rowCounts(p)).chunks < 1 + 2 * 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        expect((await rowCounts(p)).chunks).toBeGreaterThanOrEqual(1 + 2 * 4);
        expect((await get(p, '/f')).toString()).toBe('old');
        expect((await p.stat('/f')).size).toBe(3);
        expect((await p.readdir('/')).sort()).toEqual(['f']);
        await expect(p.stat('/new')).rejects.toMatchObject({ code: 'ENOENT' });
        await writeSome(ws, data.subarray(2_000_000));
        await writeSome(wn, data.subarray(2_000_000));
        await finish(ws);
        await finish(wn);
        expect((await get(p, '/f')).equals(data)).toBe(true);
        expect((await get(p, '/new')).equals(data)).toBe(true);
        expect((await p.readdir('/')).sort()).toEqual(['f', 'new']);
      } finally {
        await disposeProvider(p);
      }
    });

    it('two writers on one path through two providers (two pools) end with one whole version', async () => {
      // Two pools over the same tables, as two servers would have. SQLite: one provider (one connection) per
      // process — node:sqlite is synchronous, so a second connection waiting for the lock would block the event
      // loop that the first one needs to commit.
      const url = await db.url();
      const prefix = randomPrefix();
      const a = new SqlProvider({ connection: url, tablePrefix: prefix });
      const other = db.dialect === 'sqlite' ? a : new SqlProvider({ connection: url, tablePrefix: prefix });
      await a.migrate();
      try {
        const va = bytes(1_200_000, 11);
        const vb = bytes(700_000, 12);
        for (let round = 0; round < 3; round++) {
          const wa = await a.createWriteStream('/same');
          const wb = await other.createWriteStream('/same');
          for (let off = 0; off < va.length; off += 100_000) {
            await writeSome(wa, va.subarray(off, off + 100_000));
            if (off < vb.length) await writeSome(wb, vb.subarray(off, off + 100_000));
          }
          await Promise.all([finish(wa), finish(wb)]);
          const got = await get(a, '/same');
          expect(got.equals(va) || got.equals(vb)).toBe(true);
          expect((await other.stat('/same')).size).toBe(got.length);
          // No leftover: one inode for the file (plus the root), its chunks only (once the replaced versions' rows,
          // reclaimed in the background by the provider that replaced them, are gone).
          await other.reclaimed();
          const rows = await rowCounts(a);
          expect(rows.inodes).toBe(2);
          expect(rows.chunks).toBe(Math.ceil(got.length / (256 * 1024)));
        }
      } finally {
        if (other !== a) await other.close();
        await disposeProvider(a);
      }
    });

    it('races between two pools: concurrent mkdir -p both succeed, crossing directory moves never make a cycle', async () => {
      const url = await db.url();
      const prefix = randomPrefix();
      const a = new SqlProvider({ connection: url, tablePrefix: prefix });
      const b = db.dialect === 'sqlite' ? a : new SqlProvider({ connection: url, tablePrefix: prefix });
      await a.migrate();
      try {
        for (let round = 0; round < 5; round++) {
          await Promise.all([a.mkdir(`/r${round}/x/y/z`, { recursive: true }), b.mkdir(`/r${round}/x/y/z`, { recursive: true })]);
          expect((await a.stat(`/r${round}/x/y/z`)).isDirectory()).toBe(true);
          await a.mkdir(`/p${round}`);
          await a.mkdir(`/q${round}`);
          const results = await Promise.allSettled([a.rename(`/p${round}`, `/q${round}/p`), b.rename(`/q${round}`, `/p${round}/q`)]);
          // One of them moved; the other found its source gone or its target inside itself. Both roots stay
          // reachable from /: no directory became its own ancestor.
          expect(results.filter((r) => r.status === 'fulfilled').length).toBe(1);
          for (const r of results) if (r.status === 'rejected') expect(['ENOENT', 'EINVAL']).toContain((r.reason as { code: string }).code);
          const top = await a.readdir('/');
          expect(top.includes(`p${round}`) !== top.includes(`q${round}`)).toBe(true);
        }
        const rows = await rowCounts(a);
        expect(rows.inodes).toBe(1 + 5 * (4 + 2));
      } finally {
        if (b !== a) await b.close();
        await disposeProvider(a);
      }
    });

    it('an interrupted upload (transferError, destroy) leaves no rows; the old version stays', async () => {
      const p = await freshProvider(db);
      try {
        await put(p, '/f', 'old content');
        const before = await rowCounts(p);
        for (const options of [{}, { append: true }, { start: 4 }]) {
          const ws = (await p.createWriteStream('/f', options)) as UploadStream & { settled: Promise<void> };
          await writeSome(ws, bytes(1_100_000, 5));
          ws.on('error', () => undefined);
          ws.transferError?.(new Error('client went away'));
          const closed = new Promise((r) => ws.once('close', r));
          ws.destroy(new Error('client went away'));
          await closed;
          await ws.settled;
          expect(await rowCounts(p)).toEqual(before);
          expect((await get(p, '/f')).toString()).toBe('old content');
        }
        // destroy() alone, before end(), discards as well.
        const ws = (await p.createWriteStream('/g')) as UploadStream & { settled: Promise<void> };
        await writeSome(ws, bytes(300_000, 6));
        ws.destroy();
        await once(ws, 'close');
        expect(await rowCounts(p)).toEqual(before);
        await expect(p.stat('/g')).rejects.toMatchObject({ code: 'ENOENT' });
      } finally {
        await disposeProvider(p);
      }
    });

    it('a COMMIT of the swap whose reply is lost keeps the upload it committed (the old version is not lost with it); one that did not commit leaves nothing', async () => {
      const { p, kysely, arm } = await faultyCommits(db);
      try {
        /** Uploads `data`, the swap's COMMIT failing as `fault` says; resolves with how the stream ended. */
        const upload = async (path: string, data: Buffer | string, fault: CommitFault, options?: { append?: boolean }): Promise<string> => {
          // What an earlier step left to reclaim is reclaimed first, so that the row counts below are this step's.
          await p.reclaimNow();
          const ws = await p.createWriteStream(path, options);
          const ended = new Promise<string>((resolve) => {
            ws.once('error', (e: Error & { code?: string }) => resolve(`error ${e.code}`));
            ws.once('finish', () => resolve('finished'));
          });
          // Armed once the data is taken; only the swap's own COMMIT takes the fault (see faultyCommits).
          ws.write(data, () => {
            arm(fault);
            ws.end();
          });
          return ended;
        };
        const big = bytes(6 * CHUNK_SIZE + 10, 21);
        await put(p, '/small', 'old version');
        await put(p, '/big', 'old version');
        // Of at most four chunks (deleted at once when discarded), of more (marked, then reclaimed), and an APPE: the
        // file is the new version, and the upload, found in the tree, reports its success.
        const small = await upload('/small', 'new version', 'reply-lost');
        expect((await get(p, '/small')).toString()).toBe('new version');
        expect(small).toBe('finished');
        const whole = await upload('/big', big, 'reply-lost');
        expect((await get(p, '/big')).equals(big)).toBe(true);
        expect(whole).toBe('finished');
        const appended = await upload('/small', ' appended', 'reply-lost', { append: true });
        expect((await get(p, '/small')).toString()).toBe('new version appended');
        expect(appended).toBe('finished');
        // The versions those swaps replaced are left to the sweep (their ids went with the reply): nothing else.
        await p.reclaimNow();
        const kept = await rowCounts(p);
        expect(kept).toEqual({ inodes: 3, chunks: 1 + 7 });
        // A COMMIT that never happened: the upload fails and is discarded; the file keeps its version.
        expect(await upload('/small', 'lost', 'rolled-back')).toBe('error EIO');
        expect(await upload('/big', bytes(5 * CHUNK_SIZE, 22), 'rolled-back')).toBe('error EIO');
        expect(await upload('/small', ' lost', 'rolled-back', { append: true })).toBe('error EIO');
        await p.reclaimNow();
        expect(await rowCounts(p)).toEqual(kept);
        expect((await get(p, '/small')).toString()).toBe('new version appended');
        expect((await get(p, '/big')).equals(big)).toBe(true);
      } finally {
        await disposeProvider(p);
        await kysely.destroy();
      }
    });

    it('a reader keeps reading the whole old version when another client replaces or deletes the file', async () => {
      // Another provider (another pool: another server) does the replacing; SQLite: the same provider (one
      // connection per process, see the README).
      const url = await db.url();
      const prefix = randomPrefix();
      const p = new SqlProvider({ connection: url, tablePrefix: prefix });
      const other = db.dialect === 'sqlite' ? p : new SqlProvider({ connection: url, tablePrefix: prefix });
      await p.migrate();
      try {
        const old = bytes(3_000_000, 7);
        await put(p, '/f', old);
        await put(p, '/g', old);
        const readers = [await p.createReadStream('/f'), await p.createReadStream('/g')];
        const leases = async (): Promise<number> => Number((await p.db.selectFrom(p.tables.reader('r')).select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow()).n);
        expect(await leases()).toBe(2);
        const its = readers.map((r) => r[Symbol.asyncIterator]());
        const parts: Buffer[][] = [[], []];
        for (let i = 0; i < 2; i++) parts[i]!.push((await its[i]!.next()).value as Buffer);
        await put(other, '/f', 'new');
        await other.unlink('/g');
        expect((await get(other, '/f')).toString()).toBe('new');
        await expect(other.stat('/g')).rejects.toMatchObject({ code: 'ENOENT' });
        for (let i = 0; i < 2; i++) {
          for (let r = await its[i]!.next(); r.done !== true; r = await its[i]!.next()) parts[i]!.push(r.value as Buffer);
          expect(Buffer.concat(parts[i]!).equals(old)).toBe(true);
        }
        // The detached old versions are deleted once their readers are done (asynchronously), leases too.
        const deadline = Date.now() + 5000;
        while (((await rowCounts(p)).inodes !== 2 || (await leases()) !== 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        expect(await rowCounts(p)).toEqual({ inodes: 2, chunks: 1 });
        expect(await leases()).toBe(0);
      } finally {
        if (other !== p) await other.close();
        await disposeProvider(p);
      }
    });

    it('stores the SHA-256 of whole uploads and answers hash() from it; other ranges are streamed', async () => {
      const p = await freshProvider(db);
      try {
        const data = bytes(700_000, 8);
        await put(p, '/f', data);
        const sha = createHash('sha256').update(data).digest('hex');
        const row = await p.db.selectFrom(p.tables.inode('i')).select('i.sha256').where('i.size', '=', data.length).executeTakeFirstOrThrow();
        expect(row.sha256).toBe(sha);
        expect(await p.hash('/f', 'SHA-256')).toBe(sha);
        expect(await p.hash('/f', 'SHA-256', 10, 5000)).toBe(createHash('sha256').update(data.subarray(10, 5000)).digest('hex'));
        // An append has no stored digest: hash() streams, and is still right.
        await put(p, '/f', 'tail', { append: true });
        expect(await p.hash('/f', 'SHA-256')).toBe(createHash('sha256').update(Buffer.concat([data, Buffer.from('tail')])).digest('hex'));
      } finally {
        await disposeProvider(p);
      }
    });

    it('quota: availableSpace, allocate and uploads past it (ENOSPC, nothing left behind)', async () => {
      const p = await freshProvider(db, { quota: 1_000_000 });
      try {
        expect(await p.availableSpace('/')).toBe(1_000_000);
        await put(p, '/a', bytes(400_000));
        expect(await p.availableSpace('/')).toBe(600_000);
        await expect(p.allocate('/b', 700_000)).rejects.toMatchObject({ code: 'ENOSPC' });
        await p.allocate('/b', 500_000);
        const before = await rowCounts(p);
        await expect(put(p, '/b', bytes(700_000))).rejects.toMatchObject({ code: 'ENOSPC' });
        expect(await rowCounts(p)).toEqual(before);
        // Replacing a file gives its bytes back.
        await put(p, '/a', bytes(900_000));
        expect(await p.availableSpace('/')).toBe(100_000);
        const unlimited = await freshProvider(db);
        try {
          expect(await unlimited.availableSpace('/')).toBe(Infinity);
        } finally {
          await disposeProvider(unlimited);
        }
      } finally {
        await disposeProvider(p);
      }
    });

    it('with autoMigrate: false, a schema behind this version fails with an error that says to run migrate()', async () => {
      const url = await db.url();
      const prefix = randomPrefix();
      const p = new SqlProvider({ connection: url, tablePrefix: prefix, autoMigrate: false });
      try {
        await expect(p.stat('/')).rejects.toThrow(/behind this version.*0001.*run migrate\(\)/s);
        await p.migrate();
        expect((await p.stat('/')).isDirectory()).toBe(true);
      } finally {
        await p.dropTables().catch(() => undefined);
        await p.close();
      }
    });

    it('table prefixes isolate filesystems in one database, migration tables included', async () => {
      const url = await db.url();
      const a = await freshProvider(db, {}, url);
      const b = await freshProvider(db, {}, url);
      try {
        await put(a, '/only-in-a', 'a');
        expect(await b.readdir('/')).toEqual([]);
        const tables = (await a.db.introspection.getTables()).map((t) => t.name);
        for (const p of [a, b]) {
          for (const name of [p.tables.inodes, p.tables.chunks, p.tables.migration]) expect(tables).toContain(name);
        }
        // Each prefix keeps its own bookkeeping (not Kysely's shared default tables). Only this test's tables are
        // looked at: the database is shared (other prefixes, a benchmark's tables) and may hold anything else.
        for (const p of [a, b]) expect(p.tables.migration).not.toBe('kysely_migration');
        expect(a.tables.migration).not.toBe(b.tables.migration);
        expect(a.tables.migrationLock).not.toBe(b.tables.migrationLock);
        await b.migrate(); // idempotent
        expect(await a.readdir('/')).toEqual(['only-in-a']);
      } finally {
        await disposeProvider(a);
        await disposeProvider(b);
      }
    });

    it('file handles write in place across chunk boundaries, truncate, extend and append', async () => {
      const p = await freshProvider(db);
      try {
        const base = bytes(600_000, 13);
        await put(p, '/h', base);
        const expected = Buffer.from(base);
        const h = await p.open('/h', 'r+');
        const patch = bytes(100_000, 14);
        await h.write(patch, 0, patch.length, 250_000); // straddles the first chunk boundary (262,144)
        patch.copy(expected, 250_000);
        const buf = Buffer.alloc(120_000);
        const { bytesRead } = await h.read(buf, 0, buf.length, 240_000);
        expect(bytesRead).toBe(120_000);
        expect(buf.equals(expected.subarray(240_000, 360_000))).toBe(true);
        await h.truncate(300_000);
        await h.write(Buffer.from('end'), 0, 3, 310_000); // past the end: zeros in between
        await h.close();
        const want = Buffer.concat([expected.subarray(0, 300_000), Buffer.alloc(10_000), Buffer.from('end')]);
        expect((await get(p, '/h')).equals(want)).toBe(true);
        expect((await p.stat('/h')).size).toBe(want.length);
        const a = await p.open('/h', 'a');
        await a.write(Buffer.from('+more'), 0, 5, null);
        await a.close();
        expect((await get(p, '/h')).subarray(-8).toString()).toBe('end+more');
        // The stored digest no longer applies: hash() streams and agrees.
        expect(await p.hash('/h', 'SHA-256')).toBe(createHash('sha256').update(Buffer.concat([want, Buffer.from('+more')])).digest('hex'));
        await expect(p.open('/missing', 'r')).rejects.toMatchObject({ code: 'ENOENT' });
        await expect(p.open('/h', 'wx')).rejects.toMatchObject({ code: 'EEXIST' });
      } finally {
        await disposeProvider(p);
      }
    });

    it('servers starting at once migrate one schema once (Kysely migration lock)', async () => {
      const url = await db.url();
      const prefix = randomPrefix();
      // SQLite: one connection per process (see the README), so the "servers" share it.
      const first = new SqlProvider({ connection: url, tablePrefix: prefix });
      const all = db.dialect === 'sqlite' ? [first] : [first, ...Array.from({ length: 3 }, () => new SqlProvider({ connection: url, tablePrefix: prefix }))];
      try {
        await Promise.all(all.flatMap((p) => [p.migrate(), p.migrate()]));
        expect(await rowCounts(first)).toEqual({ inodes: 1, chunks: 0 });
        const applied = await sql<{ name: string }>`select name from ${sql.table(first.tables.migration)} order by name`.execute(first.db);
        expect(applied.rows.map((r) => r.name)).toEqual(['0001_inodes_and_chunks', '0002_reader_leases', '0003_inode_generation']);
      } finally {
        for (const p of all.slice(1)) await p.close();
        await disposeProvider(first);
      }
    });

    // Not for SQLite: one process owns its file (see the README), so no other process changes its tables.
    if (db.dialect !== 'sqlite') it('starts while other processes create and drop tables in the same database', async () => {
      // PostgreSQL: Kysely's Migrator lists every table of the database, and a table dropped meanwhile failed it
      // (42P01); a second start of a migrated prefix does not run it at all.
      const url = await db.url();
      let churning = true;
      const churn = async (): Promise<void> => {
        while (churning) {
          const other = new SqlProvider({ connection: url, tablePrefix: randomPrefix() });
          // The churn's own failures are not what is tested: only the starts below must all succeed.
          await other.migrate().catch(() => undefined);
          await other.dropTables().catch(() => undefined);
          await other.close().catch(() => undefined);
        }
      };
      const churners = [churn(), churn()];
      const started: SqlProvider[] = [];
      try {
        for (let i = 0; i < 8; i++) {
          const prefix = randomPrefix();
          const p = new SqlProvider({ connection: url, tablePrefix: prefix });
          started.push(p);
          await p.migrate();
          const again = new SqlProvider({ connection: url, tablePrefix: prefix });
          await again.migrate();
          await again.close();
        }
      } finally {
        churning = false;
        await Promise.all(churners);
        for (const p of started) await disposeProvider(p);
      }
    }, 60_000);

    it('names are byte-exact: case, accents and trailing spaces are distinct', async () => {
      const p = await freshProvider(db);
      try {
        for (const n of ['a', 'A', 'a ', 'é', 'e', 'e\u0301']) await put(p, `/${n}`, n);
        expect((await p.readdir('/')).sort()).toEqual(['a', 'A', 'a ', 'é', 'e', 'e\u0301'].sort());
        for (const n of ['a', 'A', 'a ', 'é', 'e', 'e\u0301']) expect((await get(p, `/${n}`)).toString()).toBe(n);
        await expect(p.mkdir(`/${'x'.repeat(1100)}`)).rejects.toMatchObject({ code: 'ENAMETOOLONG' });
      } finally {
        await disposeProvider(p);
      }
    });
  });
}

describe('existing pools and databases', () => {
  it("a caller's pg.Pool and node:sqlite DatabaseSync are used, and left open by close()", async () => {
    const pool = new pg.Pool({ connectionString: await postgresUrl(), max: 2 });
    const { DatabaseSync } = process.getBuiltinModule('node:sqlite') as typeof import('node:sqlite');
    const database = new DatabaseSync(':memory:');
    try {
      for (const connection of [{ dialect: 'postgres' as const, pool }, { dialect: 'sqlite' as const, database }]) {
        const p = new SqlProvider({ connection, tablePrefix: randomPrefix() });
        await put(p, '/f', 'via the caller');
        expect((await get(p, '/f')).toString()).toBe('via the caller');
        expect(p.dialect).toBe(connection.dialect);
        await p.dropTables();
        await p.close();
      }
      expect((await pool.query('select 1 as one')).rows[0].one).toBe(1);
      expect(database.isOpen).toBe(true);
    } finally {
      await pool.end();
      database.close();
    }
  });
});

describe('configuration errors', () => {
  const fails = async (p: SqlProvider): Promise<Error & { code?: string }> => {
    try {
      await p.stat('/');
    } catch (err) {
      return err as Error & { code?: string };
    } finally {
      await p.close();
    }
    throw new Error('expected a failure');
  };

  it('a refused PostgreSQL port: EIO naming the URL', async () => {
    const e = await fails(new SqlProvider({ connection: 'postgres://postgres:secret@127.0.0.1:1/test' }));
    expect(e.code).toBe('EIO');
    expect(e.message).toContain('@ftp/driver-sql: postgres://postgres:***@127.0.0.1:1/test');
    expect(e.message).toMatch(/ECONNREFUSED/);
    expect(e.message).not.toContain('secret');
  });

  it('a missing PostgreSQL database or role: the server says what', async () => {
    const url = (await DBS[0]!.url()).replace(/\/test$/, '/no_such_db');
    const e = await fails(new SqlProvider({ connection: url }));
    expect(e.code).toBe('EIO');
    expect(e.message).toContain('database "no_such_db" does not exist');
    const role = await fails(new SqlProvider({ connection: 'postgres://no_such_role@127.0.0.1:5432/test' }));
    expect(role.code).toBe('EACCES');
    expect(role.message).toContain('no_such_role');
  });

  it('a wrong MariaDB password: EACCES, password not shown', async () => {
    await DBS[1]!.url();
    const e = await fails(new SqlProvider({ connection: 'mysql://root:wrong-pw@127.0.0.1:3306/test' }));
    expect(e.code).toBe('EACCES');
    expect(e.message).toContain('Access denied');
    expect(e.message).toContain('mysql://root:***@127.0.0.1:3306/test');
    expect(e.message).not.toContain('wrong-pw');
  });

  it('missing privileges (a MariaDB user that may only SELECT): EACCES on migrate', async () => {
    const admin = await freshProvider(DBS[1]!);
    const user = `ro_${randomPrefix().slice(1, 9)}`;
    try {
      await sql.raw(`create user '${user}'@'%' identified by 'pw'`).execute(admin.db);
      await sql.raw(`grant select on test.* to '${user}'@'%'`).execute(admin.db);
      const e = await fails(new SqlProvider({ connection: `mysql://${user}:pw@127.0.0.1:3306/test`, tablePrefix: randomPrefix() }));
      expect(e.code).toBe('EACCES');
      expect(e.message).toMatch(/denied/i);
      expect(e.message).toContain(`mysql://${user}:***@127.0.0.1:3306/test`);
    } finally {
      await sql.raw(`drop user if exists '${user}'@'%'`).execute(admin.db);
      await disposeProvider(admin);
    }
  });

  it('a SQLite file that cannot be opened, and an unknown scheme', async () => {
    const e = await fails(new SqlProvider({ connection: 'sqlite:/no/such/dir/fs.db' }));
    expect(e.code).toBe('EIO');
    expect(e.message).toContain('sqlite:/no/such/dir/fs.db');
    expect(() => new SqlProvider({ connection: 'oracle://x' })).toThrow(/unsupported database URL/);
    expect(() => new SqlProvider({ connection: 'sqlite::memory:', tablePrefix: 'bad-prefix' })).toThrow(/tablePrefix/);
    expect(toVfsError(e).code).toBe('EIO');
  });
});

describe('the database drops connections', () => {
  it('PostgreSQL ending the pool\'s idle connections (a restart, a failover) is survived: the next query connects again', async () => {
    const url = await postgresUrl();
    // Named, so that only this provider's connections are ended, not those of tests running beside it.
    const name = `ftp-drop-${randomPrefix()}`;
    const p = await freshProvider(DBS[0]!, {}, `${url}${url.includes('?') ? '&' : '?'}application_name=${name}`);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await put(p, '/f', 'before');
      const ended = await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1', [name]);
      expect(ended.rowCount).toBeGreaterThan(0);
      // The idle connections learn of it now (an 'error' event on the pool); an unhandled one would end the process.
      await new Promise((r) => setTimeout(r, 300));
      expect((await get(p, '/f')).toString()).toBe('before');
      // A connection in use (checked out of the pool, inside a transaction, as every change the driver makes is)
      // ended under it: the statement fails; the process goes on.
      const running = p.db.transaction().execute((trx) => sql`select pg_sleep(5)`.execute(trx));
      const failed = running.then(() => null, (err: unknown) => err as Error);
      for (let i = 0; i < 50; i++) {
        const busy = await admin.query("select pid from pg_stat_activity where application_name = $1 and query like '%pg_sleep%'", [name]);
        if (busy.rowCount) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect((await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1', [name])).rowCount).toBeGreaterThan(0);
      expect((await failed)?.message).toMatch(/terminat/i);
      await new Promise((r) => setTimeout(r, 300));
      expect((await get(p, '/f')).toString()).toBe('before');
    } finally {
      await admin.end();
      await disposeProvider(p);
    }
  });
});

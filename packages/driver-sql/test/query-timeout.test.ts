// A database that stops answering (a frozen host, a partition) or a statement stuck behind a lock must fail the
// FTP command (451) within queryTimeoutMs: a SIZE once waited for ever (no reply in 560 s), and the connections it
// held stayed stuck.
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { freshProvider, DBS } from './services.js';
import { sql } from 'kysely';
import { put } from './helpers.js';

/** A TCP relay to `target` that forwards, or (`hang`) holds everything: connections stay open, nothing passes. */
async function relay(target: URL): Promise<{ url: string; hang(on: boolean): void; close(): void }> {
  let hanging = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    for (const s of [client, upstream]) s.on('error', () => undefined);
    client.on('data', (d) => void (hanging ? undefined : upstream.write(d)));
    upstream.on('data', (d) => void (hanging ? undefined : client.write(d)));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = new URL(target);
  url.port = String((server.address() as AddressInfo).port);
  return {
    url: url.toString(),
    hang: (on) => void (hanging = on),
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

const closers: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

describe.each(DBS.filter((d) => d.dialect !== 'sqlite'))('queryTimeoutMs ($dialect)', (db) => {
  it('a database that stops answering fails the statement (EIO) within it; the pool connects again once it answers', { timeout: 60_000 }, async () => {
    const r = await relay(new URL(await db.url()));
    closers.push(() => r.close());
    const p = await freshProvider(db, { queryTimeoutMs: 1500, poolSize: 2 }, r.url);
    closers.push(() => p.close());
    await put(p, '/f', 'hello');
    r.hang(true);
    // More lookups than the pool has connections: each fails in time, none waits for ever behind a stuck one.
    const started = performance.now();
    const results = await Promise.all([1, 2, 3].map(() => p.stat('/f').then(() => 'ok', (err: NodeJS.ErrnoException) => err.code)));
    expect(results).toEqual(['EIO', 'EIO', 'EIO']);
    expect(performance.now() - started).toBeLessThan(15_000);
    r.hang(false);
    expect((await p.stat('/f')).size).toBe(5);
    // A connection whose handshake the relay dropped during the hang fails once its own connect timeout passes, and
    // may take one request with it (EIO, as any connection that failed): the tables are dropped on a later try.
    for (let attempt = 1; ; attempt++) {
      const dropped = await p.dropTables().then(() => true, () => false);
      if (dropped || attempt === 3) break;
    }
  });
});

/**
 * Another session holding every row of the provider's inodes table locked, in an open transaction, through a raw
 * connection; `waiting()` counts the database's sessions waiting for a lock on a statement of that table.
 */
async function rowLocker(dialect: string, url: string, table: string): Promise<{ waiting(): Promise<number>; release(): Promise<void> }> {
  if (dialect === 'postgres') {
    const pg = (await import('pg')).default;
    const holder = new pg.Client({ connectionString: url });
    const observer = new pg.Client({ connectionString: url });
    await holder.connect();
    await observer.connect();
    await holder.query('BEGIN');
    await holder.query(`SELECT id FROM ${table} FOR UPDATE`);
    return {
      waiting: async () =>
        Number((await observer.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, [`%${table}%`])).rows[0].n),
      release: async () => {
        await holder.query('COMMIT');
        await holder.end();
        await observer.end();
      },
    };
  }
  const mysql = (await import('mysql2/promise')).default;
  const holder = await mysql.createConnection({ uri: url.replace(/^mariadb:/i, 'mysql:') });
  const observer = await mysql.createConnection({ uri: url.replace(/^mariadb:/i, 'mysql:') });
  await holder.query('BEGIN');
  await holder.query(`SELECT id FROM ${table} FOR UPDATE`);
  return {
    waiting: async () => {
      const [rows] = await observer.query(`SELECT count(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND ID <> CONNECTION_ID()`, [`%${table}%`]);
      return Number((rows as Array<{ n: number }>)[0]!.n);
    },
    release: async () => {
      await holder.query('COMMIT');
      await holder.end();
      await observer.end();
    },
  };
}

describe.each(DBS.filter((d) => d.dialect !== 'sqlite'))('queryTimeoutMs on the server side ($dialect)', (db) => {
  it('a statement that timed out is not left waiting in the database, holding its locks and applying later', { timeout: 60_000 }, async () => {
    const p = await freshProvider(db, { queryTimeoutMs: 1500, poolSize: 2 });
    closers.push(() => p.close());
    await put(p, '/f', 'hello');
    const table = p.tables.inodes;
    const locker = await rowLocker(db.dialect, await db.url(), table);
    let released = false;
    closers.push(() => (released ? undefined : locker.release()));
    const started = performance.now();
    await expect(p.unlink('/f')).rejects.toMatchObject({ code: 'EIO' });
    expect(performance.now() - started).toBeLessThan(10_000);
    // The client gave up; the database must have too, within a moment (before: the statement waited for the lock for
    // as long as it was held, PostgreSQL for ever, InnoDB for innodb_lock_wait_timeout, 50 s by default).
    let waiting = await locker.waiting();
    for (let i = 0; i < 40 && waiting > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      waiting = await locker.waiting();
    }
    expect(waiting).toBe(0);
    released = true;
    await locker.release();
    expect((await p.stat('/f')).size).toBe(5);
    // The database's deadline is a second past the client's (whole seconds on MySQL), so that the client's decides.
    const setting = db.dialect === 'postgres' ? sql<{ v: string }>`SHOW statement_timeout` : sql<{ v: number }>`SELECT @@SESSION.innodb_lock_wait_timeout AS v`;
    const rows = (await setting.execute(p.db)).rows as Array<Record<string, unknown>>;
    expect(Object.values(rows[0]!)[0]).toBe(db.dialect === 'postgres' ? '2500ms' : 3);
    await p.dropTables();
  });
});

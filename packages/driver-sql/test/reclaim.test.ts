import { once } from 'node:events';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { UploadStream } from '@ftp/vfs';
import { CHUNK_SIZE, SqlProvider } from '../src/index.js';
import { LEASE_MS } from '../src/read-stream.js';
import { bytes, countingProvider, get, put, rowCounts, rowsNow } from './helpers.js';
import { DBS, disposeProvider, freshProvider, randomPrefix } from './services.js';

afterAll(() => {
  for (const db of DBS) db.cleanup();
});

/** A promise to hold the reclaim at its statements, opened by the test. */
class Gate {
  #open: () => void = () => undefined;
  #p: Promise<void> = Promise.resolve();
  close(): void {
    this.#p = new Promise((resolve) => (this.#open = resolve));
  }
  open(): void {
    this.#open();
  }
  wait(): Promise<void> {
    return this.#p;
  }
}

/** Chunk rows of inode `id`. */
async function rowsOf(p: SqlProvider, id: number): Promise<number> {
  const r = await p.db.selectFrom(p.tables.chunk('c')).select((eb) => eb.fn.countAll<number | string>().as('n')).where('c.inode', '=', id).executeTakeFirstOrThrow();
  return Number(r.n);
}

/** The inode row `id`, if any. */
async function inodeRow(p: SqlProvider, id: number): Promise<{ parent: number | null; name: string } | undefined> {
  const r = await p.db.selectFrom(p.tables.inode('i')).select(['i.parent', 'i.name']).where('i.id', '=', id).executeTakeFirst();
  return r === undefined ? undefined : { parent: r.parent === null ? null : Number(r.parent), name: Buffer.isBuffer(r.name) ? r.name.toString() : String(r.name) };
}

async function until(what: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Statements that delete chunk rows. */
const chunkDeletes = (p: SqlProvider, statements: string[]): string[] => statements.filter((q) => /^delete from /i.test(q) && q.includes(p.tables.chunks));

/** 12 whole chunks and a few bytes: 13 chunk rows, past what is deleted inside a command's transaction (4). */
const BIG = 12 * CHUNK_SIZE + 100;

for (const db of DBS) {
  describe(`SqlProvider (${db.dialect}): the rows of removed files are reclaimed after the command, in bounded statements`, () => {
    it('DELE, a STOR over the file, RNTO over it and an interrupted upload delete no chunk row themselves; the rows go afterwards, a few per statement', async () => {
      const gate = new Gate();
      const batches = new Map<number, number[]>();
      const onBatch = async (id: number, n: number): Promise<void> => {
        batches.set(id, [...(batches.get(id) ?? []), n]);
        await gate.wait();
      };
      const { p, sql, kysely } = await countingProvider(db, { reclaim: { rows: 2, onBatch } });
      try {
        const ops: { what: string; run: () => Promise<number>; after: () => Promise<void> }[] = [
          {
            what: 'DELE',
            run: async () => {
              await p.unlink('/f');
              return 0;
            },
            after: async () => {
              await expect(p.stat('/f')).rejects.toMatchObject({ code: 'ENOENT' });
              expect(await p.readdir('/')).not.toContain('f');
              await expect(get(p, '/f')).rejects.toMatchObject({ code: 'ENOENT' });
            },
          },
          {
            what: 'STOR over it',
            run: async () => {
              await put(p, '/f', 'new');
              return 1;
            },
            after: async () => expect((await get(p, '/f')).toString()).toBe('new'),
          },
          {
            what: 'RNTO over it',
            run: async () => {
              await put(p, '/g', 'renamed');
              await p.rename('/g', '/f');
              return 1;
            },
            after: async () => {
              expect((await get(p, '/f')).toString()).toBe('renamed');
              expect(await p.readdir('/')).toEqual(['f']);
            },
          },
        ];
        for (const { what, run, after } of ops) {
          await p.unlink('/f').catch(() => undefined);
          await rowCounts(p);
          await put(p, '/f', bytes(BIG, 31));
          const id = (await p.stat('/f')).ino;
          gate.close();
          const q0 = sql.length;
          const newRows = await run();
          // The command itself deleted no chunk row: it answered after its one short transaction.
          expect(chunkDeletes(p, sql.slice(q0)), what).toEqual([]);
          await after();
          // The reclaim runs afterwards, held here at its first statement: the rest of the rows are still there.
          await until(() => batches.has(id));
          expect(batches.get(id), what).toEqual([2]);
          expect(await rowsOf(p, id), what).toBe(11);
          expect((await inodeRow(p, id))?.parent, what).toBe(null);
          gate.open();
          expect(await rowCounts(p), what).toEqual({ inodes: 1 + newRows, chunks: newRows });
          // Two rows per statement, then the inode row: all gone.
          expect(batches.get(id), what).toEqual([2, 4, 6, 8, 10, 12, 13]);
          expect(await inodeRow(p, id), what).toBeUndefined();
        }
        // An upload interrupted after 13 chunk rows: the clean-up marks its inode, and the rows go the same way.
        gate.close();
        const ws = (await p.createWriteStream('/u')) as UploadStream & { settled: Promise<void> };
        await new Promise<void>((resolve, reject) => ws.write(bytes(BIG, 32), (err) => (err ? reject(err) : resolve())));
        const temp = await p.db.selectFrom(p.tables.inode('i')).select('i.id').where('i.parent', 'is', null).executeTakeFirstOrThrow();
        const id = Number(temp.id);
        await until(async () => (await rowsOf(p, id)) >= 12);
        const q0 = sql.length;
        ws.on('error', () => undefined);
        ws.transferError?.(new Error('client went away'));
        ws.destroy();
        await once(ws, 'close');
        expect(chunkDeletes(p, sql.slice(q0))).toEqual([]);
        await until(() => batches.has(id));
        expect(await rowsOf(p, id)).toBeGreaterThan(0);
        gate.open();
        await ws.settled;
        expect(await rowsNow(p)).toEqual({ inodes: 2, chunks: 1 });
        expect(batches.get(id)!.length).toBeGreaterThanOrEqual(6);
      } finally {
        gate.open();
        await disposeProvider(p);
        await kysely.destroy();
      }
    });

    it('a small file goes with its rows in the command (one statement), as before', async () => {
      const batches: number[] = [];
      const { p, sql, kysely } = await countingProvider(db, { reclaim: { rows: 1, onBatch: (_id, n) => void batches.push(n) } });
      try {
        await put(p, '/s', bytes(4 * CHUNK_SIZE, 33));
        const q0 = sql.length;
        await p.unlink('/s');
        expect(chunkDeletes(p, sql.slice(q0))).toHaveLength(1);
        expect(await rowsNow(p)).toEqual({ inodes: 1, chunks: 0 });
        await p.reclaimed();
        expect(batches).toEqual([]);
      } finally {
        await disposeProvider(p);
        await kysely.destroy();
      }
    });

    it('a download running while its file is deleted or replaced reads every byte; the rows go, in batches, once it ends', async () => {
      const batches = new Map<number, number[]>();
      const p = await freshProvider(db, { reclaim: { rows: 2, onBatch: (id, n) => void batches.set(id, [...(batches.get(id) ?? []), n]) } });
      try {
        const data = bytes(BIG, 34);
        await put(p, '/f', data);
        await put(p, '/g', data);
        const ids = [(await p.stat('/f')).ino, (await p.stat('/g')).ino];
        const its = [(await p.createReadStream('/f'))[Symbol.asyncIterator](), (await p.createReadStream('/g'))[Symbol.asyncIterator]()];
        const parts: Buffer[][] = [[], []];
        for (let i = 0; i < 2; i++) parts[i]!.push((await its[i]!.next()).value as Buffer);
        await p.unlink('/f');
        await put(p, '/g', 'new');
        await expect(p.stat('/f')).rejects.toMatchObject({ code: 'ENOENT' });
        expect((await get(p, '/g')).toString()).toBe('new');
        // Held by the downloads: nothing reclaimed, however long.
        await p.reclaimNow();
        for (const id of ids) expect(await rowsOf(p, id)).toBe(13);
        expect(batches.size).toBe(0);
        for (let i = 0; i < 2; i++) {
          for (let r = await its[i]!.next(); r.done !== true; r = await its[i]!.next()) parts[i]!.push(r.value as Buffer);
          expect(Buffer.concat(parts[i]!).equals(data)).toBe(true);
        }
        // The last reader's release schedules the reclaim.
        await until(async () => (await rowsNow(p)).inodes === 2);
        expect(await rowCounts(p)).toEqual({ inodes: 2, chunks: 1 });
        for (const id of ids) expect(batches.get(id)).toEqual([2, 4, 6, 8, 10, 12, 13]);
      } finally {
        await disposeProvider(p);
      }
    });

    it('quota: a removed file frees its bytes at once (DELE, STOR over it) before its rows are gone, unless a download holds it', async () => {
      const quota = 20 * CHUNK_SIZE;
      const gate = new Gate();
      const p = await freshProvider(db, { quota, reclaim: { rows: 2, onBatch: () => gate.wait() } });
      try {
        gate.close();
        await put(p, '/a', bytes(12 * CHUNK_SIZE, 35));
        const a = (await p.stat('/a')).ino;
        expect(await p.availableSpace('/')).toBe(quota - 12 * CHUNK_SIZE);
        await p.unlink('/a');
        expect(await p.availableSpace('/')).toBe(quota);
        await until(async () => (await rowsOf(p, a)) === 10);
        // The 12 chunks of /a are still rows, and another 12 fit.
        await put(p, '/b', bytes(12 * CHUNK_SIZE, 36));
        expect(await p.availableSpace('/')).toBe(quota - 12 * CHUNK_SIZE);
        gate.open();
        await p.reclaimed();
        // A download holds the old version of /b while a STOR replaces it: both count while it reads (a client
        // reading removed files slowly would otherwise store past the quota), the old one no more once it ends.
        const reader = (await p.createReadStream('/b'))[Symbol.asyncIterator]();
        await reader.next();
        await put(p, '/b', bytes(6 * CHUNK_SIZE, 37));
        expect(await p.availableSpace('/')).toBe(quota - 18 * CHUNK_SIZE);
        await expect(put(p, '/c', bytes(10 * CHUNK_SIZE, 38))).rejects.toMatchObject({ code: 'ENOSPC' });
        while ((await reader.next()).done !== true);
        await until(async () => (await p.availableSpace('/')) === quota - 6 * CHUNK_SIZE);
        await put(p, '/c', bytes(14 * CHUNK_SIZE, 38));
        expect(await p.availableSpace('/')).toBe(0);
        await expect(put(p, '/d', 'x')).rejects.toMatchObject({ code: 'ENOSPC' });
        await until(async () => (await rowsNow(p)).chunks === 20);
        expect(await rowCounts(p)).toEqual({ inodes: 3, chunks: 20 });
      } finally {
        gate.open();
        await disposeProvider(p);
      }
    });

    it('a reclaim stopped by close() leaves its rows marked; the next start reclaims them, in batches', async () => {
      const url = await db.url();
      const prefix = randomPrefix();
      let closing: Promise<void> | undefined;
      const first: number[] = [];
      const a: SqlProvider = new SqlProvider({
        connection: url,
        tablePrefix: prefix,
        reclaim: {
          rows: 2,
          onBatch: (_id, n) => {
            first.push(n);
            if (n === 4) closing = a.close();
          },
        },
      });
      await a.migrate();
      await put(a, '/f', bytes(BIG, 39));
      const id = (await a.stat('/f')).ino;
      await a.unlink('/f');
      await until(() => closing !== undefined);
      await closing;
      // Stopped after the statement that was running when close() was called.
      expect(first).toEqual([2, 4]);
      const second: number[] = [];
      const b = new SqlProvider({ connection: url, tablePrefix: prefix, reclaim: { rows: 2, onBatch: (_id, n) => void second.push(n) } });
      try {
        // Left as it was: marked, unlinked, 9 rows.
        expect(await rowsOf(b, id)).toBe(9);
        expect(await inodeRow(b, id)).toEqual({ parent: null, name: `.detached-${id}` });
        await b.migrate();
        await b.reclaimed();
        expect(await rowsOf(b, id)).toBe(0);
        expect(await inodeRow(b, id)).toBeUndefined();
        expect(second).toEqual([2, 4, 6, 8, 9]);
        expect(await rowCounts(b)).toEqual({ inodes: 1, chunks: 0 });
      } finally {
        await disposeProvider(b);
      }
    });

    it("a process that dies mid-reclaim: its claim expires and another process's periodic sweep finishes the work", async () => {
      const batches: number[] = [];
      const p = await freshProvider(db, { reclaim: { rows: 2, sweepMs: 100, onBatch: (_id, n) => void batches.push(n) } });
      try {
        await put(p, '/f', bytes(BIG, 40));
        const id = (await p.stat('/f')).ino;
        // What a process that claimed the removed file and died leaves: the mark, a claim for 1.5 s more, its rows.
        await p.db.deleteFrom(p.tables.c).where('inode', '=', id).where('seq', '<', 4).execute();
        await p.db.updateTable(p.tables.i).set({ parent: null, name: `.detached-${id}`, mtime: Date.now() + 1500 }).where('id', '=', id).execute();
        await p.reclaimNow();
        await new Promise((r) => setTimeout(r, 500));
        expect(await rowsOf(p, id)).toBe(9);
        expect(batches).toEqual([]);
        // Expired: the sweep that runs every 100 ms here (every minute by default) takes it over.
        await until(async () => (await inodeRow(p, id)) === undefined);
        expect(await rowCounts(p)).toEqual({ inodes: 1, chunks: 0 });
        expect(batches).toEqual([2, 4, 6, 8, 9]);
      } finally {
        await disposeProvider(p);
      }
    });

    it('the upload of a process that died (untouched for a day) is reclaimed at the next start, in batches', async () => {
      const url = await db.url();
      const prefix = randomPrefix();
      const a = new SqlProvider({ connection: url, tablePrefix: prefix });
      await a.migrate();
      await put(a, '/f', bytes(BIG, 41));
      const ws = await a.createWriteStream('/f');
      await new Promise<void>((resolve, reject) => ws.write(bytes(BIG, 42), (err) => (err ? reject(err) : resolve())));
      const temp = Number((await a.db.selectFrom(a.tables.inode('i')).select('i.id').where('i.parent', 'is', null).executeTakeFirstOrThrow()).id);
      await until(async () => (await rowsOf(a, temp)) >= 12);
      // The process "dies": the upload is never ended nor discarded, and a day passes.
      await a.db.updateTable(a.tables.i).set({ mtime: Date.now() - 25 * 3600 * 1000 }).where('id', '=', temp).execute();
      ws.on('error', () => undefined);
      await a.close();
      const batches: number[] = [];
      const b = new SqlProvider({ connection: url, tablePrefix: prefix, reclaim: { rows: 2, onBatch: (_id, n) => void batches.push(n) } });
      try {
        await b.migrate();
        await b.reclaimed();
        expect(await inodeRow(b, temp)).toBeUndefined();
        expect(batches.length).toBeGreaterThanOrEqual(6);
        expect(await rowCounts(b)).toEqual({ inodes: 2, chunks: 13 });
        expect((await get(b, '/f')).equals(bytes(BIG, 41))).toBe(true);
      } finally {
        ws.destroy();
        await disposeProvider(b);
      }
    });

    it('a download whose client takes nothing for longer than a lease (a slow socket) keeps it: a replacement meanwhile leaves its rows', async () => {
      // Made before the clock is faked: its periodic sweep stays on real time (the test runs it when it needs one).
      const p = await freshProvider(db, { reclaim: { rows: 2 } });
      let disposed = false;
      // A deadline on real time: Date is faked.
      const poll = async (what: () => Promise<boolean>, ms: number): Promise<boolean> => {
        const deadline = performance.now() + ms;
        while (!(await what())) {
          if (performance.now() > deadline) return false;
          await new Promise((r) => setTimeout(r, 10));
        }
        return true;
      };
      const leaseOf = async (id: number): Promise<number | undefined> => {
        const r = await p.db.selectFrom(p.tables.reader('r')).select('r.expires').where('r.inode', '=', id).executeTakeFirst();
        return r === undefined ? undefined : Number(r.expires);
      };
      vi.useFakeTimers({ toFake: ['Date', 'setInterval', 'clearInterval'] });
      try {
        const data = bytes(BIG, 45);
        await put(p, '/f', data);
        await put(p, '/g', data);
        const id = (await p.stat('/f')).ino;
        const timers = vi.getTimerCount();
        const reading = (await p.createReadStream('/f'))[Symbol.asyncIterator]();
        const parts: Buffer[] = [(await reading.next()).value as Buffer];
        // Eleven minutes in which the client takes nothing (backpressure: the stream is not read).
        await vi.advanceTimersByTimeAsync(LEASE_MS + 60_000);
        await poll(async () => ((await leaseOf(id)) ?? 0) > Date.now(), 3000);
        await put(p, '/f', 'replacement');
        await p.reclaimNow();
        expect(await rowsOf(p, id)).toBe(13);
        for (let r = await reading.next(); r.done !== true; r = await reading.next()) parts.push(r.value as Buffer);
        expect(Buffer.concat(parts).equals(data)).toBe(true);
        // Its lease ended with it, and its timer too; then the old version goes.
        expect(await poll(async () => (await rowsNow(p)).inodes === 3, 5000)).toBe(true);
        expect(await rowsOf(p, id)).toBe(0);
        expect(vi.getTimerCount()).toBe(timers);
        // Destroyed, or failed (a chunk row gone): the timer stops as well.
        const destroyed = await p.createReadStream('/g');
        expect(vi.getTimerCount()).toBe(timers + 1);
        destroyed.destroy();
        await once(destroyed, 'close');
        expect(vi.getTimerCount()).toBe(timers);
        const gid = (await p.stat('/g')).ino;
        const failing = await p.createReadStream('/g');
        await p.db.deleteFrom(p.tables.c).where('inode', '=', gid).where('seq', '=', 1).execute();
        await expect((async () => {
          for await (const _ of failing) void _;
        })()).rejects.toMatchObject({ code: 'EIO' });
        expect(vi.getTimerCount()).toBe(timers);
        // A renewal that fails (the database gone) is not the process's end: the download fails on its own reads.
        const orphan = await p.createReadStream('/g');
        orphan.on('error', () => undefined);
        disposed = true;
        await disposeProvider(p);
        await vi.advanceTimersByTimeAsync(LEASE_MS);
        await new Promise((r) => setTimeout(r, 50));
        orphan.destroy();
        expect(vi.getTimerCount()).toBe(timers);
      } finally {
        vi.useRealTimers();
        if (!disposed) await disposeProvider(p);
      }
    });

    it('a file handle on a removed file gets ENOENT and writes nothing under it', async () => {
      const p = await freshProvider(db, { reclaim: { rows: 2 } });
      try {
        await put(p, '/f', bytes(BIG, 43));
        const h = await p.open('/f', 'r+');
        await p.unlink('/f');
        await expect(h.read(Buffer.alloc(10), 0, 10, 0)).rejects.toMatchObject({ code: 'ENOENT' });
        await expect(h.write(Buffer.from('x'), 0, 1, 5 * CHUNK_SIZE)).rejects.toMatchObject({ code: 'ENOENT' });
        await h.close();
        expect(await rowCounts(p)).toEqual({ inodes: 1, chunks: 0 });
      } finally {
        await disposeProvider(p);
      }
    });

    it("a file handle's read never comes back short of a chunk row that is gone: EIO, not a short read", async () => {
      const p = await freshProvider(db, { reclaim: { rows: 2 } });
      try {
        await put(p, '/f', bytes(4 * CHUNK_SIZE, 44));
        const id = (await p.stat('/f')).ino;
        const h = await p.open('/f', 'r');
        await p.db.deleteFrom(p.tables.c).where('inode', '=', id).where('seq', '=', 2).execute();
        await expect(h.read(Buffer.alloc(3 * CHUNK_SIZE), 0, 3 * CHUNK_SIZE, CHUNK_SIZE)).rejects.toMatchObject({ code: 'EIO' });
        await h.close();
      } finally {
        await disposeProvider(p);
      }
    });

    // SQLite: one provider (one connection) per file per process, see the README.
    if (db.dialect !== 'sqlite') {
      it('two processes on one database: a removed file is reclaimed by one of them, the other leaves its claim alone', async () => {
        const url = await db.url();
        const prefix = randomPrefix();
        const gate = new Gate();
        const mine: number[] = [];
        const theirs: number[] = [];
        const a = new SqlProvider({
          connection: url,
          tablePrefix: prefix,
          reclaim: {
            rows: 2,
            onBatch: async (_id, n) => {
              mine.push(n);
              await gate.wait();
            },
          },
        });
        const b = new SqlProvider({ connection: url, tablePrefix: prefix, reclaim: { rows: 2, onBatch: (_id, n) => void theirs.push(n) } });
        await a.migrate();
        try {
          gate.close();
          await put(a, '/f', bytes(BIG, 44));
          const id = (await a.stat('/f')).ino;
          await a.unlink('/f');
          await until(() => mine.length === 1);
          // b's sweeps (its start, and more) find the removed file claimed by a: they leave it.
          await b.migrate();
          await b.reclaimNow();
          await b.reclaimNow();
          expect(theirs).toEqual([]);
          expect(await rowsOf(b, id)).toBe(11);
          gate.open();
          await a.reclaimed();
          expect(mine).toEqual([2, 4, 6, 8, 10, 12, 13]);
          expect(await rowCounts(b)).toEqual({ inodes: 1, chunks: 0 });
          // Both at once on new removals: each file reclaimed once, nothing left, no error.
          for (let i = 0; i < 4; i++) await put(i % 2 === 0 ? a : b, `/m${i}`, bytes(BIG, 45 + i));
          mine.length = 0;
          await Promise.all([a.unlink('/m0'), b.unlink('/m1'), a.unlink('/m2'), b.unlink('/m3'), b.reclaimNow(), a.reclaimNow()]);
          await Promise.all([a.reclaimNow(), b.reclaimNow()]);
          expect(await rowCounts(a)).toEqual({ inodes: 1, chunks: 0 });
          // 4 files of 13 rows, 2 per statement: 7 statements each, by whichever process claimed it.
          expect(mine.length + theirs.length).toBe(4 * 7);
        } finally {
          gate.open();
          await b.close();
          await disposeProvider(a);
        }
      });
    }
  });
}

describe('SqlProvider (sqlite): the reclaim of a big file leaves the event loop turns', () => {
  it('other work runs between the statements that delete a removed file, after DELE and after a replacing STOR', async () => {
    const db = DBS.find((d) => d.dialect === 'sqlite')!;
    const turnsAt: number[] = [];
    let turns = 0;
    const p = await freshProvider(db, { reclaim: { onBatch: () => void turnsAt.push(turns) } });
    try {
      const data = Buffer.alloc(64 * 1024 * 1024, 7);
      for (const op of ['DELE', 'STOR'] as const) {
        await put(p, '/f', data);
        turnsAt.length = 0;
        turns = 0;
        let ticking = true;
        const tick = (): void => {
          turns++;
          if (ticking) setImmediate(tick);
        };
        setImmediate(tick);
        if (op === 'DELE') await p.unlink('/f');
        else await put(p, '/f', 'small');
        // Answered before any statement of the reclaim.
        expect(turnsAt, op).toEqual([]);
        await p.reclaimed();
        ticking = false;
        // 256 rows at the default pace (16, then up to 32 per statement of ~10 ms): several statements, turns between.
        expect(turnsAt.length, op).toBeGreaterThanOrEqual(4);
        for (let i = 1; i < turnsAt.length; i++) expect(turnsAt[i]!, op).toBeGreaterThan(turnsAt[i - 1]!);
        expect(await rowCounts(p), op).toEqual(op === 'DELE' ? { inodes: 1, chunks: 0 } : { inodes: 2, chunks: 1 });
      }
    } finally {
      await disposeProvider(p);
    }
  });
});

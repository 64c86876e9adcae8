import { once } from 'node:events';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import type { UploadStream } from '@ftp/vfs';
import { CHUNK_SIZE } from '../src/index.js';
import type { SqlProvider } from '../src/index.js';
import { ftpClient, startFtp } from './ftp-helpers.js';
import { bytes, countingProvider, get, put, rowCounts } from './helpers.js';
import { DBS, disposeProvider, freshProvider } from './services.js';

afterAll(() => {
  for (const db of DBS) db.cleanup();
});

type Upload = UploadStream & { settled: Promise<void> };

/** Writes `data` and waits for its callback (which, for an upload that continues a file, follows the copy). */
function write(ws: UploadStream, data: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => ws.write(data, (err) => (err ? reject(err) : resolve())));
}

async function finish(ws: UploadStream): Promise<void> {
  ws.end();
  await once(ws, 'finish');
}

/** The stream's error, or `undefined` when none came within `ms` (then the test fails on what it expected). */
function errorOf(ws: UploadStream, ms = 5000): Promise<(Error & { code?: string }) | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    ws.once('error', (err) => {
      clearTimeout(timer);
      resolve(err);
    });
  });
}

/** Resolves on the stream's `close`, or after `ms` (a stream that never closes fails the test's next assertion). */
function closed(ws: UploadStream, ms = 5000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** SQL statements that copy chunk rows into another inode (INSERT … SELECT). */
const isCopy = (q: string): boolean => /^insert into \S+ \(.*\) select /i.test(q);

for (const db of DBS) {
  describe(`SqlProvider (${db.dialect}): APPE and REST + STOR over a file of many chunks`, () => {
    it('keep exactly the right bytes, copied a bounded number of chunk rows per statement; the quota counts the added bytes only', async () => {
      const quota = 14 * CHUNK_SIZE;
      const { p, sql, kysely } = await countingProvider(db, { uploadCopy: { rows: 3 }, quota });
      try {
        // 10 whole chunks and 1,000 bytes of an eleventh.
        const base = bytes(10 * CHUNK_SIZE + 1000, 21);
        await put(p, '/f', base);
        const copies = async (run: () => Promise<void>): Promise<number> => {
          const q0 = sql.length;
          await run();
          return sql.slice(q0).filter(isCopy).length;
        };
        // APPE: 10 whole rows in statements of 3 (4 of them), the partial eleventh read, then the new bytes.
        expect(await copies(() => put(p, '/f', 'tail', { append: true }))).toBe(4);
        let want = Buffer.concat([base, Buffer.from('tail')]);
        expect((await get(p, '/f')).equals(want)).toBe(true);
        expect(await p.availableSpace('/')).toBe(quota - want.length);
        // REST + STOR in the middle of chunk 7: 7 whole rows (3 statements), 500 bytes of chunk 7, the data.
        const data = bytes(2 * CHUNK_SIZE + 17, 22);
        expect(await copies(() => put(p, '/f', data, { start: 7 * CHUNK_SIZE + 500 }))).toBe(3);
        want = Buffer.concat([want.subarray(0, 7 * CHUNK_SIZE + 500), data]);
        expect((await get(p, '/f')).equals(want)).toBe(true);
        // REST + STOR on a chunk boundary: whole rows only.
        expect(await copies(() => put(p, '/f', 'B', { start: 6 * CHUNK_SIZE }))).toBe(2);
        want = Buffer.concat([want.subarray(0, 6 * CHUNK_SIZE), Buffer.from('B')]);
        expect((await get(p, '/f')).equals(want)).toBe(true);
        expect((await p.stat('/f')).size).toBe(want.length);
        // Nothing left over: the root, the file, its chunks.
        expect(await rowCounts(p)).toEqual({ inodes: 2, chunks: 7 });
        // The kept part is not counted twice: an APPE may add what is left, not a byte more.
        const left = await p.availableSpace('/');
        expect(left).toBe(quota - want.length);
        await expect(put(p, '/f', bytes(left + 1, 26), { append: true })).rejects.toMatchObject({ code: 'ENOSPC' });
        expect(await rowCounts(p)).toEqual({ inodes: 2, chunks: 7 });
        await put(p, '/f', bytes(left, 26), { append: true });
        expect(await p.availableSpace('/')).toBe(0);
        expect((await get(p, '/f')).equals(Buffer.concat([want, bytes(left, 26)]))).toBe(true);
      } finally {
        await disposeProvider(p);
        await kysely.destroy();
      }
    });

    it('a change of the file during the copy fails the upload with EBUSY at the next statement; the change is kept, nothing left over', async () => {
      const base = bytes(12 * CHUNK_SIZE + 300, 23);
      // What the file holds after each change (undefined: gone), and its chunk rows.
      const changes: { what: string; change: (p: SqlProvider) => Promise<void>; content: Buffer | undefined; chunks: number }[] = [
        { what: 'a STOR over it', change: (p) => put(p, '/f', 'NEW'), content: Buffer.from('NEW'), chunks: 1 },
        {
          what: 'a file handle writing in place (gen + 1)',
          change: async (p) => {
            const h = await p.open('/f', 'r+');
            await h.write(Buffer.from('W'), 0, 1, 0);
            await h.close();
          },
          content: Buffer.concat([Buffer.from('W'), base.subarray(1)]),
          chunks: 13,
        },
        { what: 'a deletion', change: (p) => p.unlink('/f'), content: undefined, chunks: 0 },
        {
          what: 'a rename over it',
          change: async (p) => {
            await put(p, '/y', 'Y');
            await p.rename('/y', '/f');
          },
          content: Buffer.from('Y'),
          chunks: 1,
        },
      ];
      for (const { what, change, content, chunks } of changes) {
        for (const [options, at] of [
          [{ append: true }, 4],
          // After the last whole rows, before the partial chunk is read.
          [{ start: 12 * CHUNK_SIZE + 100 }, 12],
        ] as const) {
          const where = `${what}, ${JSON.stringify(options)}`;
          const batches: number[] = [];
          let p: SqlProvider | undefined;
          const onBatch = async (n: number): Promise<void> => {
            batches.push(n);
            if (n === at) await change(p!);
          };
          p = await freshProvider(db, { uploadCopy: { rows: 2, onBatch } });
          try {
            await put(p, '/f', base);
            const ws = (await p.createWriteStream('/f', options)) as Upload;
            const failed = errorOf(ws);
            const closing = closed(ws);
            ws.write('data', () => undefined);
            // The upload fails before its end (none was asked for).
            expect((await failed)?.code, where).toBe('EBUSY');
            // Stopped at the statement after the change, which copied nothing: no batch after it.
            expect(batches, where).toEqual([2, 4, 6, 8, 10, 12].filter((n) => n <= at));
            await closing;
            await ws.settled;
            if (content === undefined) await expect(p.stat('/f')).rejects.toMatchObject({ code: 'ENOENT' });
            else expect((await get(p, '/f')).equals(content), where).toBe(true);
            // No temporary inode, no copied chunk.
            expect(await rowCounts(p), where).toEqual({ inodes: content === undefined ? 1 : 2, chunks });
          } finally {
            await disposeProvider(p);
          }
        }
      }
    });

    it('an upload destroyed or failed during the copy stops it after the running statement and leaves no rows', async () => {
      for (const how of ['destroy', 'transferError', 'transferError while a statement runs'] as const) {
        const batches: number[] = [];
        let ws: Upload | undefined;
        let givenUp!: () => void;
        const given = new Promise<void>((resolve) => (givenUp = resolve));
        const giveUp = (): void => {
          if (how === 'destroy') ws!.destroy(new Error('client went away'));
          else ws!.transferError?.(new Error('client went away'));
          givenUp();
        };
        const onBatch = (n: number): void => {
          batches.push(n);
          if (n !== 4) return;
          // The next statement starts at once: given up while it runs (PostgreSQL, MySQL) or before it (SQLite).
          if (how === 'transferError while a statement runs') setImmediate(giveUp);
          else giveUp();
        };
        const p = await freshProvider(db, { uploadCopy: { rows: 2, onBatch } });
        try {
          await put(p, '/f', bytes(20 * CHUNK_SIZE, 24));
          const before = await rowCounts(p);
          ws = (await p.createWriteStream('/f', { append: true })) as Upload;
          ws.on('error', () => undefined);
          const closing = closed(ws);
          ws.write('data', () => undefined);
          await Promise.race([given, new Promise((r) => setTimeout(r, 5000))]);
          // A stream destroyed while it is constructed runs its _destroy (the clean-up) once the copy has stopped.
          if (how === 'destroy') await closing;
          await ws.settled;
          // transferError alone already removed the rows; the server destroys the stream after it.
          expect(await rowCounts(p), how).toEqual(before);
          if (how !== 'destroy') ws.destroy();
          await closing;
          await ws.settled;
          expect(ws.destroyed, how).toBe(true);
          expect(await rowCounts(p), how).toEqual(before);
          // Bounded work: the copy went no further than the statement running when the upload was given up.
          expect(batches.length, `${how}: ${batches.join(',')}`).toBeGreaterThanOrEqual(2);
          expect(batches.length, `${how}: ${batches.join(',')}`).toBeLessThanOrEqual(how === 'transferError while a statement runs' ? 3 : 2);
          // Still there, whole, and writable.
          await put(p, '/f', 'more', { append: true });
          expect((await get(p, '/f')).equals(Buffer.concat([bytes(20 * CHUNK_SIZE, 24), Buffer.from('more')]))).toBe(true);
        } finally {
          await disposeProvider(p);
        }
      }
    });

    it('a chunk row missing from the file fails the copy with EIO instead of committing a file with a hole', async () => {
      const p = await freshProvider(db, { uploadCopy: { rows: 2 } });
      try {
        await put(p, '/f', bytes(6 * CHUNK_SIZE, 28));
        const id = (await p.stat('/f')).ino;
        await p.db.deleteFrom(p.tables.c).where('inode', '=', id).where('seq', '=', 3).execute();
        const before = await rowCounts(p);
        await expect(put(p, '/f', 'tail', { append: true })).rejects.toMatchObject({ code: 'EIO' });
        expect(await rowCounts(p)).toEqual(before);
        expect((await p.stat('/f')).size).toBe(6 * CHUNK_SIZE);
      } finally {
        await disposeProvider(p);
      }
    });

    it('through FTP: an APPE whose file is replaced during the copy gets 451 without waiting for its data to end', async () => {
      let p: SqlProvider | undefined;
      const onBatch = async (n: number): Promise<void> => {
        if (n === 4) await put(p!, '/f.bin', 'NEW');
      };
      p = await freshProvider(db, { uploadCopy: { rows: 2, onBatch } });
      const { server, port } = await startFtp(p);
      const c = await ftpClient(port);
      try {
        await put(p, '/f.bin', bytes(12 * CHUNK_SIZE, 27));
        // A client that would go on sending for ever: the 451 comes anyway, as soon as the copy sees the change.
        const endless = new Readable({
          read() {
            this.push(Buffer.alloc(64 * 1024, 65));
          },
        });
        await expect(c.appendFrom(endless, '/f.bin')).rejects.toMatchObject({ code: 451 });
        endless.destroy();
        expect((await get(p, '/f.bin')).toString()).toBe('NEW');
        expect(await rowCounts(p)).toEqual({ inodes: 2, chunks: 1 });
      } finally {
        c.close();
        await server.close();
        await disposeProvider(p);
      }
    });
  });
}

describe('SqlProvider (sqlite): the copy of a continued upload leaves the event loop turns', () => {
  it('other work runs between the statements that copy a big file (node:sqlite is synchronous)', async () => {
    const db = DBS.find((d) => d.dialect === 'sqlite')!;
    for (const tuning of [{ rows: 1 }, undefined]) {
      const p = await freshProvider(db, tuning === undefined ? {} : ({ uploadCopy: tuning }));
      try {
        const n = tuning === undefined ? 64 : 12;
        const base = bytes(n * CHUNK_SIZE, 25);
        await put(p, '/f', base);
        let turns = 0;
        let ticking = true;
        const tick = (): void => {
          turns++;
          if (ticking) setImmediate(tick);
        };
        setImmediate(tick);
        const ws = await p.createWriteStream('/f', { append: true });
        await write(ws, 'tail');
        ticking = false;
        // One statement per row (rows: 1), or a few MiB per statement by default: turns in between either way. Before,
        // the whole copy was one statement inside createWriteStream, and no turn came until it had ended.
        expect(turns, JSON.stringify(tuning)).toBeGreaterThanOrEqual(tuning === undefined ? 4 : n - 1);
        await finish(ws);
        expect((await get(p, '/f')).equals(Buffer.concat([base, Buffer.from('tail')]))).toBe(true);
      } finally {
        await disposeProvider(p);
      }
    }
  });
});

for (const db of DBS) {
  describe(`SqlProvider (${db.dialect}): what a continued upload tells the server's stall check`, () => {
    it('storedBytes grows with every copy statement, then counts the bytes written', async () => {
      let ws: UploadStream | undefined;
      const seen: (number | undefined)[] = [];
      const p = await freshProvider(db, { uploadCopy: { rows: 2, onBatch: () => void seen.push(ws?.storedBytes) } });
      try {
        await put(p, '/f', bytes(8 * CHUNK_SIZE + 100, 31));
        ws = await p.createWriteStream('/f', { append: true });
        await new Promise<void>((resolve, reject) => ws!.write(Buffer.from('tail'), (err) => (err ? reject(err) : resolve())));
        expect(seen).toEqual([2, 4, 6, 8].map((n) => n * CHUNK_SIZE));
        await finish(ws);
        expect(ws.storedBytes).toBe(8 * CHUNK_SIZE + 100 + 4);
      } finally {
        await disposeProvider(p);
      }
    });
  });
}

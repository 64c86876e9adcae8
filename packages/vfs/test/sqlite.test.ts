import { once } from 'node:events';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { create } from '@platformatic/vfs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { describeCapabilities, openReadStream, openWriteStream, SqliteProvider, toVfsError } from '../src/index.js';
import type { DirEntry, SqliteFileHandle, UploadStream } from '../src/index.js';

const dir = fs.mkdtempSync(join(tmpdir(), 'ftp-vfs-sqlite-own-'));
let n = 0;
const dbFile = (): string => join(dir, `t${++n}.db`);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function inspect(file: string): DatabaseSync {
  return new DatabaseSync(file, { readOnly: true });
}

async function readAll(p: SqliteProvider, path: string, options?: { start?: number; end?: number }): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await openReadStream(p, path, options)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function writeAll(p: SqliteProvider, path: string, data: Buffer | string, options?: { start?: number; append?: boolean }): Promise<void> {
  const ws = await openWriteStream(p, path, options);
  ws.end(typeof data === 'string' ? Buffer.from(data) : data);
  await once(ws, 'finish');
}

function write(ws: UploadStream, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => ws.write(data, (err) => (err ? reject(err) : resolve())));
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return toVfsError(err).code;
  }
}

const pattern = (len: number, seed: number): Buffer => {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (i * 7 + seed * 13 + (i >> 10)) & 0xff;
  return b;
};

describe('SqliteProvider (own)', () => {
  it('declares its capabilities', () => {
    const p = new SqliteProvider();
    expect(describeCapabilities(p)).toEqual({
      streaming: true,
      list: true,
      setTimes: true,
      setCreationTime: true,
      chmod: true,
      hash: false,
      availableSpace: false,
      allocate: false,
      concat: false,
      uploadBusy: true,
      releaseUploadHold: true,
      checkUpload: false,
      checkEnter: false,
      symlink: true,
      readonly: false,
      atomicUploads: true,
      uploadsVisibleWhenComplete: true,
      // node:sqlite stores TEXT as UTF-8: a lone surrogate would come back as U+FFFD.
      rawNames: false,
    });
    p.close();
  });

  it('stores files as fixed-size chunks in WAL mode, and persists across reopening', async () => {
    const file = dbFile();
    const p = new SqliteProvider(file, { chunkSize: 1000 });
    const data = pattern(4500, 1);
    await p.mkdir('/d');
    await writeAll(p, '/d/f', data);
    p.close();
    const db = inspect(file);
    expect((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode).toBe('wal');
    const chunks = db.prepare("SELECT seq, length(data) AS len FROM chunks WHERE node = (SELECT id FROM nodes WHERE name = 'f') ORDER BY seq").all();
    expect(chunks).toEqual([0, 1, 2, 3, 4].map((seq) => ({ seq, len: seq < 4 ? 1000 : 500 })));
    db.close();
    // A different chunkSize option does not apply to an existing database.
    const q = new SqliteProvider(file, { chunkSize: 64 });
    expect(q.chunkSize).toBe(1000);
    expect((await readAll(q, '/d/f')).equals(data)).toBe(true);
    q.close();
  });

  it('an upload is invisible until it ends, then replaces the file at once', async () => {
    const p = new SqliteProvider(':memory:', { chunkSize: 1024, batchChunks: 2 });
    await writeAll(p, '/f', 'old');
    const ws = await openWriteStream(p, '/f');
    await write(ws, pattern(10_000, 2));
    expect(await p.readFile('/f', 'utf8')).toBe('old');
    expect((await p.stat('/f')).size).toBe(3);
    expect(await p.readdir('/')).toEqual(['f']);
    const nw = await openWriteStream(p, '/new');
    await write(nw, Buffer.from('x'));
    expect(await code(p.stat('/new'))).toBe('ENOENT');
    ws.end(pattern(100, 3));
    nw.end();
    await Promise.all([once(ws, 'finish'), once(nw, 'finish')]);
    expect((await readAll(p, '/f')).equals(Buffer.concat([pattern(10_000, 2), pattern(100, 3)]))).toBe(true);
    expect(await p.readFile('/new', 'utf8')).toBe('x');
    p.close();
  });

  it('an interrupted upload leaves no trace (transferError, or destroy before the end)', async () => {
    const file = dbFile();
    const p = new SqliteProvider(file, { chunkSize: 1000, batchChunks: 1 });
    await writeAll(p, '/f', 'keep me');
    const a = await openWriteStream(p, '/f');
    await write(a, pattern(5000, 4));
    a.transferError?.(new Error('ABOR'));
    a.destroy();
    await once(a, 'close');
    const b = await openWriteStream(p, '/g', { append: true });
    await write(b, pattern(5000, 5));
    b.destroy();
    await once(b, 'close');
    expect(await p.readFile('/f', 'utf8')).toBe('keep me');
    expect(await code(p.stat('/g'))).toBe('ENOENT');
    const db = inspect(file);
    expect(db.prepare('SELECT count(*) AS n FROM nodes WHERE parent IS NULL AND id != 1').get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT count(*) AS n FROM chunks').get()).toEqual({ n: 1 });
    db.close();
    p.close();
  });

  it('a reader keeps reading a file that is replaced or deleted meanwhile; its chunks go afterwards', async () => {
    const file = dbFile();
    const p = new SqliteProvider(file, { chunkSize: 1000 });
    const v1 = pattern(20_000, 6);
    await writeAll(p, '/f', v1);
    const rs = await openReadStream(p, '/f');
    const iter = rs[Symbol.asyncIterator]();
    const first = (await iter.next()).value as Buffer;
    await writeAll(p, '/f', 'v2');
    const rs2 = await openReadStream(p, '/f');
    await p.unlink('/f');
    const rest: Buffer[] = [first];
    for (let r = await iter.next(); !r.done; r = await iter.next()) rest.push(r.value as Buffer);
    expect(Buffer.concat(rest).equals(v1)).toBe(true);
    const v2: Buffer[] = [];
    for await (const c of rs2) v2.push(c as Buffer);
    expect(Buffer.concat(v2).toString()).toBe('v2');
    const db = inspect(file);
    expect(db.prepare('SELECT count(*) AS n FROM chunks').get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT count(*) AS n FROM nodes').get()).toEqual({ n: 1 });
    db.close();
    p.close();
  });

  it('APPE and REST copy the kept prefix across chunk boundaries (copy-on-write)', async () => {
    const p = new SqliteProvider(':memory:', { chunkSize: 1000 });
    let ref = pattern(2500, 7);
    await writeAll(p, '/f', ref);
    for (const [start, len] of [
      [2500, 10],
      [2000, 1500],
      [999, 1],
      [1000, 0],
      [0, 3001],
      [5000, 20],
    ] as const) {
      const data = pattern(len, start);
      await writeAll(p, '/f', data, { start });
      ref = Buffer.concat([ref.subarray(0, Math.min(start, ref.length)), Buffer.alloc(Math.max(0, start - ref.length)), data]);
      expect((await readAll(p, '/f')).equals(ref), `start ${start}`).toBe(true);
      expect((await p.stat('/f')).size).toBe(ref.length);
    }
    for (const len of [1, 999, 1000, 2001]) {
      const data = pattern(len, len);
      await writeAll(p, '/f', data, { append: true });
      ref = Buffer.concat([ref, data]);
      expect((await readAll(p, '/f')).equals(ref), `append ${len}`).toBe(true);
    }
    expect((await readAll(p, '/f', { start: 1999, end: 3000 })).equals(ref.subarray(1999, 3001))).toBe(true);
    p.close();
  });

  it('APPE and REST copy a big kept part a batch at a time: other work runs in between, the bytes are exact', async () => {
    // 64 KiB chunks: 32 per 2 MiB batch, so 12 MiB of file is 6 batches (one synchronous statement before).
    const p = new SqliteProvider(':memory:', { chunkSize: 64 * 1024 });
    const v1 = pattern(12 * 1024 * 1024 + 123, 8);
    await writeAll(p, '/f', v1);
    for (const options of [{ start: v1.length - 100 }, { append: true }]) {
      const before = await readAll(p, '/f');
      let turns = 0;
      let copying = true;
      let ws: UploadStream | undefined;
      // What the server's stall check reads while the copy runs: it grows batch by batch.
      const stored = new Set<number | undefined>();
      const tick = (): void => {
        if (!copying) return;
        turns++;
        if (ws) stored.add(ws.storedBytes);
        setImmediate(tick);
      };
      setImmediate(tick);
      ws = await openWriteStream(p, '/f', options);
      // Taken while the kept part is being copied: the provider answers in between the batches.
      const otherDone = writeAll(p, '/other', 'written meanwhile');
      ws.end(Buffer.from('tail'));
      await once(ws, 'finish');
      copying = false;
      await otherDone;
      expect(turns, JSON.stringify(options)).toBeGreaterThanOrEqual(5);
      expect(stored.size, JSON.stringify(options)).toBeGreaterThanOrEqual(4);
      expect([...stored].every((n) => typeof n === 'number')).toBe(true);
      const kept = 'start' in options ? before.subarray(0, options.start) : before;
      expect((await readAll(p, '/f')).equals(Buffer.concat([kept, Buffer.from('tail')])), JSON.stringify(options)).toBe(true);
      expect(await p.readFile('/other', 'utf8')).toBe('written meanwhile');
    }
    p.close();
  });

  it('a continued upload discarded or changed under it during the copy stops copying and leaves no rows', async () => {
    const file = dbFile();
    const p = new SqliteProvider(file, { chunkSize: 64 * 1024 });
    await writeAll(p, '/f', pattern(12 * 1024 * 1024, 9));
    const rows = (): number => {
      const db = inspect(file);
      const n = (db.prepare('SELECT count(*) AS n FROM chunks').get() as { n: number }).n;
      db.close();
      return n;
    };
    const original = rows();
    // Discarded (ABOR) after the first batch: no later batch may copy into the deleted node.
    const a = await openWriteStream(p, '/f', { append: true });
    await new Promise(setImmediate);
    a.transferError?.(new Error('ABOR'));
    for (let i = 0; i < 20; i++) await new Promise(setImmediate);
    expect(rows()).toBe(original);
    a.destroy();
    await once(a, 'close');
    // The file written in place (a handle) after the first batch: the upload fails with EBUSY, before its end.
    const b = await openWriteStream(p, '/f', { append: true });
    const failed = once(b, 'error').then(([err]) => toVfsError(err).code);
    await new Promise(setImmediate);
    const h = (await p.open('/f', 'r+')) as SqliteFileHandle;
    h.writeSync(Buffer.from('changed'), 0, 7, 0);
    await h.close();
    expect(await failed).toBe('EBUSY');
    expect((await readAll(p, '/f', { start: 0, end: 6 })).toString()).toBe('changed');
    expect(rows()).toBe(original);
    const db = inspect(file);
    expect(db.prepare('SELECT count(*) AS n FROM nodes WHERE parent IS NULL AND id != 1').get()).toEqual({ n: 0 });
    db.close();
    p.close();
  });

  it('a big file deleted or replaced goes at once; its chunks are deleted a batch at a time, other work in between', async () => {
    const file = dbFile();
    const p = new SqliteProvider(file, { chunkSize: 64 * 1024 });
    const db = inspect(file);
    const count = (sql: string): number => (db.prepare(sql).get() as { n: number }).n;
    for (const replace of [false, true]) {
      await writeAll(p, '/f', pattern(12 * 1024 * 1024, 10));
      if (replace) await writeAll(p, '/f', 'new version');
      else await p.unlink('/f');
      if (replace) expect(await p.readFile('/f', 'utf8')).toBe('new version');
      else expect(await code(p.stat('/f'))).toBe('ENOENT');
      expect(await p.readdir('/')).toEqual(replace ? ['f'] : []);
      // 192 chunks, 32 a batch: several turns of the event loop while they go (none when one DELETE took them all).
      let turns = 0;
      const left = (): number => count('SELECT count(*) AS n FROM chunks') - (replace ? 1 : 0) + count('SELECT count(*) AS n FROM nodes WHERE parent IS NULL AND id != 1');
      for (; left() > 0 && turns < 1000; turns++) await new Promise(setImmediate);
      expect(turns, `replace ${replace}`).toBeGreaterThanOrEqual(4);
      expect(left()).toBe(0);
    }
    // Small files still go with their entry, in the same statement.
    await writeAll(p, '/small', pattern(100_000, 11));
    await p.unlink('/small');
    expect(count('SELECT count(*) AS n FROM chunks')).toBe(1);
    db.close();
    p.close();
  });

  it("closing the database while a big file's chunks are being deleted stops cleanly; the file stays gone", async () => {
    const file = dbFile();
    const p = new SqliteProvider(file, { chunkSize: 64 * 1024 });
    await writeAll(p, '/f', pattern(12 * 1024 * 1024, 12));
    await p.unlink('/f');
    await new Promise(setImmediate);
    p.close();
    for (let i = 0; i < 20; i++) await new Promise(setImmediate);
    const again = new SqliteProvider(file);
    expect(await again.readdir('/')).toEqual([]);
    expect(await code(again.stat('/f'))).toBe('ENOENT');
    again.close();
  });

  it('random handle writes, reads and truncations match a reference buffer', async () => {
    const p = new SqliteProvider(':memory:', { chunkSize: 512 });
    let ref = Buffer.alloc(0);
    const h = (await p.open('/r', 'w+')) as SqliteFileHandle;
    let seed = 3;
    const rnd = (k: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % k;
    };
    for (let step = 0; step < 300; step++) {
      const op = rnd(10);
      if (op < 6) {
        const pos = rnd(ref.length + 1500);
        const len = 1 + rnd(2000);
        const data = Buffer.alloc(len, rnd(256));
        h.writeSync(data, 0, len, pos);
        if (pos + len > ref.length) ref = Buffer.concat([ref, Buffer.alloc(pos + len - ref.length)]);
        data.copy(ref, pos);
      } else if (op < 7) {
        const len = rnd(ref.length + 1500);
        h.truncateSync(len);
        ref = len <= ref.length ? ref.subarray(0, len) : Buffer.concat([ref, Buffer.alloc(len - ref.length)]);
      } else {
        const pos = rnd(ref.length + 10);
        const len = rnd(3000);
        const out = Buffer.alloc(len);
        const got = h.readSync(out, 0, len, pos);
        expect(got).toBe(Math.max(0, Math.min(len, ref.length - pos)));
        expect(out.subarray(0, got).equals(ref.subarray(pos, pos + got))).toBe(true);
      }
      expect(h.statSync().size).toBe(ref.length);
    }
    h.closeSync();
    expect((await readAll(p, '/r')).equals(ref)).toBe(true);
    p.close();
  });

  it('removes stale pending uploads and detached files when a database is opened, in the background', async () => {
    const file = dbFile();
    new SqliteProvider(file).close();
    const db = new DatabaseSync(file);
    db.prepare("INSERT INTO nodes (parent, name, type, size, mtime, birthtime, mode) VALUES (NULL, '.upload-old', 0, 3, 0, 0, 420)").run();
    db.prepare("INSERT INTO chunks (node, seq, data) VALUES ((SELECT id FROM nodes WHERE name = '.upload-old'), 0, x'010203')").run();
    db.prepare("INSERT INTO nodes (parent, name, type, size, mtime, birthtime, mode) VALUES (NULL, '.orphan-x', 0, 3, 0, 0, 420)").run();
    db.prepare("INSERT INTO chunks (node, seq, data) VALUES ((SELECT id FROM nodes WHERE name = '.orphan-x'), 0, x'010203')").run();
    // A pending upload of a live process (fresh mtime) stays.
    db.prepare("INSERT INTO nodes (parent, name, type, size, mtime, birthtime, mode) VALUES (NULL, '.upload-live', 0, 3, ?, 0, 420)").run(Date.now());
    db.close();
    const p = new SqliteProvider(file);
    const check = inspect(file);
    for (let i = 0; i < 100 && (check.prepare('SELECT count(*) AS n FROM chunks').get() as { n: number }).n > 0; i++) await new Promise(setImmediate);
    expect(check.prepare('SELECT name FROM nodes WHERE id != 1').all()).toEqual([{ name: '.upload-live' }]);
    expect(check.prepare('SELECT count(*) AS n FROM chunks').get()).toEqual({ n: 0 });
    check.close();
    p.close();
  });

  it("the hourly sweep leaves this process's own running uploads alone, however old their node looks", async () => {
    vi.useFakeTimers({ toFake: ['setInterval'] });
    const file = dbFile();
    const p = new SqliteProvider(file, { chunkSize: 64 * 1024 });
    try {
      const ws = await openWriteStream(p, '/f');
      await write(ws, pattern(3 << 20, 17));
      // A node untouched for a day (an upload idle that long), as a dead process's would be.
      const db = new DatabaseSync(file);
      db.prepare("UPDATE nodes SET mtime = 0 WHERE name LIKE '.upload-%'").run();
      db.close();
      vi.advanceTimersByTime(3600 * 1000);
      for (let i = 0; i < 50; i++) await new Promise(setImmediate);
      ws.end(pattern(1000, 18));
      await once(ws, 'finish');
      expect((await readAll(p, '/f')).equals(Buffer.concat([pattern(3 << 20, 17), pattern(1000, 18)]))).toBe(true);
    } finally {
      vi.useRealTimers();
      p.close();
    }
  });

  it('a file being copied by an APPE that is deleted meanwhile fails the APPE at the next batch (EBUSY)', async () => {
    const p = new SqliteProvider(':memory:', { chunkSize: 64 * 1024 });
    await writeAll(p, '/f', pattern(12 * 1024 * 1024, 13));
    const ws = await openWriteStream(p, '/f', { append: true });
    const failed = once(ws, 'error').then(([err]) => toVfsError(err).code);
    await new Promise(setImmediate);
    await new Promise(setImmediate);
    await p.unlink('/f');
    expect(await failed).toBe('EBUSY');
    expect(ws.storedBytes).toBeLessThan(12 * 1024 * 1024);
    p.close();
  });

  it('a detach rolled back leaves the file whole, and its queued deletion never touches a later node given its id', async () => {
    const file = dbFile();
    const p = new SqliteProvider(file, { chunkSize: 64 * 1024 });
    await writeAll(p, '/a', pattern(3 << 20, 14));
    await writeAll(p, '/boom', pattern(3 << 20, 15));
    const db = new DatabaseSync(file);
    const boom = (db.prepare("SELECT id FROM nodes WHERE name = 'boom'").get() as { id: number }).id;
    // A failure after the detach (disk full, say), in the rename's transaction: it rolls back.
    db.exec("CREATE TRIGGER fail BEFORE UPDATE OF parent ON nodes WHEN NEW.name = 'boom' AND NEW.parent IS NOT NULL BEGIN SELECT RAISE(ABORT, 'injected'); END;");
    expect(await code(p.rename('/a', '/boom'))).toBe('EIO');
    db.exec('DROP TRIGGER fail');
    expect((await readAll(p, '/boom')).equals(pattern(3 << 20, 15))).toBe(true);
    // Deleted for real: queued again; once its node is gone, the next upload gets the id back (the largest).
    await p.unlink('/boom');
    for (let i = 0; i < 1000 && db.prepare('SELECT 1 FROM nodes WHERE id = ?').get(boom) !== undefined; i++) await new Promise(setImmediate);
    const ws = await openWriteStream(p, '/c');
    await write(ws, pattern(600 * 1024, 16));
    for (let i = 0; i < 10; i++) await new Promise(setImmediate);
    ws.end(Buffer.from('end'));
    await once(ws, 'finish');
    expect((await p.stat('/c')).size).toBe(600 * 1024 + 3);
    db.close();
    p.close();
  });

  it('a file being downloaded whose replacement fails (its detach rolled back) stays when the download closes', async () => {
    // The bug: the detach rolled back, but the file stayed marked for deletion at its last reader's close, and the
    // download's end deleted the live file.
    const file = dbFile();
    const p = new SqliteProvider(file, { chunkSize: 1000 });
    await writeAll(p, '/a', pattern(100, 17));
    const rs = await openReadStream(p, '/a');
    const db = new DatabaseSync(file);
    // The upload's final move fails (as a full disk at its COMMIT would): its transaction, the detach included, rolls back.
    db.exec("CREATE TRIGGER fail BEFORE UPDATE OF parent ON nodes WHEN OLD.parent IS NULL AND NEW.name = 'a' BEGIN SELECT RAISE(ABORT, 'injected'); END;");
    const ws = await openWriteStream(p, '/a');
    ws.end(Buffer.from('new'));
    expect(toVfsError((await once(ws, 'error'))[0]).code).toBe('EIO');
    db.exec('DROP TRIGGER fail');
    const chunks: Buffer[] = [];
    for await (const c of rs) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(pattern(100, 17))).toBe(true);
    for (let i = 0; i < 10; i++) await new Promise(setImmediate);
    expect((await readAll(p, '/a')).equals(pattern(100, 17))).toBe(true);
    // Deleted for real while read: it goes when the download closes.
    const rs2 = await openReadStream(p, '/a');
    await p.unlink('/a');
    for await (const c of rs2) expect(c).toBeDefined();
    for (let i = 0; i < 10; i++) await new Promise(setImmediate);
    expect(db.prepare('SELECT count(*) AS n FROM nodes').get()).toEqual({ n: 1 });
    expect(db.prepare('SELECT count(*) AS n FROM chunks').get()).toEqual({ n: 0 });
    db.close();
    p.close();
  });

  it('renames a large tree with one UPDATE and refuses to move a directory into itself', async () => {
    const p = new SqliteProvider();
    p.mkdirSync('/t/a/b/c', { recursive: true });
    for (let i = 0; i < 500; i++) p.mkdirSync(`/t/d${i}`);
    await p.rename('/t', '/u');
    expect((await p.readdir('/u')).length).toBe(501);
    expect(await code(p.rename('/u', '/u/a/b/c/x'))).toBe('EINVAL');
    expect(await code(p.rename('/u/a', '/u/a'))).toBe('resolved');
    p.close();
  });

  it('refuses to remove or rename the root with EPERM, not EBUSY (the server answers that 450 "try again later")', async () => {
    const p = new SqliteProvider();
    await p.mkdir('/d');
    expect(await code(p.rmdir('/'))).toBe('EPERM');
    expect(await code(p.rename('/', '/x'))).toBe('EPERM');
    expect(await code(p.rename('/d', '/'))).toBe('EPERM');
    expect(await p.readdir('/')).toEqual(['d']);
    p.close();
  });

  it('fails cleanly once closed', async () => {
    const p = new SqliteProvider();
    p.close();
    p.close();
    expect(await code(p.stat('/'))).not.toBe('resolved');
  });

  it('can be mounted with @platformatic/vfs create() (sync API)', () => {
    const p = new SqliteProvider();
    const vfs = create(p, { moduleHooks: false });
    vfs.mkdirSync('/d');
    vfs.writeFileSync('/d/a.txt', 'hello');
    vfs.appendFileSync('/d/a.txt', ' world');
    expect(vfs.readFileSync('/d/a.txt', 'utf8')).toBe('hello world');
    expect(vfs.readdirSync('/d')).toEqual(['a.txt']);
    vfs.symlinkSync('/d/a.txt', '/l');
    expect(vfs.readFileSync('/l', 'utf8')).toBe('hello world');
    p.close();
  });
});

describe('SqliteProvider listSlices', () => {
  it('lists a big folder 500 entries a slice, in name order, as list does, and stops when asked', async () => {
    const file = dbFile();
    const p = new SqliteProvider(file);
    try {
      await p.mkdir('/big');
      const names = Array.from({ length: 1203 }, (_, i) => `n${String((i * 7919) % 1203).padStart(4, '0')}`);
      // Names that order differently by bytes than by locale or case: the keyset must follow the index's order.
      names.push('Zeta', 'alpha', 'ä', 'é', 'e\u0301', '😀');
      for (const name of names) await writeAll(p, `/big/${name}`, name);
      const db = inspect(file);
      const plan = db.prepare("EXPLAIN QUERY PLAN SELECT name FROM nodes WHERE parent = 2 AND name > 'a' ORDER BY name LIMIT 500").all();
      db.close();
      expect(JSON.stringify(plan)).toMatch(/USING (COVERING )?INDEX/);
      const slices = await p.listSlices('/big');
      const sizes: number[] = [];
      const got: string[] = [];
      for await (const slice of slices) {
        sizes.push(slice.length);
        for (const e of slice) {
          got.push(e.name);
          expect(e.stats.size).toBe(Buffer.byteLength(e.name));
        }
      }
      expect(sizes).toEqual([500, 500, 209]);
      expect(got).toEqual([...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
      expect((await p.list('/big')).map((e) => e.name).sort()).toEqual([...got].sort());
      const stopped = await p.listSlices('/big');
      expect((await stopped.next()).value).toHaveLength(500);
      expect((await stopped.return()).done).toBe(true);
      expect((await stopped.next()).done).toBe(true);
    } finally {
      p.close();
    }
  });

  it('refuses a file or a missing folder when opened; lists changes it has not passed; ends when the folder goes', async () => {
    const p = new SqliteProvider(dbFile());
    try {
      await writeAll(p, '/f', 'x');
      expect(await code(p.listSlices('/f'))).toBe('ENOTDIR');
      expect(await code(p.listSlices('/missing'))).toBe('ENOENT');
      await p.mkdir('/d');
      for (let i = 0; i < 600; i++) await writeAll(p, `/d/m${String(i).padStart(3, '0')}`, 'x');
      const slices = await p.listSlices('/d');
      const first = await slices.next();
      expect(first.value?.at(-1)?.name).toBe('m499');
      await p.unlink('/d/m000'); // already listed
      await p.unlink('/d/m599'); // not yet: left out
      await writeAll(p, '/d/z', 'new'); // not yet: listed
      const second = await slices.next();
      expect((second.value as DirEntry[] | undefined)?.map((e) => e.name)).toEqual([...Array.from({ length: 99 }, (_, i) => `m${500 + i}`), 'z']);
      expect((await slices.next()).done).toBe(true);
      const gone = await p.listSlices('/d');
      await gone.next();
      for (const name of await p.readdir('/d')) await p.unlink(`/d/${name as string}`);
      await p.rmdir('/d');
      expect((await gone.next()).done).toBe(true);
    } finally {
      p.close();
    }
  });
});

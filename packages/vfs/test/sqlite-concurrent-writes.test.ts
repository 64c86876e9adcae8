import { once } from 'node:events';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { openReadStream, SqliteProvider } from '../src/index.js';
import type { UploadStream, WriteStreamOptions } from '../src/index.js';

// Racing writers on the SQLite provider: an upload that continues a file (APPE, REST + STOR) commits only over the
// version it copied, else EBUSY; STOR vs STOR stays last writer wins (as driver-sql and driver-redis).
// What any backend keeps under racing uploads (each writer ok or EBUSY, the file one serial outcome, writable again)
// is @ftp/vfs-conformance's concurrent-writers group, which runs on this provider there (test/sqlite.test.ts). Here:
// when it refuses, whom, with what error, and what it leaves in the database.

const dir = fs.mkdtempSync(join(tmpdir(), 'ftp-vfs-sqlite-race-'));
let n = 0;
const dbFile = (): string => join(dir, `t${++n}.db`);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const KiB = 1024;
const fill = (c: string, len: number): Buffer => Buffer.alloc(len, c);

async function get(p: SqliteProvider, path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await openReadStream(p, path)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function put(p: SqliteProvider, path: string, data: Buffer | string, options: WriteStreamOptions = {}): Promise<void> {
  const ws = await p.createWriteStream(path, options);
  ws.end(typeof data === 'string' ? Buffer.from(data) : data);
  await once(ws, 'finish');
}

/** An upload started and partly written, not finished: what a slow FTP client's APPE / REST + STOR is meanwhile. */
async function started(p: SqliteProvider, path: string, options: WriteStreamOptions, first: Buffer): Promise<UploadStream> {
  const ws = await p.createWriteStream(path, options);
  if (!ws.write(first)) await once(ws, 'drain');
  return ws;
}

/** Ends an upload; resolves when it is committed, rejects with the commit's error. */
async function finish(ws: UploadStream): Promise<void> {
  const done = new Promise<void>((resolve, reject) => {
    ws.once('finish', resolve);
    ws.once('error', reject);
  });
  ws.end();
  await done;
}

/** Nodes (root included) and chunks in the database: what a failed upload must not leave behind. */
function rows(file: string): { nodes: number; chunks: number } {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const count = (t: string): number => Number((db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n);
    return { nodes: count('nodes'), chunks: count('chunks') };
  } finally {
    db.close();
  }
}

/** Small chunks, so that the uploads below span several chunks and batches. */
const open = (file: string): SqliteProvider => new SqliteProvider(file, { chunkSize: 64 * KiB, batchChunks: 2 });

describe('SqliteProvider: uploads that continue a file never lose a concurrent write', () => {
  it('two overlapping appends: the second to finish fails with EBUSY when it commits, and leaves no row', async () => {
    const file = dbFile();
    const p = open(file);
    try {
      await put(p, '/f', 'BASE');
      const a = await started(p, '/f', { append: true }, fill('A', 300 * KiB));
      const b = await started(p, '/f', { append: true }, fill('B', 70 * KiB));
      await finish(b);
      a.write(fill('A', 30 * KiB));
      await expect(finish(a)).rejects.toMatchObject({ code: 'EBUSY', syscall: 'write', path: '/f' });
      // The loser's node and chunks are gone: the root, the file and its two chunks.
      expect(rows(file)).toEqual({ nodes: 2, chunks: 2 });
    } finally {
      p.close();
    }
  });

  it('append vs overwrite: an append that a STOR overtook fails with EBUSY when it commits', async () => {
    const p = open(dbFile());
    try {
      await put(p, '/f', 'BASE');
      const a = await started(p, '/f', { append: true }, fill('A', 100 * KiB));
      await put(p, '/f', 'NEW CONTENT');
      await expect(finish(a)).rejects.toMatchObject({ code: 'EBUSY' });
    } finally {
      p.close();
    }
  });

  it('overwrite vs append: a STOR that finishes after an append replaces it (last writer wins, both succeed)', async () => {
    const p = open(dbFile());
    try {
      await put(p, '/f', 'BASE');
      const s = await started(p, '/f', {}, fill('S', 100 * KiB));
      await put(p, '/f', 'TAIL', { append: true });
      expect((await get(p, '/f')).toString()).toBe('BASETAIL');
      await finish(s);
      expect((await get(p, '/f')).equals(fill('S', 100 * KiB))).toBe(true);
    } finally {
      p.close();
    }
  });

  it('REST + STOR vs overwrite: the resumed upload fails with EBUSY when it commits', async () => {
    const p = open(dbFile());
    try {
      await put(p, '/f', fill('o', 600 * KiB));
      const r = await started(p, '/f', { start: 300 * KiB }, fill('R', 80 * KiB));
      await put(p, '/f', 'REPLACED');
      await expect(finish(r)).rejects.toMatchObject({ code: 'EBUSY' });
    } finally {
      p.close();
    }
  });

  it('a file handle writing or truncating in place, a creation, a deletion or a rename over the file fail an append; MFMT and CHMOD do not', async () => {
    const file = dbFile();
    const p = open(file);
    try {
      await put(p, '/f', 'BASE');
      const h0 = await started(p, '/f', { append: true }, fill('A', 10));
      const fh = await p.open('/f', 'r+');
      await fh.write(Buffer.from('b'), 0, 1, 0);
      await fh.close();
      await expect(finish(h0)).rejects.toMatchObject({ code: 'EBUSY' });
      expect((await get(p, '/f')).toString()).toBe('bASE');

      const h1 = await started(p, '/f', { start: 2 }, fill('R', 10));
      const th = await p.open('/f', 'r+');
      await th.truncate(3);
      await th.close();
      await expect(finish(h1)).rejects.toMatchObject({ code: 'EBUSY' });
      expect((await get(p, '/f')).toString()).toBe('bAS');

      const c = await started(p, '/new', { append: true }, fill('A', 10));
      await put(p, '/new', 'created');
      await expect(finish(c)).rejects.toMatchObject({ code: 'EBUSY' });

      const c2 = await started(p, '/new2', { append: true }, fill('A', 10));
      const created = await p.open('/new2', 'w');
      await created.close();
      await expect(finish(c2)).rejects.toMatchObject({ code: 'EBUSY' });
      await p.unlink('/new2');

      const d = await started(p, '/new', { append: true }, fill('A', 10));
      await p.unlink('/new');
      await expect(finish(d)).rejects.toMatchObject({ code: 'EBUSY' });
      await expect(p.stat('/new')).rejects.toMatchObject({ code: 'ENOENT' });

      await put(p, '/y', 'Y');
      const m = await started(p, '/f', { append: true }, fill('A', 10));
      await p.rename('/y', '/f');
      await expect(finish(m)).rejects.toMatchObject({ code: 'EBUSY' });
      expect((await get(p, '/f')).toString()).toBe('Y');

      const t = await started(p, '/f', { append: true }, fill('A', 3));
      await p.setTimes('/f', new Date(1_000_000));
      await p.chmod('/f', 0o600);
      await finish(t);
      expect((await get(p, '/f')).toString()).toBe('YAAA');
      // A rename away and back is the same content: the append still commits.
      const back = await started(p, '/f', { append: true }, fill('B', 2));
      await p.rename('/f', '/g');
      await p.rename('/g', '/f');
      await finish(back);
      expect((await get(p, '/f')).toString()).toBe('YAAABB');
      expect(rows(file)).toEqual({ nodes: 2, chunks: 1 });
    } finally {
      p.close();
    }
  });

  it('two STORs still end as the last one to finish (unconditional, as documented)', async () => {
    const p = open(dbFile());
    try {
      await put(p, '/f', 'BASE');
      const s1 = await started(p, '/f', {}, fill('1', 100 * KiB));
      const s2 = await started(p, '/f', {}, fill('2', 70 * KiB));
      await finish(s2);
      await finish(s1);
      expect((await get(p, '/f')).equals(fill('1', 100 * KiB))).toBe(true);
    } finally {
      p.close();
    }
  });

  it('two overlapping appends through two providers on one file (two servers sharing a database)', async () => {
    const file = dbFile();
    const a = open(file);
    const b = open(file);
    try {
      await put(a, '/f', 'BASE');
      const wa = await started(a, '/f', { append: true }, fill('A', 100 * KiB));
      const wb = await started(b, '/f', { append: true }, fill('B', 100 * KiB));
      const results = await Promise.allSettled([finish(wa), finish(wb)]);
      // Whatever the order, exactly one commits and the other is told.
      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      const lost = results.find((r) => r.status === 'rejected');
      expect((lost as PromiseRejectedResult).reason).toMatchObject({ code: 'EBUSY' });
      const winner = results[0]?.status === 'fulfilled' ? 'A' : 'B';
      expect((await get(b, '/f')).equals(Buffer.concat([Buffer.from('BASE'), fill(winner, 100 * KiB)]))).toBe(true);
    } finally {
      b.close();
      a.close();
    }
  });
});

describe('SqliteProvider: databases of earlier versions', () => {
  /** The schema before `nodes.gen`, with a file, a folder and a pending upload, as an earlier version left it. */
  function oldDatabase(file: string): void {
    const db = new DatabaseSync(file);
    db.exec(`
      PRAGMA journal_mode = WAL;
      CREATE TABLE meta (key TEXT PRIMARY KEY, value);
      CREATE TABLE nodes (id INTEGER PRIMARY KEY, parent INTEGER, name TEXT NOT NULL, type INTEGER NOT NULL,
        size INTEGER NOT NULL DEFAULT 0, mtime REAL NOT NULL, birthtime REAL NOT NULL, mode INTEGER NOT NULL, target TEXT,
        UNIQUE (parent, name));
      CREATE TABLE chunks (node INTEGER NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (node, seq));
      INSERT INTO meta VALUES ('chunkSize', 4);
      INSERT INTO nodes VALUES (1, NULL, '', 1, 0, 1000, 1000, 493, NULL);
      INSERT INTO nodes VALUES (2, 1, 'd', 1, 0, 1000, 1000, 493, NULL);
      INSERT INTO nodes VALUES (3, 2, 'f', 0, 6, 2000, 1000, 420, NULL);
      INSERT INTO chunks VALUES (3, 0, x'68656c6c'), (3, 1, x'6f21');
    `);
    db.close();
  }

  it('adds nodes.gen in place, keeping every file, and the upgraded file is still readable with the old columns', async () => {
    const file = dbFile();
    oldDatabase(file);
    // Two providers opening the old file at once (as two processes would): the column is added once.
    const p = new SqliteProvider(file);
    const q = new SqliteProvider(file);
    try {
      expect(p.chunkSize).toBe(4);
      expect((await get(p, '/d/f')).toString()).toBe('hello!');
      expect((await p.stat('/d/f')).mtimeMs).toBe(2000);
      // The upgraded schema at work: an append racing a file handle's write fails, a lone one succeeds.
      const a = await started(p, '/d/f', { append: true }, Buffer.from(' A'));
      const h = await q.open('/d/f', 'r+');
      await h.write(Buffer.from('H'), 0, 1, 0);
      await h.close();
      await expect(finish(a)).rejects.toMatchObject({ code: 'EBUSY' });
      await put(p, '/d/f', ' ok', { append: true });
      expect((await get(q, '/d/f')).toString()).toBe('Hello! ok');
    } finally {
      q.close();
      p.close();
    }
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      const cols = (db.prepare('PRAGMA table_info(nodes)').all() as { name: string; dflt_value: string | null; notnull: number }[]).filter((c) => c.name === 'gen');
      expect(cols).toEqual([expect.objectContaining({ name: 'gen', dflt_value: '0', notnull: 1 })]);
      // What an earlier version selects and inserts (named columns) still works on the upgraded file.
      expect(db.prepare('SELECT id, type, size, mtime, birthtime, mode, target FROM nodes WHERE parent = ? AND name = ?').get(2, 'f')).toMatchObject({ type: 0, size: 9 });
    } finally {
      db.close();
    }
  });
});

import { once } from 'node:events';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryProvider, openReadStream, openWriteStream, SqliteProvider } from '../src/index.js';
import { WAL_HOLD_BYTES, WalCheckpointer } from '../src/providers/sqlite-checkpointer.js';
import type { CheckpointOutcome, WalCheckpointerHooks } from '../src/providers/sqlite-checkpointer.js';
import { turnsDuring } from './turns.js';

const dir = fs.mkdtempSync(join(tmpdir(), 'ftp-vfs-sqlite-ckpt-'));
let n = 0;
const dbFile = (): string => join(dir, `t${++n}.db`);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

const MiB = 1024 * 1024;

/** Distinct bytes per MiB, so that a chunk stored out of place shows. */
function block(i: number): Buffer {
  return Buffer.alloc(MiB, i & 0xff);
}

async function upload(p: SqliteProvider | MemoryProvider, path: string, mib: number): Promise<void> {
  const ws = await openWriteStream(p, path);
  for (let i = 0; i < mib; i++) {
    if (!ws.write(block(i))) await once(ws, 'drain');
  }
  ws.end();
  await once(ws, 'finish');
}

async function readBack(p: SqliteProvider, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of await openReadStream(p, path)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function expectBlocks(data: Buffer, mib: number): void {
  expect(data.length).toBe(mib * MiB);
  for (let i = 0; i < mib; i++) expect(data[i * MiB] === (i & 0xff) && data[(i + 1) * MiB - 1] === (i & 0xff)).toBe(true);
}

const walSize = (file: string): number => fs.statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0;

describe('SqliteProvider: WAL checkpoints off the event loop', () => {
  it("turns its own connection's automatic checkpoints off for a database file, and not in memory", () => {
    const exec = vi.spyOn(DatabaseSync.prototype, 'exec');
    const file = new SqliteProvider(dbFile());
    const onFile = exec.mock.calls.map((c) => String(c[0]));
    file.close();
    exec.mockClear();
    const memory = new SqliteProvider();
    const inMemory = exec.mock.calls.map((c) => String(c[0]));
    memory.close();
    expect(onFile).toContain('PRAGMA wal_autocheckpoint = 0');
    expect(inMemory).not.toContain('PRAGMA wal_autocheckpoint = 0');
  });

  it('keeps the WAL bounded and every byte through a 96 MiB upload, checkpointed by the worker', async () => {
    const file = dbFile();
    const p = new SqliteProvider(file);
    try {
      await upload(p, '/big.bin', 96);
      expect(p.walCheckpoints).toBeGreaterThan(0);
      // The hold, plus what lands while the last checkpoint runs.
      expect(walSize(file)).toBeLessThan(WAL_HOLD_BYTES + 16 * MiB);
      expectBlocks(await readBack(p, '/big.bin'), 96);
    } finally {
      p.close();
    }
    // Whatever was still only in the WAL is there for the next open.
    const again = new SqliteProvider(file);
    try {
      expectBlocks(await readBack(again, '/big.bin'), 96);
    } finally {
      again.close();
    }
  });

  it('does not stall uploads for ever when a reader keeps the WAL from starting over', async () => {
    const file = dbFile();
    const p = new SqliteProvider(file);
    // Another connection in a read transaction: no checkpoint can complete past its snapshot.
    const reader = new DatabaseSync(file, { readOnly: true });
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) AS c FROM nodes').get();
    try {
      await upload(p, '/pinned.bin', WAL_HOLD_BYTES / MiB + 24);
      reader.exec('COMMIT');
      expectBlocks(await readBack(p, '/pinned.bin'), WAL_HOLD_BYTES / MiB + 24);
    } finally {
      if (reader.isTransaction) reader.exec('COMMIT');
      reader.close();
      p.close();
    }
  });

  it('close() returns with every connection closed: the WAL is folded in and removed, the files may go', async () => {
    const sub = join(dir, `close-${++n}`);
    fs.mkdirSync(sub);
    const file = join(sub, 'db.sqlite');
    const p = new SqliteProvider(file);
    // The worker starts with the first 4 MiB and is likely in a checkpoint when close() comes.
    await upload(p, '/a.bin', 24);
    p.close();
    // The last connection to close checkpoints and deletes the WAL: the provider's, once the worker's is closed.
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
    fs.rmSync(sub, { recursive: true });
    await new Promise((r) => setTimeout(r, 200));
    expect(fs.existsSync(sub)).toBe(false);
  });

  it('keeps the WAL bounded through many uploads under a batch (960 KiB each)', async () => {
    const file = dbFile();
    const p = new SqliteProvider(file);
    try {
      const body = Buffer.alloc(960 * 1024, 9);
      let most = 0;
      for (let i = 0; i < 160; i++) {
        const ws = await openWriteStream(p, `/s${i % 8}.bin`);
        ws.end(body);
        await once(ws, 'finish');
        most = Math.max(most, walSize(file));
      }
      // 150 MiB went through the WAL: without the checkpointer's own count it never started over.
      expect(most).toBeLessThan(WAL_HOLD_BYTES + 16 * MiB);
    } finally {
      p.close();
    }
  });

  it('keeps the WAL bounded through changes that never wait (20,000 MKD and RMD)', async () => {
    const file = dbFile();
    const p = new SqliteProvider(file);
    try {
      let most = 0;
      for (let i = 0; i < 10_000; i++) {
        await p.mkdir(`/d${i}`);
        await p.rmdir(`/d${i}`);
        // The worker answers between two commands, as it would between two FTP commands.
        if (i % 100 === 99) {
          await new Promise((r) => setTimeout(r, 1));
          most = Math.max(most, walSize(file));
        }
      }
      expect(most).toBeLessThan(WAL_HOLD_BYTES + 16 * MiB);
    } finally {
      p.close();
    }
  });

  it('an in-memory database has no checkpointer', () => {
    const p = new SqliteProvider();
    try {
      expect(p.walCheckpoints).toBeUndefined();
    } finally {
      p.close();
    }
  });
});

describe('SqliteProvider: uploads and downloads give the event loop a turn per MiB', () => {
  for (const where of ['memory', 'file'] as const) {
    it(`one write of 16 MiB, or 16 writes of 1 MiB at once, in ${where}: a turn per 1 MiB batch, every byte in place`, async () => {
      const p = where === 'memory' ? new SqliteProvider() : new SqliteProvider(dbFile());
      try {
        const whole = Buffer.concat(Array.from({ length: 16 }, (_, i) => block(i)));
        const one = await turnsDuring(async () => {
          const ws = await openWriteStream(p, '/one.bin');
          ws.end(whole);
          await once(ws, 'finish');
        });
        const many = await turnsDuring(async () => {
          const ws = await openWriteStream(p, '/many.bin');
          for (let i = 0; i < 16; i++) ws.write(block(i)); // all handed over at once, past the high-water mark
          ws.end();
          await once(ws, 'finish');
        });
        expect(one).toBeGreaterThanOrEqual(15);
        expect(many).toBeGreaterThanOrEqual(15);
        expectBlocks(await readBack(p, '/one.bin'), 16);
        expectBlocks(await readBack(p, '/many.bin'), 16);
      } finally {
        p.close();
      }
    });
  }

  for (const where of ['memory', 'file', 'MemoryProvider'] as const) {
    it(`a download in ${where} gives the event loop a turn per 1 MiB read, one turn at a time`, async () => {
      const p = where === 'MemoryProvider' ? new MemoryProvider() : where === 'memory' ? new SqliteProvider() : new SqliteProvider(dbFile());
      try {
        await upload(p, '/f.bin', 16);
        let bytes = 0;
        // A consumer that takes every chunk at once, as a socket with room does (and reads again inside push).
        const sink = new Writable({
          write(chunk: Buffer, _enc, cb) {
            bytes += chunk.length;
            cb();
          },
        });
        const immediate = vi.spyOn(globalThis, 'setImmediate');
        const turns = await turnsDuring(async () => pipeline(await openReadStream(p, '/f.bin'), sink));
        // The ticker's own calls are one per turn (and its first); the rest are the stream's.
        const byStream = immediate.mock.calls.length - turns - 1;
        expect(bytes).toBe(16 * MiB);
        expect(turns).toBeGreaterThanOrEqual(15);
        expect(byStream).toBeGreaterThanOrEqual(15);
        expect(byStream).toBeLessThanOrEqual(16);
      } finally {
        if (p instanceof SqliteProvider) p.close();
      }
    });
  }

  it('a discarded upload stores nothing of what was handed over before it', async () => {
    const file = dbFile();
    const p = new SqliteProvider(file);
    try {
      const ws = await openWriteStream(p, '/gone.bin');
      ws.write(Buffer.alloc(8 * MiB, 1)); // its batches go one a turn
      ws.transferError!(new Error('client went away'));
      await new Promise((r) => setTimeout(r, 50));
      const db = new DatabaseSync(file, { readOnly: true });
      try {
        expect((db.prepare('SELECT count(*) AS c FROM chunks').get() as { c: number }).c).toBe(0);
      } finally {
        db.close();
      }
    } finally {
      p.close();
    }
  });
});

/** The hooks of a connection that writes `db`. */
function hooks(db: DatabaseSync): WalCheckpointerHooks {
  return {
    onFailure: () => undefined,
    catchUp: () => db.prepare('PRAGMA wal_checkpoint(PASSIVE)').get() as unknown as CheckpointOutcome,
  };
}

describe('WalCheckpointer', () => {
  function walDatabase(file: string): DatabaseSync {
    const db = new DatabaseSync(file);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE IF NOT EXISTS t (b BLOB)');
    return db;
  }

  it('asks writers to wait past the hold, and lets them go once a checkpoint has caught up', async () => {
    const file = dbFile();
    const db = walDatabase(file);
    const ck = new WalCheckpointer(file, 1000, hooks(db));
    try {
      const insert = db.prepare('INSERT INTO t VALUES (?)');
      for (let i = 0; i < 8; i++) insert.run(Buffer.alloc(MiB));
      expect(ck.room()).toBeUndefined();
      ck.committed(WAL_HOLD_BYTES);
      expect(ck.holding).toBe(true);
      const wait = ck.room();
      expect(wait).toBeInstanceOf(Promise);
      await wait;
      expect(ck.holding).toBe(false);
      expect(ck.checkpoints).toBeGreaterThan(0);
      // Everything is in the database file now: the WAL starts over at the next write.
      expect((db.prepare('PRAGMA wal_checkpoint(PASSIVE)').get() as { log: number; checkpointed: number }).checkpointed).toBeGreaterThan(0);
    } finally {
      ck.close();
      db.close();
    }
  });

  it('reports a worker that cannot open the database once, and then never holds writers', async () => {
    const failures: string[] = [];
    const ck = new WalCheckpointer(join(dir, 'no-such-folder', 'x.db'), 1000, { onFailure: (reason) => failures.push(reason), catchUp: () => ({ busy: 1, log: 0, checkpointed: 0 }) });
    ck.committed(WAL_HOLD_BYTES);
    const wait = ck.room();
    expect(wait).toBeInstanceOf(Promise);
    await wait;
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(/unable to open|no such|cannot open/i);
    ck.committed(WAL_HOLD_BYTES * 2);
    expect(ck.holding).toBe(false);
    expect(ck.room()).toBeUndefined();
    ck.close();
  });

  it('close() returns at once when the worker ended before its failure was heard', () => {
    const ck = new WalCheckpointer(join(dir, 'no-such-folder', 'y.db'), 1000, { onFailure: () => undefined, catchUp: () => ({ busy: 1, log: 0, checkpointed: 0 }) });
    ck.committed(WAL_HOLD_BYTES);
    // The thread stays busy, so the worker's error message is not handled before close().
    const until = Date.now() + 500;
    while (Date.now() < until);
    const t0 = Date.now();
    ck.close();
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('lets waiting writers go when closed', async () => {
    const file = dbFile();
    const db = walDatabase(file);
    const ck = new WalCheckpointer(file, 1000, hooks(db));
    ck.committed(WAL_HOLD_BYTES);
    const wait = ck.room();
    ck.close();
    await wait;
    expect(ck.room()).toBeUndefined();
    db.close();
  });
});

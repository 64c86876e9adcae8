import { once } from 'node:events';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { WAL_HOLD_BYTES } from '@ftp/vfs';
import { SqlProvider } from '../src/index.js';

const dir = fs.mkdtempSync(join(tmpdir(), 'ftp-sql-ckpt-'));
let n = 0;
const dbFile = (): string => join(dir, `t${++n}.db`);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

const MiB = 1024 * 1024;
const block = (i: number): Buffer => Buffer.alloc(MiB, i & 0xff);

async function upload(p: SqlProvider, path: string, mib: number): Promise<void> {
  const ws = await p.createWriteStream(path);
  for (let i = 0; i < mib; i++) if (!ws.write(block(i))) await once(ws, 'drain');
  ws.end();
  await once(ws, 'finish');
}

async function expectBlocks(p: SqlProvider, path: string, mib: number): Promise<void> {
  let at = 0;
  let wrong = 0;
  for await (const c of await p.createReadStream(path)) {
    const b = c as Buffer;
    for (let k = 0; k < b.length; k += 65536) if (b[k] !== (Math.floor((at + k) / MiB) & 0xff)) wrong++;
    at += b.length;
  }
  expect(at).toBe(mib * MiB);
  expect(wrong).toBe(0);
}

/** Event-loop turns (setImmediate ticks) while `work` runs. */
async function turnsDuring(work: () => Promise<void>): Promise<number> {
  let turns = 0;
  let on = true;
  const tick = (): void => {
    if (!on) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  try {
    await work();
  } finally {
    on = false;
  }
  return turns;
}

describe('SqlProvider on SQLite: the event loop stays free during uploads and downloads', () => {
  it("a database file: its connection's automatic checkpoints off (a worker checkpoints), the WAL bounded, every byte kept", async () => {
    const exec = vi.spyOn(DatabaseSync.prototype, 'exec');
    const file = dbFile();
    const p = new SqlProvider({ connection: `sqlite:${file}` });
    try {
      await p.migrate();
      expect(exec.mock.calls.map((c) => String(c[0]))).toContain('PRAGMA wal_autocheckpoint = 0');
      await upload(p, '/big.bin', 96);
      // The hold, plus what lands while the last checkpoint runs.
      expect(fs.statSync(`${file}-wal`).size).toBeLessThan(WAL_HOLD_BYTES + 16 * MiB);
      await expectBlocks(p, '/big.bin', 96);
    } finally {
      await p.close();
    }
    // The last connection to close (the provider's, once the worker's is closed) folds the WAL in and removes it.
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
    const again = new SqlProvider({ connection: `sqlite:${file}` });
    try {
      await expectBlocks(again, '/big.bin', 96);
    } finally {
      await again.close();
    }
  });

  it('a database file: the WAL stays bounded through an APPE copying 64 MiB and through many uploads under 1 MiB', async () => {
    const file = dbFile();
    const p = new SqlProvider({ connection: `sqlite:${file}` });
    const walSize = (): number => fs.statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0;
    try {
      await p.migrate();
      await upload(p, '/big.bin', 64);
      let most = 0;
      const sampler = setInterval(() => (most = Math.max(most, walSize())), 5);
      try {
        const ws = await p.createWriteStream('/big.bin', { append: true });
        ws.end(Buffer.alloc(1000, 1));
        await once(ws, 'finish');
        const body = Buffer.alloc(960 * 1024, 9);
        for (let i = 0; i < 120; i++) {
          const small = await p.createWriteStream(`/s${i % 8}.bin`);
          small.end(body);
          await once(small, 'finish');
          most = Math.max(most, walSize());
        }
      } finally {
        clearInterval(sampler);
      }
      expect(most).toBeLessThan(WAL_HOLD_BYTES + 16 * MiB);
      expect((await p.stat('/big.bin')).size).toBe(64 * MiB + 1000);
    } finally {
      await p.close();
    }
  });

  for (const where of ['memory', 'file'] as const) {
    it(`${where}: one write of 16 MiB gives the event loop a turn per 1 MiB batch`, async () => {
      const p = new SqlProvider({ connection: where === 'memory' ? 'sqlite::memory:' : `sqlite:${dbFile()}` });
      try {
        await p.migrate();
        const whole = Buffer.concat(Array.from({ length: 16 }, (_, i) => block(i)));
        const turns = await turnsDuring(async () => {
          const ws = await p.createWriteStream('/one.bin');
          ws.end(whole);
          await once(ws, 'finish');
        });
        expect(turns).toBeGreaterThanOrEqual(15);
        await expectBlocks(p, '/one.bin', 16);
      } finally {
        await p.close();
      }
    });
  }

  for (const where of ['memory', 'file'] as const) {
    it(`${where}: a download gives the event loop a turn per 1 MiB batch read`, async () => {
      const p = new SqlProvider({ connection: where === 'memory' ? 'sqlite::memory:' : `sqlite:${dbFile()}` });
      try {
        await p.migrate();
        await upload(p, '/f.bin', 16);
        let bytes = 0;
        // A consumer that takes every chunk at once, as a socket with room does.
        const sink = new Writable({
          write(chunk: Buffer, _enc, cb) {
            bytes += chunk.length;
            cb();
          },
        });
        const turns = await turnsDuring(async () => pipeline(await p.createReadStream('/f.bin'), sink));
        expect(bytes).toBe(16 * MiB);
        expect(turns).toBeGreaterThanOrEqual(15);
      } finally {
        await p.close();
      }
    });
  }
});

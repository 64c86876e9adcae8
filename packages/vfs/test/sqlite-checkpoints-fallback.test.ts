import { once } from 'node:events';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it, vi } from 'vitest';

// A checkpoint thread that cannot start (no threads left, a sandbox that forbids them): it fails at once.
vi.mock('node:worker_threads', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:worker_threads')>();
  const { EventEmitter } = await import('node:events');
  class FailingWorker extends EventEmitter {
    constructor() {
      super();
      setImmediate(() => this.emit('error', new Error('ERR_WORKER_INIT_FAILED: no threads here')));
    }
    unref(): void {}
    postMessage(): void {}
    terminate(): Promise<number> {
      return Promise.resolve(1);
    }
  }
  return { ...real, Worker: FailingWorker };
});

const { openReadStream, openWriteStream, SqliteProvider } = await import('../src/index.js');

const dir = fs.mkdtempSync(join(tmpdir(), 'ftp-vfs-sqlite-ckpt-fail-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('SqliteProvider without its checkpoint thread', () => {
  it('checkpoints on its own connection again, and uploads go on', async () => {
    const exec = vi.spyOn(DatabaseSync.prototype, 'exec');
    const file = join(dir, 'db.sqlite');
    const p = new SqliteProvider(file);
    try {
      const mib = Buffer.alloc(1024 * 1024, 3);
      const upload = async (path: string, count: number): Promise<void> => {
        const ws = await openWriteStream(p, path);
        for (let i = 0; i < count; i++) if (!ws.write(mib)) await once(ws, 'drain');
        ws.end();
        await once(ws, 'finish');
      };
      await upload('/f.bin', 48);
      expect(exec.mock.calls.map((c) => String(c[0]))).toContain('PRAGMA wal_autocheckpoint = 1000');
      // From now on the connection checkpoints every ~4 MB by itself: the WAL starts over instead of growing.
      const walBefore = fs.statSync(`${file}-wal`).size;
      await upload('/g.bin', 24);
      expect(fs.statSync(`${file}-wal`).size).toBeLessThanOrEqual(walBefore);
      let bytes = 0;
      for await (const c of await openReadStream(p, '/f.bin')) bytes += (c as Buffer).length;
      expect(bytes).toBe(48 * 1024 * 1024);
    } finally {
      p.close();
    }
  });
});

import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { LocalProvider } from '../src/index.js';
import type { UploadStream } from '../src/index.js';

/**
 * ext4, XFS and btrfs write a file's pending data out inside `close` once it was emptied since it was opened, and
 * inside `rename` over an existing file (ext4, btrfs): measured on ext4, a 1 GiB upload over an old file held the
 * event loop 140–200 ms in its close, a rename of a just-uploaded 1 GiB file over another 580 ms. With
 * `syncMetadata` those calls go to the thread pool; the small-file calls stay synchronous (they are the fast path).
 */
const KiB = 1024;

let root: string;
let provider: LocalProvider;
beforeAll(() => {
  root = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), 'vfs-flushing-')));
  provider = new LocalProvider(root);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

function end(ws: UploadStream, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.end(body, () => resolve());
  });
}

/** Uploads `body` to `name` and says how its descriptor was closed. */
async function uploadCloses(name: string, body: Buffer): Promise<{ sync: number; async: number }> {
  const ws = await provider.createWriteStream(`/${name}`);
  const sync = vi.spyOn(fs, 'closeSync');
  const async = vi.spyOn(fs, 'close');
  await end(ws, body);
  const calls = { sync: sync.mock.calls.length, async: async.mock.calls.length };
  vi.restoreAllMocks();
  expect(fs.readFileSync(join(root, name)).equals(body)).toBe(true);
  return calls;
}

describe('LocalProvider (syncMetadata) keeps calls that write data out off the event loop', () => {
  it('closes an upload that emptied an old file, and wrote more than 64 KiB, in the thread pool', async () => {
    fs.writeFileSync(join(root, 'old-big'), Buffer.alloc(256 * KiB, 1));
    expect(await uploadCloses('old-big', Buffer.alloc(1024 * KiB, 2))).toEqual({ sync: 0, async: 1 });
  });

  it('closes small uploads and new files on the main thread, as before', async () => {
    fs.writeFileSync(join(root, 'old-for-small'), Buffer.alloc(256 * KiB, 1));
    // Emptied, but 16 KiB written: little to write out.
    expect(await uploadCloses('old-for-small', Buffer.alloc(16 * KiB, 3))).toEqual({ sync: 1, async: 0 });
    // A new file was never emptied: nothing is written out at close, whatever its size.
    expect(await uploadCloses('new-big', Buffer.alloc(1024 * KiB, 4))).toEqual({ sync: 1, async: 0 });
    // A small old file is overwritten in place, not emptied.
    fs.writeFileSync(join(root, 'old-small'), Buffer.alloc(8 * KiB, 1));
    expect(await uploadCloses('old-small', Buffer.alloc(1024 * KiB, 5))).toEqual({ sync: 1, async: 0 });
  });

  it('renames a big file over an existing one in the thread pool, other renames on the main thread', async () => {
    const big = Buffer.alloc(1024 * KiB, 6);
    /** `over`: the size of the file the rename replaces (sparse), or null for a new name. */
    const cases: { from: string; size: number; over: number | null; pool: boolean }[] = [
      { from: 'r-big-over', size: big.length, over: 3, pool: true },
      { from: 'r-big-new', size: big.length, over: null, pool: false },
      { from: 'r-small-over', size: 16 * KiB, over: 3, pool: false },
      // Replacing a file above 64 MiB frees its blocks in the call, as deleting it does (DELE uses the pool for it).
      { from: 'r-small-over-huge', size: 16 * KiB, over: 65 * 1024 * KiB, pool: true },
      { from: 'r-small-over-64m', size: 16 * KiB, over: 64 * 1024 * KiB, pool: false },
    ];
    for (const c of cases) {
      const body = big.subarray(0, c.size);
      fs.writeFileSync(join(root, c.from), body);
      if (c.over !== null) {
        fs.writeFileSync(join(root, `${c.from}.to`), '');
        fs.truncateSync(join(root, `${c.from}.to`), c.over);
      }
      const sync = vi.spyOn(fs, 'renameSync');
      const pool = vi.spyOn(fsp, 'rename');
      await provider.rename(`/${c.from}`, `/${c.from}.to`);
      expect({ from: c.from, sync: sync.mock.calls.length, pool: pool.mock.calls.length }).toEqual({ from: c.from, sync: c.pool ? 0 : 1, pool: c.pool ? 1 : 0 });
      vi.restoreAllMocks();
      expect(fs.existsSync(join(root, c.from))).toBe(false);
      expect(fs.readFileSync(join(root, `${c.from}.to`)).equals(body)).toBe(true);
    }
  });

  it('still refuses what a rename must not do, whichever way it runs', async () => {
    fs.writeFileSync(join(root, 'r-src'), Buffer.alloc(1024 * KiB, 7));
    fs.writeFileSync(join(root, 'r-dst'), 'old');
    await expect(provider.rename('/', '/x')).rejects.toMatchObject({ code: 'EPERM' });
    await expect(provider.rename('/missing', '/r-dst')).rejects.toMatchObject({ code: 'ENOENT' });
    fs.mkdirSync(join(root, 'r-dir'));
    fs.writeFileSync(join(root, 'r-dir', 'f'), 'x');
    // A file over a non-empty folder: the kernel's error, through the pool path's checks.
    await expect(provider.rename('/r-src', '/r-dir')).rejects.toMatchObject({ code: expect.stringMatching(/^(EISDIR|ENOTEMPTY|EEXIST)$/) });
    expect(fs.statSync(join(root, 'r-src')).size).toBe(1024 * KiB);
  });
});

import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { LocalProvider, listDirectorySlices, quota, readOnly, scoped, type DirEntry } from '../src/index.js';
import { LstatThread } from '../src/internal/lstat-thread.js';
import { openFds } from './open-fds.js';

// listSlices on local disk suspended for a long time by a slow consumer (from review): folder checks still hold.

const dirFds = (under: string): number =>
  openFds().filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(under);
    } catch {
      return false;
    }
  }).length;

const made: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  LstatThread.setEnabled(true);
});
afterAll(async () => {
  await LstatThread.stopShared();
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

function tree(count: number): { base: string; outside: string } {
  const outside = fs.mkdtempSync(join(tmpdir(), 'rv-outside-'));
  const base = fs.mkdtempSync(join(tmpdir(), 'rv-base-'));
  made.push(outside, base);
  fs.mkdirSync(join(base, 'home', 'sw'), { recursive: true });
  for (let i = 0; i < count; i++) {
    fs.writeFileSync(join(base, 'home', 'sw', `f${i}`), '');
    fs.writeFileSync(join(outside, `f${i}`), 'secret');
  }
  fs.symlinkSync(outside, join(base, 'home', 'esc'));
  return { base, outside };
}

async function threadOnline(base: string): Promise<void> {
  const warm = new LocalProvider(base);
  for (let i = 0; i < 200 && LstatThread.available() === null; i++) {
    await warm.list('/home/sw');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('a listing suspended by a slow consumer', () => {
  for (const thread of [false, true]) {
    it(`refuses to go on once the folder is swapped for a link while it waits (thread ${thread})`, async () => {
      const { base } = tree(5000);
      if (!thread) LstatThread.setEnabled(false);
      else await threadOnline(base);
      const p = new LocalProvider(base, { listingThread: thread });
      const view = readOnly(quota(scoped(p, '/home'), { bytes: 1e9 }));
      const slices = await listDirectorySlices(view, '/sw');
      const seen: DirEntry[] = [];
      const first = await slices.next();
      if (first.done !== true) seen.push(...first.value);
      // The client is slow: a long wait, during which another session swaps the folder.
      await new Promise((r) => setTimeout(r, 200));
      await p.rename('/home/sw', '/home/sw-old');
      // Moved by another process: the provider refuses to move a link that leads out of the root.
      fs.renameSync(join(base, 'home', 'esc'), join(base, 'home', 'sw'));
      let error: unknown = null;
      try {
        for (;;) {
          const got = await slices.next();
          if (got.done === true) break;
          seen.push(...got.value);
        }
      } catch (err) {
        error = err;
      }
      // Slices looked up before the swap may still come; nothing from outside may.
      expect(seen.filter((e) => e.stats.size === 6)).toEqual([]);
      expect(error).toMatchObject({ code: 'EACCES', path: '/sw' });
      expect(String((error as Error).message)).not.toContain(base);
      await slices.return();
      expect(dirFds(base)).toBe(0);
    });
  }

  it('return() with thread slices in flight: no unhandled rejection, folder closed, even if the thread goes away', async () => {
    const { base } = tree(5000);
    await threadOnline(base);
    const rejections: unknown[] = [];
    const onRejection = (r: unknown): void => void rejections.push(r);
    process.on('unhandledRejection', onRejection);
    try {
      const p = new LocalProvider(base);
      for (let round = 0; round < 5; round++) {
        const slices = await p.listSlices('/home/sw');
        await slices.next();
        const ended = slices.return();
        if (round % 2 === 1) await LstatThread.stopShared();
        await ended;
        expect(dirFds(base)).toBe(0);
      }
      await new Promise((r) => setTimeout(r, 200));
      expect(rejections).toEqual([]);
    } finally {
      process.off('unhandledRejection', onRejection);
    }
  });
});

import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Sorted listings (`listSlices(path, { sortedUpTo })`) on local disk: every size around the slice and limit
// boundaries, a folder swapped mid-listing, and the wrappers that pass the option on.
import { LocalProvider, mounts, quota, scoped, type DirSlices } from '../src/index.js';
import { LstatThread } from '../src/internal/lstat-thread.js';

let root: string;
const SIZES = [0, 1, 499, 500, 501, 999, 1000, 1001, 1500, 2001];
beforeAll(() => {
  root = fs.mkdtempSync(join(tmpdir(), 'vfs-sorted-'));
  for (const n of SIZES) {
    fs.mkdirSync(join(root, `d${n}`));
    for (let i = 0; i < n; i++) fs.writeFileSync(join(root, `d${n}`, `e${(i * 7919) % 100_003}`), '');
  }
});
afterAll(async () => {
  await LstatThread.stopShared();
  fs.rmSync(root, { recursive: true, force: true });
});

async function drain(s: DirSlices) {
  const names: string[] = [];
  let sorted: boolean | undefined;
  for await (const slice of s) {
    sorted ??= s.sorted;
    expect(slice.length).toBeLessThanOrEqual(500);
    for (const e of slice) names.push(e.name);
  }
  return { names, sorted: sorted ?? s.sorted };
}

describe('sorted slices: bookkeeping', () => {
  for (const thread of [true, false]) {
    it(`every entry exactly once, sorted iff flagged (thread ${thread})`, async () => {
      const p = new LocalProvider(root, { listingThread: thread });
      for (const n of SIZES) {
        const want = fs.readdirSync(join(root, `d${n}`)).sort();
        for (const max of [undefined, 0, 1, 499, 500, 501, n - 1, n, n + 1, 20_000]) {
          if (max !== undefined && max < 0) continue;
          const got = await drain(await p.listSlices(`/d${n}`, max === undefined ? undefined : { sortedUpTo: max }));
          expect([n, max, got.names.length]).toEqual([n, max, n]);
          expect([...got.names].sort()).toEqual(want);
          expect([n, max, got.sorted === true]).toEqual([n, max, max !== undefined && n <= max]);
          if (got.sorted) expect(got.names).toEqual(want);
        }
      }
    });
  }

  it('a folder removed while it is listed ends the listing with ENOENT (not the EACCES of a folder swapped for another)', async () => {
    for (const when of ['before-first', 'after-first']) {
      const base = fs.mkdtempSync(join(tmpdir(), 'vfs-gone-'));
      try {
        fs.mkdirSync(join(base, 'gone'));
        for (let i = 0; i < 6000; i++) fs.writeFileSync(join(base, 'gone', `f${i}`), '');
        const p = new LocalProvider(base, { listingThread: false });
        const s = await p.listSlices('/gone', { sortedUpTo: 20_000 });
        const first = s.next();
        if (when === 'after-first') await first;
        fs.rmSync(join(base, 'gone'), { recursive: true, force: true });
        const err = await (async () => {
          await first;
          for (;;) if ((await s.next()).done) return null;
        })().catch((e: unknown) => e);
        expect([when, err]).toMatchObject([when, { code: 'ENOENT' }]);
        await s.return();
      } finally {
        fs.rmSync(base, { recursive: true, force: true });
      }
    }
  });

  it('a sorted listing refuses a folder swapped for a link to outside while its names are read, or after its first slice', async () => {
    const outside = fs.mkdtempSync(join(tmpdir(), 'vfs-outside-'));
    try {
      for (let i = 0; i < 6000; i++) fs.writeFileSync(join(outside, `f${i}`), 'secret');
      for (const when of ['before-first', 'after-first']) {
        const base = fs.mkdtempSync(join(tmpdir(), 'vfs-swap-'));
        fs.mkdirSync(join(base, 'sw'));
        for (let i = 0; i < 6000; i++) fs.writeFileSync(join(base, 'sw', `f${i}`), '');
        fs.symlinkSync(outside, join(base, 'esc'));
        const p = new LocalProvider(base, { listingThread: false });
        const s = await p.listSlices('/sw', { sortedUpTo: 20_000 });
        const first = s.next();
        if (when === 'after-first') await first;
        await p.rename('/sw', '/sw-old');
        // Moved by another process: the provider refuses to move a link that leads out of the root.
        fs.renameSync(join(base, 'esc'), join(base, 'sw'));
        let leaked = 0;
        let count = 0;
        const rest = (async () => {
          const f = await first;
          if (!f.done) for (const e of f.value) { count++; if (e.stats.size === 6) leaked++; }
          for (;;) { const g = await s.next(); if (g.done) return; for (const e of g.value) { count++; if (e.stats.size === 6) leaked++; } }
        })();
        const err = await rest.then(() => null, (e: unknown) => e);
        expect(leaked).toBe(0);
        expect(err).toMatchObject({ code: 'EACCES' });
        await s.return();
        fs.rmSync(base, { recursive: true, force: true });
      }
    } finally {
      fs.rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe('sorted slices: wrappers', () => {
  it('mounts passes sortedUpTo on for a folder with no mount point in it, quota always; a folder with one is not sorted', async () => {
    const local = new LocalProvider(root);
    const viaMounts = mounts(scoped(local, '/'), { '/m': scoped(local, '/d1000') });
    const a = await drain(await viaMounts.listSlices!('/d1000', { sortedUpTo: 20_000 }));
    const b = await drain(await viaMounts.listSlices!('/m', { sortedUpTo: 20_000 }));
    const c = await drain(await quota(local, { bytes: 1e9 }).listSlices!('/d1000', { sortedUpTo: 20_000 }));
    expect([a.sorted, b.sorted, c.sorted]).toEqual([true, true, true]);
    expect(a.names).toEqual([...a.names].sort());
    // The root holds the mount point /m, listed in a slice of its own after the folder's: not in name order.
    const withMount = await drain(await viaMounts.listSlices!('/', { sortedUpTo: 20_000 }));
    expect(withMount.sorted === true).toBe(false);
    expect(withMount.names).toContain('m');
  });
});

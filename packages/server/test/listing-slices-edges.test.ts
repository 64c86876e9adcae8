import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { LocalProvider, MemoryProvider, type DirSlices, type FsProvider, type NameSlices } from '@ftp/vfs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ServerSettings } from '../src/index.js';
import { listingLines as listing, RawClient, readAll } from './helpers.js';
import { countedFolder, loggedIn, seeded } from './sliced-folder.js';

// Listings sent a slice at a time, from review: folder handles on every path, ABOR mid-listing, ordering,
// backpressure and the DirSlices contract. LIST/NLST read one slice past listSortMax before the 150 (to tell a
// folder that came whole from a big one), so the held-back slices below come after that one.

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const ENTRIES = 3_000;
let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(join(tmpdir(), 'ftp-review-slices-'));
  fs.mkdirSync(join(root, 'big'));
  for (let i = ENTRIES - 1; i >= 0; i--) fs.writeFileSync(join(root, 'big', `e${String((i * 7919) % ENTRIES).padStart(5, '0')}`), 'x');
  fs.mkdirSync(join(root, 'big', 'zsub'));
  fs.writeFileSync(join(root, 'big', 'zsub', 'b'), '');
  fs.writeFileSync(join(root, 'big', 'zsub', 'a'), '');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Open descriptors of this process on anything under the test root (the folders a listing holds open). */
const rootFds = (): number =>
  fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(root);
    } catch {
      return false;
    }
  }).length;

async function settled(): Promise<number> {
  // Up to 10 s: a loaded machine (the whole suite on two cores) can take a while to run the close, and the listing
  // thread still runs the lookups an ended listing had queued (each opens the folder, O_PATH, for its batch): seen
  // holding one for just over 3 s here, so a 3 s wait failed one run in three, on the code of stop 48 too.
  // Zero for 100 ms on end, not once: those queued lookups open and close the folder in turn, so a count read
  // between two of them said 0 and the next read 1 (1 of 8 runs failed so, on the code of stop 50 too).
  let zeroSince = -1;
  for (let i = 0; i < 500; i++) {
    if (rootFds() > 0) zeroSince = -1;
    else if (zeroSince < 0) zeroSince = i;
    else if (i - zeroSince >= 5) return 0;
    await new Promise((r) => setTimeout(r, 20));
  }
  return rootFds();
}

const session = (fsp: FsProvider, settings: Partial<ServerSettings> = {}): Promise<RawClient> => loggedIn(fsp, settings, cleanups);

const namesOf = (lines: string[]): string[] => lines.map((l) => l.slice(l.lastIndexOf(' ') + 1));
const sorted = (names: string[]): string[] => [...names].sort();

describe('folder handles are released on every path (local disk)', () => {
  for (const sortMax of [100, 20_000]) {
    it(`listSortMax ${sortMax}: LIST, NLST, MLSD, STAT, LIST -R, globs, files, TYPE A, MODE Z`, async () => {
      const c = await session(new LocalProvider(root), { listSortMax: sortMax, modeZ: true });
      expect(await settled()).toBe(0);
      for (const command of ['LIST /big', 'NLST /big', 'MLSD /big', 'LIST -R /big', 'NLST -l /big', 'NLST /big/e00001', 'LIST /big/e0000*', 'MLSD /big/zsub']) {
        expect((await listing(c, command)).length).toBeGreaterThan(0);
        expect([command, await settled()]).toEqual([command, 0]);
      }
      expect((await c.cmd('STAT /big')).code).toBe(213);
      expect(await settled()).toBe(0);
      expect((await c.cmd('TYPE A')).code).toBe(200);
      const ascii = await listing(c, 'LIST /big');
      expect(ascii).toHaveLength(ENTRIES + 1);
      expect(await settled()).toBe(0);
      expect((await c.cmd('MODE Z')).code).toBe(200);
      const z = inflateSync(await c.retrieve('MLSD /big')).toString().split('\r\n').slice(0, -1);
      expect(z).toHaveLength(ENTRIES + 1);
      expect((await c.cmd('MODE S')).code).toBe(200);
      expect(await settled()).toBe(0);
      // No PASV: 425 after the folder was opened.
      for (const command of ['LIST /big', 'MLSD /big', 'NLST /big']) {
        expect((await c.cmd(command)).code).toBe(425);
        expect([command, await settled()]).toEqual([command, 0]);
      }
    });
  }

  it('a client that walks away, ABORs, never connects, or quits mid-listing', async () => {
    // Local disk, with the third slice held back until `open()`: the listing is mid-folder when the client acts.
    let open: () => void = () => undefined;
    const local = new LocalProvider(root);
    const held = local as LocalProvider & { listSlices(path: string): Promise<DirSlices>; listNameSlices(path: string): Promise<NameSlices> };
    const gated = <S extends DirSlices | NameSlices>(slices: S): S => {
      const gate = new Promise<void>((r) => (open = r));
      let n = 0;
      const wrapped = {
        async next() {
          if (n++ === 2) await gate;
          return slices.next();
        },
        return: () => slices.return(),
        [Symbol.asyncIterator]() {
          return wrapped;
        },
      };
      return wrapped as unknown as S;
    };
    // NLST lists names only (listNameSlices), LIST and MLSD entries (listSlices): both are held back.
    const inner = local.listSlices.bind(local);
    held.listSlices = async (path: string) => gated(await inner(path));
    const innerNames = local.listNameSlices.bind(local);
    held.listNameSlices = async (path: string) => gated(await innerNames(path));
    const c = await session(held, { listSortMax: 100, dataConnectTimeout: 0.3 });
    for (const command of ['LIST /big', 'MLSD /big', 'NLST /big']) {
      // ABOR while the listing waits for its next slice.
      let socket = await c.passive();
      c.send(command);
      expect((await c.next()).code).toBe(150);
      await new Promise((r) => setTimeout(r, 50));
      c.send('ABOR');
      setTimeout(() => open(), 100);
      expect([(await c.next()).code, (await c.next()).code]).toEqual([426, 226]);
      socket.destroy();
      expect([command, 'ABOR', await settled()]).toEqual([command, 'ABOR', 0]);
      // The data connection dropped by the client.
      socket = await c.passive();
      c.send(command);
      expect((await c.next()).code).toBe(150);
      socket.destroy();
      await new Promise((r) => setTimeout(r, 50));
      open();
      expect((await c.next()).code).toBe(426);
      expect([command, 'drop', await settled()]).toEqual([command, 'drop', 0]);
      // Never connects.
      expect((await c.cmd('PASV')).code).toBe(227);
      c.send(command);
      expect((await c.next()).code).toBe(150);
      expect((await c.next()).code).toBe(425);
      open();
      expect([command, 'never', await settled()]).toEqual([command, 'never', 0]);
    }
    // The control connection closed while the listing waits.
    const c2 = await session(held, { listSortMax: 100 });
    const socket = await c2.passive();
    c2.send('MLSD /big');
    expect((await c2.next()).code).toBe(150);
    c2.close();
    await new Promise((r) => setTimeout(r, 50));
    open();
    expect(await settled()).toBe(0);
    socket.destroy();
  });
});

describe('ABOR and a slow slice', () => {
  for (const command of ['MLSD /huge', 'LIST /huge']) {
    it(`${command}: ABOR is answered while the next slice is still on its way (it was before: all was read before the 150)`, async () => {
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      const { p, made } = countedFolder(10, -1, { at: 3, gate });
      await seeded(p);
      const c = await session(p, { listSortMax: 150 });
      const socket = await c.passive();
      c.send(command);
      expect((await c.next()).code).toBe(150);
      await new Promise((r) => setTimeout(r, 100));
      const t0 = Date.now();
      c.send('ABOR');
      const late = setTimeout(() => open(), 3_000);
      const codes = [(await c.next(6_000)).code, (await c.next(6_000)).code];
      const waited = Date.now() - t0;
      clearTimeout(late);
      open();
      socket.destroy();
      expect(codes).toEqual([426, 226]);
      expect(waited).toBeLessThan(1_000);
      await new Promise((r) => setTimeout(r, 50));
      expect(made.ended).toBe(true);
    });
  }
});

describe('ordering', () => {
  it('STAT of a folder bigger than listSortMax comes as LIST comes: every entry once, in the order read', async () => {
    const c = await session(new LocalProvider(root), { listSortMax: 100 });
    const r = await c.cmd('STAT /big');
    expect(r.code).toBe(213);
    expect(r.lines.at(-1)).toBe('End of status');
    const names = namesOf(r.lines.slice(1, -1).map((l) => l.trim()));
    expect(names).toHaveLength(ENTRIES + 1);
    expect(names).toEqual(namesOf(await listing(c, 'LIST /big')));
  });

  it('LIST -R: each folder comes as LIST gives it (bigger than listSortMax: in the order read), every entry once', async () => {
    const c = await session(new LocalProvider(root), { listSortMax: 100 });
    const lines = await listing(c, 'LIST -R /big');
    const first = lines.slice(1, lines.indexOf(''));
    expect(namesOf(first)).toEqual(namesOf(await listing(c, 'LIST /big')));
    // The folder below, small enough: sorted.
    const sub = lines.slice(lines.indexOf('/big/zsub:') + 1);
    expect(namesOf(sub)).toEqual(['a', 'b']);
  });

  it('LIST of a provider that lists in one piece (no listSlices) past listSortMax: sorted as before', async () => {
    const p = new MemoryProvider();
    await p.mkdir('/m');
    for (let i = 300; i > 0; i--) {
      const w = await p.createWriteStream!(`/m/n${String(i).padStart(3, '0')}`);
      await new Promise<void>((r) => w.end('x', () => r()));
    }
    // Its `list` only (the memory provider has its own slices now).
    const listOnly = { stat: p.stat.bind(p), lstat: p.lstat.bind(p), readdir: p.readdir.bind(p), list: p.list.bind(p) } as unknown as FsProvider;
    const c = await session(listOnly, { listSortMax: 100 });
    const names = namesOf(await listing(c, 'LIST /m'));
    expect(names).toHaveLength(300);
    expect(names).toEqual(sorted(names));
  });
});

/**
 * `count()` once it has stopped growing for 500 ms (a listing held back by a client that reads nothing), looked at
 * for 15 s at most: on a loaded machine the server may still be filling the socket's buffers after the first 500 ms
 * (282 slices, then 322, in one CI run). A listing that never stops fails the caller's bound instead.
 */
async function steadyCount(count: () => number): Promise<number> {
  let last = -1;
  for (let waited = 0; waited < 15_000 && count() !== last; waited += 500) {
    last = count();
    await new Promise((r) => setTimeout(r, 500));
  }
  return count();
}

describe('backpressure and the DirSlices contract', () => {
  // LIST -R held its first folder whole before its 150 (1,001 slices here); MLSD streamed already.
  for (const command of ['MLSD /huge', 'LIST -R /huge']) {
    it(`${command}: a client that reads nothing holds the listing a bounded way ahead`, async () => {
      const { p, made } = countedFolder(3_000);
      await seeded(p);
      const c = await session(p);
      const socket = await c.passive();
      socket.pause();
      c.send(command);
      expect((await c.next()).code).toBe(150);
      // Steady (nothing read), and far short of the folder (kernel socket buffers are a few MiB on loopback).
      const a = await steadyCount(() => made.slices);
      await new Promise((r) => setTimeout(r, 500));
      expect(made.slices).toBe(a);
      expect(a).toBeLessThan(1_000);
      socket.destroy();
      expect((await c.next()).code).toBe(426);
      expect(made.ended).toBe(true);
    });
  }

  it('STAT: a client that reads nothing holds the listing a bounded way ahead (it was held whole: ~200 MB per 100,000 entries)', async () => {
    const { p, made } = countedFolder(3_000);
    await seeded(p);
    const c = await session(p);
    c.socket.pause();
    c.send('STAT /huge');
    // Steady (nothing read), and far short of the folder's 300,000 entries or the 100,000 the old code held.
    const a = await steadyCount(() => made.slices);
    await new Promise((r) => setTimeout(r, 500));
    expect(made.slices).toBe(a);
    expect(a).toBeLessThan(1_000);
    c.socket.destroy();
    for (let i = 0; i < 100 && !made.ended; i++) await new Promise((r) => setTimeout(r, 20));
    expect(made.ended).toBe(true);
  });

  it('STAT: ABOR stops a long listing, which ends as a 213 that says so, then ABOR is answered', async () => {
    const { p, made } = countedFolder(3_000);
    await seeded(p);
    const c = await session(p);
    // In one write, as a loaded machine may deliver two: the ABOR is read with the STAT, before anything can be
    // stopped (it was queued then, and answered only after the whole listing).
    c.socket.write('STAT /huge\r\nABOR\r\n');
    const r = await c.next(10_000);
    expect(r.code).toBe(213);
    expect(r.lines.at(-1)).toBe('End of status (cut short: aborted)');
    expect(r.lines.length).toBeLessThan(300_000);
    expect((await c.next()).code).toBe(226);
    expect(made.ended).toBe(true);
    expect((await c.cmd('NOOP')).code).toBe(200);
  });

  it('STAT: a slice that fails after the reply began ends it as a 213 that says so, and the session goes on', async () => {
    const { p, made } = countedFolder(30, 20);
    await seeded(p);
    const c = await session(p, { listSortMax: 150 });
    const r = await c.cmd('STAT /huge');
    expect(r.code).toBe(213);
    expect(r.lines.at(-1)).toMatch(/^End of status \(cut short: \/huge: .+\)$/);
    expect(r.lines.length).toBeGreaterThanOrEqual(1_000);
    expect(made.ended).toBe(true);
    expect((await c.cmd('NOOP')).code).toBe(200);
  });

  it('a return() that rejects after the 226 does not put a second reply on the control connection', async () => {
    const { p } = countedFolder(3);
    const inner = p.listSlices.bind(p);
    p.listSlices = async (path: string) => {
      const slices = await inner(path);
      const broken: DirSlices = {
        next: () => slices.next(),
        return: async () => {
          await slices.return();
          throw Object.assign(new Error('EIO: i/o error, closedir'), { code: 'EIO' });
        },
        [Symbol.asyncIterator]() {
          return broken;
        },
      };
      return broken;
    };
    await seeded(p);
    const c = await session(p);
    const socket = await c.passive();
    c.send('MLSD /huge');
    expect((await c.next()).code).toBe(150);
    await readAll(socket);
    expect((await c.next()).code).toBe(226);
    // The next reply must be NOOP's.
    expect((await c.cmd('NOOP')).code).toBe(200);
  });

  it('STAT /huge: a slice that fails past listSortMax still ends the listing (return())', async () => {
    const { p, made } = countedFolder(10, 3);
    await seeded(p);
    const c = await session(p, { listSortMax: 150 });
    expect((await c.cmd('STAT /huge')).code).toBeGreaterThanOrEqual(450);
    expect(made.ended).toBe(true);
  });

  it('LIST -R /huge: a slice that fails past listSortMax fails the transfer after its 150, and ends the listing (return())', async () => {
    const { p, made } = countedFolder(10, 3);
    await seeded(p);
    const c = await session(p, { listSortMax: 150 });
    const socket = await c.passive();
    expect((await c.cmd('LIST -R /huge')).code).toBe(150);
    void readAll(socket);
    expect((await c.next()).code).toBeGreaterThanOrEqual(450);
    expect(made.ended).toBe(true);
    expect((await c.cmd('NOOP')).code).toBe(200);
  });

});

import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvider, type FsProvider } from '@ftp/vfs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ServerSettings } from '../src/index.js';
import { listingLines as listing, RawClient, readAll } from './helpers.js';
import { countedFolder, loggedIn, seeded } from './sliced-folder.js';

// Listings a slice at a time: a big folder is sent as it is read, never held whole.

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const ENTRIES = 1_234;
let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(join(tmpdir(), 'ftp-listing-slices-'));
  fs.mkdirSync(join(root, 'big'));
  // Created in an order unlike the sorted one, so that "sorted" means something.
  for (let i = ENTRIES - 1; i >= 0; i--) fs.writeFileSync(join(root, 'big', `e${String((i * 7919) % ENTRIES).padStart(5, '0')}`), 'x'.repeat(i % 5));
  fs.mkdirSync(join(root, 'small'));
  for (let i = 39; i >= 0; i--) fs.writeFileSync(join(root, 'small', `s${String((i * 17) % 40).padStart(2, '0')}`), '');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const session = (fsp: FsProvider, settings: Partial<ServerSettings> = {}): Promise<RawClient> => loggedIn(fsp, settings, cleanups);

const namesOf = (lines: string[]): string[] => lines.map((l) => l.slice(l.lastIndexOf(' ') + 1).replace(/^.*;\s?/, ''));
const sorted = (names: string[]): string[] => [...names].sort();

describe('big folders on local disk', () => {
  it('LIST and NLST sort a folder of at most listSortMax entries, and list a bigger one whole, in the order it is read', async () => {
    const small = await session(new LocalProvider(root), { listSortMax: 5_000 });
    const listed = namesOf(await listing(small, 'LIST /big'));
    expect(listed).toHaveLength(ENTRIES);
    expect(listed).toEqual(sorted(listed));
    expect(await listing(small, 'NLST /big')).toEqual(sorted(listed).map((n) => `/big/${n}`));

    const big = await session(new LocalProvider(root), { listSortMax: 100 });
    const unsorted = namesOf(await listing(big, 'LIST /big'));
    expect(sorted(unsorted)).toEqual(sorted(listed));
    const nlst = await listing(big, 'NLST big');
    expect(sorted(nlst)).toEqual(sorted(listed).map((n) => `big/${n}`));
    const mlsd = namesOf(await listing(big, 'MLSD /big'));
    expect(sorted(mlsd)).toEqual(sorted(listed));
  });
});

describe('listSortBudget', () => {
  it('with none left, a folder of one slice is still sorted and a bigger one comes in the order it is read', async () => {
    const c = await session(new LocalProvider(root), { listSortBudget: 0 });
    const small = await listing(c, 'NLST /small');
    expect(small).toHaveLength(40);
    expect(small).toEqual(sorted(small));
    const big = namesOf(await listing(c, 'LIST /big'));
    expect(big).toHaveLength(ENTRIES);
    expect(big).not.toEqual(sorted(big));
  });
});

describe('listSortBudget on local disk', () => {
  it('a listing gives back what its folder does not hold: one waiting for its data connection keeps none of a small folder\'s share', async () => {
    const a = await session(new LocalProvider(root), { listSortMax: 2000, listSortBudget: 2000 });
    // A lists a small folder and never connects: its listing waits (dataConnectTimeout) with the folder read.
    expect((await a.cmd('EPSV')).code).toBe(229);
    a.send('NLST /small');
    expect((await a.next()).code).toBe(150);
    const b = await RawClient.connect(a.socket.remotePort!);
    cleanups.push(() => b.close());
    await b.login();
    // B's folder of 1,234 entries is sorted only if A gave back what its 40 names did not need.
    const names = await listing(b, 'NLST /big');
    expect(names).toHaveLength(ENTRIES);
    expect(names).toEqual(sorted(names));
  });
});

describe('a folder sent as it is read', () => {
  for (const [command, settings, sorted] of [
    ['MLSD /huge', {}, false],
    ['LIST /huge', { listSortMax: 150 }, false],
    ['NLST /huge', { listSortMax: 150 }, false],
    // A provider that sorts before it looks entries up: LIST streams below listSortMax too.
    ['LIST /huge', {}, true],
    ['NLST /huge', {}, true],
  ] as const) {
    it(`${command}${sorted ? ' (sorted by the provider)' : ''}: the client has lines before the folder's later slices are even read`, async () => {
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      const { p, made } = countedFolder(10, -1, { at: 4, gate }, sorted);
      await seeded(p);
      const c = await session(p, settings);
      const socket = await c.passive();
      c.send(command);
      expect((await c.next()).code).toBe(150);
      // Lines arrive while the fifth slice waits for the gate: the listing did not wait for the whole folder.
      const first = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no listing line arrived while the folder was still being read')), 5_000);
        socket.once('data', (d: Buffer) => (clearTimeout(timer), resolve(d.toString())));
      });
      expect(first).toMatch(/s000000-n+-0/);
      expect(made.slices).toBeLessThanOrEqual(4);
      open();
      const rest = (await readAll(socket)).toString();
      expect((await c.next()).code).toBe(226);
      const lines = (first + rest).split('\r\n').filter(Boolean);
      expect(lines).toHaveLength(1_000);
      expect(made.slices).toBe(10);
      if (sorted) {
        expect(made.sortedUpTo).toBe(20_000);
        expect(lines).toEqual([...lines].sort());
      }
    });
  }

  for (const [said, sorts] of [
    ['a provider that sorts, past its limit (sorted: false)', false],
    ['a provider that never sorts (sorted unset)', undefined],
  ] as const) {
    it(`LIST below listSortMax from ${said}: ${sorts === false ? 'streamed at once, nothing gathered' : 'gathered to be sorted'}`, async () => {
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      const { p } = countedFolder(10, -1, { at: 4, gate }, sorts);
      await seeded(p);
      const c = await session(p, {});
      const socket = await c.passive();
      let early = '';
      socket.on('data', (d: Buffer) => (early += d.toString()));
      c.send('LIST /huge');
      // While the fifth slice waits: a streamed listing has begun (150 and lines); a gathered one has not.
      const preliminary = c.next().then((r) => r.code);
      const begun = await Promise.race([preliminary, new Promise((r) => setTimeout(() => r('waiting'), 1_000))]);
      await new Promise((r) => setTimeout(r, 100));
      // Gathering 20,000 entries to sort them held a stalled client's whole listing in memory.
      if (sorts === false) {
        expect(begun).toBe(150);
        expect(early).toMatch(/s000000-n+-0/);
      } else {
        expect(begun).toBe('waiting');
        expect(early).toBe('');
      }
      open();
      if (sorts === undefined) expect(await preliminary).toBe(150);
      await new Promise((r) => socket.once('close', r));
      expect((await c.next()).code).toBe(226);
      expect(early.split('\r\n').filter(Boolean)).toHaveLength(1_000);
    });
  }

  it('a slice that fails after the 150 ends the transfer with an error reply, and the session goes on', async () => {
    const { p, made } = countedFolder(10, 3);
    await seeded(p);
    const c = await session(p);
    const socket = await c.passive();
    c.send('MLSD /huge');
    expect((await c.next()).code).toBe(150);
    await readAll(socket).catch(() => Buffer.alloc(0));
    const reply = await c.next();
    expect(reply.code).toBeGreaterThanOrEqual(450);
    expect(reply.code).not.toBe(226);
    expect(made.slices).toBe(3);
    expect((await c.cmd('NOOP')).code).toBe(200);
  });

  it('a listing the client walks away from, or never takes, is ended (its folder released)', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const walked = countedFolder(10, -1, { at: 2, gate });
    await seeded(walked.p);
    const c = await session(walked.p);
    const socket = await c.passive();
    c.send('MLSD /huge');
    expect((await c.next()).code).toBe(150);
    socket.destroy();
    open();
    expect((await c.next()).code).toBe(426);
    expect(walked.made.ended).toBe(true);

    // No data connection ever comes: the 425 after the connect timeout still ends the listing.
    const never = countedFolder(10);
    await seeded(never.p);
    const c2 = await session(never.p, { dataConnectTimeout: 0.3 });
    expect((await c2.cmd('PASV')).code).toBe(227);
    c2.send('MLSD /huge');
    expect((await c2.next()).code).toBe(150);
    expect((await c2.next()).code).toBe(425);
    expect(never.made.ended).toBe(true);
  });
});

// Names that are not UTF-8, byte for byte: a byte 0x80–0xFF outside valid UTF-8 travels as the lone surrogate
// U+DC00 + byte ("byte escape", PEP 383). Before `rawNames`, the local disk hid such files (Node read their names
// with U+FFFD, and the lstat of that name failed) and wrote an escaped name as U+FFFD's bytes.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { collectSlices, describeCapabilities, hashFile, LocalProvider, MemoryProvider, mounts, openReadStream, openWriteStream, quota, readOnly, scoped, SqliteProvider, toVfsError } from '../src/index.js';
import type { FsProvider, VfsErrorCode } from '../src/index.js';
import { LstatThread } from '../src/internal/lstat-thread.js';

/** The escaped forms of the names created on disk below. */
const CAFE_E9 = 'caf\udce9.txt';
const CAFE_E8 = 'caf\udce8.txt';
const DIR_FF = 'd\udcff';
const INNER_FE = 'inner\udcfe.txt';
/** A valid UTF-8 name that holds U+FFFD itself (EF BF BD on disk). */
const GENUINE = 'repl\ufffd.txt';

let base: string;
let root: string;
let outside: string;

/** The host path of `root` joined with names given as byte strings (`'caf\xe9.txt'`: one byte per character). */
function onDisk(...names: string[]): Buffer {
  return Buffer.concat([Buffer.from(root), ...names.map((n) => Buffer.from(`/${n}`, 'latin1'))]);
}

/** The names in a folder of `root`, as escaped strings read straight from the disk's bytes (no provider). */
function diskNames(...names: string[]): string[] {
  return fs
    .readdirSync(onDisk(...names), 'buffer')
    .map((b) => [...b].map((c) => (c < 0x80 ? String.fromCharCode(c) : `\\x${c.toString(16)}`)).join(''))
    .sort();
}

async function code(promise: Promise<unknown>): Promise<VfsErrorCode | 'resolved'> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return toVfsError(err).code;
  }
}

async function upload(p: FsProvider, path: string, data: string): Promise<void> {
  const ws = await openWriteStream(p, path);
  await new Promise<void>((resolve, reject) => {
    ws.on('error', reject);
    ws.end(Buffer.from(data), () => resolve());
  });
}

async function download(p: FsProvider, path: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of await openReadStream(p, path)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

beforeEach(() => {
  base = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), 'ftp-vfs-raw-')));
  root = join(base, 'root');
  outside = join(base, 'outside');
  fs.mkdirSync(root);
  fs.mkdirSync(outside);
  fs.writeFileSync(join(outside, 'secret.txt'), 'secret');
  fs.writeFileSync(onDisk('caf\xe9.txt'), 'e acute');
  fs.writeFileSync(onDisk('caf\xe8.txt'), 'e grave');
  fs.mkdirSync(onDisk('d\xff'));
  fs.writeFileSync(onDisk('d\xff', 'inner\xfe.txt'), 'inner');
  // A link inside the escaped folder that points outside the root: never followed.
  fs.symlinkSync(outside, onDisk('d\xff', 'out\xe9'));
  // A plain name whose real path is not UTF-8.
  fs.symlinkSync(Buffer.from('d\xff', 'latin1'), onDisk('plain-link'));
  fs.writeFileSync(join(root, GENUINE), 'genuine');
});

afterEach(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

afterAll(async () => {
  await LstatThread.stopShared();
});

for (const syncMetadata of [true, false]) {
  describe(`LocalProvider names that are not UTF-8 (syncMetadata: ${syncMetadata})`, () => {
    const local = (): LocalProvider => new LocalProvider(root, { syncMetadata });

    it('lists them escaped: readdir, readdir with types, list, listSlices (sorted or not)', async () => {
      const p = local();
      const expected = [CAFE_E8, CAFE_E9, DIR_FF, 'plain-link', GENUINE].sort();
      expect(((await p.readdir('/')) as string[]).sort()).toEqual(expected);
      const typed = (await p.readdir('/', { withFileTypes: true })) as { name: string; isDirectory(): boolean }[];
      expect(typed.map((d) => d.name).sort()).toEqual(expected);
      expect(typed.find((d) => d.name === DIR_FF)?.isDirectory()).toBe(true);
      expect(p.readdirSync('/').sort()).toEqual(expected);
      const listed = await p.list('/');
      expect(listed.map((e) => e.name).sort()).toEqual(expected);
      expect(listed.find((e) => e.name === CAFE_E9)?.stats.size).toBe('e acute'.length);
      expect(listed.find((e) => e.name === GENUINE)?.stats.size).toBe('genuine'.length);
      expect((await collectSlices(await p.listSlices('/'))).map((e) => e.name).sort()).toEqual(expected);
      const sorted = await p.listSlices('/', { sortedUpTo: 100 });
      expect((await collectSlices(sorted)).map((e) => e.name)).toEqual(expected);
      expect((await p.readdir(`/${DIR_FF}`)).sort()).toEqual([INNER_FE, 'out\udce9']);
      expect((await p.list(`/${DIR_FF}`)).map((e) => e.name).sort()).toEqual([INNER_FE, 'out\udce9']);
    });

    it('stats, reads and opens them; two names that differ only in such a byte stay two files', async () => {
      const p = local();
      expect((await p.stat(`/${CAFE_E9}`)).size).toBe('e acute'.length);
      expect((await p.lstat(`/${CAFE_E8}`)).size).toBe('e grave'.length);
      expect((await p.stat(`/${DIR_FF}`)).isDirectory()).toBe(true);
      expect(p.statSync(`/${DIR_FF}/${INNER_FE}`).isFile()).toBe(true);
      expect(await download(p, `/${CAFE_E9}`)).toBe('e acute');
      expect(await download(p, `/${CAFE_E8}`)).toBe('e grave');
      expect(await download(p, `/${DIR_FF}/${INNER_FE}`)).toBe('inner');
      expect(await download(p, `/${GENUINE}`)).toBe('genuine');
      // What Node would have read for both names is neither of them.
      expect(await code(p.stat('/caf\ufffd.txt'))).toBe('ENOENT');
      // Escapes that spell valid UTF-8 are no second name for the UTF-8 one.
      fs.writeFileSync(join(root, 'café'), 'utf-8');
      expect((await p.stat('/café')).size).toBe(5);
      expect(await code(p.stat('/caf\udcc3\udca9'))).toBe('EINVAL');
      expect(await code(openReadStream(p, '/caf\udcc3\udca9'))).toBe('EINVAL');
      expect(await code(p.unlink('/caf\udcc3\udca9'))).toBe('EINVAL');
      const h = await p.open(`/${CAFE_E9}`, 'r');
      expect(String(await h.readFile('utf8'))).toBe('e acute');
      await h.close();
      expect(await hashFile(p, `/${DIR_FF}/${INNER_FE}`, 'SHA-1')).toBe(createHash('sha1').update('inner').digest('hex'));
      await p.setTimes(`/${CAFE_E9}`, new Date(1_000_000_000_000));
      expect(fs.statSync(onDisk('caf\xe9.txt')).mtimeMs).toBe(1_000_000_000_000);
      await p.chmod(`/${CAFE_E9}`, 0o600);
      expect(fs.statSync(onDisk('caf\xe9.txt')).mode & 0o777).toBe(0o600);
      expect(await p.availableSpace(`/${DIR_FF}`)).toBeGreaterThan(0);
    });

    it('writes an escaped name as its raw bytes, and appends to it', async () => {
      const p = local();
      await upload(p, `/${DIR_FF}/new\udce4.txt`, 'fresh');
      expect(fs.readFileSync(onDisk('d\xff', 'new\xe4.txt'), 'utf8')).toBe('fresh');
      expect(diskNames('d\xff')).toEqual(['inner\\xfe.txt', 'new\\xe4.txt', 'out\\xe9']);
      const ws = await openWriteStream(p, `/${DIR_FF}/new\udce4.txt`, { append: true });
      await new Promise<void>((resolve, reject) => {
        ws.on('error', reject);
        ws.end(Buffer.from('+more'), () => resolve());
      });
      expect(await download(p, `/${DIR_FF}/new\udce4.txt`)).toBe('fresh+more');
    });

    it('renames between escaped and UTF-8 names, both ways', async () => {
      const p = local();
      await p.rename(`/${CAFE_E9}`, '/café.txt');
      expect(diskNames()).toContain('caf\\xc3\\xa9.txt');
      expect(diskNames()).not.toContain('caf\\xe9.txt');
      await p.rename('/café.txt', `/${DIR_FF}/b\udce0ck`);
      expect(fs.readFileSync(onDisk('d\xff', 'b\xe0ck'), 'utf8')).toBe('e acute');
      await p.rename(`/${DIR_FF}`, `/e\udcfe`);
      expect(await download(p, '/e\udcfe/b\udce0ck')).toBe('e acute');
      expect(diskNames()).toContain('e\\xfe');
    });

    it('unlinks, makes and removes escaped names', async () => {
      const p = local();
      await p.unlink(`/${CAFE_E8}`);
      expect(diskNames()).not.toContain('caf\\xe8.txt');
      expect(diskNames()).toContain('caf\\xe9.txt');
      await p.mkdir('/m\udcf1');
      expect(fs.statSync(onDisk('m\xf1')).isDirectory()).toBe(true);
      // A recursive mkdir names the first folder it made, escapes kept.
      expect(await p.mkdir('/r\udce1/s\udce2', { recursive: true })).toBe('/r\udce1');
      expect(fs.statSync(onDisk('r\xe1', 's\xe2')).isDirectory()).toBe(true);
      await p.rmdir('/m\udcf1');
      expect(fs.existsSync(onDisk('m\xf1'))).toBe(false);
      expect(await code(p.rmdir(`/${DIR_FF}`))).toBe('ENOTEMPTY');
    });

    it('gives real paths and link targets with escapes', async () => {
      const p = local();
      expect(await p.realpath(`/${DIR_FF}/${INNER_FE}`)).toBe(`/${DIR_FF}/${INNER_FE}`);
      // A plain path whose real path is not UTF-8: resolved, followed and listed through it.
      expect(await p.realpath('/plain-link')).toBe(`/${DIR_FF}`);
      expect(await p.readlink('/plain-link')).toBe(DIR_FF);
      expect((await p.readdir('/plain-link')).sort()).toEqual([INNER_FE, 'out\udce9']);
      expect(await download(p, `/plain-link/${INNER_FE}`)).toBe('inner');
      await p.symlink(`/${CAFE_E9}`, `/${DIR_FF}/to-caf\udce9`);
      // Stored absolute (a rename must not change where it leads), read back as a virtual path.
      expect(fs.readlinkSync(onDisk('d\xff', 'to-caf\xe9'), 'buffer')).toEqual(onDisk('caf\xe9.txt'));
      expect(await p.readlink(`/${DIR_FF}/to-caf\udce9`)).toBe(`/${CAFE_E9}`);
      expect(await download(p, `/${DIR_FF}/to-caf\udce9`)).toBe('e acute');
    });

    it('keeps the root: a link inside an escaped folder that points outside is refused', async () => {
      const p = local();
      const out = `/${DIR_FF}/out\udce9`;
      expect((await p.lstat(out)).isSymbolicLink()).toBe(true);
      expect(await code(p.stat(out))).toBe('EACCES');
      expect(await code(p.readdir(out))).toBe('EACCES');
      expect(await code(p.list(out))).toBe('EACCES');
      expect(await code(openReadStream(p, `${out}/secret.txt`))).toBe('EACCES');
      expect(await code(openWriteStream(p, `${out}/new\udce9`))).toBe('EACCES');
      expect(await code(p.mkdir(`${out}/x\udce9`))).toBe('EACCES');
      expect(await code(p.symlink('../..', `/${DIR_FF}/up\udce9`))).toBe('EACCES');
      expect(fs.readdirSync(outside)).toEqual(['secret.txt']);
    });

    it('lists a folder of several slices with such names in it, each name once', async () => {
      const big = onDisk('big');
      fs.mkdirSync(big);
      const plain = Array.from({ length: 1300 }, (_, i) => `f${String(i).padStart(4, '0')}`);
      for (const n of plain) fs.writeFileSync(join(root, 'big', n), '');
      // Three names Node reads alike (x\uFFFD), one genuinely so.
      fs.writeFileSync(onDisk('big', 'x\xe9'), '1');
      fs.writeFileSync(onDisk('big', 'x\xe8'), '22');
      fs.writeFileSync(join(root, 'big', 'x\ufffd'), '333');
      const expected = [...plain, 'x\udce9', 'x\udce8', 'x\ufffd'].sort();
      const p = local();
      const sizes = (entries: { name: string; stats: { size: number } }[]): Record<string, number> =>
        Object.fromEntries(entries.filter((e) => e.name.startsWith('x')).map((e) => [e.name, e.stats.size]));
      const listed = await p.list('/big');
      expect(listed.map((e) => e.name).sort()).toEqual(expected);
      expect(sizes(listed)).toEqual({ 'x\udce9': 1, 'x\udce8': 2, 'x\ufffd': 3 });
      const unsorted = await collectSlices(await p.listSlices('/big'));
      expect(unsorted.map((e) => e.name).sort()).toEqual(expected);
      const sorted = await collectSlices(await p.listSlices('/big', { sortedUpTo: 5000 }));
      expect(sorted.map((e) => e.name)).toEqual(expected);
      expect(sizes(sorted)).toEqual({ 'x\udce9': 1, 'x\udce8': 2, 'x\ufffd': 3 });
      expect(((await p.readdir('/big')) as string[]).sort()).toEqual(expected);
    });

    it('works under a root whose own path is not UTF-8', async () => {
      const p = new LocalProvider(`${root}/${DIR_FF}`, { syncMetadata });
      expect(p.rootDir).toBe(`${root}/${DIR_FF}`);
      expect((await p.readdir('/')).sort()).toEqual([INNER_FE, 'out\udce9']);
      expect((await p.list('/')).map((e) => e.name).sort()).toEqual([INNER_FE, 'out\udce9']);
      expect(await download(p, `/${INNER_FE}`)).toBe('inner');
      await upload(p, '/plain.txt', 'plain');
      expect(fs.readFileSync(onDisk('d\xff', 'plain.txt'), 'utf8')).toBe('plain');
      expect(await p.realpath('/plain.txt')).toBe('/plain.txt');
      expect(await code(p.stat('/out\udce9'))).toBe('EACCES');
      expect(await code(p.stat('/../caf\udce9.txt'))).toBe('ENOENT');
    });
  });
}

describe('MemoryProvider names with byte escapes', () => {
  it('keeps them exactly: write, list, stat, read, rename, unlink, mkdir, rmdir', async () => {
    const p = new MemoryProvider();
    await upload(p, `/${CAFE_E9}`, 'e acute');
    await upload(p, `/${CAFE_E8}`, 'e grave');
    await upload(p, '/caf\u00e9.txt', 'utf-8');
    await p.mkdir(`/${DIR_FF}`);
    await upload(p, `/${DIR_FF}/${INNER_FE}`, 'inner');
    expect(((await p.readdir('/')) as string[]).sort()).toEqual([CAFE_E8, CAFE_E9, 'caf\u00e9.txt', DIR_FF].sort());
    expect((await p.list('/')).map((e) => e.name).sort()).toEqual([CAFE_E8, CAFE_E9, 'caf\u00e9.txt', DIR_FF].sort());
    expect((await p.stat(`/${CAFE_E9}`)).size).toBe(7);
    expect(await download(p, `/${CAFE_E8}`)).toBe('e grave');
    expect(await download(p, `/${DIR_FF}/${INNER_FE}`)).toBe('inner');
    expect(await code(p.stat('/caf\ufffd.txt'))).toBe('ENOENT');
    await p.rename(`/${CAFE_E9}`, '/moved.txt');
    await p.rename('/moved.txt', '/back\udce9.txt');
    expect(await download(p, '/back\udce9.txt')).toBe('e acute');
    await p.unlink(`/${CAFE_E8}`);
    await p.unlink(`/${DIR_FF}/${INNER_FE}`);
    await p.rmdir(`/${DIR_FF}`);
    expect(((await p.readdir('/')) as string[]).sort()).toEqual(['back\udce9.txt', 'caf\u00e9.txt']);
    expect(p.rawNames).toBe(true);
    // A link's size is its target's bytes, an escape counting one (as the local disk's lstat says).
    await p.symlink!('back\udce9.txt', '/link');
    expect((await p.lstat('/link')).size).toBe('back\xe9.txt'.length);
  });
});

describe('rawNames capability', () => {
  it('is set by the local disk and memory, not by SQLite, and carried by the wrappers', () => {
    const local = new LocalProvider(root);
    const memory = new MemoryProvider();
    const sqlite = new SqliteProvider();
    expect(describeCapabilities(local).rawNames).toBe(true);
    expect(describeCapabilities(memory).rawNames).toBe(true);
    expect(describeCapabilities(sqlite).rawNames).toBe(false);
    for (const wrap of [readOnly, (p: FsProvider) => scoped(p, '/'), (p: FsProvider) => quota(p, { bytes: 1e9 })]) {
      expect(describeCapabilities(wrap(local)).rawNames).toBe(true);
      expect(describeCapabilities(wrap(sqlite)).rawNames).toBe(false);
    }
    // A tree of several providers takes escapes, and routes each path in the form its provider keeps.
    expect(describeCapabilities(mounts(memory, { '/disk': local })).rawNames).toBe(true);
    expect(describeCapabilities(mounts(memory, { '/disk': local, '/db': sqlite })).rawNames).toBe(true);
    sqlite.close();
  });

  it('in a tree of mounts, names reach each provider in the form it keeps', async () => {
    const sqlite = new SqliteProvider();
    const tree = mounts(new LocalProvider(root), { '/db': sqlite });
    try {
      // The local disk at the root keeps the escape as the byte; SQLite under /db gets the Latin-1 character.
      expect((await tree.stat('/caf\udce9.txt')).size).toBe('e acute'.length);
      await upload(tree, '/db/caf\udce9.txt', 'sql');
      expect(await sqlite.readdir('/')).toEqual(['café.txt']);
      expect((await tree.stat('/db/caf\udce9.txt')).size).toBe(3);
      await tree.symlink!('caf\udce9.txt', '/db/link');
      expect(await sqlite.readlink!('/link')).toBe('café.txt');
    } finally {
      sqlite.close();
    }
  });
});

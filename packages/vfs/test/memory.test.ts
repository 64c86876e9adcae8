import { once } from 'node:events';
import { create } from '@platformatic/vfs';
import { describe, expect, it } from 'vitest';
import { describeCapabilities, MemoryProvider, openReadStream, openWriteStream, toVfsError } from '../src/index.js';
import type { MemoryFileHandle, UploadStream } from '../src/index.js';
import { turnsDuring } from './turns.js';

async function readAll(p: MemoryProvider, path: string): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const c of await openReadStream(p, path)) chunks.push(c as Buffer);
  return chunks;
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return toVfsError(err).code;
  }
}

/**
 * An upload of `path` that wrote `first`, replaced meanwhile by a second upload of `path` that wrote `second` and
 * ended: the first, still open, is returned.
 */
async function replacedBeforeItEnds(p: MemoryProvider, path: string, first: string, second: string): Promise<UploadStream> {
  const a = await openWriteStream(p, path);
  const b = await openWriteStream(p, path);
  a.write(first);
  b.end(second);
  await once(b, 'finish');
  return a;
}

/** Makes `upload` look as if it last wrote `ms` ago (negative: in the future, still writing), for the takeover rules. */
function lastWrote(upload: UploadStream, ms: number): void {
  (upload as unknown as { idleSince: number }).idleSince = performance.now() - ms;
}

/** The error `upload` is ended with (its errors are expected: no unhandled 'error'). */
function endedWith(upload: UploadStream): Promise<unknown> {
  upload.on('error', () => undefined);
  return new Promise((resolve) => upload.once('close', () => resolve(upload.errored)));
}

describe('MemoryProvider (own)', () => {
  it('declares its capabilities', () => {
    expect(describeCapabilities(new MemoryProvider())).toEqual({
      streaming: true,
      list: true,
      setTimes: true,
      setCreationTime: true,
      chmod: true,
      hash: false,
      availableSpace: true,
      allocate: true,
      concat: false,
      uploadBusy: true,
      releaseUploadHold: true,
      checkUpload: false,
      checkEnter: false,
      symlink: true,
      readonly: false,
      atomicUploads: true,
      uploadsVisibleWhenComplete: false,
      rawNames: true,
    });
  });

  it('appends in linear time: 64 MiB in 64 KiB writes through a handle', async () => {
    const p = new MemoryProvider();
    const chunk = Buffer.alloc(64 * 1024, 1);
    const h = await p.open('/f', 'w');
    const t0 = performance.now();
    for (let i = 0; i < 1024; i++) await h.write(chunk, 0, chunk.length, null);
    await h.close();
    const ms = performance.now() - t0;
    expect((await p.stat('/f')).size).toBe(64 * 1024 * 1024);
    // @platformatic/vfs's MemoryProvider takes ~25 s here (quadratic copying); this takes ~50 ms.
    expect(ms).toBeLessThan(3000);
  });

  it('downloads are zero-copy views of the stored chunks', async () => {
    const p = new MemoryProvider();
    const ws = await openWriteStream(p, '/f');
    ws.end(Buffer.alloc(3 * 256 * 1024, 7));
    await once(ws, 'finish');
    const a = await readAll(p, '/f');
    const b = await readAll(p, '/f');
    expect(a.length).toBe(3);
    for (let i = 0; i < a.length; i++) expect((a[i] as Buffer).buffer).toBe((b[i] as Buffer).buffer);
  });

  it('a reader sees the file as it was when its stream opened', async () => {
    const p = new MemoryProvider();
    await p.writeFile('/f', 'version one');
    const rs = await openReadStream(p, '/f');
    await p.writeFile('/f', 'version two, longer');
    const h = await p.open('/f', 'r+');
    await h.write(Buffer.from('V'), 0, 1, 0);
    await h.close();
    const chunks: Buffer[] = [];
    for await (const c of rs) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('version one');
    expect(await p.readFile('/f', 'utf8')).toBe('Version two, longer');
  });

  it('an upload is visible as it is written; an interrupted one keeps what it received', async () => {
    const p = new MemoryProvider();
    const ws = await openWriteStream(p, '/up');
    await new Promise<void>((resolve) => ws.write(Buffer.alloc(1000, 1), () => resolve()));
    expect((await p.stat('/up')).size).toBe(1000);
    ws.transferError?.(new Error('connection lost'));
    ws.destroy();
    await once(ws, 'close');
    expect((await p.stat('/up')).size).toBe(1000);
  });

  it('of two uploads of one file, the one that ends last wins, whole (the client told 226 last finds its data)', async () => {
    for (const last of ['a', 'b'] as const) {
      const p = new MemoryProvider({ capacity: 100_000 });
      const a = await openWriteStream(p, '/f');
      const b = await openWriteStream(p, '/f');
      for (let i = 0; i < 10; i++) {
        a.write(Buffer.alloc(1000, 0x61));
        b.write(Buffer.alloc(500, 0x62));
      }
      const [first, second] = last === 'a' ? [b, a] : [a, b];
      first.end();
      await once(first, 'finish');
      second.end();
      await once(second, 'finish');
      expect(await p.readFile('/f', 'utf8'), `${last} ended last`).toBe(last === 'a' ? 'a'.repeat(10_000) : 'b'.repeat(5000));
      // Only the file's version counts against the store.
      expect(await p.availableSpace('/')).toBe(100_000 - (last === 'a' ? 10_000 : 5000));
    }
  });

  it('a file whose replaced upload still writes cannot be renamed away (EBUSY); a folder renamed on the way keeps it in it', async () => {
    // Once the bug was the older upload's data replacing the finished, renamed file at its new name (upload, then
    // RNTO); the rename was then allowed and the older upload's data dropped although told 226. Now the rename waits for it.
    const p = new MemoryProvider({ capacity: 100_000 });
    await p.mkdir('/archive');
    const a = await replacedBeforeItEnds(p, '/f', 'a'.repeat(1000), 'B-complete-data');
    expect(await code(p.rename('/f', '/archive/f'))).toBe('EBUSY');
    a.end();
    await once(a, 'finish');
    expect(await p.readFile('/f', 'utf8')).toBe('a'.repeat(1000));
    await p.rename('/f', '/archive/f');
    expect(await code(p.stat('/f'))).toBe('ENOENT');
    await new Promise((r) => setImmediate(r));
    expect(await p.availableSpace('/')).toBe(100_000 - 1000);
    // A folder renamed on the way keeps the file in it: the upload that ends last is the file there.
    await p.mkdir('/d');
    const c = await replacedBeforeItEnds(p, '/d/g', 'c-last', 'd-first');
    await p.rename('/d', '/e');
    c.end();
    await once(c, 'finish');
    expect(await p.readFile('/e/g', 'utf8')).toBe('c-last');
  });

  it('a file whose replaced upload still writes cannot be deleted (EBUSY); once it ends it is the file, and goes with a DELE then', async () => {
    const p = new MemoryProvider({ capacity: 100_000 });
    const a = await replacedBeforeItEnds(p, '/f', 'a'.repeat(1000), 'b'.repeat(500));
    expect(await code(p.unlink('/f'))).toBe('EBUSY');
    a.end();
    await once(a, 'finish');
    expect(await p.readFile('/f', 'utf8')).toBe('a'.repeat(1000));
    await p.unlink('/f');
    expect(await code(p.stat('/f'))).toBe('ENOENT');
    await new Promise((r) => setImmediate(r));
    expect(await p.availableSpace('/')).toBe(100_000);
  });

  it('a download of a file an upload is still writing is refused with EBUSY; one opened before reads the old version whole', async () => {
    // The bug: the download got the prefix written so far, and the server sent it with 226 as if it were the file.
    const p = new MemoryProvider();
    await p.writeFile('/f', 'old version');
    const before = await openReadStream(p, '/f');
    const up = await openWriteStream(p, '/f');
    up.write(Buffer.from('new ver'));
    expect(await code(openReadStream(p, '/f'))).toBe('EBUSY');
    const chunks: Buffer[] = [];
    for await (const c of before) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('old version');
    up.end('sion, longer');
    await once(up, 'finish');
    const after: Buffer[] = [];
    for await (const c of await openReadStream(p, '/f')) after.push(c as Buffer);
    expect(Buffer.concat(after).toString()).toBe('new version, longer');
  });

  it('an upload quiet for 5 s gives the file up: a download ends it and reads what it wrote', async () => {
    const p = new MemoryProvider();
    const up = await openWriteStream(p, '/f');
    up.on('error', () => undefined);
    up.write(Buffer.from('partial'));
    expect(await code(openReadStream(p, '/f'))).toBe('EBUSY');
    (up as unknown as { idleSince: number }).idleSince -= 5000;
    const chunks: Buffer[] = [];
    for await (const c of await openReadStream(p, '/f')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('partial');
    expect(up.destroyed).toBe(true);
  });

  it('an APPE or a REST + STOR of a file being uploaded is refused with EBUSY when it opens, until that upload ends or is destroyed', async () => {
    // The bug: two APPEs of one file wrote into the same content chunk by chunk (A B A B…), and an APPE or a REST
    // during a STOR wrote into, or kept a zero-filled prefix of, the half-written file; all of them got 226.
    // (The outcomes of every race are in @ftp/vfs-conformance's concurrent-writers group: this pins the moment.)
    const p = new MemoryProvider();
    await p.writeFile('/f', 'base');
    for (const first of [{}, { append: true }, { start: 2 }]) {
      const up = await openWriteStream(p, '/f', first);
      up.write(Buffer.from('x'));
      expect(await code(openWriteStream(p, '/f', { append: true }))).toBe('EBUSY');
      expect(await code(openWriteStream(p, '/f', { start: 1 }))).toBe('EBUSY');
      if (Object.keys(first).length === 0) {
        // A whole-file upload, or REST 0, replaces another whole-file upload: not refused (the one ending last wins).
        const stor = await openWriteStream(p, '/f', { start: 0 });
        stor.end('new');
        await once(stor, 'finish');
      } else {
        // It would replace the content an APPE or a REST + STOR writes into, and their bytes would go with it.
        expect(await code(openWriteStream(p, '/f', { start: 0 }))).toBe('EBUSY');
      }
      up.end();
      await once(up, 'finish');
    }
    // 'x' (the first upload ended last), 'x' appended, then REST 2 + STOR of 'x'.
    expect(await p.readFile('/f', 'utf8')).toBe('xxx');
    // Released when the upload is destroyed (an interrupted transfer), and on a missing file it creates.
    const gone = await openWriteStream(p, '/g', { append: true });
    gone.write(Buffer.from('partial'));
    expect(await code(openWriteStream(p, '/g', { append: true }))).toBe('EBUSY');
    gone.destroy();
    await once(gone, 'close');
    const again = await openWriteStream(p, '/g', { append: true });
    again.end(' more');
    await once(again, 'finish');
    expect(await p.readFile('/g', 'utf8')).toBe('partial more');
  });

  it('random handle writes, reads and truncations match a reference buffer', async () => {
    const p = new MemoryProvider();
    let ref = Buffer.alloc(0);
    const h = (await p.open('/r', 'w+')) as MemoryFileHandle;
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let step = 0; step < 400; step++) {
      const op = rnd(10);
      if (op < 6) {
        const pos = rnd(ref.length + 2000);
        const len = 1 + rnd(op < 3 ? 100 : 70_000);
        const data = Buffer.alloc(len, rnd(256));
        h.writeSync(data, 0, len, pos);
        if (pos + len > ref.length) ref = Buffer.concat([ref, Buffer.alloc(pos + len - ref.length)]);
        data.copy(ref, pos);
      } else if (op < 7) {
        const len = rnd(ref.length + 5000);
        h.truncateSync(len);
        ref = len <= ref.length ? ref.subarray(0, len) : Buffer.concat([ref, Buffer.alloc(len - ref.length)]);
      } else {
        const pos = rnd(ref.length + 10);
        const len = rnd(100_000);
        const out = Buffer.alloc(len);
        const n = h.readSync(out, 0, len, pos);
        expect(n).toBe(Math.max(0, Math.min(len, ref.length - pos)));
        expect(out.subarray(0, n).equals(ref.subarray(pos, pos + n))).toBe(true);
      }
      expect(h.statSync().size).toBe(ref.length);
    }
    h.closeSync();
    expect(((await p.readFile('/r')) as Buffer).equals(ref)).toBe(true);
  });

  it('many small writes are coalesced and read back intact', async () => {
    const p = new MemoryProvider();
    const ws = await openWriteStream(p, '/small');
    const expected: Buffer[] = [];
    for (let i = 0; i < 20_000; i++) {
      const b = Buffer.from(`${i},`);
      expected.push(b);
      ws.write(b);
    }
    ws.end();
    await once(ws, 'finish');
    expect(Buffer.concat(await readAll(p, '/small')).equals(Buffer.concat(expected))).toBe(true);
  });

  it('capacity: ENOSPC past it, space freed by unlink and overwrite, availableSpace and allocate', async () => {
    const p = new MemoryProvider({ capacity: 1000 });
    expect(await p.availableSpace('/')).toBe(1000);
    await p.writeFile('/a', Buffer.alloc(600));
    expect(await p.availableSpace('/')).toBe(400);
    expect(await code(p.allocate('/b', 500))).toBe('ENOSPC');
    await p.allocate('/b', 400);
    const ws = await openWriteStream(p, '/b');
    const err = await new Promise<unknown>((resolve) => {
      ws.on('error', resolve);
      ws.end(Buffer.alloc(500));
    });
    expect(toVfsError(err).code).toBe('ENOSPC');
    await p.writeFile('/a', Buffer.alloc(100)); // the old 600 bytes are released
    expect(await p.availableSpace('/')).toBe(900);
    await p.unlink('/a');
    expect(await p.availableSpace('/')).toBe(1000);
    expect(p.usedBytes).toBe(0);
    expect(await new MemoryProvider().availableSpace('/')).toBe(Infinity);
  });

  it('an upload under way: its file may not be deleted, renamed away or renamed over (EBUSY); free once it ends', async () => {
    const p = new MemoryProvider();
    await p.writeFile('/other', 'x');
    const up = await openWriteStream(p, '/f');
    await new Promise((resolve) => up.write('first', resolve));
    expect(await code(p.unlink('/f'))).toBe('EBUSY');
    expect(await code(p.rename('/f', '/g'))).toBe('EBUSY');
    expect(await code(p.rename('/other', '/f'))).toBe('EBUSY');
    up.end(' and last');
    await once(up, 'finish');
    expect(String(await p.readFile('/f'))).toBe('first and last');
    await p.rename('/f', '/g');
    await p.rename('/other', '/g');
    await p.unlink('/g');
    expect(p.usedBytes).toBe(0);
  });

  it('an upload replaced by another that has ended still holds its file: DELE, RNFR/RNTO and APPE are EBUSY until it ends, and it is the file then', async () => {
    // The bug (found with Apache Commons Net): B's STOR ended while A's still ran, B's DELE was allowed, and A, told
    // 226, left no file. S3, SQL and Redis end with A's version; the local disk refuses B's STOR and DELE (450).
    const p = new MemoryProvider();
    await p.writeFile('/other', 'x');
    const a = await openWriteStream(p, '/f');
    await new Promise((resolve) => a.write('A first', resolve));
    const b = await openWriteStream(p, '/f');
    b.end('B whole');
    await once(b, 'finish');
    expect(String(await p.readFile('/f'))).toBe('B whole');
    expect(await code(p.unlink('/f'))).toBe('EBUSY');
    expect(await code(p.rename('/f', '/g'))).toBe('EBUSY');
    expect(await code(p.rename('/other', '/f'))).toBe('EBUSY');
    expect(await code(openWriteStream(p, '/f', { append: true }))).toBe('EBUSY');
    expect(await p.uploadBusy('/f', { append: true })).toBe(true);
    a.end(' and last');
    await once(a, 'finish');
    expect(String(await p.readFile('/f'))).toBe('A first and last');
    await p.unlink('/f');
    await p.unlink('/other');
    expect(p.usedBytes).toBe(0);
  });

  it('a STOR while an APPE or a REST + STOR still writes the file is EBUSY (it would replace what they write into), and uploadBusy says so first', async () => {
    // The bug: B's STOR replaced the content A's APPE wrote into, and A, told 226, left none of its bytes.
    const p = new MemoryProvider();
    await p.writeFile('/f', 'start;');
    for (const options of [{ append: true }, { start: 2 }]) {
      const a = await openWriteStream(p, '/f', options);
      await new Promise((resolve) => a.write('A;', resolve));
      expect(await p.uploadBusy('/f', {})).toBe(true);
      expect(await code(openWriteStream(p, '/f'))).toBe('EBUSY');
      expect(await code(p.unlink('/f'))).toBe('EBUSY');
      a.end();
      await once(a, 'finish');
      expect(await p.uploadBusy('/f', {})).toBe(false);
    }
    // 'start;' + 'A;' appended, then REST 2 + STOR of 'A;'.
    expect(String(await p.readFile('/f'))).toBe('stA;');
    // Two whole-file uploads still replace each other (atomicUploads): the one that ends last is the file.
    const first = await openWriteStream(p, '/f');
    expect(await p.uploadBusy('/f', {})).toBe(false);
    const second = await openWriteStream(p, '/f');
    second.end('second');
    await once(second, 'finish');
    first.end('first');
    await once(first, 'finish');
    expect(String(await p.readFile('/f'))).toBe('first');
  });

  it('a refused DELE ends no idle upload: while another upload of the file still writes, an idle one is left alone; ended once the DELE can go ahead', async () => {
    // The file's current upload (b, which replaced a) is idle; a, replaced, still writes. The DELE is refused for
    // a, and used to end b all the same ("another session took the file over", while nobody had).
    const p = new MemoryProvider();
    const a = await openWriteStream(p, '/f');
    a.write('A');
    const b = await openWriteStream(p, '/f');
    const bEnded = endedWith(b);
    b.write('B');
    lastWrote(a, -10_000);
    lastWrote(b, 10_000);
    expect(await code(p.unlink('/f'))).toBe('EBUSY');
    expect(await code(p.rename('/f', '/g'))).toBe('EBUSY');
    await p.writeFile('/other', 'x');
    expect(await code(p.rename('/other', '/f'))).toBe('EBUSY');
    expect(b.destroyed, 'the refused DELE and renames ended nothing').toBe(false);
    a.end();
    await once(a, 'finish');
    // Only the idle one is left: the DELE ends it and goes ahead.
    await p.unlink('/f');
    expect(b.destroyed).toBe(true);
    expect(toVfsError(await bEnded).code).toBe('EBUSY');
  });

  it('a STOR ends an idle APPE of the file (it has lost its client: its end is an error, not a 226 with its bytes gone)', async () => {
    const p = new MemoryProvider();
    await p.writeFile('/f', 'start;');
    const a = await openWriteStream(p, '/f', { append: true });
    const aEnded = endedWith(a);
    await new Promise((resolve) => a.write('A1;', resolve));
    lastWrote(a, 10_000);
    expect(await p.uploadBusy('/f', {})).toBe(false);
    const b = await openWriteStream(p, '/f');
    expect(toVfsError(await aEnded).code).toBe('EBUSY');
    b.end('B whole');
    await once(b, 'finish');
    expect(String(await p.readFile('/f'))).toBe('B whole');
  });

  it('a STOR asked about while an APPE of the file is announced (held: it had its 150) is busy; REST 0 is a whole-file upload', async () => {
    const p = new MemoryProvider();
    await p.writeFile('/f', 'x');
    const appending = {};
    const storing = {};
    expect(await p.uploadBusy('/f', { append: true }, appending)).toBe(false);
    expect(await p.uploadBusy('/f', {}, storing)).toBe(true);
    // Its own hold does not refuse the announcing upload.
    expect(await p.uploadBusy('/f', {}, appending)).toBe(false);
    await p.releaseUploadHold('/f', appending);
    expect(await p.uploadBusy('/f', {}, storing)).toBe(false);
    // REST 0 + STOR replaces the file as a STOR does: another STOR meanwhile is not refused.
    const rest0 = await openWriteStream(p, '/f', { start: 0 });
    rest0.write('r');
    expect(await p.uploadBusy('/f', {})).toBe(false);
    const plain = await openWriteStream(p, '/f');
    plain.end('plain');
    await once(plain, 'finish');
    rest0.end('0');
    await once(rest0, 'finish');
    expect(String(await p.readFile('/f'))).toBe('r0');
  });

  it('capacity: an upload whose file is replaced still counts until it ends (ENOSPC past it)', async () => {
    // The bug: the detached content stopped counting, and the upload stored whatever the client sent (50 MiB into a
    // 1 MiB provider, usedBytes 0).
    const KiB = 1024;
    const chunk = Buffer.alloc(256 * KiB, 1);
    const write = (ws: Awaited<ReturnType<typeof openWriteStream>>): Promise<string> =>
      new Promise((resolve) => ws.write(chunk, (err) => resolve(err ? toVfsError(err).code : 'ok')));
    // A plain STOR replaces the file under an upload (unlink and rename of it are refused now).
    {
      const p = new MemoryProvider({ capacity: 1024 * KiB });
      await p.writeFile('/other', 'x');
      const up = await openWriteStream(p, '/f');
      up.on('error', () => undefined);
      expect(await write(up)).toBe('ok');
      const replacing = await openWriteStream(p, '/f');
      // One byte stays in a file: '/other'.
      expect(p.usedBytes).toBe(256 * KiB + 1);
      expect(await write(up)).toBe('ok');
      expect(await write(up)).toBe('ok');
      expect(p.usedBytes).toBe(768 * KiB + 1);
      expect(await write(up)).toBe('ENOSPC');
      // The failed upload ended: its bytes are given back.
      expect(up.destroyed).toBe(true);
      expect(p.usedBytes).toBe(1);
      replacing.end('new');
      await once(replacing, 'finish');
      expect(p.usedBytes).toBe(4);
    }
    // An upload that ends after the one that replaced its file ended is the file (it ended last): its bytes count
    // once, the replaced version's went back.
    const p = new MemoryProvider({ capacity: 1024 * KiB });
    const up = await openWriteStream(p, '/f');
    expect(await write(up)).toBe('ok');
    const replacing = await openWriteStream(p, '/f');
    replacing.end('new');
    await once(replacing, 'finish');
    expect(p.usedBytes).toBe(256 * KiB + 3);
    up.end();
    await once(up, 'finish');
    expect(p.usedBytes).toBe(256 * KiB);
    expect((await p.stat('/f')).size).toBe(256 * KiB);
  });

  it('capacity: REST k + STOR keeps k bytes, not the whole block they were cut from', async () => {
    // The bug: the kept prefix was a view of the old 256 KiB block, so each REST 1 + STOR held 256 KiB in memory
    // while 1 byte counted against capacity.
    const p = new MemoryProvider({ capacity: 1024 * 1024 });
    const big = await openWriteStream(p, '/f');
    big.end(Buffer.alloc(256 * 1024, 1));
    await once(big, 'finish');
    const rest = await openWriteStream(p, '/f', { start: 1 });
    rest.end();
    await once(rest, 'finish');
    const chunks = await readAll(p, '/f');
    expect(Buffer.concat(chunks)).toEqual(Buffer.from([1]));
    for (const c of chunks) expect(c.buffer.byteLength).toBeLessThan(256 * 1024);
    expect(p.usedBytes).toBe(1);
  });

  it('handle writes after a truncate to 0 or an overwrite from 0 of the whole file keep the file intact', async () => {
    // The bug: the block being filled survived the rebuilt part list, so the next append wrote into the old block
    // and close() copied it over the real last part ("abc" then "HELLO" at 0 read back as "abc\0\0").
    const p = new MemoryProvider();
    const cases: [string, (h: MemoryFileHandle) => void, string][] = [
      ['overwrite', (h) => h.writeSync(Buffer.from('HELLO'), 0, 5, 0), 'HELLO'],
      ['overwrite + append', (h) => (h.writeSync(Buffer.from('hello'), 0, 5, 0), h.writeSync(Buffer.from('XY'), 0, 2, 5)), 'helloXY'],
      ['truncate + write', (h) => (h.truncateSync(0), h.writeSync(Buffer.from('XYZ'), 0, 3, 0)), 'XYZ'],
      ['writeFile', (h) => h.writeFileSync('second'), 'second'],
    ];
    for (const [name, act, expected] of cases) {
      const h = (await p.open('/f', 'w+')) as MemoryFileHandle;
      h.writeSync(Buffer.from('abc'));
      act(h);
      expect(h.readFileSync('latin1'), name).toBe(expected);
      h.closeSync();
      expect(await p.readFile('/f', 'latin1'), name).toBe(expected);
      expect(p.usedBytes, name).toBe(expected.length);
    }
  });

  it('REST beyond the end fills with zeros', async () => {
    const p = new MemoryProvider();
    await p.writeFile('/f', 'ab');
    const ws = await openWriteStream(p, '/f', { start: 5 });
    ws.end(Buffer.from('Z'));
    await once(ws, 'finish');
    expect(await p.readFile('/f')).toEqual(Buffer.from([0x61, 0x62, 0, 0, 0, 0x5a]));
  });

  it('symlinks resolve inside the provider: .. and absolute targets stop at its root', async () => {
    const p = new MemoryProvider();
    await p.writeFile('/f', 'root file');
    await p.mkdir('/d');
    await p.symlink('../../../../f', '/d/l');
    expect(await p.readFile('/d/l', 'utf8')).toBe('root file');
    await p.symlink('/d/loop2', '/d/loop1');
    await p.symlink('/d/loop1', '/d/loop2');
    expect(await code(p.stat('/d/loop1'))).toBe('ELOOP');
    expect(await p.realpath('/d/l')).toBe('/f');
  });

  it('renames a large tree in O(1) and refuses to move a directory into itself', async () => {
    const p = new MemoryProvider();
    for (let i = 0; i < 2000; i++) await p.mkdir(`/t/d${i}`, { recursive: true });
    const t0 = performance.now();
    await p.rename('/t', '/u');
    expect(performance.now() - t0).toBeLessThan(50);
    expect((await p.readdir('/u')).length).toBe(2000);
    expect(await code(p.rename('/u', '/u/d1/x'))).toBe('EINVAL');
  });

  it('refuses to remove or rename the root with EPERM, not EBUSY (the server answers that 450 "try again later")', async () => {
    const p = new MemoryProvider();
    await p.mkdir('/d');
    expect(await code(p.rmdir('/'))).toBe('EPERM');
    expect(await code(p.rename('/', '/x'))).toBe('EPERM');
    expect(await code(p.rename('/d', '/'))).toBe('EPERM');
    expect(await p.readdir('/')).toEqual(['d']);
  });

  it('can be mounted with @platformatic/vfs create() (sync API)', () => {
    const vfs = create(new MemoryProvider(), { moduleHooks: false });
    vfs.mkdirSync('/d');
    vfs.writeFileSync('/d/a.txt', 'hello');
    vfs.appendFileSync('/d/a.txt', ' world');
    expect(vfs.readFileSync('/d/a.txt', 'utf8')).toBe('hello world');
    expect(vfs.readdirSync('/d')).toEqual(['a.txt']);
    expect(vfs.statSync('/d/a.txt').size).toBe(11);
    vfs.renameSync('/d/a.txt', '/b.txt');
    expect(vfs.existsSync('/d/a.txt')).toBe(false);
    const fd = vfs.openSync('/b.txt');
    const buf = Buffer.alloc(5);
    expect(vfs.readSync(fd, buf, 0, 5, 6)).toBe(5);
    vfs.closeSync(fd);
    expect(buf.toString()).toBe('world');
  });
});

describe('MemoryProvider uploads', () => {
  it('copy every chunk before calling back (releasesChunks), and give the event loop a turn per MiB stored', async () => {
    const p = new MemoryProvider();
    const MiB = 1024 * 1024;
    // One buffer, refilled for each write once the write before has called back: what is stored is a copy.
    const reused = await turnsDuring(async () => {
      const ws = await openWriteStream(p, '/reused.bin');
      expect(ws.releasesChunks).toBe(true);
      const chunk = Buffer.alloc(MiB);
      for (let i = 0; i < 16; i++) {
        chunk.fill(i);
        await new Promise<void>((resolve, reject) => ws.write(chunk, (err) => (err ? reject(err) : resolve())));
      }
      ws.end();
      await once(ws, 'finish');
    });
    // Sixteen handed over at once, past the high-water mark: stored together (_writev), a turn per MiB all the same.
    const atOnce = await turnsDuring(async () => {
      const ws = await openWriteStream(p, '/at-once.bin');
      for (let i = 0; i < 16; i++) ws.write(Buffer.alloc(MiB, i));
      ws.end();
      await once(ws, 'finish');
    });
    expect(reused).toBeGreaterThanOrEqual(15);
    expect(atOnce).toBeGreaterThanOrEqual(15);
    for (const name of ['/reused.bin', '/at-once.bin']) {
      const stored = Buffer.concat(await readAll(p, name));
      expect(stored.length).toBe(16 * MiB);
      for (let i = 0; i < 16; i++) expect(stored[i * MiB + 12345], `${name} MiB ${i}`).toBe(i);
    }
  });
});

describe('MemoryProvider listings a slice at a time', () => {
  it('gives 500 entries a slice with their stats, sorted up to sortedUpTo, and names alone for NLST', async () => {
    const p = new MemoryProvider();
    await p.mkdir('/d');
    for (let i = 1200; i > 0; i--) await p.writeFile(`/d/f${String(i).padStart(4, '0')}`, 'x'.repeat(i % 7));
    const slices = await p.listSlices('/d', { sortedUpTo: 5000 });
    const sizes: number[] = [];
    const all: { name: string; size: number }[] = [];
    for await (const slice of slices) {
      sizes.push(slice.length);
      for (const e of slice) all.push({ name: e.name, size: e.stats.size });
    }
    expect(sizes).toEqual([500, 500, 200]);
    expect(slices.sorted).toBe(true);
    expect(all.map((e) => e.name)).toEqual(all.map((e) => e.name).sort());
    expect(all.find((e) => e.name === 'f0013')?.size).toBe(13 % 7);
    // Past sortedUpTo: in the order the folder holds them, said so.
    const unsorted = await p.listSlices('/d', { sortedUpTo: 100 });
    const first = await unsorted.next();
    expect(unsorted.sorted).toBe(false);
    expect((first.value as { name: string }[])[0]!.name).toBe('f1200');
    await unsorted.return();
    const names = await p.listNameSlices('/d', { sortedUpTo: 5000 });
    const got: string[] = [];
    for await (const slice of names) got.push(...slice);
    expect(got).toEqual(all.map((e) => e.name));
    await expect(p.listSlices('/missing')).rejects.toMatchObject({ code: 'ENOENT' });
    // Entries removed after the listing opened are left out (DirSlices' contract), not listed with stale stats.
    const open = await p.listSlices('/d', { sortedUpTo: 5000 });
    await p.unlink('/d/f0001');
    await p.unlink('/d/f1200');
    const left: string[] = [];
    for await (const slice of open) left.push(...slice.map((e) => e.name));
    expect(left).toHaveLength(1198);
    expect(left).not.toContain('f0001');
    expect(left).not.toContain('f1200');
  });

  it('a subclass with its own list keeps it, in slices and names', async () => {
    class Hiding extends MemoryProvider {
      override async list(path: string) {
        return (await super.list(path)).filter((e) => !e.name.startsWith('.'));
      }
    }
    const p = new Hiding();
    await p.mkdir('/d');
    for (const name of ['a', '.hidden', 'b']) await p.writeFile(`/d/${name}`, '');
    const names: string[] = [];
    for await (const slice of await p.listSlices('/d')) names.push(...slice.map((e) => e.name));
    expect(names.sort()).toEqual(['a', 'b']);
    const nlst: string[] = [];
    for await (const slice of await p.listNameSlices('/d')) nlst.push(...slice);
    expect(nlst.sort()).toEqual(['a', 'b']);
  });
});

import type { Writable } from 'node:stream';
import { expect, it } from 'vitest';
import { toVfsError } from '@ftp/vfs';
import type { Capabilities, FsProvider, WriteStreamOptions } from '@ftp/vfs';
import { endStream, readAll, startUpload, writeAll, writeChunk } from './helpers.js';

// The `concurrent-writers` group: two uploads to one file that overlap in time never lose or mix data. Backends
// refuse in different ways (local disk: the second writer with EBUSY when it opens; SQL, Redis, SQLite and S3: an
// upload that continues a file, with EBUSY when it ends; overwrites there are last-writer-wins), so the group states
// only what all of them keep:
// - each writer succeeds, or fails with EBUSY when it opens or when it ends (no other error, no hang), and at least
//   one of the two succeeds;
// - the file then holds what one serial order of the successful writers gives (each whole, none interleaved, the
//   bytes an append or a REST keeps from the file never lost);
// - a refused writer leaves nothing that changes the file, and the file takes normal writes afterwards.

const KiB = 1024;
/** Bytes per write: several per upload, and several 256 KiB chunks (SQL, Redis, SQLite) per upload. */
const STEP = 64 * KiB;
/** How long one open, write or end may take before the group calls it a hang. */
const HANG_MS = 30_000;

/** One upload of a race: STOR, APPE or REST + STOR, with bytes of its own fill letter (so a mix shows). */
interface Writer {
  readonly label: string;
  readonly options: WriteStreamOptions;
  readonly data: Buffer;
}

const fill = (letter: string, n: number): Buffer => Buffer.alloc(n, letter);
const stor = (letter: string, n: number): Writer => ({ label: `STOR ${letter}`, options: {}, data: fill(letter, n) });
const appe = (letter: string, n: number): Writer => ({ label: `APPE ${letter}`, options: { append: true }, data: fill(letter, n) });
const rest = (letter: string, n: number, start: number): Writer => ({ label: `REST ${start} + STOR ${letter}`, options: { start }, data: fill(letter, n) });

/** What the file holds once `w` has run alone on `before` (`undefined`: no file). */
function applyWriter(before: Buffer | undefined, w: Writer): Buffer {
  const old = before ?? Buffer.alloc(0);
  if (w.options.append === true) return Buffer.concat([old, w.data]);
  const start = w.options.start;
  if (start === undefined) return w.data;
  // The kept prefix, zero-filled past the end of the old content.
  const prefix = Buffer.alloc(start);
  old.copy(prefix, 0, 0, Math.min(start, old.length));
  return Buffer.concat([prefix, w.data]);
}

/** Content as runs of bytes, `o×409600 A×337927`: what a failure message shows instead of the bytes. */
function runs(buf: Buffer | undefined): string {
  if (buf === undefined) return '(no file)';
  if (buf.length === 0) return '(empty)';
  const out: string[] = [];
  let start = 0;
  for (let i = 1; i <= buf.length; i++) {
    if (i === buf.length || buf[i] !== buf[start]) {
      const b = buf[start] as number;
      out.push(`${b >= 0x21 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`}×${i - start}`);
      start = i;
    }
  }
  return out.length > 12 ? `${out.slice(0, 12).join(' ')} … (${out.length} runs)` : out.join(' ');
}

/** A writer's open, write or end that did not settle: the test fails with it (it is no outcome). */
class Hang extends Error {}

/** `promise`, or a {@link Hang} naming `what` once {@link HANG_MS} have passed. */
async function within<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Hang(`${what}: still pending after ${HANG_MS} ms (a writer must succeed or fail with EBUSY, never hang)`)), HANG_MS);
  });
  try {
    return await Promise.race([promise, hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** How a writer of a race ended. */
type Outcome = { ok: true } | { ok: false; stage: 'open' | 'write' | 'end'; code: string; message: string };

const failed = (stage: 'open' | 'write' | 'end', err: unknown): Outcome => {
  if (err instanceof Hang) throw err;
  const e = toVfsError(err);
  return { ok: false, stage, code: e.code, message: e.message };
};

/** The orders in which the two uploads end, once both have written everything. */
const END_ORDERS = ['the first opened ends first', 'the second opened ends first', 'both end at once'] as const;
type EndOrder = (typeof END_ORDERS)[number];

/**
 * Runs one race on `path`: `base` written first (unless undefined), then `first` opened, then `second`, their bytes
 * written alternately in {@link STEP} pieces, then both ended in `order`. Checks the outcomes and the content, then
 * that the file takes normal writes again.
 */
async function race(p: FsProvider, dir: string, base: Buffer | undefined, writers: readonly [Writer, Writer], order: EndOrder): Promise<void> {
  const path = `${dir}/file.bin`;
  const where = `${writers[0].label} vs ${writers[1].label}, ${order}`;
  await p.mkdir(dir);
  if (base !== undefined) await writeAll(p, path, base);

  const streams: (NodeJS.WritableStream | undefined)[] = [undefined, undefined];
  const outcomes: (Outcome | undefined)[] = [undefined, undefined];
  try {
    for (const [i, w] of writers.entries()) {
      try {
        streams[i] = await within(`${where}: opening ${w.label}`, startUpload(p, path, w.options, w.data.subarray(0, STEP)));
      } catch (err) {
        outcomes[i] = failed('open', err);
      }
    }
    const longest = Math.max(...writers.map((w) => w.data.length));
    for (let off = STEP; off < longest; off += STEP) {
      for (const [i, w] of writers.entries()) {
        const ws = streams[i];
        if (ws === undefined || outcomes[i] !== undefined || off >= w.data.length) continue;
        try {
          await within(`${where}: writing ${w.label}`, writeChunk(ws, w.data.subarray(off, off + STEP)));
        } catch (err) {
          outcomes[i] = failed('write', err);
        }
      }
    }
    const end = async (i: number): Promise<void> => {
      const ws = streams[i];
      if (ws === undefined || outcomes[i] !== undefined) return;
      try {
        await within(`${where}: ending ${writers[i]?.label}`, endStream(ws));
        outcomes[i] = { ok: true };
      } catch (err) {
        outcomes[i] = failed('end', err);
      }
    };
    if (order === 'the first opened ends first') {
      await end(0);
      await end(1);
    } else if (order === 'the second opened ends first') {
      await end(1);
      await end(0);
    } else {
      await Promise.all([end(0), end(1)]);
    }
  } finally {
    // A hang above must not leave an upload open (a lock, a pending multipart upload). The streams come from
    // startUpload, which listens for their errors: destroying one raises nothing.
    for (const ws of streams) {
      const s = ws as Partial<Writable> | undefined;
      if (s !== undefined && s.destroyed !== true) s.destroy?.();
    }
  }

  // Each writer succeeded, or was refused with EBUSY when it opened or ended; at least one succeeded.
  const said = writers.map((w, i) => {
    const o = outcomes[i];
    return `${w.label}: ${o === undefined ? '?' : o.ok ? 'ok' : `${o.code} at ${o.stage} (${o.message})`}`;
  });
  for (const o of outcomes) {
    expect(o, `${where}: every writer has an outcome (${said.join('; ')})`).toBeDefined();
    if (o !== undefined && !o.ok) {
      expect(`${o.code} at ${o.stage}`, `${where}: a refused writer fails with EBUSY when it opens or ends (${said.join('; ')})`).toMatch(/^EBUSY at (open|end)$/);
    }
  }
  const succeeded = writers.filter((_, i) => outcomes[i]?.ok === true);
  expect(succeeded.length, `${where}: at least one writer succeeds (${said.join('; ')})`).toBeGreaterThan(0);

  // The content is one serial order of the writers that succeeded.
  const content = await readAll(p, path);
  const orders = succeeded.length === 2 ? [succeeded, [...succeeded].reverse()] : [succeeded];
  const expected = orders.map((serial) => serial.reduce<Buffer | undefined>(applyWriter, base) as Buffer);
  const matched = expected.some((e) => e.equals(content));
  expect(
    matched,
    `${where}: the file holds ${runs(content)}; a serial order of the successful writers (${said.join('; ')}) gives ${expected.map(runs).join(' or ')}`,
  ).toBe(true);
  expect((await p.stat(path)).size, `${where}: stat agrees with the content`).toBe(content.length);
  // Nothing else appeared beside the file (no visible leftover of the refused writer).
  const names = (await p.readdir(dir)).map((e) => (typeof e === 'string' ? e : (e as { name: string }).name));
  expect(names, `${where}: the folder holds the file only`).toEqual(['file.bin']);

  // Written again normally: each refused writer, retried alone, lands on what is there; then an append and a STOR.
  let now = content;
  for (const [i, w] of writers.entries()) {
    if (outcomes[i]?.ok === true) continue;
    await writeAll(p, path, w.data, w.options);
    now = applyWriter(now, w);
    const back = await readAll(p, path);
    expect(back.equals(now), `${where}: ${w.label} retried alone gives ${runs(now)}, got ${runs(back)}`).toBe(true);
  }
  const tail = fill('t', 10 * KiB + 1);
  await writeAll(p, path, tail, { append: true });
  const appended = await readAll(p, path);
  expect(appended.equals(Buffer.concat([now, tail])), `${where}: an append afterwards gives ${runs(Buffer.concat([now, tail]))}, got ${runs(appended)}`).toBe(true);
  const fresh = fill('n', 3 * KiB);
  await writeAll(p, path, fresh);
  expect((await readAll(p, path)).equals(fresh), `${where}: a STOR afterwards replaces the file`).toBe(true);
}

/** The races: [name, base content or undefined for no file, the writer opened first, the writer opened second]. */
function races(): [string, Buffer | undefined, Writer, Writer][] {
  // What an APPE or a REST keeps spans a whole 256 KiB chunk and part of the next (copied apart by chunked backends).
  const base = fill('o', 400 * KiB);
  // Sizes not multiples of a chunk; the first opened writes more than the second.
  const big = 330 * KiB + 7;
  const small = 270 * KiB + 3;
  // Inside the base, past its first chunk and past the first piece a REST writer sends.
  const offset = 300 * KiB;
  return [
    ['STOR vs STOR', base, stor('S', big), stor('T', small)],
    ['APPE vs APPE', base, appe('A', big), appe('B', small)],
    ['STOR, then APPE', base, stor('S', big), appe('A', small)],
    ['APPE, then STOR', base, appe('A', big), stor('S', small)],
    ['REST + STOR, then STOR', base, rest('R', big, offset), stor('S', small)],
    ['STOR, then REST + STOR', base, stor('S', big), rest('R', small, offset)],
    ['APPE onto a missing file, then a STOR that creates it', undefined, appe('A', big), stor('S', small)],
    ['a STOR that creates the file, then an APPE onto it while missing', undefined, stor('S', big), appe('A', small)],
    ['two APPEs onto a missing file', undefined, appe('A', big), appe('B', small)],
  ];
}

/**
 * Registers the `concurrent-writers` group: for every race of {@link races}, each order of {@link END_ORDERS}, in
 * folders of its own on the test's provider.
 */
export function concurrentWriterTests(ctx: { readonly p: FsProvider; readonly caps: Capabilities }): void {
  for (const [name, base, first, second] of races()) {
    it(`${name}: each writer succeeds or gets EBUSY, the file is one serial outcome, and takes writes again`, async () => {
      for (const [k, order] of END_ORDERS.entries()) await race(ctx.p, `/race${k}`, base, [first, second], order);
    }, 120_000);
  }

  // The server asks before its 150, so that a client is refused before it sends a byte (after it, it resumes onto
  // whatever the file holds by then). Every backend refuses, at open or at the end, an upload that continues a file
  // another upload writes: `uploadBusy` must say so while that one runs, and not once it has ended. (A plain upload
  // is busy on the local disk only: the others replace the file, last one wins.)
  const busyName = 'uploadBusy says an APPE or a REST + STOR of a file another upload writes (or holds) is busy, until that one ends';
  const busyTest = async (): Promise<void> => {
    const p = ctx.p;
    const ask = (path: string, options: WriteStreamOptions, hold = false): Promise<boolean> => (p.uploadBusy as NonNullable<FsProvider['uploadBusy']>).call(p, path, options, hold);
    await writeAll(p, '/asked', fill('o', STEP));
    expect(await ask('/asked', { append: true })).toBe(false);
    // The server's ask holds a free file for its upload until that opens: a second upload announced meanwhile is busy.
    expect(await ask('/asked', { append: true }, true), 'the first ask, holding').toBe(false);
    expect(await ask('/asked', { append: true }), 'held for the upload that asked').toBe(true);
    const data = fill('n', 2 * STEP);
    const ws = await within('open', startUpload(p, '/asked', {}, data.subarray(0, STEP)));
    expect(await ask('/asked', { append: true }), 'APPE').toBe(true);
    expect(await ask('/asked', { start: 10 }), 'REST 10 + STOR').toBe(true);
    expect(await ask('/other', { append: true }), 'another file').toBe(false);
    await within('write', writeChunk(ws, data.subarray(STEP)));
    await within('end', endStream(ws));
    expect(await ask('/asked', { append: true }), 'once ended').toBe(false);
    expect((await readAll(p, '/asked')).equals(data)).toBe(true);
  };
  if (ctx.caps.uploadBusy) it(busyName, busyTest, 60_000);
  else it.skip(`${busyName} — skipped: the provider has no uploadBusy (a busy file's upload is refused after the 150)`, () => undefined);

  // An upload that ends without opening its file (refused at its first byte, its data connection never came) gives
  // its hold back: other uploads of the file are not refused until the hold expires.
  const releaseName = "releaseUploadHold gives back the hold its owner's ask took, and no one else's";
  const releaseTest = async (): Promise<void> => {
    const p = ctx.p;
    const busy = p.uploadBusy as NonNullable<FsProvider['uploadBusy']>;
    const release = p.releaseUploadHold as NonNullable<FsProvider['releaseUploadHold']>;
    const [owner, other] = [{}, {}];
    await writeAll(p, '/released', fill('o', STEP));
    expect(await busy.call(p, '/released', { append: true }, owner), 'the first ask, holding').toBe(false);
    expect(await busy.call(p, '/released', { append: true }, other), 'held for its owner').toBe(true);
    await release.call(p, '/released', other);
    expect(await busy.call(p, '/released', { append: true }), 'another owner gives back nothing').toBe(true);
    await release.call(p, '/released', owner);
    expect(await busy.call(p, '/released', { append: true }, other), 'given back').toBe(false);
    await release.call(p, '/released', other);
    expect(await busy.call(p, '/released', { append: true }), 'given back again').toBe(false);
    // A path with nothing held, or nothing there: nothing happens.
    await release.call(p, '/no-such-file', owner);
  };
  if (ctx.caps.uploadBusy && ctx.caps.releaseUploadHold) it(releaseName, releaseTest, 60_000);
  else it.skip(`${releaseName} — skipped: the provider has no uploadBusy or no releaseUploadHold (a hold expires on its own)`, () => undefined);

  // A folder renamed while an upload writes into it: on a disk the upload follows it (its descriptor does), and so
  // must every backend's; where a folder is only a prefix (S3) the upload lands at its old path. Either way it
  // completes, whole (Redis once failed it at its end: its commit looked the old path up).
  it('a folder renamed while an upload writes into it: the upload completes whole, in the renamed folder (or, S3, at its old path)', async () => {
    const p = ctx.p;
    await p.mkdir('/moving');
    const data = fill('m', 3 * STEP);
    const ws = await within('open', startUpload(p, '/moving/file', {}, data.subarray(0, STEP)));
    const renamed = await p.rename('/moving', '/moved').then(
      () => 'renamed',
      (err: unknown) => toVfsError(err).code,
    );
    expect(['renamed', 'EBUSY'], `a rename of the folder during the upload: ${renamed}`).toContain(renamed);
    await within('write', writeChunk(ws, data.subarray(STEP)));
    await within('end', endStream(ws));
    const stored = async (path: string): Promise<Buffer | null> => readAll(p, path).catch(() => null);
    const found = (renamed === 'renamed' ? await stored('/moved/file') : null) ?? (await stored('/moving/file'));
    expect(found?.equals(data), 'the upload, whole, in the renamed folder or at its old path').toBe(true);
  }, 60_000);

  // A backend that shows an upload only once it completes has an empty-looking folder meanwhile: an RMD of it must not
  // take the upload with it (removed, the upload failed at its end). Refused (EBUSY, ENOTEMPTY), or, where a folder
  // is only a prefix (S3), removed and made again by the upload: either way the upload completes whole.
  it('RMD of the folder a running upload writes into never costs the upload; an unrelated folder goes', async () => {
    const p = ctx.p;
    await p.mkdir('/into');
    await p.mkdir('/unrelated');
    const data = fill('u', 3 * STEP);
    const ws = await within('open', startUpload(p, '/into/file', {}, data.subarray(0, STEP)));
    const removal = await p.rmdir('/into').then(
      () => 'removed',
      (err: unknown) => toVfsError(err).code,
    );
    expect(['removed', 'EBUSY', 'ENOTEMPTY'], `RMD during the upload: ${removal}`).toContain(removal);
    await p.rmdir('/unrelated');
    await within('write', writeChunk(ws, data.subarray(STEP)));
    await within('end', endStream(ws));
    expect((await readAll(p, '/into/file')).equals(data)).toBe(true);
    const after = await p.rmdir('/into').then(
      () => 'removed',
      (err: unknown) => toVfsError(err).code,
    );
    expect(after).toBe('ENOTEMPTY');
  }, 60_000);
}

import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { EventEmitter, once } from 'node:events';
import { chunkReaderOf, fileDescriptorOf, fileSizeOf, LocalProvider, MemoryProvider, mounts, openReadStream, openWriteStream, quota, scoped, toVfsError } from '../src/index.js';
import type { FsProvider, UploadStream, VfsErrorCode } from '../src/index.js';
import { heldCount, lentCount, openReaderCount, openWriterCount, WRITER_TAKEOVER_IDLE_MS } from '../src/providers/local-writers.js';
import { UPLOAD_HOLD_MS } from '../src/upload-holds.js';

let root: string;

beforeAll(() => {
  root = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), 'vfs-local-writers-')));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
// Whatever a test did, no registration may outlive its stream or handle.
afterEach(() => {
  expect(openWriterCount()).toBe(0);
  expect(openReaderCount()).toBe(0);
  expect(lentCount()).toBe(0);
});

const bytes = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));
const OLD = bytes(1024 * 1024, 1);
const A = bytes(512 * 1024, 2);
const B = bytes(384 * 1024, 3);
/** Several of a download's 256 KiB reads, and above the 1 MiB a sync-mode download reads synchronously. */
const BIG = bytes(3 * 1024 * 1024 + 12345, 4);
/** Above the 64 KiB a sync-mode upload holds back: it is written to the file before its callback runs. */
const BLOCK = 128 * 1024;

async function code(op: Promise<unknown> | (() => unknown)): Promise<VfsErrorCode | 'resolved'> {
  try {
    await (typeof op === 'function' ? op() : op);
    return 'resolved';
  } catch (err) {
    return toVfsError(err).code;
  }
}

function write(ws: UploadStream, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => ws.write(chunk, (err) => (err ? reject(err) : resolve())));
}

function end(ws: UploadStream): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.end(() => resolve());
  });
}

async function destroyed(ws: UploadStream, err?: Error): Promise<void> {
  ws.on('error', () => undefined);
  const closed = new Promise((r) => ws.once('close', r));
  ws.destroy(err);
  await closed;
}

async function readAll(p: LocalProvider, path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await openReadStream(p, path)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const onDisk = (name: string): Buffer => fs.readFileSync(join(root, name));
const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

/** Runs `fn` with `fs[name]` replaced (the provider calls `fs.x` through the module object). */
async function patched<T>(name: 'write' | 'read' | 'ftruncate' | 'ftruncateSync', replacement: (real: (...a: unknown[]) => unknown, args: unknown[]) => unknown, fn: () => Promise<T>): Promise<T> {
  const target = fs as unknown as Record<string, (...a: unknown[]) => unknown>;
  const real = target[name]!;
  target[name] = (...args: unknown[]) => replacement(real, args);
  try {
    return await fn();
  } finally {
    target[name] = real;
  }
}

// That two racing uploads of one file never end as a mix of both (whatever their kinds and the order they end in) is
// @ftp/vfs-conformance's concurrent-writers group, run on this provider in both modes there (test/local.test.ts).
// Here: the registry behind it — the moment of refusal (at open, before truncating), other names and providers of
// the file, readers (refused while a writer has the file, and refusing writers while they have it), idle take-over,
// and that no registration outlives its stream or handle.
for (const syncMetadata of [true, false]) {
  describe(`LocalProvider writer registry (syncMetadata: ${syncMetadata})`, () => {
    const make = (): LocalProvider => new LocalProvider(root, { syncMetadata });

    it('a second upload of a file being uploaded is refused with EBUSY, through another provider and another name too, before it truncates anything', async () => {
      // The bug: two STORs of one file interleaved their blocks, ended as neither upload, and both got 226.
      const p = make();
      const other = make();
      fs.writeFileSync(join(root, 'same.bin'), OLD);
      fs.rmSync(join(root, 'hard.bin'), { force: true });
      fs.linkSync(join(root, 'same.bin'), join(root, 'hard.bin'));
      fs.rmSync(join(root, 'soft.bin'), { force: true });
      fs.symlinkSync('same.bin', join(root, 'soft.bin'));
      const first = await openWriteStream(p, '/same.bin');
      await write(first, A.subarray(0, BLOCK));
      const before = openFds();
      for (const provider of [p, other]) {
        for (const path of ['/same.bin', '/hard.bin', '/soft.bin']) {
          expect(await code(openWriteStream(provider, path))).toBe('EBUSY');
          expect(await code(openWriteStream(provider, path, { append: true }))).toBe('EBUSY');
          expect(await code(openWriteStream(provider, path, { start: 10 }))).toBe('EBUSY');
        }
      }
      // Refused before truncating, and with the descriptor closed.
      expect(onDisk('same.bin').equals(A.subarray(0, BLOCK))).toBe(true);
      expect(openFds()).toBeLessThanOrEqual(before + 1);
      await write(first, A.subarray(BLOCK));
      await end(first);
      expect(onDisk('same.bin').equals(A)).toBe(true);
      // Once it is done, the next upload goes through.
      const second = await openWriteStream(other, '/hard.bin');
      await write(second, B);
      await end(second);
      expect(onDisk('same.bin').equals(B)).toBe(true);
    });

    it('uploadBusy says what an upload\'s open would answer (a writer, a reader, an idle writer), taking and ending nothing, through the wrappers too', async () => {
      // The server asks it before its 150: a busy file is refused (450) before the client sends a byte.
      const p = make();
      fs.mkdirSync(join(root, 'ask'), { recursive: true });
      fs.writeFileSync(join(root, 'ask/f.bin'), OLD);
      fs.rmSync(join(root, 'ask/hard.bin'), { force: true });
      fs.linkSync(join(root, 'ask/f.bin'), join(root, 'ask/hard.bin'));
      // The same file through another provider, and the wrappers (paths inside them lead to ask/).
      const askers: Array<[FsProvider, string]> = [
        [p, '/ask/f.bin'],
        [make(), '/ask/hard.bin'],
        [scoped(p, '/ask'), '/f.bin'],
        [mounts(new MemoryProvider(), { '/disk': p }), '/disk/ask/f.bin'],
        [quota(p, { bytes: 1e12 }), '/ask/f.bin'],
      ];
      const busy = async (): Promise<boolean[]> => Promise.all(askers.map(([fsp, path]) => (fsp.uploadBusy as NonNullable<FsProvider['uploadBusy']>).call(fsp, path)));
      const none = askers.map(() => false);
      const all = askers.map(() => true);
      expect(await busy()).toEqual(none);
      expect(await p.uploadBusy('/ask/missing.bin')).toBe(false);
      const up = await openWriteStream(p, '/ask/f.bin');
      up.on('error', () => undefined);
      await write(up, A.subarray(0, BLOCK));
      // Without syncMetadata the look goes to the thread pool, as every other lookup of that mode.
      const sync = vi.spyOn(p, 'statSync');
      expect(await busy()).toEqual(all);
      expect(sync.mock.calls.length > 0).toBe(syncMetadata);
      sync.mockRestore();
      expect(await p.uploadBusy('/ask')).toBe(false);
      // Idle long enough to be taken over: not busy, and asking ends nothing.
      const clock = vi.spyOn(performance, 'now').mockReturnValue(performance.now() + WRITER_TAKEOVER_IDLE_MS + 1);
      try {
        expect(await busy()).toEqual(none);
        expect(up.destroyed).toBe(false);
      } finally {
        clock.mockRestore();
      }
      await end(up);
      expect(await busy()).toEqual(none);
      // A download holds the file against uploads as well.
      const down = await openReadStream(p, '/ask/f.bin');
      expect(await busy()).toEqual(all);
      down.destroy();
      await once(down, 'close');
      expect(await busy()).toEqual(none);
    });

    it('uploadBusy with hold keeps a free file for the upload that asked: a second ask and a download are refused until it opens, or for UPLOAD_HOLD_MS', async () => {
      // Two STORs of one file announced at the same moment: without the hold both were told 150, and the second was
      // refused at its open (451), after which clients resume onto the other upload's file.
      const p = make();
      const other = make();
      fs.writeFileSync(join(root, 'held.bin'), OLD);
      // Holds of other tests' names may still be counted (expired ones go when asked about again).
      const before = heldCount();
      expect(await p.uploadBusy('/held.bin', {}, true)).toBe(false);
      expect(heldCount()).toBe(before + 1);
      expect(await other.uploadBusy('/held.bin', { append: true }, true)).toBe(true);
      expect(await p.uploadBusy('/held.bin')).toBe(true);
      expect(await code(openReadStream(other, '/held.bin'))).toBe('EBUSY');
      // The upload that asked opens: it takes the hold, and is the writer from then on.
      const up = await openWriteStream(p, '/held.bin');
      expect(heldCount()).toBe(before);
      await write(up, A);
      await end(up);
      expect(await p.uploadBusy('/held.bin')).toBe(false);
      // A hold names its owner (the server's session): the owner's next ask is not refused by a hold its own failed
      // transfer left, anyone else's is.
      const [mine, theirs] = [{}, {}];
      expect(await p.uploadBusy('/held.bin', {}, mine)).toBe(false);
      expect(await p.uploadBusy('/held.bin', {}, mine)).toBe(false);
      expect(await other.uploadBusy('/held.bin', {}, theirs)).toBe(true);
      expect(await p.uploadBusy('/held.bin')).toBe(true);
      expect(await code(openReadStream(p, '/held.bin'))).toBe('EBUSY');
      // The caller's own lookup is used instead of a second one (a thread-pool round trip without syncMetadata).
      const known = await p.stat('/held.bin');
      const looks = vi.spyOn(p, 'statSync');
      const asks = vi.spyOn(p, 'stat');
      expect(await other.uploadBusy('/held.bin', {}, theirs, known)).toBe(true);
      expect(looks).not.toHaveBeenCalled();
      expect(asks).not.toHaveBeenCalled();
      looks.mockRestore();
      asks.mockRestore();
      // A name that does not exist yet is held by its path; the upload of it that opens gives the hold back.
      const fresh = `/fresh-${syncMetadata}.bin`;
      expect(await p.uploadBusy(fresh, {}, mine, null)).toBe(false);
      expect(await other.uploadBusy(fresh, {}, theirs)).toBe(true);
      expect(await p.uploadBusy(fresh, {}, mine)).toBe(false);
      const created = await openWriteStream(p, fresh);
      await end(created);
      fs.rmSync(join(root, fresh));
      expect(await other.uploadBusy(fresh, {}, theirs)).toBe(false);
      // One that never opens holds the file no longer than UPLOAD_HOLD_MS.
      expect(await p.uploadBusy('/held.bin', {}, true)).toBe(true);
      const clock = vi.spyOn(performance, 'now').mockReturnValue(performance.now() + UPLOAD_HOLD_MS + 1);
      try {
        expect(await p.uploadBusy('/held.bin')).toBe(false);
        expect(await p.uploadBusy(fresh, {}, mine)).toBe(false);
      } finally {
        clock.mockRestore();
      }
      expect(onDisk('held.bin').equals(A)).toBe(true);
    });

    it('a download of a file being uploaded is refused with EBUSY, and reads the new version whole once it is done', async () => {
      // The bug: a RETR during another session's STOR of the file got a truncated mix of old and new bytes, as complete.
      const p = make();
      fs.writeFileSync(join(root, 'swap.bin'), OLD);
      const up = await openWriteStream(p, '/swap.bin');
      await write(up, A.subarray(0, BLOCK));
      const before = openFds();
      expect(await code(openReadStream(p, '/swap.bin'))).toBe('EBUSY');
      expect(await code(openReadStream(make(), '/swap.bin', { start: 100 }))).toBe('EBUSY');
      expect(await code(p.open('/swap.bin', 'r'))).toBe('EBUSY');
      expect(await code(() => p.openSync('/swap.bin', 'r'))).toBe('EBUSY');
      expect(await code(() => p.readFileSync('/swap.bin'))).toBe('EBUSY');
      expect(openFds()).toBeLessThanOrEqual(before + 1);
      await write(up, A.subarray(BLOCK));
      await end(up);
      expect((await readAll(p, '/swap.bin')).equals(A)).toBe(true);
    });

    it('an upload that has written nothing for a while gives way to a resume or a download (its client is gone)', async () => {
      const p = make();
      fs.writeFileSync(join(root, 'stale.bin'), OLD);
      const stale = await openWriteStream(p, '/stale.bin');
      const failed = new Promise<VfsErrorCode>((resolve) => stale.once('error', (err) => resolve(toVfsError(err).code)));
      await write(stale, A.subarray(0, BLOCK));
      // Busy a moment ago: still refused.
      expect(await code(openWriteStream(p, '/stale.bin', { start: BLOCK }))).toBe('EBUSY');
      const now = performance.now();
      const clock = vi.spyOn(performance, 'now').mockReturnValue(now + WRITER_TAKEOVER_IDLE_MS + 1);
      try {
        // The client resumes where its upload stopped: the idle upload is ended (EBUSY) and the resume writes.
        const resume = await openWriteStream(p, '/stale.bin', { start: BLOCK });
        expect(await failed).toBe('EBUSY');
        await write(resume, A.subarray(BLOCK));
        await end(resume);
      } finally {
        clock.mockRestore();
      }
      expect(onDisk('stale.bin').equals(A)).toBe(true);
      // A file handle opened for writing is not an upload whose client can vanish: it is never taken over.
      const h = await p.open('/stale.bin', 'r+');
      const later = vi.spyOn(performance, 'now').mockReturnValue(performance.now() + 10 * WRITER_TAKEOVER_IDLE_MS);
      try {
        expect(await code(openReadStream(p, '/stale.bin'))).toBe('EBUSY');
      } finally {
        later.mockRestore();
        await h.close();
      }
    });

    it('a wall clock set forward an hour does not make a running upload look idle: a second upload is still refused', async () => {
      const p = make();
      const up = await openWriteStream(p, '/running.bin');
      await write(up, A.subarray(0, BLOCK));
      const real = Date.now.bind(Date);
      const clock = vi.spyOn(Date, 'now').mockImplementation(() => real() + 3_600_000);
      try {
        // With the wall clock, the upload that wrote a moment ago had been "idle for an hour" and was ended.
        expect(await code(openWriteStream(p, '/running.bin', { start: BLOCK }))).toBe('EBUSY');
      } finally {
        clock.mockRestore();
      }
      await write(up, A.subarray(BLOCK));
      await end(up);
      expect((await readAll(p, '/running.bin')).equals(A)).toBe(true);
    });

    it('a download that ends an idle upload promises the size the file has once that upload has let it go', async () => {
      // The bug: the size was taken before the idle upload was ended, which then wrote out what it held and cut the
      // file; the server expected the old size and failed the RETR with 451 "storage ended the file after N of M
      // bytes". Ended: a small file overwritten in place (its first chunk held, with syncMetadata), and a REST upload
      // stopped short of the old end.
      const p = make();
      for (const [name, start] of [
        ['taken-over.bin', undefined],
        ['taken-over-rest.bin', 100],
      ] as const) {
        fs.writeFileSync(join(root, name), Buffer.alloc(10 * 1024, 'O'));
        const up = await openWriteStream(p, `/${name}`, start === undefined ? {} : { start });
        onTestFinished(() => void up.destroy());
        const ended = new Promise<VfsErrorCode>((resolve) => up.once('error', (err) => resolve(toVfsError(err).code)));
        await write(up, Buffer.alloc(3 * 1024, 'N'));
        const clock = vi.spyOn(performance, 'now').mockReturnValue(performance.now() + WRITER_TAKEOVER_IDLE_MS + 1);
        let dl: Awaited<ReturnType<typeof openReadStream>>;
        try {
          dl = await openReadStream(p, `/${name}`);
        } finally {
          clock.mockRestore();
        }
        expect(await ended).toBe('EBUSY');
        const read = chunkReaderOf(dl)!;
        const into = Buffer.alloc(256 * 1024);
        let total = 0;
        const closed = new Promise((r) => dl.once('close', r));
        try {
          for (let n = await read(into); n > 0; n = await read(into)) total += n;
        } finally {
          dl.destroy();
          await closed;
        }
        const size = (start ?? 0) + 3 * 1024;
        expect([fileSizeOf(dl), total, fs.statSync(join(root, name)).size], name).toEqual([size, size, size]);
      }
    });

    it('a file handle refuses every call once closed (EINVAL): its descriptor number may be another file\'s by then', async () => {
      // The bug: a handle's read, write, truncate or stat after close() used the old number, which the next open had
      // been given: a write landed in that other file, past its writer registration.
      const p = make();
      fs.writeFileSync(join(root, 'victim.bin'), 'victim-content');
      for (const closing of ['close', 'closeSync'] as const) {
        const h = await p.open('/mine.bin', 'w+');
        if (closing === 'close') await h.close();
        else h.closeSync();
        const victim = await p.open('/victim.bin', 'r+');
        onTestFinished(() => victim.close());
        expect(victim.fd).toBe(h.fd);
        const buf = Buffer.from('XXXXXX');
        const calls: [string, () => unknown][] = [
          ['read', () => h.read(Buffer.alloc(64), 0, 64, 0)],
          ['readSync', () => h.readSync(Buffer.alloc(64), 0, 64, 0)],
          ['write', () => h.write(buf, 0, 6, 0)],
          ['writeSync', () => h.writeSync(buf, 0, 6, 0)],
          ['readFile', () => h.readFile()],
          ['readFileSync', () => h.readFileSync()],
          ['writeFile', () => h.writeFile('XXXXXX')],
          ['writeFileSync', () => h.writeFileSync('XXXXXX')],
          ['stat', () => h.stat()],
          ['statSync', () => h.statSync()],
          ['truncate', () => h.truncate(0)],
          ['truncateSync', () => h.truncateSync(0)],
        ];
        for (const [name, call] of calls) {
          expect(await code(call), name).toBe('EINVAL');
          // The promise methods reject, never throw: a caller's .catch() sees the refusal.
          if (!name.endsWith('Sync')) expect(() => void (call() as Promise<unknown>).catch(() => undefined), name).not.toThrow();
        }
        await victim.close();
        expect(onDisk('victim.bin').toString(), closing).toBe('victim-content');
      }
    });

    it('an upload of a file being downloaded is refused with EBUSY in every mode, through another provider and name too, before it truncates or writes anything', async () => {
      // The bug: a STOR during another session's RETR of the file rewrote it in place, and the RETR sent the start
      // of the old file and the rest of the new one, reported complete.
      const p = make();
      const other = make();
      fs.writeFileSync(join(root, 'dl.bin'), BIG);
      fs.rmSync(join(root, 'dl-hard.bin'), { force: true });
      fs.linkSync(join(root, 'dl.bin'), join(root, 'dl-hard.bin'));
      // The server's download: the chunk reader, into its own buffers. And a plain stream read, part way.
      const viaChunks = await openReadStream(p, '/dl.bin');
      const reader = chunkReaderOf(viaChunks)!;
      const into = Buffer.alloc(BLOCK);
      const sent: Buffer[] = [];
      let n = await reader(into);
      sent.push(Buffer.from(into.subarray(0, n)));
      const viaStream = await openReadStream(other, '/dl-hard.bin', { start: 10 });
      const iter = viaStream[Symbol.asyncIterator]();
      const streamed: Buffer[] = [(await iter.next()).value as Buffer];
      expect(openReaderCount()).toBe(1);
      const before = openFds();
      for (const provider of [p, other]) {
        for (const path of ['/dl.bin', '/dl-hard.bin']) {
          expect(await code(openWriteStream(provider, path))).toBe('EBUSY');
          expect(await code(openWriteStream(provider, path, { start: 10 }))).toBe('EBUSY');
          expect(await code(openWriteStream(provider, path, { append: true }))).toBe('EBUSY');
          expect(await code(provider.open(path, 'w'))).toBe('EBUSY');
          expect(await code(provider.open(path, 'a'))).toBe('EBUSY');
          expect(await code(provider.open(path, 'r+'))).toBe('EBUSY');
          expect(await code(() => provider.openSync(path, 'w'))).toBe('EBUSY');
          expect(await code(provider.writeFile(path, 'x'))).toBe('EBUSY');
        }
      }
      // Refused before truncating or writing, and with the descriptors closed.
      expect(onDisk('dl.bin').equals(BIG)).toBe(true);
      expect(openFds()).toBeLessThanOrEqual(before + 1);
      // Both downloads get the file whole, as it was.
      for (n = await reader(into); n > 0; n = await reader(into)) sent.push(Buffer.from(into.subarray(0, n)));
      expect(Buffer.concat(sent).equals(BIG)).toBe(true);
      for (let r = await iter.next(); !r.done; r = await iter.next()) streamed.push(r.value as Buffer);
      expect(Buffer.concat(streamed).equals(BIG.subarray(10))).toBe(true);
      // The stream read to its end has closed; the chunk reader's stream still holds the file until destroyed.
      expect(await code(openWriteStream(p, '/dl.bin'))).toBe('EBUSY');
      const closed = new Promise((r) => viaChunks.once('close', r));
      viaChunks.destroy();
      await closed;
      expect(openReaderCount()).toBe(0);
      const up = await openWriteStream(other, '/dl-hard.bin');
      await write(up, B);
      await end(up);
      expect(onDisk('dl.bin').equals(B)).toBe(true);
    });

    it('a download holds the file until its descriptor closes: read to the end, destroyed early or before reading, failed, or refused its range', async () => {
      const p = make();
      fs.writeFileSync(join(root, 'held.bin'), OLD);
      const upload = async (): Promise<void> => {
        const ws = await openWriteStream(p, '/held.bin', { start: 0 });
        await write(ws, OLD);
        await end(ws);
      };
      const closedAfter = async (rs: Awaited<ReturnType<typeof openReadStream>>, act: () => void): Promise<void> => {
        rs.on('error', () => undefined);
        const closed = new Promise((r) => rs.once('close', r));
        act();
        await closed;
      };
      // Read to the end.
      expect((await readAll(p, '/held.bin')).equals(OLD)).toBe(true);
      expect(openReaderCount()).toBe(0);
      await upload();
      // Destroyed after one chunk (ABOR, the client went away), with and without an error, and before any read.
      for (const err of [undefined, new Error('data connection lost')]) {
        const rs = await openReadStream(p, '/held.bin');
        await rs[Symbol.asyncIterator]().next().catch(() => undefined);
        expect(await code(openWriteStream(p, '/held.bin', { append: true }))).toBe('EBUSY');
        await closedAfter(rs, () => rs.destroy(err));
        expect(openReaderCount()).toBe(0);
        await upload();
      }
      const idle = await openReadStream(p, '/held.bin', { start: 5, end: 9 });
      expect(await code(openWriteStream(p, '/held.bin'))).toBe('EBUSY');
      await closedAfter(idle, () => idle.destroy());
      await upload();
      // A read that fails: the stream errors and closes its descriptor.
      const failing = await patched(
        'read',
        (_real, args) => setImmediate(() => (args.at(-1) as (e: Error) => void)(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }))),
        async () => {
          const rs = await openReadStream(p, '/held.bin');
          const failed = new Promise<VfsErrorCode>((resolve) => rs.once('error', (err) => resolve(toVfsError(err).code)));
          await closedAfter(rs, () => rs.resume());
          return failed;
        },
      );
      expect(failing).toBe('EIO');
      expect(openReaderCount()).toBe(0);
      await upload();
      // A range the stream refuses (start after end): nothing stays registered, nothing stays open.
      const before = openFds();
      expect(await code(openReadStream(p, '/held.bin', { start: 10, end: 5 }))).not.toBe('resolved');
      expect(openReaderCount()).toBe(0);
      expect(openFds()).toBeLessThanOrEqual(before);
      await upload();
      expect(onDisk('held.bin').equals(OLD)).toBe(true);
    });

    it('readers do not block each other; an upload is refused until the last of them has closed, handles read-only included', async () => {
      const p = make();
      fs.writeFileSync(join(root, 'shared.bin'), OLD);
      const r1 = await openReadStream(p, '/shared.bin');
      const r2 = await openReadStream(make(), '/shared.bin', { start: 100 });
      const h = await p.open('/shared.bin', 'r');
      const hs = p.openSync('/shared.bin', 'r');
      expect((p.readFileSync('/shared.bin') as Buffer).equals(OLD)).toBe(true);
      // One entry for the file, however many read it.
      expect(openReaderCount()).toBe(1);
      const first = Buffer.alloc(BLOCK);
      expect(await chunkReaderOf(r2)!(first)).toBe(BLOCK);
      expect(first.equals(OLD.subarray(100, 100 + BLOCK))).toBe(true);
      const refused = async (): Promise<void> => {
        expect(await code(openWriteStream(p, '/shared.bin', { append: true }))).toBe('EBUSY');
        expect(await code(() => p.openSync('/shared.bin', 'w'))).toBe('EBUSY');
      };
      await refused();
      r1.destroy();
      await refused();
      r2.destroy();
      await refused();
      await h.close();
      // Closed twice: the second close must not count for another reader.
      await h.close();
      await refused();
      hs.closeSync();
      expect(openReaderCount()).toBe(0);
      const up = await openWriteStream(p, '/shared.bin', { append: true });
      await write(up, B);
      await end(up);
      expect((await readAll(p, '/shared.bin')).equals(Buffer.concat([OLD, B]))).toBe(true);
    });

    it('the registration ends with the upload: when it finishes (before finish is emitted), fails mid-write or is destroyed', async () => {
      const p = make();
      // Finished: by the time the stream says `finish`, the file can be downloaded and uploaded again.
      const done = await openWriteStream(p, '/life.bin');
      let atFinish = -1;
      done.once('finish', () => (atFinish = openWriterCount()));
      await write(done, A);
      await end(done);
      expect(atFinish).toBe(0);
      // Destroyed, with and without an error, before and after a write.
      for (const data of [null, A]) {
        const ws = await openWriteStream(p, '/life.bin');
        if (data) await write(ws, data);
        expect(openWriterCount()).toBe(1);
        await destroyed(ws, data ? new Error('data connection lost') : undefined);
        expect(openWriterCount()).toBe(0);
      }
      // A write that fails.
      const failing = await openWriteStream(p, '/life.bin');
      failing.on('error', () => undefined);
      const closed = new Promise((r) => failing.once('close', r));
      await patched(
        'write',
        (_real, args) => setImmediate(() => (args.at(-1) as (e: Error) => void)(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }))),
        async () => expect(await code(write(failing, A.subarray(0, BLOCK)))).toBe('EIO'),
      );
      await closed;
      expect(openWriterCount()).toBe(0);
      // Destroyed again after it finished: it must not release whoever writes the file now.
      const next = await openWriteStream(p, '/life.bin');
      done.destroy();
      failing.destroy();
      expect(await code(openWriteStream(p, '/life.bin'))).toBe('EBUSY');
      await end(next);
    });

    it('an upload destroyed during a write keeps the file registered until that write has returned', async () => {
      const p = make();
      const ws = await openWriteStream(p, '/slow.bin');
      let release: () => void = () => undefined;
      await patched(
        'write',
        (real, args) => {
          release = () => real(...args);
        },
        async () => {
          ws.write(A);
          await new Promise((r) => setImmediate(r));
          ws.on('error', () => undefined);
          ws.destroy(new Error('client went away'));
        },
      );
      // The write is still running: a new upload now would have its blocks overwritten by it.
      expect(await code(openWriteStream(p, '/slow.bin'))).toBe('EBUSY');
      const closed = new Promise((r) => ws.once('close', r));
      release();
      await closed;
      expect(openWriterCount()).toBe(0);
      await end(await openWriteStream(p, '/slow.bin'));
    });

    it('nothing stays registered when the open fails, before or after the registration', async () => {
      const p = make();
      fs.mkdirSync(join(root, 'adir'), { recursive: true });
      expect(await code(openWriteStream(p, '/adir'))).toBe('EISDIR');
      // A directory opened for reading is not registered.
      p.openSync('/adir', 'r').closeSync();
      expect(openWriterCount()).toBe(0);
      // The truncation of the old file comes after the registration: when it fails, the registration goes.
      fs.writeFileSync(join(root, 'eio.bin'), OLD);
      const before = openFds();
      const eio = (): Error => Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO' });
      const failure = await patched(
        'ftruncate',
        (_real, args) => setImmediate(() => (args.at(-1) as (e: Error) => void)(eio())),
        () =>
          patched(
            'ftruncateSync',
            () => {
              throw eio();
            },
            async () => [await code(openWriteStream(p, '/eio.bin')), await code(p.open('/eio.bin', 'w')), await code(() => p.openSync('/eio.bin', 'w'))],
          ),
      );
      expect(failure).toEqual(['EIO', 'EIO', 'EIO']);
      expect(openWriterCount()).toBe(0);
      await new Promise((r) => setTimeout(r, 20));
      expect(openFds()).toBeLessThanOrEqual(before);
      const ws = await openWriteStream(p, '/eio.bin');
      await write(ws, B);
      await end(ws);
      expect(onDisk('eio.bin').equals(B)).toBe(true);
    });

    it('pages lent to finished downloads\' sockets refuse an upload that would rewrite them in place, until the last socket closes', async () => {
      // sendfile leaves the file's own pages in the socket after the download's claim is gone (see lendPages).
      const p = make();
      fs.writeFileSync(join(root, 'lent.bin'), OLD);
      const first = new EventEmitter();
      const second = new EventEmitter();
      for (const socket of [first, second]) {
        const r = await openReadStream(p, '/lent.bin');
        const source = fileDescriptorOf(r);
        expect(source?.lendPages).toBeTypeOf('function');
        source!.lendPages!(socket);
        r.destroy();
        await once(r, 'close');
      }
      // In place: a restart point inside the file, a handle that writes without emptying the file first.
      expect(await p.uploadBusy!('/lent.bin', { start: 10 })).toBe(true);
      expect(await code(openWriteStream(p, '/lent.bin', { start: 10 }))).toBe('EBUSY');
      expect(await code(p.open('/lent.bin', 'r+'))).toBe('EBUSY');
      // Not in place: a restart point at the end, an append, a replacement (the file is emptied first: the pages the
      // socket holds are then no longer the file's).
      expect(await p.uploadBusy!('/lent.bin', { start: OLD.length })).toBe(false);
      expect(await p.uploadBusy!('/lent.bin', { append: true })).toBe(false);
      expect(await p.uploadBusy!('/lent.bin')).toBe(false);
      expect(onDisk('lent.bin').equals(OLD)).toBe(true);
      // One download's connection has closed: the other still holds the pages.
      first.emit('close');
      expect(await p.uploadBusy!('/lent.bin', { start: 10 })).toBe(true);
      // The last one has closed.
      second.emit('close');
      expect(await p.uploadBusy!('/lent.bin', { start: 10 })).toBe(false);
      expect(lentCount()).toBe(0);
      const w = await openWriteStream(p, '/lent.bin', { start: 10 });
      await end(w);
      expect(onDisk('lent.bin').length).toBe(10);
    });

    it('file handles opened for writing register too (writeFile, appendFile, copyFile), sync and async, until closed', async () => {
      const p = make();
      fs.writeFileSync(join(root, 'h.bin'), OLD);
      const h = p.openSync('/h.bin', 'r+');
      expect(await code(openWriteStream(p, '/h.bin'))).toBe('EBUSY');
      // 'w' would truncate: refused before it does.
      expect(await code(() => p.openSync('/h.bin', 'w'))).toBe('EBUSY');
      expect(await code(p.open('/h.bin', 'a'))).toBe('EBUSY');
      expect(await code(p.writeFile('/h.bin', 'x'))).toBe('EBUSY');
      expect(await code(() => p.appendFileSync('/h.bin', 'x'))).toBe('EBUSY');
      expect(await code(p.copyFile('/shared.bin', '/h.bin'))).toBe('EBUSY');
      expect(await code(openReadStream(p, '/h.bin'))).toBe('EBUSY');
      expect(onDisk('h.bin').equals(OLD)).toBe(true);
      h.closeSync();
      // Closed twice: the second close must not release a later writer's registration.
      const later = await p.open('/h.bin', 'w');
      h.closeSync();
      await h.close();
      expect(await code(() => p.openSync('/h.bin', 'a'))).toBe('EBUSY');
      await later.close();
      await later.close();
      await p.writeFile('/h.bin', 'written');
      p.appendFileSync('/h.bin', ' and appended');
      expect(p.readFileSync('/h.bin', 'utf8')).toBe('written and appended');
      // A stream's upload refuses the handle writers in turn.
      const up = await openWriteStream(p, '/h.bin');
      expect(await code(p.open('/h.bin', 'r+'))).toBe('EBUSY');
      expect(await code(() => p.writeFileSync('/h.bin', 'x'))).toBe('EBUSY');
      await end(up);
      expect(onDisk('h.bin').length).toBe(0);
    });
  });
}

describe('MemoryProvider.uploadBusy', () => {
  it('says busy for an append or a REST + STOR while another upload writes the file, not for a plain one (it replaces)', async () => {
    const p = new MemoryProvider();
    await p.writeFile('/m.bin', 'old');
    expect(await p.uploadBusy('/m.bin', { append: true })).toBe(false);
    const up = await openWriteStream(p, '/m.bin');
    await write(up, A);
    expect(await p.uploadBusy('/m.bin', { append: true })).toBe(true);
    expect(await p.uploadBusy('/m.bin', { start: 5 })).toBe(true);
    expect(await p.uploadBusy('/m.bin')).toBe(false);
    expect(await p.uploadBusy('/missing', { append: true })).toBe(false);
    await end(up);
    expect(await p.uploadBusy('/m.bin', { append: true })).toBe(false);
    // With hold, an append announced keeps the file from a second one until it opens (or UPLOAD_HOLD_MS).
    expect(await p.uploadBusy('/m.bin', { append: true }, true)).toBe(false);
    expect(await p.uploadBusy('/m.bin', { start: 3 }, true)).toBe(true);
    const appending = await openWriteStream(p, '/m.bin', { append: true });
    await end(appending);
    expect(await p.uploadBusy('/m.bin', { append: true })).toBe(false);
    expect(await p.uploadBusy('/m.bin', { append: true }, true)).toBe(false);
    const clock = vi.spyOn(performance, 'now').mockReturnValue(performance.now() + UPLOAD_HOLD_MS + 1);
    try {
      expect(await p.uploadBusy('/m.bin', { append: true })).toBe(false);
    } finally {
      clock.mockRestore();
    }
  });
});

describe('removals and idle uploads (DELE, RNFR/RNTO)', () => {
  // An upload idle for WRITER_TAKEOVER_IDLE_MS is ended by a removal of its file; a removal refused ends nothing.
  for (const kind of ['local', 'memory'] as const) {
    it(`${kind}: a rename refused because its target is busy leaves an idle upload of its source running`, async () => {
      const dir = fs.mkdtempSync(join(tmpdir(), 'vfs-idle-rename-'));
      try {
        const p = kind === 'local' ? new LocalProvider(dir) : new MemoryProvider();
        const idle = await openWriteStream(p, '/a');
        idle.on('error', () => {});
        await new Promise<void>((r) => idle.write(Buffer.from('idle'), () => r()));
        const busy = await openWriteStream(p, '/b');
        busy.on('error', () => {});
        // `a`'s upload looks idle from here on; `b`'s writes now.
        const later = performance.now() + 60_000;
        const clock = vi.spyOn(performance, 'now').mockImplementation(() => later);
        // Two writes: the local disk holds a small first chunk back (it is written with the next).
        for (const part of ['bu', 'sy']) await new Promise<void>((r) => busy.write(Buffer.from(part), () => r()));
        const outcome = (done: Promise<unknown>): Promise<string> => done.then(() => 'done', (err: unknown) => toVfsError(err).code);
        expect(await outcome(p.rename('/a', '/b'))).toBe('EBUSY');
        expect(idle.destroyed, 'after the refused rename').toBe(false);
        // Nothing refuses this one: the idle upload is ended, the rename done.
        expect(await outcome(p.rename('/a', '/c'))).toBe('done');
        expect(idle.destroyed).toBe(true);
        clock.mockRestore();
        busy.end();
        await once(busy, 'close');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

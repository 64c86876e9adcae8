import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { mkdtemp, rm, stat, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { crc32 } from 'node:zlib';
import { LocalProvider, MemoryProvider, mounts, type FsProvider } from '@ftp/vfs';
import { afterEach, describe, expect, it } from 'vitest';
import { FtpServer, type ServerSettings } from '../src/index.js';
import { PASSWORD, RawClient, readAll, USER } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A scratch folder, removed after the test. */
function mkdtempDirSync(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ext-rang-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function session(fs: FsProvider = new MemoryProvider(), settings: Partial<ServerSettings> = {}) {
  const server = new FtpServer({ settings: { failedLoginDelay: 0, ...settings }, driver: { authenticate: () => ({ fs }) } });
  const { port } = await server.listen(0, '127.0.0.1');
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close(), () => server.close());
  await c.login();
  return c;
}

const put = (c: RawClient, name: string, data: Buffer | string): Promise<void> => c.store(name, data);
const get = (c: RawClient, name: string): Promise<Buffer> => c.retrieve(`RETR ${name}`);

const hex = (algo: string, data: Buffer): string => createHash(algo).update(data).digest('hex');

describe('HASH', () => {
  it('of a 64 MiB file equals sha256sum, and OPTS HASH switches the algorithm', async () => {
    const c = await session();
    const data = Buffer.alloc(64 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    await put(c, 'big file.bin', data);
    const r = await c.cmd('HASH big file.bin');
    expect(r.code).toBe(213);
    expect(r.text).toBe(`SHA-256 0-${data.length - 1} ${hex('sha256', data)} big file.bin`);
    expect((await c.cmd('FEAT')).lines).toContain(' HASH SHA-1;SHA-256*;SHA-512;MD5;CRC32');
    expect((await c.cmd('OPTS HASH MD5')).text).toBe('MD5');
    expect((await c.cmd('HASH big file.bin')).text).toContain(hex('md5', data));
    expect((await c.cmd('OPTS HASH WHIRLPOOL')).code).toBe(501);
    expect((await c.cmd('HASH missing')).code).toBe(550);
  });

  it('RANG limits HASH and RETR to an inclusive byte range', async () => {
    const c = await session();
    expect((await c.cmd('TYPE I')).code).toBe(200);
    await put(c, 'r.txt', '0123456789');
    expect((await c.cmd('RANG 2 5')).code).toBe(350);
    expect((await c.cmd('HASH r.txt')).text).toBe(`SHA-256 2-5 ${hex('sha256', Buffer.from('2345'))} r.txt`);
    expect((await c.cmd('RANG 3 6')).code).toBe(350);
    expect((await get(c, 'r.txt')).toString()).toBe('3456');
    expect((await get(c, 'r.txt')).toString()).toBe('0123456789');
    expect((await c.cmd('RANG 5 2')).code).toBe(501);
    // A range past the end names no byte: refused as RETR refuses it, not a digest of nothing.
    expect((await c.cmd('RANG 10 20')).code).toBe(350);
    expect((await c.cmd('HASH r.txt')).code).toBe(554);
    // The range was used up: the next HASH is of the whole file.
    expect((await c.cmd('HASH r.txt')).text).toBe(`SHA-256 0-9 ${hex('sha256', Buffer.from('0123456789'))} r.txt`);
  });

  it('a RANG is for the next RETR or HASH only: an upload is refused, a listing ends it, REST and a bad RANG replace it', async () => {
    const c = await session();
    expect((await c.cmd('TYPE I')).code).toBe(200);
    await put(c, 'r.txt', '0123456789');
    // An upload would truncate what a ranged write must keep (draft-bryan-ftp-range §4.3): refused, before any 150
    // (with a data connection ready, so that an upload that ignored the range would go ahead).
    for (const upload of ['STOR r.txt', 'APPE r.txt', 'STOU r.txt']) {
      expect((await c.cmd('RANG 2 4')).code).toBe(350);
      const data = await c.passive();
      data.on('error', () => undefined);
      expect((await c.cmd(upload)).code).toBe(501);
      data.destroy();
      expect((await get(c, 'r.txt')).toString()).toBe('0123456789');
    }
    // A listing between the RANG and a RETR, done or refused, and a refused HASH or RETR: the next RETR is whole.
    expect((await c.cmd('RANG 2 4')).code).toBe(350);
    expect((await c.retrieve('NLST')).toString()).toContain('r.txt');
    expect((await get(c, 'r.txt')).toString()).toBe('0123456789');
    for (const refused of ['LIST /missing', 'NLST /missing/*', 'MLSD r.txt', 'LIST', 'HASH nope', 'RETR nope']) {
      expect((await c.cmd('RANG 2 4')).code).toBe(350);
      expect([refused, (await c.cmd(refused)).code >= 400]).toEqual([refused, true]);
      expect([refused, (await get(c, 'r.txt')).toString()]).toEqual([refused, '0123456789']);
    }
    // The later of REST and RANG decides.
    expect((await c.cmd('RANG 2 4')).code).toBe(350);
    expect((await c.cmd('REST 5')).code).toBe(350);
    expect((await get(c, 'r.txt')).toString()).toBe('56789');
    expect((await c.cmd('REST 5')).code).toBe(350);
    expect((await c.cmd('RANG 2 4')).code).toBe(350);
    expect((await get(c, 'r.txt')).toString()).toBe('234');
    // A refused RANG resets the selection to the whole file (draft §3).
    expect((await c.cmd('RANG 2 4')).code).toBe(350);
    expect((await c.cmd('RANG 5 2')).code).toBe(501);
    expect((await get(c, 'r.txt')).toString()).toBe('0123456789');
    // REIN resets every parameter (RFC 959 §4.1.1), the range with them.
    expect((await c.cmd('RANG 2 4')).code).toBe(350);
    expect((await c.cmd('REIN')).code).toBe(220);
    expect((await c.cmd(`USER ${USER}`)).code).toBe(331);
    expect((await c.cmd(`PASS ${PASSWORD}`)).code).toBe(230);
    expect((await c.cmd('TYPE I')).code).toBe(200);
    expect((await get(c, 'r.txt')).toString()).toBe('0123456789');
  });

  it.each([
    ['memory', () => new MemoryProvider()],
    ['local disk', () => new LocalProvider(mkdtempDirSync())],
  ])('RETR of a range that starts at or past the end sends 0 octets (draft-bryan-ftp-range §4.3; %s), and leaves nothing open', async (_name, make) => {
    const c = await session(make());
    expect((await c.cmd('TYPE I')).code).toBe(200);
    await put(c, 'ten.txt', '0123456789');
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const before = fds();
    for (const start of [10, 11, 10]) {
      expect((await c.cmd(`RANG ${start} 20`)).code).toBe(350);
      const data = await c.passive();
      c.send('RETR ten.txt');
      expect(await c.next()).toMatchObject({ code: 150, text: expect.stringContaining('(0 bytes)') });
      expect((await readAll(data)).length).toBe(0);
      expect((await c.next()).code).toBe(226);
    }
    expect(fds()).toBeLessThanOrEqual(before + 1);
    expect((await c.cmd('RANG 9 20')).code).toBe(350);
    expect((await get(c, 'ten.txt')).toString()).toBe('9');
  });

  it('RANG needs TYPE I and MODE S (draft-bryan-ftp-range §5: 551), and a refused RANG leaves no range behind', async () => {
    const c = await session(new MemoryProvider(), { modeZ: true });
    await put(c, 'r.txt', '0123456789');
    expect((await c.cmd('TYPE A')).code).toBe(200);
    expect((await c.cmd('RANG 2 4')).code).toBe(551);
    // The reset (RANG 1 0) is always accepted.
    expect((await c.cmd('RANG 1 0')).code).toBe(350);
    // A type changed after the RANG: the RETR is refused, not sent converted, and the range is spent.
    expect((await c.cmd('TYPE I')).code).toBe(200);
    expect((await c.cmd('RANG 2 4')).code).toBe(350);
    expect((await c.cmd('TYPE A')).code).toBe(200);
    const data = await c.passive();
    data.on('error', () => undefined);
    expect((await c.cmd('RETR r.txt')).code).toBe(551);
    data.destroy();
    expect((await c.cmd('TYPE I')).code).toBe(200);
    expect((await get(c, 'r.txt')).toString()).toBe('0123456789');
    expect((await c.cmd('MODE Z')).code).toBe(200);
    expect((await c.cmd('RANG 2 4')).code).toBe(551);
    expect((await c.cmd('MODE S')).code).toBe(200);
    expect((await get(c, 'r.txt')).toString()).toBe('0123456789');
    expect((await c.cmd('RANG 2 4')).code).toBe(350);
    expect((await get(c, 'r.txt')).toString()).toBe('234');
  });

  it('a REST before a listing is spent by it: the next RETR is whole (RFC 959: REST is followed at once by its transfer)', async () => {
    const c = await session();
    expect((await c.cmd('TYPE I')).code).toBe(200);
    await put(c, 'r.txt', '0123456789');
    for (const listing of ['LIST', 'NLST', 'MLSD', 'LIST /missing']) {
      expect((await c.cmd('REST 3')).code).toBe(350);
      if (listing === 'LIST /missing') expect((await c.cmd(listing)).code).toBeGreaterThanOrEqual(400);
      else expect((await c.retrieve(listing)).length).toBeGreaterThan(0);
      expect([listing, (await get(c, 'r.txt')).toString()]).toEqual([listing, '0123456789']);
    }
    expect((await c.cmd('REST 3')).code).toBe(350);
    expect((await get(c, 'r.txt')).toString()).toBe('3456789');
  });

  it('NOOP ignores an argument (RFC 959 §5.4 lists 200 and 500 only)', async () => {
    const c = await session();
    expect((await c.cmd('NOOP keep-alive')).code).toBe(200);
  });

  it('XCRC, XMD5, XSHA1, XSHA256, XSHA512 answer 250 with the digest, whole or ranged', async () => {
    const c = await session();
    const data = Buffer.from('The quick brown fox jumps over the lazy dog');
    await put(c, 'fox file.txt', data);
    expect((await c.cmd('XCRC "fox file.txt"')).text).toBe(crc32(data).toString(16).padStart(8, '0'));
    expect((await c.cmd('XMD5 fox file.txt')).text).toBe(hex('md5', data));
    expect((await c.cmd('XSHA1 "fox file.txt"')).text).toBe(hex('sha1', data));
    expect((await c.cmd('XSHA256 "fox file.txt"')).text).toBe(hex('sha256', data));
    expect((await c.cmd('XSHA512 "fox file.txt"')).text).toBe(hex('sha512', data));
    expect((await c.cmd('XMD5 "fox file.txt" 4 9')).text).toBe(hex('md5', data.subarray(4, 9)));
    // A range that starts past the end names no byte: 554, as HASH answers, not the digest of nothing.
    expect((await c.cmd(`XCRC "fox file.txt" ${data.length + 1} ${data.length + 5}`)).code).toBe(554);
    expect((await c.cmd(`XCRC "fox file.txt" ${data.length}`)).code).toBe(554);
  });

  it('XMD5 and the like: a file named with a trailing number wins over a range, as with MDTM and a time; a start at the end is 554, as HASH', async () => {
    const c = await session();
    expect((await c.cmd('TYPE I')).code).toBe(200);
    await put(c, 'report 2024', 'the whole report');
    await put(c, 'report', '0123456789');
    await put(c, 'log 2 3', 'log');
    expect((await c.cmd('XMD5 report 2024')).text).toBe(hex('md5', Buffer.from('the whole report')));
    expect((await c.cmd('XMD5 report 2024 4')).text).toBe(hex('md5', Buffer.from('whole report')));
    expect((await c.cmd('XMD5 report 2024 4 9')).text).toBe(hex('md5', Buffer.from('whole')));
    expect((await c.cmd('XMD5 log 2 3')).text).toBe(hex('md5', Buffer.from('log')));
    // No such file: the numbers are the range.
    expect((await c.cmd('XMD5 report 2 5')).text).toBe(hex('md5', Buffer.from('234')));
    expect((await c.cmd('XSHA1 report 7')).text).toBe(hex('sha1', Buffer.from('789')));
    // A start at the end of the file names no byte of it: HASH after the same RANG says 554 too.
    expect((await c.cmd('XMD5 report 10')).code).toBe(554);
    expect((await c.cmd('XCRC report 10 12')).code).toBe(554);
    expect((await c.cmd('RANG 10 12')).code).toBe(350);
    expect((await c.cmd('HASH report')).code).toBe(554);
    expect((await c.cmd('XMD5 report 9')).text).toBe(hex('md5', Buffer.from('9')));
  });
});

describe('HASH that nobody waits for stops', () => {
  /**
   * A provider with a file of `chunks` × 64 KiB, each chunk read (at most 256 KiB) 20 ms late, counting them; a hash
   * of it takes `chunks` × 5 ms. `cut` says whether a stream closed before its end (stopped, not finished).
   */
  async function slowFile(chunks: number) {
    const fs = new MemoryProvider();
    await fs.writeFile('/big', Buffer.alloc(chunks * 65536, 7));
    const reads = { chunks: 0, streams: 0, open: 0, peak: 0, cut: 0 };
    const createReadStream = fs.createReadStream.bind(fs);
    fs.createReadStream = async (path, options) => {
      reads.streams++;
      reads.peak = Math.max(reads.peak, ++reads.open);
      const source = await createReadStream(path, options);
      source.on('close', () => reads.open--);
      const slow = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          reads.chunks++;
          setTimeout(() => cb(null, chunk), 20);
        },
      });
      slow.on('close', () => {
        if (!slow.readableEnded) reads.cut++;
        source.destroy();
      });
      return source.pipe(slow);
    };
    return { fs, reads };
  }

  async function server(fs: FsProvider, settings: Partial<ServerSettings> = {}) {
    const srv = new FtpServer({ settings: { failedLoginDelay: 0, ...settings }, driver: { authenticate: () => ({ fs }) } });
    const { port } = await srv.listen(0, '127.0.0.1');
    cleanups.push(() => srv.close());
    return { srv, port };
  }

  /** A logged-in client (that sent `before` first, each answered 2xx) whose HASH of the big file has been reading for 100 ms. */
  async function hashing(port: number, before: string[] = []) {
    const c = await RawClient.connect(port);
    cleanups.push(() => c.close());
    await c.login();
    for (const line of before) expect((await c.cmd(line)).code).toBeLessThan(300);
    c.socket.write('HASH big\r\n');
    await new Promise((r) => setTimeout(r, 100));
    return c;
  }

  /** Whether the file stopped being read: no chunk read in the 300 ms after 100 ms of settling. */
  async function stoppedReading(reads: { chunks: number }): Promise<boolean> {
    await new Promise((r) => setTimeout(r, 100));
    const after = reads.chunks;
    await new Promise((r) => setTimeout(r, 300));
    return reads.chunks === after;
  }

  it('when its client goes away', async () => {
    const { fs, reads } = await slowFile(600);
    const { port } = await server(fs);
    const c = await hashing(port);
    expect(reads.chunks).toBeGreaterThan(0);
    c.socket.resetAndDestroy();
    expect(await stoppedReading(reads)).toBe(true);
    expect(reads.cut).toBe(1);
  });

  // With a PASV before the HASH too: the passive port goes with the ABOR, so a transfer then needs a new PASV.
  it.each([false, true])('at ABOR: 426 for the HASH, then 226, and the session goes on (PASV before: %s)', async (pasv) => {
    const { fs, reads } = await slowFile(600);
    const { port } = await server(fs);
    const c = await hashing(port, pasv ? ['PASV'] : []);
    c.socket.write('ABOR\r\n');
    expect((await c.next()).code).toBe(426);
    expect((await c.next()).code).toBe(226);
    expect(await stoppedReading(reads)).toBe(true);
    expect(reads.cut).toBe(1);
    expect((await c.cmd('NOOP')).code).toBe(200);
    if (pasv) expect((await c.cmd('LIST')).code).toBe(425);
  });

  it('at ABOR while the server stops: 426 for the HASH, then 226, as without the stop', async () => {
    const { fs } = await slowFile(600);
    const { srv, port } = await server(fs);
    const c = await hashing(port);
    const closing = srv.close(5000);
    c.socket.write('ABOR\r\n');
    expect((await c.next()).code).toBe(426);
    expect((await c.next()).code).toBe(226);
    await closing;
  });

  it('when the server closes', async () => {
    const { fs, reads } = await slowFile(600);
    const { srv, port } = await server(fs);
    await hashing(port);
    await srv.close();
    expect(await stoppedReading(reads)).toBe(true);
    expect(reads.cut).toBe(1);
  });

  it('runs at most maxConcurrentHashes at once, and one per address: the rest wait their turn', async () => {
    // Each hash reads for ~0.25 s: long enough for all four to be asked while the first two run.
    const { fs, reads } = await slowFile(50);
    const { port } = await server(fs, { maxConcurrentHashes: 2, maxConcurrentHashesPerIp: 1 });
    const clients = await Promise.all(['127.0.0.31', '127.0.0.31', '127.0.0.32', '127.0.0.33'].map((a) => RawClient.connect(port, '127.0.0.1', a)));
    for (const c of clients) cleanups.push(() => c.close());
    await Promise.all(clients.map((c) => c.login()));
    for (const c of clients) c.socket.write('HASH big\r\n');
    const replies = await Promise.all(clients.map((c) => c.next()));
    expect(replies.map((r) => r.code)).toEqual([213, 213, 213, 213]);
    expect(reads.streams).toBe(4);
    expect(reads.peak).toBe(2);
  });
});

describe('storage commands', () => {
  it('AVBL reports the free bytes, or 502 without the capability', async () => {
    const c = await session(new MemoryProvider({ capacity: 1000 }));
    await put(c, 'f', Buffer.alloc(100));
    expect(await c.cmd('AVBL')).toMatchObject({ code: 213, text: '900' });
    expect((await c.cmd('FEAT')).lines).toContain(' AVBL');
    expect((await c.cmd('ALLO 500')).code).toBe(200);
    expect((await c.cmd('ALLO 5000')).code).toBe(452);
    const { readOnly } = await import('@ftp/vfs');
    const base = readOnly(new MemoryProvider());
    const plain: FsProvider = { stat: base.stat.bind(base), readdir: base.readdir.bind(base), mkdir: base.mkdir.bind(base), rmdir: base.rmdir.bind(base), unlink: base.unlink.bind(base), rename: base.rename.bind(base), open: base.open.bind(base) };
    const d = await session(plain);
    expect((await d.cmd('AVBL')).code).toBe(502);
    expect((await d.cmd('ALLO 5')).code).toBe(202);
    expect((await d.cmd('FEAT')).lines).not.toContain(' AVBL');
  });

  it('COMB of three parts gives their concatenation and removes the parts', async () => {
    const c = await session();
    await put(c, 'p1', 'alpha-');
    await put(c, 'p 2', 'beta-');
    await put(c, 'p3', 'gamma');
    expect((await c.cmd('COMB "whole.txt" "p1" "p 2" "p3"')).code).toBe(250);
    expect((await get(c, 'whole.txt')).toString()).toBe('alpha-beta-gamma');
    expect((await c.cmd('SIZE p1')).code).toBe(550);
    await put(c, 'a', 'A');
    await put(c, 'b', 'B');
    expect((await c.cmd('COMB a a b')).code).toBe(250);
    expect((await get(c, 'a')).toString()).toBe('AB');
    expect((await c.cmd('COMB x missing')).code).toBe(550);
  });

  it.each([
    ['memory', () => new MemoryProvider()],
    ['local disk', () => new LocalProvider(mkdtempDirSync())],
  ])('COMB refuses overlapping names before writing anything (%s)', async (_name, make) => {
    const c = await session(make());
    await put(c, 'x', 'XXXX');
    await put(c, 'y', 'YYYY');
    // The target as a later part would be emptied before it is read.
    expect((await c.cmd('COMB x y x')).code).toBe(553);
    // A part named twice would be copied twice, then its second unlink would fail after the write.
    expect((await c.cmd('COMB t y y')).code).toBe(553);
    expect((await get(c, 'x')).toString()).toBe('XXXX');
    expect((await get(c, 'y')).toString()).toBe('YYYY');
    expect((await c.cmd('SIZE t')).code).toBe(550);
    // The target as the first part is still appended to.
    expect((await c.cmd('COMB x x y')).code).toBe(250);
    expect((await get(c, 'x')).toString()).toBe('XXXXYYYY');
  });

  it('COMB sees through a link to a part (local disk)', async () => {
    const dir = mkdtempDirSync();
    const c = await session(new LocalProvider(dir));
    await put(c, 'x', 'XXXX');
    await put(c, 'y', 'YYYY');
    symlinkSync('x', join(dir, 'lx'));
    expect((await c.cmd('COMB lx y x')).code).toBe(553);
    expect((await c.cmd('COMB lx x y')).code).toBe(553);
    expect((await c.cmd('COMB t x lx')).code).toBe(553);
    expect((await get(c, 'x')).toString()).toBe('XXXX');
    expect((await get(c, 'y')).toString()).toBe('YYYY');
  });

  it('COMB does not take two files of two mounted filesystems for one (same inode number, size and time)', async () => {
    const c = await session(mounts(new MemoryProvider(), { '/a': new MemoryProvider(), '/b': new MemoryProvider() }));
    await put(c, 'a/p1', 'AAAA');
    await put(c, 'b/p2', 'BBBB');
    expect((await c.cmd('MFMT 20240101000000 a/p1')).code).toBe(213);
    expect((await c.cmd('MFMT 20240101000000 b/p2')).code).toBe(213);
    expect((await c.cmd('COMB a/t a/p1 b/p2')).code).toBe(250);
    expect((await get(c, 'a/t')).toString()).toBe('AAAABBBB');
  });

  it('MFMT and MDTM with a time set the modification time', async () => {
    const c = await session();
    await put(c, 't.txt', 't');
    expect(await c.cmd('MFMT 20200102030405 t.txt')).toMatchObject({ code: 213, text: 'Modify=20200102030405; t.txt' });
    expect((await c.cmd('MDTM t.txt')).text).toBe('20200102030405');
    expect((await c.cmd('MDTM 20210304050607 t.txt')).code).toBe(213);
    expect((await c.cmd('MDTM t.txt')).text).toBe('20210304050607');
    expect((await c.cmd('MFMT 2020 t.txt')).code).toBe(501);
    expect(await c.cmd('MFCT 20190102030405 t.txt')).toMatchObject({ code: 213, text: 'Create=20190102030405; t.txt' });
    expect((await c.cmd('OPTS MLST type;create;')).code).toBe(200);
    expect((await c.cmd('MLST t.txt')).lines.join('\n')).toContain('create=20190102030405');
    expect((await c.cmd('FEAT')).lines).toContain(' MFCT');
  });

  it('the MLSx unique fact holds the device and the inode (RFC 3659 §7.5.2: distinct across mounted filesystems)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ftp-unique-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const c = await session(new LocalProvider(root));
    await put(c, 'u.txt', 'u');
    const st = statSync(join(root, 'u.txt'));
    const line = (await c.cmd('MLST u.txt')).lines[1] ?? '';
    expect(/unique=([^;]+);/.exec(line)?.[1]).toBe(`${st.dev.toString(16)}u${st.ino.toString(16)}`);
  });

  it('MFMT answers with the time the filesystem kept, which MDTM then gives (ext4 clamps out-of-range years)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ftp-mfmt-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const c = await session(new LocalProvider(root));
    await put(c, 't.txt', 't');
    for (const asked of ['20200102030405', '19000101000000', '99991231235959']) {
      const set = await c.cmd(`MFMT ${asked} t.txt`);
      expect(set.code).toBe(213);
      const kept = (await c.cmd('MDTM t.txt')).text;
      expect(set.text).toBe(`Modify=${kept}; t.txt`);
      if (asked === '20200102030405') expect(kept).toBe(asked);
    }
  });

  it('the unique fact differs between two memory filesystems mounted side by side (same inode numbers)', async () => {
    const c = await session(mounts(new MemoryProvider(), { '/a': new MemoryProvider(), '/b': new MemoryProvider() }));
    await put(c, 'a/f', 'A');
    await put(c, 'b/f', 'B');
    const unique = async (path: string): Promise<string | undefined> => /unique=([^;]+);/.exec((await c.cmd(`MLST ${path}`)).lines[1] ?? '')?.[1];
    const [a, b, ma, mb] = [await unique('a/f'), await unique('b/f'), await unique('a'), await unique('b')];
    expect(a).toBeDefined();
    expect(a).not.toBe(b);
    expect(ma).not.toBe(mb);
  });

  it('MFCT is 502 and not in FEAT or HELP on a filesystem that keeps no creation time (local disk)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ftp-mfct-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const c = await session(new LocalProvider(root));
    await put(c, 't.txt', 't');
    expect((await c.cmd('MFCT 20200102030405 t.txt')).code).toBe(502);
    expect((await c.cmd('FEAT')).lines).not.toContain(' MFCT');
    const help = (await c.cmd('HELP')).text;
    expect(help).not.toMatch(/\bMFCT\b/);
    expect(help).toMatch(/\bMFMT\b/);
  });
});

describe('SITE', () => {
  it('CHMOD and SYMLINK on a local disk; HELP lists them; disabled by a setting', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ftp-site-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const c = await session(new LocalProvider(root));
    await put(c, 'f.sh', 'echo');
    expect((await c.cmd('SITE CHMOD 750 f.sh')).code).toBe(200);
    expect((await stat(join(root, 'f.sh'))).mode & 0o777).toBe(0o750);
    // Setuid, setgid and sticky never reach the file (the server may write as root), and the reply says so.
    const special = await c.cmd('SITE CHMOD 6755 f.sh');
    expect(special.code).toBe(200);
    expect(special.text).toContain('mode set to 0755');
    expect((await stat(join(root, 'f.sh'))).mode & 0o7777).toBe(0o755);
    expect((await c.cmd('SITE CHMOD 1777 .')).code).toBe(200);
    expect((await stat(root)).mode & 0o7777).toBe(0o777);
    expect((await c.cmd('SITE SYMLINK f.sh link.sh')).code).toBe(200);
    expect(await readlink(join(root, 'link.sh'))).toBe('f.sh');
    // An absolute target means the user's /, never the host's: the link stays inside the root.
    expect((await c.cmd('SITE SYMLINK /etc/passwd evil')).code).toBe(200);
    expect(await readlink(join(root, 'evil'))).not.toBe('/etc/passwd');
    expect((await c.cmd('SITE SYMLINK ../../../../etc/passwd evil2')).code).toBe(550);
    expect((await c.cmd('SITE UTIME f.sh 20240101000000 20230405060708 20240101000000 UTC')).code).toBe(200);
    expect((await c.cmd('MDTM f.sh')).text).toBe('20230405060708');
    expect((await c.cmd('SITE UTIME 20220102030405 f.sh')).code).toBe(200);
    expect((await c.cmd('MDTM f.sh')).text).toBe('20220102030405');
    expect((await c.cmd('SITE UTIME missing 20240101000000 20230405060708 20240101000000 UTC')).code).toBe(550);
    expect((await c.cmd('SITE UTIME f.sh')).code).toBe(501);
    expect((await c.cmd('SITE HELP')).text).toContain('SITE CHMOD');
    expect((await c.cmd('SITE FROB')).code).toBe(500);
    // Storage without chmod or links (S3): SITE HELP lists what it serves, as FEAT does.
    const bare = Object.assign(new MemoryProvider(), { chmod: undefined, symlink: undefined }) as unknown as FsProvider;
    const limited = await session(bare);
    const help = (await limited.cmd('SITE HELP')).text;
    expect(help).not.toContain('SITE CHMOD');
    expect(help).not.toContain('SITE SYMLINK');
    expect(help).toContain('SITE UTIME');
    expect((await limited.cmd('SITE CHMOD 644 x')).code).toBe(502);
    const off = await session(new MemoryProvider(), { siteCommands: false });
    expect((await off.cmd('SITE HELP')).code).toBe(502);
  });

  it('UTIME takes a time to the minute (YYYYMMDDhhmm), in both forms, as ProFTPD does', async () => {
    const c = await session();
    await put(c, 'my file.txt', 'x');
    expect((await c.cmd('SITE UTIME 202201020304 my file.txt')).code).toBe(200);
    expect((await c.cmd('MDTM my file.txt')).text).toBe('20220102030400');
    expect((await c.cmd('SITE UTIME my file.txt 202401010000 202304050607 202401010000 UTC')).code).toBe(200);
    expect((await c.cmd('MDTM my file.txt')).text).toBe('20230405060700');
    expect((await c.cmd('SITE UTIME 2022010203 my file.txt')).code).toBe(501);
  });
});

describe('HOST and LANG', () => {
  it('HOST picks a virtual host before login and the driver sees it', async () => {
    const seen: Array<string | undefined> = [];
    const fs = new MemoryProvider();
    const server = new FtpServer({
      settings: { failedLoginDelay: 0 },
      driver: {
        virtualHost: (_s, name) => name === 'ftp.example.com',
        authenticate: (s, user, pass) => {
          seen.push(s.host);
          return user === USER && pass === PASSWORD ? { fs } : null;
        },
      },
    });
    const { port } = await server.listen(0, '127.0.0.1');
    cleanups.push(() => server.close());
    const c = await RawClient.connect(port);
    cleanups.push(() => c.close());
    await c.next();
    expect((await c.cmd('HOST other.example.com')).code).toBe(504);
    expect((await c.cmd('HOST ftp.example.com')).code).toBe(220);
    expect((await c.cmd(`USER ${USER}`)).code).toBe(331);
    expect((await c.cmd(`PASS ${PASSWORD}`)).code).toBe(230);
    expect(seen).toEqual(['ftp.example.com']);
    expect((await c.cmd('HOST ftp.example.com')).code).toBe(503);
    expect((await c.cmd('LANG EN')).code).toBe(200);
    // An IPv6 address without RFC 7151's brackets (lftp's): the address, bracketed; other odd arguments still 501.
    const v6 = await RawClient.connect(port);
    cleanups.push(() => v6.close());
    await v6.next();
    expect((await v6.cmd('HOST ::1')).code).toBe(504);
    expect((await v6.cmd('HOST fe80::1:2')).text).toMatch(/Unknown host \[fe80::1:2\]/);
    expect((await v6.cmd('HOST ::1::2')).code).toBe(501);
    expect((await v6.cmd('HOST a b')).code).toBe(501);
    // Not a domain name: an empty label, a label starting or ending with a hyphen, one over 63 characters.
    for (const bad of ['foo..bar', '.foo', '-a.example', 'a-.example', `${'x'.repeat(64)}.example`, '[1.2.3.4]', 'fe80::1%eth0', '[::1%a.b-c]']) {
      expect((await v6.cmd(`HOST ${bad}`)).code, bad).toBe(501);
    }
    // A root's final dot, an IPv4 address: names all the same (asked of the driver, which knows neither here).
    expect((await v6.cmd('HOST ftp.example.com.')).code).toBe(504);
    expect((await v6.cmd('HOST 127.0.0.1')).code).toBe(504);
    expect((await c.cmd('LANG FR')).code).toBe(504);
  });
});

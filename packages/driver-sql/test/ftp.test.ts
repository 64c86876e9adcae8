import { createHash } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { SqlProvider } from '../src/index.js';
import { bytes, get, put, rowCounts } from './helpers.js';
import { ftpClient, RawFtp, startFtp } from './ftp-helpers.js';
import { DBS, disposeProvider, freshProvider, postgresUrl, randomPrefix } from './services.js';

afterAll(() => {
  for (const db of DBS) db.cleanup();
});

/** Collects a download into a buffer. */
function sink(): { stream: Writable; data: () => Buffer } {
  const parts: Buffer[] = [];
  return {
    stream: new Writable({
      write(chunk: Buffer, _e, cb) {
        parts.push(chunk);
        cb();
      },
    }),
    data: () => Buffer.concat(parts),
  };
}

for (const db of DBS) {
  /**
 * Overwrites /partial.bin ("old version") with 2 MiB over `raw` and aborts once chunks have reached the database:
 * the row counts before, and the bytes sent.
 */
async function abortedOverwrite(raw: RawFtp, p: SqlProvider): Promise<{ before: { inodes: number; chunks: number }; sent: Buffer }> {
  expect((await raw.cmd('TYPE I')).code).toBe(200);
  await put(p, '/partial.bin', 'old version');
  const before = await rowCounts(p);
  const dataSocket = await raw.passive();
  raw.socket.write('STOR /partial.bin\r\n');
  expect((await raw.next()).code).toBe(150);
  const sent = bytes(2 * 1024 * 1024, 4);
  dataSocket.write(sent);
  const deadline = Date.now() + 10_000;
  while ((await rowCounts(p)).chunks === before.chunks && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect((await rowCounts(p)).chunks).toBeGreaterThan(before.chunks);
  raw.socket.write('ABOR\r\n');
  const replies = [await raw.next(), await raw.next()].map((r) => r.code);
  expect(replies[0]).toBeGreaterThanOrEqual(400);
  dataSocket.destroy();
  return { before, sent };
}

describe(`FTP over SqlProvider (${db.dialect})`, () => {
    it('a real FTP client: MKD, STOR, LIST/MLSD, RETR, APPE, REST, HASH, RNFR/RNTO, DELE', async () => {
      const p = await freshProvider(db);
      const { server, port } = await startFtp(p);
      const c = await ftpClient(port);
      try {
        const data = bytes(3 * 1024 * 1024 + 17, 21);
        await c.ensureDir('/docs/sub');
        await c.cd('/');
        await c.uploadFrom(Readable.from([data]), '/docs/sub/f.bin');
        const listed = await c.list('/docs/sub');
        expect(listed.map((e) => [e.name, e.size])).toEqual([['f.bin', data.length]]);
        const down = sink();
        await c.downloadTo(down.stream, '/docs/sub/f.bin');
        expect(down.data().equals(data)).toBe(true);
        await c.appendFrom(Readable.from([Buffer.from('tail')]), '/docs/sub/f.bin');
        const whole = Buffer.concat([data, Buffer.from('tail')]);
        expect(await c.size('/docs/sub/f.bin')).toBe(whole.length);
        const part = sink();
        await c.downloadTo(part.stream, '/docs/sub/f.bin', 3 * 1024 * 1024);
        expect(part.data().equals(whole.subarray(3 * 1024 * 1024))).toBe(true);
        await c.uploadFrom(Readable.from([data]), '/docs/h.bin');
        await c.send('OPTS HASH SHA-256');
        const h = await c.send('HASH /docs/h.bin');
        expect(h.message).toContain(createHash('sha256').update(data).digest('hex'));
        await c.rename('/docs', '/papers');
        expect((await c.list('/papers/sub')).map((e) => e.name)).toEqual(['f.bin']);
        await c.remove('/papers/sub/f.bin');
        expect(await c.list('/papers/sub')).toEqual([]);
        await expect(c.size('/docs/h.bin')).rejects.toThrow(/550/);
      } finally {
        c.close();
        await server.close();
        await disposeProvider(p);
      }
    });

    it('with partialUploads: discard, ABOR in the middle of an upload leaves no rows behind', async () => {
      const p = await freshProvider(db);
      const { server, port } = await startFtp(p, { partialUploads: 'discard' });
      const raw = await RawFtp.connect(port);
      try {
        // The aborted upload replaces an existing file: its old version must survive.
        const { before } = await abortedOverwrite(raw, p);
        const until = Date.now() + 10_000;
        while (JSON.stringify(await rowCounts(p)) !== JSON.stringify(before) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
        expect(await rowCounts(p)).toEqual(before);
        expect((await get(p, '/partial.bin')).toString()).toBe('old version');
        // A new file aborted the same way does not appear at all.
        const data2 = await raw.passive();
        raw.socket.write('STOR /never.bin\r\n');
        expect((await raw.next()).code).toBe(150);
        data2.write(bytes(2 * 1024 * 1024, 5));
        const d2 = Date.now() + 10_000;
        while ((await rowCounts(p)).chunks === before.chunks && Date.now() < d2) await new Promise((r) => setTimeout(r, 20));
        raw.socket.write('ABOR\r\n');
        expect((await raw.next()).code).toBeGreaterThanOrEqual(400);
        await raw.next();
        data2.destroy();
        const d3 = Date.now() + 10_000;
        while (JSON.stringify(await rowCounts(p)) !== JSON.stringify(before) && Date.now() < d3) await new Promise((r) => setTimeout(r, 20));
        expect(await rowCounts(p)).toEqual(before);
        await expect(p.stat('/never.bin')).rejects.toMatchObject({ code: 'ENOENT' });
      } finally {
        raw.close();
        await server.close();
        await disposeProvider(p);
      }
    });

    it('with partialUploads: keep (the default), ABOR in the middle of an overwrite stores what arrived, no more rows', async () => {
      const p = await freshProvider(db);
      const { server, port } = await startFtp(p);
      const raw = await RawFtp.connect(port);
      try {
        const { before, sent } = await abortedOverwrite(raw, p);
        // Stored before the 426: what arrived replaced the old version, as on a disk written in place.
        const got = await get(p, '/partial.bin');
        expect(got.length).toBeGreaterThan(0);
        expect(got.equals(sent.subarray(0, got.length))).toBe(true);
        // The old version's rows go (once nothing reads it): one file, one inode, as before.
        const until = Date.now() + 10_000;
        while ((await rowCounts(p)).inodes !== before.inodes && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
        expect((await rowCounts(p)).inodes).toBe(before.inodes);
      } finally {
        raw.close();
        await server.close();
        await disposeProvider(p);
      }
    });
  });
}

describe('two FtpServer instances over one PostgreSQL database', () => {
  it("see each other's files, renames and deletions", async () => {
    const url = await postgresUrl();
    const prefix = randomPrefix();
    const fsA = new SqlProvider({ connection: url, tablePrefix: prefix });
    const fsB = new SqlProvider({ connection: url, tablePrefix: prefix });
    const a = await startFtp(fsA);
    const b = await startFtp(fsB);
    const ca = await ftpClient(a.port);
    const cb = await ftpClient(b.port);
    try {
      const data = bytes(1024 * 1024 + 5, 9);
      await ca.ensureDir('/shared');
      await ca.uploadFrom(Readable.from([data]), '/shared/from-a.bin');
      expect((await cb.list('/shared')).map((e) => [e.name, e.size])).toEqual([['from-a.bin', data.length]]);
      const got = sink();
      await cb.downloadTo(got.stream, '/shared/from-a.bin');
      expect(got.data().equals(data)).toBe(true);
      const pass = new PassThrough();
      pass.end(Buffer.from('from b'));
      await cb.uploadFrom(pass, '/shared/from-b.txt');
      await cb.rename('/shared', '/moved');
      expect((await ca.list('/moved')).map((e) => e.name).sort()).toEqual(['from-a.bin', 'from-b.txt']);
      await ca.remove('/moved/from-b.txt');
      expect((await cb.list('/moved')).map((e) => e.name)).toEqual(['from-a.bin']);
    } finally {
      ca.close();
      cb.close();
      await a.server.close();
      await b.server.close();
      await fsB.close();
      await disposeProvider(fsA);
    }
  });
});

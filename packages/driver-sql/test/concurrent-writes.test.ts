import { PassThrough, Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { endStream, startUpload } from '@ftp/vfs-conformance';
import { SqlProvider } from '../src/index.js';
import { ftpClient, startFtp } from './ftp-helpers.js';
import { get, put, rowCounts } from './helpers.js';
import { DBS, disposeProvider, freshProvider, randomPrefix } from './services.js';

afterAll(() => {
  for (const db of DBS) db.cleanup();
});

const KiB = 1024;
const fill = (c: string, n: number): Buffer => Buffer.alloc(n, c);

for (const db of DBS) {
  // What any backend keeps under racing uploads (each writer ok or EBUSY, the file one serial outcome, writable again)
  // is the conformance suite's concurrent-writers group (test/conformance.test.ts). Here: when this backend refuses
  // (at commit, the continuing upload whose file changed), whom, and what it leaves in the tables.
  describe(`SqlProvider (${db.dialect}): uploads that continue a file never lose a concurrent write`, () => {
    it('two overlapping appends: the second to finish fails with EBUSY when it commits, and leaves no row', async () => {
      const p = await freshProvider(db);
      try {
        await put(p, '/f', 'BASE');
        const a = await startUpload(p, '/f', { append: true }, fill('A', 300 * KiB));
        const b = await startUpload(p, '/f', { append: true }, fill('B', 70 * KiB));
        await endStream(b);
        a.write(fill('A', 30 * KiB));
        await expect(endStream(a)).rejects.toMatchObject({ code: 'EBUSY' });
        // The loser's inode and chunks are gone: the root, the file, one chunk.
        expect(await rowCounts(p)).toEqual({ inodes: 2, chunks: 1 });
      } finally {
        await disposeProvider(p);
      }
    });

    it('append vs overwrite: an append that a STOR overtook fails with EBUSY when it commits', async () => {
      const p = await freshProvider(db);
      try {
        await put(p, '/f', 'BASE');
        const a = await startUpload(p, '/f', { append: true }, fill('A', 100 * KiB));
        await put(p, '/f', 'NEW CONTENT');
        await expect(endStream(a)).rejects.toMatchObject({ code: 'EBUSY' });
      } finally {
        await disposeProvider(p);
      }
    });

    it('overwrite vs append: a STOR that finishes after an append replaces it (last writer wins, both succeed)', async () => {
      const p = await freshProvider(db);
      try {
        await put(p, '/f', 'BASE');
        const s = await startUpload(p, '/f', {}, fill('S', 100 * KiB));
        await put(p, '/f', 'TAIL', { append: true });
        expect((await get(p, '/f')).toString()).toBe('BASETAIL');
        await endStream(s);
        expect((await get(p, '/f')).equals(fill('S', 100 * KiB))).toBe(true);
      } finally {
        await disposeProvider(p);
      }
    });

    it('REST + STOR vs overwrite: the resumed upload fails with EBUSY when it commits', async () => {
      const p = await freshProvider(db);
      try {
        await put(p, '/f', fill('o', 600 * KiB));
        const r = await startUpload(p, '/f', { start: 300 * KiB }, fill('R', 80 * KiB));
        await put(p, '/f', 'REPLACED');
        await expect(endStream(r)).rejects.toMatchObject({ code: 'EBUSY' });
      } finally {
        await disposeProvider(p);
      }
    });

    it('a file handle writing in place (gen + 1), a creation, a deletion or a rename over the file fail an append; MFMT and CHMOD do not', async () => {
      const p = await freshProvider(db);
      try {
        await put(p, '/f', 'BASE');
        const h0 = await startUpload(p, '/f', { append: true }, fill('A', 10));
        const fh = await p.open('/f', 'r+');
        await fh.write(Buffer.from('b'), 0, 1, 0);
        await fh.close();
        await expect(endStream(h0)).rejects.toMatchObject({ code: 'EBUSY' });
        expect((await get(p, '/f')).toString()).toBe('bASE');

        const c = await startUpload(p, '/new', { append: true }, fill('A', 10));
        await put(p, '/new', 'created');
        await expect(endStream(c)).rejects.toMatchObject({ code: 'EBUSY' });

        const d = await startUpload(p, '/new', { append: true }, fill('A', 10));
        await p.unlink('/new');
        await expect(endStream(d)).rejects.toMatchObject({ code: 'EBUSY' });
        await expect(p.stat('/new')).rejects.toMatchObject({ code: 'ENOENT' });

        await put(p, '/y', 'Y');
        const m = await startUpload(p, '/f', { append: true }, fill('A', 10));
        await p.rename('/y', '/f');
        await expect(endStream(m)).rejects.toMatchObject({ code: 'EBUSY' });
        expect((await get(p, '/f')).toString()).toBe('Y');

        const t = await startUpload(p, '/f', { append: true }, fill('A', 3));
        await p.setTimes('/f', new Date(1_000_000));
        await p.chmod('/f', 0o600);
        await endStream(t);
        expect((await get(p, '/f')).toString()).toBe('YAAA');
        expect(await rowCounts(p)).toEqual({ inodes: 2, chunks: 1 });
      } finally {
        await disposeProvider(p);
      }
    });

    it('two STORs still end as the last one to finish (unconditional, as documented)', async () => {
      const p = await freshProvider(db);
      try {
        await put(p, '/f', 'BASE');
        const s1 = await startUpload(p, '/f', {}, fill('1', 100 * KiB));
        const s2 = await startUpload(p, '/f', {}, fill('2', 70 * KiB));
        await endStream(s2);
        await endStream(s1);
        expect((await get(p, '/f')).equals(fill('1', 100 * KiB))).toBe(true);
      } finally {
        await disposeProvider(p);
      }
    });

    it('two overlapping appends through two providers (two servers on one database)', async () => {
      const prefix = randomPrefix();
      const url = await db.url();
      const a = new SqlProvider({ connection: url, tablePrefix: prefix });
      const b = db.dialect === 'sqlite' ? a : new SqlProvider({ connection: url, tablePrefix: prefix });
      try {
        await put(a, '/f', 'BASE');
        const wa = await startUpload(a, '/f', { append: true }, fill('A', 100 * KiB));
        const wb = await startUpload(b, '/f', { append: true }, fill('B', 100 * KiB));
        const results = await Promise.allSettled([endStream(wa), endStream(wb)]);
        // Whatever the order, exactly one commits and the other is told.
        expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
        const lost = results.find((r) => r.status === 'rejected');
        expect((lost as PromiseRejectedResult).reason).toMatchObject({ code: 'EBUSY' });
        const winner = results[0]?.status === 'fulfilled' ? 'A' : 'B';
        expect((await get(b, '/f')).equals(Buffer.concat([Buffer.from('BASE'), fill(winner, 100 * KiB)]))).toBe(true);
      } finally {
        if (b !== a) await b.close();
        await disposeProvider(a);
      }
    });
  });

  describe(`FTP over SqlProvider (${db.dialect}): racing APPEs`, () => {
    it('an APPE while another APPE of the file runs gets 450 before its 150 (nothing sent), and succeeds once that one is done', async () => {
      // Before uploadBusy: 150, every byte sent, then 451 at the end (the first to commit made the other's base stale).
      const p = await freshProvider(db);
      const { server, port } = await startFtp(p);
      const c1 = await ftpClient(port);
      const c2 = await ftpClient(port);
      try {
        await put(p, '/f.bin', 'BASE');
        const slow = new PassThrough();
        const first = c1.appendFrom(slow, '/f.bin');
        first.catch(() => undefined);
        slow.write(fill('A', 512 * KiB));
        // Until the first upload is open (after its data connection, a transaction away).
        for (let i = 0; i < 250 && !(await p.uploadBusy('/f.bin', { append: true })); i++) await new Promise((r) => setTimeout(r, 20));
        await expect(c2.appendFrom(Readable.from([fill('B', 160 * KiB)]), '/f.bin')).rejects.toMatchObject({ code: 450 });
        slow.end(fill('A', 64 * KiB));
        expect((await first).code).toBe(226);
        await c2.appendFrom(Readable.from([fill('B', 160 * KiB)]), '/f.bin');
        expect((await get(p, '/f.bin')).equals(Buffer.concat([Buffer.from('BASE'), fill('A', 576 * KiB), fill('B', 160 * KiB)]))).toBe(true);
      } finally {
        c1.close();
        c2.close();
        await server.close();
        await disposeProvider(p);
      }
    });
  });
}

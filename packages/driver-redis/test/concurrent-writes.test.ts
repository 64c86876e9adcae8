import { PassThrough, Readable } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { endStream, readAll, startUpload, writeAll, writeChunk } from '@ftp/vfs-conformance';
import { deleteFilesystem, RedisProvider } from '../src/index.js';
import type { RedisProviderOptions } from '../src/index.js';
import { ftpClient, startFtp } from './ftp-helpers.js';
import { testPrefix, testRedis } from './redis.js';

const redis = await testRedis();
const used: string[] = [];
const KiB = 1024;

/** A provider over a fresh prefix (small chunks: the kept prefix spans whole chunks and a partial one). */
function fresh(options: Partial<RedisProviderOptions> = {}): RedisProvider {
  const prefix = testPrefix('race');
  used.push(prefix);
  return new RedisProvider({ redis, prefix, chunkSize: 64 * KiB, ...options });
}

afterEach(async () => {
  for (const p of used.splice(0)) await deleteFilesystem(redis, p, { removeIdCounter: true });
});
afterAll(async () => {
  await redis.quit();
});

const fill = (c: string, n: number): Buffer => Buffer.alloc(n, c);

// What any backend keeps under racing uploads (each writer ok or EBUSY, the file one serial outcome, writable again)
// is the conformance suite's concurrent-writers group (test/conformance.test.ts, test/cluster.test.ts). Here: when
// this backend refuses (at commit, the continuing upload whose file changed), whom, and what it leaves in Redis.
describe('RedisProvider: uploads that continue a file never lose a concurrent write', () => {
  it('two overlapping appends: the second to finish fails with EBUSY when it commits, and leaves no key', async () => {
    // No grace period: replaced content goes at once, so any content key left would be the loser's.
    const p = fresh({ gracePeriodMs: 0 });
    await writeAll(p, '/f', 'BASE');
    const a = await startUpload(p, '/f', { append: true }, fill('A', 100 * KiB));
    const b = await startUpload(p, '/f', { append: true }, fill('B', 70 * KiB));
    await endStream(b);
    await writeChunk(a, fill('A', 30 * KiB));
    await expect(endStream(a)).rejects.toMatchObject({ code: 'EBUSY' });
    // The loser left nothing behind: the one content key is the winner's.
    expect(await redis.keys(`{${p.keys.prefix}}:c:*`)).toHaveLength(1);
  });

  it('append vs overwrite: an append that a STOR overtook fails with EBUSY when it commits', async () => {
    const p = fresh();
    await writeAll(p, '/f', 'BASE');
    const a = await startUpload(p, '/f', { append: true }, fill('A', 100 * KiB));
    await writeAll(p, '/f', 'NEW CONTENT');
    await expect(endStream(a)).rejects.toMatchObject({ code: 'EBUSY' });
  });

  it('overwrite vs append: a STOR that finishes after an append replaces it (last writer wins, both succeed)', async () => {
    const p = fresh();
    await writeAll(p, '/f', 'BASE');
    const s = await startUpload(p, '/f', {}, fill('S', 100 * KiB));
    await writeAll(p, '/f', 'TAIL', { append: true });
    expect((await readAll(p, '/f')).toString()).toBe('BASETAIL');
    await endStream(s);
    expect((await readAll(p, '/f')).equals(fill('S', 100 * KiB))).toBe(true);
  });

  it('REST + STOR vs overwrite: the resumed upload fails with EBUSY when it commits', async () => {
    const p = fresh();
    await writeAll(p, '/f', fill('o', 150 * KiB));
    const r = await startUpload(p, '/f', { start: 100 * KiB }, fill('R', 80 * KiB));
    await writeAll(p, '/f', 'REPLACED');
    await expect(endStream(r)).rejects.toMatchObject({ code: 'EBUSY' });
  });

  it('an append to a missing file fails when another upload created the file meanwhile; deletion and rename count as changes', async () => {
    const p = fresh();
    const a = await startUpload(p, '/new', { append: true }, fill('A', 10));
    await writeAll(p, '/new', 'created');
    await expect(endStream(a)).rejects.toMatchObject({ code: 'EBUSY' });

    const d = await startUpload(p, '/new', { append: true }, fill('A', 10));
    await p.unlink('/new');
    await expect(endStream(d)).rejects.toMatchObject({ code: 'EBUSY' });
    await expect(p.stat('/new')).rejects.toMatchObject({ code: 'ENOENT' });

    await writeAll(p, '/x', 'X');
    await writeAll(p, '/y', 'Y');
    const m = await startUpload(p, '/x', { append: true }, fill('A', 10));
    await p.rename('/y', '/x');
    await expect(endStream(m)).rejects.toMatchObject({ code: 'EBUSY' });
    expect((await readAll(p, '/x')).toString()).toBe('Y');
    // Metadata changes are not content changes: MFMT / SITE CHMOD during an append do not fail it.
    const t = await startUpload(p, '/x', { append: true }, fill('A', 3));
    await p.setTimes('/x', new Date(1_000_000));
    await p.chmod('/x', 0o600);
    await endStream(t);
    expect((await readAll(p, '/x')).toString()).toBe('YAAA');
  });

  it('two STORs still end as the last one to finish (unconditional, as documented)', async () => {
    const p = fresh();
    await writeAll(p, '/f', 'BASE');
    const s1 = await startUpload(p, '/f', {}, fill('1', 100 * KiB));
    const s2 = await startUpload(p, '/f', {}, fill('2', 70 * KiB));
    await endStream(s2);
    await endStream(s1);
    expect((await readAll(p, '/f')).equals(fill('1', 100 * KiB))).toBe(true);
  });

  it('a writable handle that keeps the content (r+) commits only over the version it copied', async () => {
    const p = fresh();
    await writeAll(p, '/f', 'BASE');
    const h = await p.open('/f', 'r+');
    await h.write(Buffer.from('b'), 0, 1, 0);
    await writeAll(p, '/f', 'OTHER');
    await expect(h.close()).rejects.toMatchObject({ code: 'EBUSY' });
    expect((await readAll(p, '/f')).toString()).toBe('OTHER');
    const w = await p.open('/f', 'w');
    await w.write(Buffer.from('truncating'));
    await writeAll(p, '/f', 'OTHER2');
    await w.close();
    expect((await readAll(p, '/f')).toString()).toBe('truncating');
  });
});

describe('RedisProvider over FTP: racing APPEs', () => {
  it('an APPE while another APPE of the file runs gets 450 before its 150 (nothing sent), and succeeds once that one is done', async () => {
    // Before uploadBusy: 150, every byte sent, then 451 at the end (the first to commit made the other's base stale).
    const p = fresh();
    await writeAll(p, '/f.bin', 'BASE');
    const { server, port } = await startFtp(p);
    const c1 = await ftpClient(port);
    const c2 = await ftpClient(port);
    try {
      const slow = new PassThrough();
      const first = c1.appendFrom(slow, '/f.bin');
      first.catch(() => undefined);
      slow.write(fill('A', 256 * KiB));
      // Until the first upload is open (after its data connection).
      for (let i = 0; i < 250 && !(await p.uploadBusy('/f.bin', { append: true })); i++) await new Promise((r) => setTimeout(r, 20));
      await expect(c2.appendFrom(Readable.from([fill('B', 160 * KiB)]), '/f.bin')).rejects.toMatchObject({ code: 450 });
      slow.end(fill('A', 64 * KiB));
      expect((await first).code).toBe(226);
      await c2.appendFrom(Readable.from([fill('B', 160 * KiB)]), '/f.bin');
      expect((await readAll(p, '/f.bin')).equals(Buffer.concat([Buffer.from('BASE'), fill('A', 320 * KiB), fill('B', 160 * KiB)]))).toBe(true);
    } finally {
      c1.close();
      c2.close();
      await server.close();
    }
  });
});

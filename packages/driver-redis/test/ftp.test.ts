import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { deterministicBytes } from '@ftp/vfs-conformance';
import { openReadStream } from '@ftp/vfs';
import type { FtpServer } from '@ftp/server';
import { countKeys, deleteFilesystem, RedisBanStore, RedisProvider } from '../src/index.js';
import { download, ftpClient, PASSWORD, RawFtp, startFtp, upload, USER } from './ftp-helpers.js';
import { connect } from 'node:net';
import { startProxy } from './proxy.js';
import { deletePattern, testPrefix, testRedis } from './redis.js';

const redis = await testRedis();
const REDIS_URL = 'redis://127.0.0.1:6379';
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  await redis.quit();
});

/** A provider with its own connection (as a separate machine would have) over the filesystem `prefix`. */
function provider(prefix: string): RedisProvider {
  const p = new RedisProvider({ redis: REDIS_URL, prefix });
  cleanups.push(() => p.close());
  return p;
}

async function server(p: RedisProvider, settings = {}, extra = {}): Promise<{ server: FtpServer; port: number }> {
  const s = await startFtp(p, settings, extra);
  cleanups.push(() => s.server.close());
  return s;
}

function filesystem(): string {
  const prefix = testPrefix('ftp');
  cleanups.push(() => deleteFilesystem(redis, prefix, { removeIdCounter: true }));
  return prefix;
}

describe('through @ftp/server with a real FTP client', () => {
  it('uploads, lists, downloads, appends, renames and deletes (basic-ftp)', async () => {
    const { port } = await server(provider(filesystem()));
    const c = await ftpClient(port);
    try {
      const data = deterministicBytes(1024 * 1024 + 77, 1);
      await c.ensureDir('/in/deeper');
      await upload(c, 'file.bin', data);
      const listing = await c.list();
      expect(listing.map((e) => [e.name, e.size])).toEqual([['file.bin', data.length]]);
      expect((await download(c, 'file.bin')).equals(data)).toBe(true);
      await c.appendFrom((await import('node:stream')).Readable.from([Buffer.from('tail')]), 'file.bin');
      expect((await download(c, 'file.bin')).equals(Buffer.concat([data, Buffer.from('tail')]))).toBe(true);
      await c.rename('/in/deeper/file.bin', '/in/moved.bin');
      await c.cd('/in');
      expect((await c.list()).map((e) => e.name).sort()).toEqual(['deeper', 'moved.bin']);
      expect(await c.size('moved.bin')).toBe(data.length + 4);
      await c.remove('moved.bin');
      expect((await c.list()).map((e) => e.name)).toEqual(['deeper']);
    } finally {
      c.close();
    }
  });

  it('answers HASH and MLSD from the provider, and curl downloads with REST (a second client)', async () => {
    const p = provider(filesystem());
    const { port } = await server(p);
    const c = await ftpClient(port);
    const data = deterministicBytes(600_000, 2);
    try {
      await upload(c, 'h.bin', data);
      const reply = await c.send('HASH h.bin');
      expect(reply.code).toBe(213);
      expect(reply.message).toContain(createHash('sha256').update(data).digest('hex'));
      const mlsd = await c.list();
      expect(mlsd[0]?.name).toBe('h.bin');
    } finally {
      c.close();
    }
    const { stdout } = await promisify(execFile)('curl', ['-s', '--range', '500000-', `ftp://${USER}:s3cret@127.0.0.1:${port}/h.bin`], { encoding: 'buffer', timeout: 10_000 });
    expect(Buffer.compare(stdout, data.subarray(500_000))).toBe(0);
  });

  /** 2 MiB sent to STOR broken.bin (so that chunks are stored), then the data connection reset: the 4xx, and the bytes. */
  async function resetUpload(port: number): Promise<Buffer> {
    const c = await RawFtp.connect(port);
    cleanups.push(async () => c.close());
    expect(await c.cmd(`USER ${USER}`)).toMatch(/^331/);
    expect(await c.cmd(`PASS ${PASSWORD}`)).toMatch(/^230/);
    expect(await c.cmd('TYPE I')).toMatch(/^200/);
    const epsv = await c.cmd('EPSV');
    const data = connect({ port: Number(/\(\|\|\|(\d+)\|\)/.exec(epsv)?.[1]), host: '127.0.0.1' });
    await new Promise((resolve) => data.once('connect', resolve));
    c.socket.write('STOR broken.bin\r\n');
    expect(await c.next()).toMatch(/^150/);
    const sent = Buffer.concat(Array.from({ length: 32 }, (_, i) => deterministicBytes(64 * 1024, i)));
    await new Promise<void>((resolve) => data.write(sent, () => resolve()));
    await new Promise((r) => setTimeout(r, 100));
    data.resetAndDestroy();
    expect(await c.next()).toMatch(/^4\d\d/);
    return sent;
  }

  it('with partialUploads: discard, an upload whose data connection is reset leaves no file and no key behind', async () => {
    const p = provider(filesystem());
    const { port } = await server(p, { partialUploads: 'discard' });
    const ok = await ftpClient(port);
    cleanups.push(async () => ok.close());
    await upload(ok, 'keep.txt', Buffer.from('kept'));
    await resetUpload(port);
    await expect(p.stat('/broken.bin')).rejects.toMatchObject({ code: 'ENOENT' });
    // The content of the aborted upload is deleted (after its writes in flight): poll for it, 3 s at most.
    const deadline = Date.now() + 3000;
    while ((await countKeys(redis, p.keys.prefix, 'c:*')) !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await countKeys(redis, p.keys.prefix, 'c:*')).toBe(1); // keep.txt's content only
    // Nothing else either: seq, the root's inode and entries, keep.txt's inode and content.
    expect(await countKeys(redis, p.keys.prefix)).toBe(5);
  });

  it('with partialUploads: keep (the default), an upload whose data connection is reset stores what arrived', async () => {
    const p = provider(filesystem());
    const { port } = await server(p);
    const sent = await resetUpload(port);
    // Stored before the 426: a client resuming from SIZE resumes from what it sent.
    const size = (await p.stat('/broken.bin')).size;
    expect(size).toBeGreaterThan(0);
    expect(size).toBeLessThanOrEqual(sent.length);
    const parts: Buffer[] = [];
    for await (const chunk of await openReadStream(p, '/broken.bin')) parts.push(chunk as Buffer);
    expect(Buffer.concat(parts).equals(sent.subarray(0, size))).toBe(true);
  });

  it('two FtpServer instances over one Redis: uploaded through one, listed and downloaded through the other', async () => {
    const prefix = filesystem();
    const a = await server(provider(prefix));
    const b = await server(provider(prefix));
    const ca = await ftpClient(a.port);
    const cb = await ftpClient(b.port);
    try {
      const data = deterministicBytes(700_000, 3);
      await ca.ensureDir('/shared');
      await upload(ca, 'from-a.bin', data);
      await cb.cd('/shared');
      expect((await cb.list()).map((e) => [e.name, e.size])).toEqual([['from-a.bin', data.length]]);
      expect((await download(cb, 'from-a.bin')).equals(data)).toBe(true);
      // And the other way round, replacing the file.
      const other = deterministicBytes(1000, 4);
      await upload(cb, 'from-a.bin', other);
      expect((await download(ca, 'from-a.bin')).equals(other)).toBe(true);
    } finally {
      ca.close();
      cb.close();
    }
  });
});

describe('RedisBanStore', () => {
  it('bans an address for both FtpServer instances after failures counted by both', async () => {
    const banPrefix = `ftp-test-ban-${Math.random().toString(36).slice(2)}`;
    cleanups.push(() => deletePattern(redis, `${banPrefix}:*`));
    // Loopback is exempt from bans by default (banExempt): this test bans it.
    const settings = { maxLoginFailures: 3, loginFailureWindow: 60, banDuration: 60, banExempt: [] };
    const prefix = filesystem();
    const storeA = new RedisBanStore({ redis: REDIS_URL, prefix: banPrefix });
    const storeB = new RedisBanStore({ redis: REDIS_URL, prefix: banPrefix });
    cleanups.push(() => storeA.close(), () => storeB.close());
    const a = await server(provider(prefix), settings, { banStore: storeA });
    const b = await server(provider(prefix), settings, { banStore: storeB });
    // Two failures on A, one on B: the third (on B) bans.
    await expect(ftpClient(a.port, USER, 'wrong')).rejects.toMatchObject({ code: 530 });
    await expect(ftpClient(a.port, USER, 'wrong')).rejects.toMatchObject({ code: 530 });
    await expect(ftpClient(b.port, USER, 'wrong')).rejects.toMatchObject({ code: 421 });
    // Now even the right password is refused by both, at connect.
    await expect(ftpClient(a.port)).rejects.toMatchObject({ code: 421 });
    await expect(ftpClient(b.port)).rejects.toMatchObject({ code: 421 });
    // Every key of the store expires by itself.
    const keys = await redis.keys(`${banPrefix}:*`);
    expect(keys.sort()).toEqual([`${banPrefix}:b:127.0.0.1`, `${banPrefix}:f:127.0.0.1`]);
    for (const k of keys) expect(await redis.pttl(k)).toBeGreaterThan(0);
  });

  it('counts failures within the window only, and a shorter ban never shortens a longer one', async () => {
    const banPrefix = `ftp-test-ban-${Math.random().toString(36).slice(2)}`;
    cleanups.push(() => deletePattern(redis, `${banPrefix}:*`));
    const store = new RedisBanStore({ redis, prefix: banPrefix });
    expect(await store.addFailure('10.0.0.1', 100)).toBe(1);
    expect(await store.addFailure('10.0.0.1', 100)).toBe(2);
    expect(await store.addFailure('10.0.0.2', 100)).toBe(1);
    await new Promise((r) => setTimeout(r, 150));
    expect(await store.addFailure('10.0.0.1', 100)).toBe(1);
    expect(await store.isBanned('10.0.0.1')).toBe(false);
    await store.ban('10.0.0.1', Date.now() + 60_000);
    await store.ban('10.0.0.1', Date.now() + 1_000);
    expect(await store.isBanned('10.0.0.1')).toBe(true);
    expect(await redis.pttl(`${banPrefix}:b:10.0.0.1`)).toBeGreaterThan(50_000);
    await store.ban('10.0.0.3', Date.now() + 80);
    expect(await store.isBanned('10.0.0.3')).toBe(true);
    await new Promise((r) => setTimeout(r, 150));
    expect(await store.isBanned('10.0.0.3')).toBe(false);
  });

  it('a failure whose reply is lost, and that ioredis sends again after reconnecting, counts once', async () => {
    const banPrefix = `ftp-test-ban-${Math.random().toString(36).slice(2)}`;
    cleanups.push(() => deletePattern(redis, `${banPrefix}:*`));
    const proxy = await startProxy();
    cleanups.push(() => proxy.close());
    const store = new RedisBanStore({ redis: { host: '127.0.0.1', port: proxy.port }, prefix: banPrefix });
    cleanups.push(() => store.close());
    // The script is in Redis's cache from then on: the reply lost is the failure's, not a NOSCRIPT.
    expect(await store.addFailure('10.0.0.9', 60_000)).toBe(1);
    await store.client.ping();
    proxy.dropNextReply();
    expect(await store.addFailure('10.0.0.9', 60_000)).toBe(2);
    expect(proxy.tampered).toBe(1);
    expect(await redis.zcard(`${banPrefix}:f:10.0.0.9`)).toBe(2);
  });
});

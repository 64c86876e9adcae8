import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { deterministicBytes, readAll, writeAll } from '@ftp/vfs-conformance';
import { fileSizeOf } from '@ftp/vfs';
import { countKeys, deleteFilesystem, RedisProvider } from '../src/index.js';
import { RENEW_LEASE } from '../src/scripts.js';
import type { RedisProviderOptions } from '../src/index.js';
import { commandsDuring } from './monitor.js';
import { partly, testPrefix, testRedis } from './redis.js';

const redis = await testRedis();
// A full garbage collection on demand, for the readers dropped without being closed.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const used: string[] = [];
const KiB = 1024;

/** A provider over a fresh prefix (16 KiB chunks unless told), its keys deleted after the test. */
function fresh(options: Partial<RedisProviderOptions> = {}): RedisProvider {
  const prefix = testPrefix('lease');
  used.push(prefix);
  return new RedisProvider({ redis, prefix, chunkSize: 16 * KiB, ...options });
}

afterEach(async () => {
  for (const p of used.splice(0)) await deleteFilesystem(redis, p, { removeIdCounter: true });
});
afterAll(async () => {
  await redis.quit();
});

/** The Redis clock, ms (what lease expiries are written in). */
async function redisNow(): Promise<number> {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

/** Waits (2 s at most) for a key to be gone: what a release sent when a stream ended does, one round-trip later. */
async function goneSoon(key: string): Promise<void> {
  await vi.waitFor(async () => expect(await redis.exists(key)).toBe(0), { timeout: 2000, interval: 10 });
}

/** The three ways a file's version is dropped: DELE, a replacing upload's commit, a rename over it. */
const drops: Record<string, (p: RedisProvider) => Promise<void>> = {
  unlink: (p) => p.unlink('/f'),
  'replacing upload': (p) => writeAll(p, '/f', 'new version'),
  'rename over': async (p) => {
    await writeAll(p, '/other', 'other file');
    await p.rename('/other', '/f');
  },
};

describe('reader leases: content nobody reads leaves Redis at once', () => {
  for (const [name, drop] of Object.entries(drops)) {
    it(`${name} of a file with no reader deletes its content now, not when a grace period ends`, async () => {
      const p = fresh();
      await writeAll(p, '/f', deterministicBytes(100 * KiB, 1));
      const ino = (await p.stat('/f')).ino;
      expect(Number(await redis.memory('USAGE', p.keys.content(ino)))).toBeGreaterThan(100 * KiB);
      await drop(p);
      expect(await redis.exists(p.keys.content(ino))).toBe(0);
      expect(await redis.memory('USAGE', p.keys.content(ino))).toBeNull();
      expect(await countKeys(redis, p.keys.prefix, 'r:*')).toBe(0);
    });
  }
});

describe('reader leases: a download in progress keeps its version', () => {
  for (const [name, drop] of Object.entries(drops)) {
    it(`${name} during a download: the content stays for the grace period, the download completes, then it goes`, async () => {
      const p = fresh({ gracePeriodMs: 60_000 });
      const data = deterministicBytes(200 * KiB, 2);
      await writeAll(p, '/f', data);
      const ino = (await p.stat('/f')).ino;
      const reader = await partly(p, '/f');
      await drop(p);
      const ttl = await redis.pttl(p.keys.content(ino));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60_000);
      expect((await reader.rest()).equals(data)).toBe(true);
      // The last reader gone, the content goes now rather than in a minute.
      await goneSoon(p.keys.content(ino));
      await goneSoon(p.keys.readers(ino));
    });
  }

  it('with two readers, the content stays until the second one ends', async () => {
    const p = fresh();
    const data = deterministicBytes(100 * KiB, 3);
    await writeAll(p, '/f', data);
    const ino = (await p.stat('/f')).ino;
    const a = await partly(p, '/f');
    const b = await partly(p, '/f');
    await p.unlink('/f');
    expect((await a.rest()).equals(data)).toBe(true);
    await vi.waitFor(async () => expect(await redis.zcard(p.keys.readers(ino))).toBe(1), { timeout: 2000, interval: 10 });
    expect(await redis.pttl(p.keys.content(ino))).toBeGreaterThan(0);
    expect((await b.rest()).equals(data)).toBe(true);
    await goneSoon(p.keys.content(ino));
    await goneSoon(p.keys.readers(ino));
  });

  it('a download destroyed midway releases its lease: the content of its deleted file goes', async () => {
    const p = fresh();
    await writeAll(p, '/f', deterministicBytes(100 * KiB, 4));
    await writeAll(p, '/g', deterministicBytes(100 * KiB, 5));
    const [f, g] = [(await p.stat('/f')).ino, (await p.stat('/g')).ino];
    // Destroyed before the delete: the delete finds no reader.
    const early = await partly(p, '/f');
    early.stream.destroy();
    await once(early.stream, 'close');
    await goneSoon(p.keys.readers(f));
    await p.unlink('/f');
    expect(await redis.exists(p.keys.content(f))).toBe(0);
    // Destroyed after it (with an error, as the server does on ABOR): the release deletes the content.
    const late = await partly(p, '/g');
    await p.unlink('/g');
    expect(await redis.exists(p.keys.content(g))).toBe(1);
    late.stream.on('error', () => undefined);
    late.stream.destroy(new Error('aborted'));
    await goneSoon(p.keys.content(g));
  });
});

describe('reader leases: dead readers, renewal, no grace period', () => {
  it('the lease of a dead process (expired member, or expired key) does not keep content', async () => {
    const p = fresh();
    await writeAll(p, '/f', 'read by a process that died');
    await writeAll(p, '/g', 'read by another one that died');
    const [f, g] = [(await p.stat('/f')).ino, (await p.stat('/g')).ino];
    const now = await redisNow();
    // A member whose expiry is past, in a key that has not expired yet.
    await redis.zadd(p.keys.readers(f), now - 1000, 'dead.1');
    await redis.pexpire(p.keys.readers(f), 60_000);
    await p.unlink('/f');
    expect(await redis.exists(p.keys.content(f))).toBe(0);
    expect(await redis.exists(p.keys.readers(f))).toBe(0);
    // A key that expired by itself.
    await redis.zadd(p.keys.readers(g), now + 100, 'dead.2');
    await redis.pexpire(p.keys.readers(g), 100);
    await new Promise((r) => setTimeout(r, 250));
    await p.unlink('/g');
    expect(await redis.exists(p.keys.content(g))).toBe(0);
  });

  it('renewal keeps the lease of a slow download alive past the lease length', async () => {
    // Renewed every 150 ms: a pause of the test process shorter than 450 ms (GC, a loaded machine) keeps it.
    const p = fresh({ readerLeaseMs: 600 });
    const data = deterministicBytes(200 * KiB, 6);
    await writeAll(p, '/f', data);
    const ino = (await p.stat('/f')).ino;
    const reader = await partly(p, '/f');
    const key = p.keys.readers(ino);
    const [member, firstExpiry] = await redis.zrange(key, 0, -1, 'WITHSCORES');
    // The key outlives its latest lease by a little, never by much.
    expect(await redis.pttl(key)).toBeGreaterThan(600);
    expect(await redis.pttl(key)).toBeLessThanOrEqual(1600);
    // Over two lease lengths without reading a byte.
    await new Promise((r) => setTimeout(r, 1500));
    const expiry = await redis.zscore(key, member!);
    expect(Number(expiry)).toBeGreaterThan(Number(firstExpiry) + 900);
    await p.unlink('/f');
    expect(await redis.pttl(p.keys.content(ino))).toBeGreaterThan(0);
    expect((await reader.rest()).equals(data)).toBe(true);
    await goneSoon(p.keys.content(ino));
  });

  it('gracePeriodMs: 0 deletes content at once whatever its readers (which fail with EIO) and takes no lease', async () => {
    const p = fresh({ gracePeriodMs: 0 });
    await writeAll(p, '/f', deterministicBytes(200 * KiB, 7));
    const ino = (await p.stat('/f')).ino;
    const reader = await partly(p, '/f');
    expect(await countKeys(redis, p.keys.prefix, 'r:*')).toBe(0);
    await p.unlink('/f');
    expect(await redis.exists(p.keys.content(ino))).toBe(0);
    await expect(reader.rest()).rejects.toMatchObject({ code: 'EIO' });
  });

  it('a release or renewal that fails (Redis gone) is neither thrown into the stream nor unhandled', async () => {
    const client = redis.duplicate();
    const prefix = testPrefix('lease');
    used.push(prefix);
    const p = new RedisProvider({ redis: client, prefix, chunkSize: 16 * KiB, readerLeaseMs: 60 });
    await writeAll(p, '/f', deterministicBytes(100 * KiB, 8));
    const reader = await partly(p, '/f');
    const errors: Error[] = [];
    reader.stream.on('error', (err: Error) => errors.push(err));
    client.disconnect();
    await new Promise((r) => setTimeout(r, 100)); // renewals every 20 ms, all failing
    reader.stream.destroy();
    await once(reader.stream, 'close');
    await new Promise((r) => setTimeout(r, 50));
    expect(errors).toEqual([]);
  });
});

describe('reader leases: cost', () => {
  it('a download costs the open (with its lease) and the release, plus one HGET per chunk: no renewal while fast', async () => {
    const p = fresh({ chunkSize: 4 * KiB });
    const data = deterministicBytes(64 * 4 * KiB, 9);
    await writeAll(p, '/f', data);
    const ino = (await p.stat('/f')).ino;
    const cmds = await commandsDuring(redis, p.keys.prefix, async () => {
      expect((await readAll(p, '/f')).equals(data)).toBe(true);
      await goneSoon(p.keys.readers(ino));
    });
    // Round-trips: OPEN_READ (the path resolved and the lease taken), 64 chunk reads, RELEASE_LEASE.
    expect(cmds.filter((c) => /^evalsha$/i.test(c[0] ?? ''))).toHaveLength(2);
    expect(cmds.filter((c) => /^hget$/i.test(c[0] ?? '') && c[1] === p.keys.content(ino))).toHaveLength(64);
  });
});

describe('reader leases: file handles and the APPE/REST copy', () => {
  it('a read-only handle holds a lease until close(), which deletes the content of its deleted file', async () => {
    const p = fresh();
    const data = deterministicBytes(100 * KiB, 10);
    await writeAll(p, '/f', data);
    const ino = (await p.stat('/f')).ino;
    const h = await p.open('/f', 'r');
    const buf = Buffer.alloc(data.length);
    await h.read(buf, 0, 10 * KiB, 0);
    await p.unlink('/f');
    expect(await redis.pttl(p.keys.content(ino))).toBeGreaterThan(0);
    const { bytesRead } = await h.read(buf, 10 * KiB, data.length - 10 * KiB, 10 * KiB);
    expect(bytesRead).toBe(data.length - 10 * KiB);
    expect(buf.equals(data)).toBe(true);
    await h.close();
    expect(await redis.exists(p.keys.content(ino))).toBe(0);
    expect(await redis.exists(p.keys.readers(ino))).toBe(0);
  });

  it('a read-only handle never closed, or a download never ended, gives its lease back once garbage-collected', async () => {
    const p = fresh();
    await writeAll(p, '/f', deterministicBytes(100 * KiB, 12));
    const ino = (await p.stat('/f')).ino;
    // Opened and used, then dropped: nothing refers to them once this function returns.
    await (async () => {
      const h = await p.open('/f', 'r');
      await h.read(Buffer.alloc(10), 0, 10, 0);
      await partly(p, '/f');
    })();
    expect(await redis.zcard(p.keys.readers(ino))).toBe(2);
    await vi.waitFor(
      async () => {
        gc();
        await new Promise((r) => setImmediate(r));
        expect(await redis.exists(p.keys.readers(ino))).toBe(0);
      },
      { timeout: 5000, interval: 50 },
    );
    // With no lease left, the delete takes the content at once.
    await p.unlink('/f');
    expect(await redis.exists(p.keys.content(ino))).toBe(0);
  });

  it('an APPE or REST+STOR whose file is deleted or replaced before its copy fails with EBUSY; the old content goes at once', async () => {
    const p = fresh({ chunkSize: 4 * KiB });
    const data = deterministicBytes(600 * 4 * KiB + 1000, 11);
    for (const [options, change] of [
      [{ append: true }, () => p.unlink('/f')],
      [{ start: 300 * 4 * KiB + 10 }, () => p.rename('/g', '/f')],
    ] as const) {
      await writeAll(p, '/f', data);
      await writeAll(p, '/g', 'replaced');
      const ino = (await p.stat('/f')).ino;
      // The stream copies the kept part after it is returned: the change reaches Redis first.
      const ws = await p.createWriteStream('/f', options);
      const failed = once(ws, 'error');
      await change();
      // The copy holds no lease (its upload could not commit over another version anyway).
      expect(await redis.exists(p.keys.content(ino))).toBe(0);
      ws.on('error', () => undefined);
      ws.end(Buffer.from('more'));
      const [err] = (await failed) as [NodeJS.ErrnoException];
      expect(err.code).toBe('EBUSY');
      // Nothing of the failed upload is left: the only content is /g's ('replaced', renamed to /f the second time).
      await vi.waitFor(async () => expect(await countKeys(redis, p.keys.prefix, 'c:*')).toBe(1), { timeout: 2000 });
    }
  });
});

async function bytesOf(stream: Readable): Promise<number> {
  let n = 0;
  for await (const c of stream) n += (c as Buffer).length;
  return n;
}

describe('reader leases: edges', () => {
  it('a renewal answered after the download ended does not bring its lease back', async () => {
    const p = fresh({ readerLeaseMs: 400 }); // renewed every 100 ms
    await writeAll(p, '/f', deterministicBytes(100 * KiB, 9));
    const ino = (await p.stat('/f')).ino;
    const reader = await partly(p, '/f');
    // Renewals reach Redis 300 ms late from now on (a slow link, a retry after NOSCRIPT when a failover emptied the
    // script cache), so one is on its way when the download ends.
    const evalsha = redis.evalsha.bind(redis) as (...a: unknown[]) => Promise<unknown>;
    const sent = new Promise<void>((resolve) => {
      vi.spyOn(redis, 'evalsha').mockImplementation(((...a: unknown[]) => {
        if (a[0] !== RENEW_LEASE.sha) return evalsha(...a);
        resolve();
        return new Promise((r) => setTimeout(r, 300)).then(() => evalsha(...a));
      }) as never);
    });
    await sent;
    reader.stream.destroy();
    await new Promise((r) => setTimeout(r, 600));
    vi.restoreAllMocks();
    expect(await redis.zcard(p.keys.readers(ino))).toBe(0);
    await p.unlink('/f');
    expect(await redis.exists(p.keys.content(ino))).toBe(0);
  });

  it('an empty file is read without a lease; a download tells its size', async () => {
    const p = fresh();
    await writeAll(p, '/empty', '');
    await writeAll(p, '/f', deterministicBytes(40 * KiB, 3));
    const empty = await p.createReadStream('/empty');
    expect(await countKeys(redis, p.keys.prefix, 'r:*')).toBe(0);
    expect(fileSizeOf(empty)).toBe(0);
    expect(await bytesOf(empty)).toBe(0);
    const some = await p.createReadStream('/f', { start: 1000 });
    expect(fileSizeOf(some)).toBe(40 * KiB);
    expect(await bytesOf(some)).toBe(40 * KiB - 1000);
  });

  it('refuses a lease too long for its renewal timer', () => {
    expect(() => fresh({ readerLeaseMs: 2 ** 33 })).toThrow(RangeError);
  });
});

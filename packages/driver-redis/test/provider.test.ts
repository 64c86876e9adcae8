import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { deterministicBytes, readAll, writeAll, writeChunk, endStream } from '@ftp/vfs-conformance';
import { openWriteStream } from '@ftp/vfs';
import type { UploadStream } from '@ftp/vfs';
import { countKeys, deleteFilesystem, RedisProvider } from '../src/index.js';
import type { RedisProviderOptions } from '../src/index.js';
import type { RedisOptions } from 'ioredis';
import { getChunk, putChunk } from '../src/content.js';
import * as scripts from '../src/scripts.js';
import { commandsDuring } from './monitor.js';
import { startProxy, type RedisProxy } from './proxy.js';
import { testPrefix, testRedis } from './redis.js';

const redis = await testRedis();
const used: string[] = [];
const KiB = 1024;

/** A provider over a fresh prefix; its keys are deleted after the test. */
function fresh(options: Partial<RedisProviderOptions> = {}): RedisProvider {
  const prefix = testPrefix('prov');
  used.push(prefix);
  return new RedisProvider({ redis, prefix, ...options });
}

afterEach(async () => {
  for (const p of used.splice(0)) await deleteFilesystem(redis, p, { removeIdCounter: true });
});
afterAll(async () => {
  await redis.quit();
});

describe('RedisProvider: Redis that lost its data', () => {
  it('makes an empty filesystem again (a restart without persistence, FLUSHDB), instead of a root of one field', async () => {
    // The bug: the first write after the loss made the root a hash of its time alone; the root then listed as a file
    // named '/', uploads answered OK but never showed in a listing, and a restart of the server did not repair it.
    const p = fresh();
    await writeAll(p, '/a.bin', deterministicBytes(1000, 1));
    await p.mkdir('/d');
    await deleteFilesystem(redis, p.keys.prefix, { removeIdCounter: true });
    await writeAll(p, '/b.bin', deterministicBytes(500, 2));
    expect((await p.stat('/')).isDirectory()).toBe(true);
    await p.mkdir('/d1');
    expect((await p.list('/')).map((e) => e.name).sort()).toEqual(['b.bin', 'd1']);
    expect((await p.stat('/d1')).isDirectory()).toBe(true);
    expect((await readAll(p, '/b.bin')).equals(deterministicBytes(500, 2))).toBe(true);
  });

  it('repairs a root an older driver left without its type', async () => {
    const p = fresh();
    await p.mkdir('/kept');
    await redis.hdel(`${p.keys.tag}:i:0`, 't', 'o', 'b', 'cs');
    expect((await p.stat('/')).isDirectory()).toBe(true);
    expect((await p.list('/')).map((e) => e.name)).toEqual(['kept']);
    // A new provider (a server restarted) finds it whole too.
    const again = new RedisProvider({ redis, prefix: p.keys.prefix });
    expect((await again.stat('/')).isDirectory()).toBe(true);
  });
});

describe('RedisProvider: data model', () => {
  it("stores content at about its size in Redis memory: default chunks fit jemalloc's 256 KiB size class", async () => {
    const p = fresh();
    const size = 8 * 1024 * KiB;
    await writeAll(p, '/f', deterministicBytes(size, 1));
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${p.keys.tag}:c:*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    expect(keys).toHaveLength(1);
    const usage = Number(await redis.memory('USAGE', keys[0]!, 'SAMPLES', '0'));
    // 256 KiB chunks took 1.25 times the bytes (jemalloc's 320 KiB class); a hash's own overhead is well under 5 %.
    expect(usage / size).toBeLessThan(1.05);
    expect((await readAll(p, '/f')).equals(deterministicBytes(size, 1))).toBe(true);
  });

  it('renames a directory of 3,000 entries with the same few commands as one of 1 entry (O(1))', async () => {
    const p = fresh();
    await p.mkdir('/big');
    await p.mkdir('/small');
    // 3,000 entries, created 100 at a time.
    for (let i = 0; i < 3000; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => p.mkdir(`/big/e${i + j}`)));
    await p.mkdir('/small/only');
    const prefix = p.keys.prefix;
    const big = await commandsDuring(redis, prefix, () => p.rename('/big', '/big2'));
    const small = await commandsDuring(redis, prefix, () => p.rename('/small', '/small2'));
    const verbs = (cmds: string[][]): string[] => cmds.map((c) => (c[0] ?? '').toUpperCase());
    expect(verbs(big)).toEqual(verbs(small));
    expect(big.length).toBeLessThan(25);
    expect(verbs(big).filter((v) => v === 'EVALSHA' || v === 'EVAL')).toHaveLength(1);
    expect((await p.readdir('/big2')).length).toBe(3000);
    expect((await p.stat('/big2/e2999')).isDirectory()).toBe(true);
    await expect(p.stat('/big')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('resolves a deep path and lists a directory with stats in one script call each', async () => {
    const p = fresh();
    await p.mkdir('/a/b/c/d/e/f', { recursive: true });
    for (let i = 0; i < 20; i++) await writeAll(p, `/a/b/c/d/e/f/file${i}`, `content ${i}`);
    const prefix = p.keys.prefix;
    const statCmds = await commandsDuring(redis, prefix, async () => {
      expect((await p.stat('/a/b/c/d/e/f/file7')).size).toBe(9);
    });
    expect(statCmds.filter((c) => /^eval/i.test(c[0] ?? ''))).toHaveLength(1);
    const listCmds = await commandsDuring(redis, prefix, async () => {
      expect((await p.list('/a/b/c/d/e/f')).length).toBe(20);
    });
    expect(listCmds.filter((c) => /^eval/i.test(c[0] ?? ''))).toHaveLength(1);
    expect(listCmds.filter((c) => !/^eval/i.test(c[0] ?? '') && c[0] !== undefined).every((c) => /^(hget|hmget|hgetall|exists)$/i.test(c[0] as string))).toBe(true);
  });

  it('follows links on the way (one more script call per link) and stops link loops with ELOOP', async () => {
    const p = fresh();
    await p.mkdir('/real/sub', { recursive: true });
    await writeAll(p, '/real/sub/f', 'via links');
    await p.symlink('/real', '/l1');
    await p.symlink('l1/sub', '/l2');
    const cmds = await commandsDuring(redis, p.keys.prefix, async () => {
      expect((await readAll(p, '/l2/f')).toString()).toBe('via links');
    });
    // Two links: three resolutions (the open, which registers the reader's lease), one HGET of the content, then the
    // lease's release.
    expect(cmds.filter((c) => /^eval/i.test(c[0] ?? ''))).toHaveLength(4);
    await p.symlink('/loop-b', '/loop-a');
    await p.symlink('/loop-a', '/loop-b');
    await expect(p.stat('/loop-a/x')).rejects.toMatchObject({ code: 'ELOOP' });
    await expect(p.stat('/loop-a')).rejects.toMatchObject({ code: 'ELOOP' });
    expect((await p.lstat('/loop-a')).isSymbolicLink()).toBe(true);
  });

  it('keeps the chunk size a filesystem was created with', async () => {
    const a = fresh({ chunkSize: 1000 });
    await writeAll(a, '/f', deterministicBytes(5500, 3));
    const b = new RedisProvider({ redis, prefix: a.keys.prefix, chunkSize: 4096 });
    expect((await readAll(b, '/f')).equals(deterministicBytes(5500, 3))).toBe(true);
    expect(await redis.hlen(a.keys.content((await a.stat('/f')).ino))).toBe(6);
  });
});

describe('RedisProvider: atomic visibility', () => {
  it('a reader during an upload sees the old file whole, then the new one whole', async () => {
    const p = fresh({ chunkSize: 64 * KiB });
    const oldData = deterministicBytes(300 * KiB, 1);
    const newData = deterministicBytes(700 * KiB, 2);
    await writeAll(p, '/f', oldData);
    const ws = await openWriteStream(p, '/f');
    for (let off = 0; off < newData.length; off += 50 * KiB) {
      await writeChunk(ws, newData.subarray(off, off + 50 * KiB));
      const seen = await readAll(p, '/f');
      expect(seen.equals(oldData)).toBe(true);
      expect((await p.stat('/f')).size).toBe(oldData.length);
    }
    await endStream(ws);
    expect((await readAll(p, '/f')).equals(newData)).toBe(true);
  });

  it('a download that started before the file was replaced reads the old version whole (grace period)', async () => {
    const p = fresh({ chunkSize: 16 * KiB });
    const oldData = deterministicBytes(200 * KiB, 3);
    await writeAll(p, '/f', oldData);
    const rs = await p.createReadStream('/f');
    const it = rs[Symbol.asyncIterator]();
    const first = (await it.next()).value as Buffer;
    await writeAll(p, '/f', deterministicBytes(300 * KiB, 4));
    await p.unlink('/f');
    const parts: Buffer[] = [first];
    for (let r = await it.next(); r.done !== true; r = await it.next()) parts.push(r.value as Buffer);
    expect(Buffer.concat(parts).equals(oldData)).toBe(true);
  });

  it('without a grace period such a download fails cleanly with EIO instead of mixing versions', async () => {
    const p = fresh({ chunkSize: 16 * KiB, gracePeriodMs: 0 });
    await writeAll(p, '/f', deterministicBytes(200 * KiB, 5));
    const rs = await p.createReadStream('/f');
    const it = rs[Symbol.asyncIterator]();
    await it.next();
    await writeAll(p, '/f', deterministicBytes(200 * KiB, 6));
    await expect((async () => {
      for (let r = await it.next(); r.done !== true; r = await it.next()) void r;
    })()).rejects.toMatchObject({ code: 'EIO' });
    // The content of the replaced version is gone at once.
    expect(await countKeys(redis, p.keys.prefix, 'c:*')).toBe(1);
  });

  it('replaced versions that a download reads keep their content only for the grace period (a TTL)', async () => {
    const p = fresh({ gracePeriodMs: 60_000, chunkSize: 4 * KiB });
    await writeAll(p, '/f', deterministicBytes(20 * KiB, 1));
    const ino = (await p.stat('/f')).ino;
    const rs = await p.createReadStream('/f');
    await rs[Symbol.asyncIterator]().next();
    await writeAll(p, '/f', 'two');
    const ttl = await redis.pttl(p.keys.content(ino));
    rs.destroy();
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(await redis.exists(p.keys.inode(ino))).toBe(0);
    expect(await redis.pttl(p.keys.content((await p.stat('/f')).ino))).toBe(-1);
  });
});

describe('RedisProvider: concurrent and interrupted uploads', () => {
  it('four interleaved uploads to one path end as exactly one of them, with no content left of the others', async () => {
    const p = fresh({ chunkSize: 32 * KiB, gracePeriodMs: 0 });
    const versions = [1, 2, 3, 4].map((i) => deterministicBytes(100 * KiB + i * 37 * KiB, 10 + i));
    const streams = await Promise.all(versions.map(() => openWriteStream(p, '/same')));
    for (let off = 0; off < 300 * KiB; off += 8 * KiB) {
      await Promise.all(versions.map((v, i) => (off < v.length ? writeChunk(streams[i] as UploadStream, v.subarray(off, off + 8 * KiB)) : undefined)));
    }
    await Promise.all(streams.map((s) => endStream(s)));
    const result = await readAll(p, '/same');
    expect(versions.filter((v) => v.equals(result))).toHaveLength(1);
    expect(await countKeys(redis, p.keys.prefix, 'c:*')).toBe(1);
  });

  it('an interrupted upload (transferError, destroy) leaves no key behind and the old file intact', async () => {
    const p = fresh({ chunkSize: 16 * KiB });
    await writeAll(p, '/f', 'the old content');
    const before = await countKeys(redis, p.keys.prefix);
    for (const options of [{}, { append: true }, { start: 4 }]) {
      const ws = await p.createWriteStream('/f', options);
      for (let i = 0; i < 10; i++) await writeChunk(ws, deterministicBytes(10 * KiB, i));
      // While it is written, the upload's content exists with a TTL.
      const pending = (await redis.keys(`{${p.keys.prefix}}:c:*`)).map((k) => redis.pttl(k));
      expect((await Promise.all(pending)).some((t) => t > 0)).toBe(true);
      const closed = new Promise((resolve) => ws.once('close', resolve));
      ws.on('error', () => undefined); // The destroy error itself is expected.
      ws.transferError?.(new Error('connection reset'));
      ws.destroy(new Error('connection reset'));
      await closed;
      expect(await countKeys(redis, p.keys.prefix)).toBe(before);
      expect((await readAll(p, '/f')).toString()).toBe('the old content');
    }
  });

  it('a destroy() racing the commit never leaves a visible file without its content', async () => {
    const p = fresh({ chunkSize: 16 * KiB, gracePeriodMs: 0 });
    const oldData = deterministicBytes(40 * KiB, 1);
    const newData = deterministicBytes(50 * KiB, 2);
    await writeAll(p, '/f', oldData);
    for (let i = 0; i < 30; i++) {
      const ws = await p.createWriteStream('/f');
      ws.on('error', () => undefined);
      await writeChunk(ws, newData);
      const closed = new Promise((resolve) => ws.once('close', resolve));
      ws.end();
      // Destroy at a different moment of the end each round: before, during or after the commit.
      await new Promise((r) => setTimeout(r, i % 6));
      ws.destroy();
      await closed;
      const seen = await readAll(p, '/f');
      expect(seen.equals(oldData) || seen.equals(newData)).toBe(true);
      await writeAll(p, '/f', oldData);
    }
    expect(await countKeys(redis, p.keys.prefix, 'c:*')).toBe(1);
  });

  it('an upload told of a transfer error is not committed even if it is ended instead of destroyed', async () => {
    const p = fresh();
    await writeAll(p, '/f', 'old');
    const ws = await p.createWriteStream('/f');
    await writeChunk(ws, Buffer.from('partial new'));
    ws.transferError?.(new Error('data connection lost'));
    const failed = once(ws, 'error');
    ws.end();
    await failed;
    expect((await readAll(p, '/f')).toString()).toBe('old');
    await new Promise((r) => setTimeout(r, 20));
    expect(await countKeys(redis, p.keys.prefix, 'c:*')).toBe(1);
  });

  it('an upload whose content expired while it stalled fails with EIO and changes nothing', async () => {
    const p = fresh({ chunkSize: 4 * KiB, uploadTtlMs: 50 });
    await writeAll(p, '/f', 'old');
    const ws = await p.createWriteStream('/f');
    await writeChunk(ws, deterministicBytes(10 * KiB, 1));
    await new Promise((r) => setTimeout(r, 150));
    ws.end(deterministicBytes(100, 2));
    const [err] = (await once(ws, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('EIO');
    expect((await readAll(p, '/f')).toString()).toBe('old');
    expect(await countKeys(redis, p.keys.prefix, 'c:*')).toBe(1);
  });

  it('a slow upload keeps its content alive although no chunk fills for longer than the TTL', async () => {
    const p = fresh({ chunkSize: 64 * KiB, uploadTtlMs: 300 });
    const ws = await p.createWriteStream('/slow');
    const data: Buffer[] = [deterministicBytes(64 * KiB, 1)];
    await writeChunk(ws, data[0] as Buffer);
    // 12 small writes over ~720 ms: more than twice the TTL without a chunk sent.
    for (let i = 0; i < 12; i++) {
      await new Promise((r) => setTimeout(r, 60));
      const piece = deterministicBytes(100, 100 + i);
      data.push(piece);
      await writeChunk(ws, piece);
    }
    await endStream(ws);
    expect((await readAll(p, '/slow')).equals(Buffer.concat(data))).toBe(true);
  });

  it('a slow upload keeps its content alive with the wall clock set back an hour meanwhile', async () => {
    // The refresh was timed on the wall clock: set back, it stopped for as long as the step, and the content expired.
    const p = fresh({ chunkSize: 64 * KiB, uploadTtlMs: 300 });
    const ws = await p.createWriteStream('/slow');
    const data: Buffer[] = [deterministicBytes(64 * KiB, 1)];
    await writeChunk(ws, data[0] as Buffer);
    const real = Date.now.bind(Date);
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => real() - 3_600_000);
    try {
      for (let i = 0; i < 12; i++) {
        await new Promise((r) => setTimeout(r, 60));
        const piece = deterministicBytes(100, 200 + i);
        data.push(piece);
        await writeChunk(ws, piece);
      }
    } finally {
      clock.mockRestore();
    }
    await endStream(ws);
    expect((await readAll(p, '/slow')).equals(Buffer.concat(data))).toBe(true);
  });

  it('APPE copies the kept chunks inside Redis in short batches, never through the client', async () => {
    const p = fresh({ chunkSize: 4 * KiB });
    const data = deterministicBytes(1100 * 4 * KiB + 1000, 8); // 1,100 full chunks and a partial one
    await writeAll(p, '/f', data);
    let ws: UploadStream | undefined;
    let atOpen: number | undefined;
    const stored: number[] = [];
    const watch = setInterval(() => ws && stored.push(ws.storedBytes ?? -1), 1);
    const cmds = await commandsDuring(redis, p.keys.prefix, async () => {
      ws = await p.createWriteStream('/f', { append: true });
      // Opened in one round-trip (PREPARE): the stream copies before it takes its first write.
      atOpen = ws.storedBytes;
      const opened = ws;
      await new Promise<void>((resolve, reject) => opened.write(Buffer.from('appended'), (err) => (err ? reject(err) : resolve())));
    });
    clearInterval(watch);
    expect(atOpen).toBe(0);
    const evals = cmds.filter((c) => /^evalsha$/i.test(c[0] ?? ''));
    // PREPARE, then 1,100 full chunks copied 512 (2 MiB) per call; the partial chunk is read once to be continued.
    expect(evals).toHaveLength(1 + Math.ceil(1100 / 512));
    expect(cmds.filter((c) => /^hget$/i.test(c[0] ?? '') && c[2] === '1100')).not.toHaveLength(0);
    // What the server's stall check reads grows as the copy goes, to the whole file once written.
    expect(stored.every((n, i) => n >= 0 && (i === 0 || n >= stored[i - 1]!))).toBe(true);
    expect(ws!.storedBytes).toBe(data.length + 'appended'.length);
    await endStream(ws as UploadStream);
    expect((await readAll(p, '/f')).equals(Buffer.concat([data, Buffer.from('appended')]))).toBe(true);
  });

  it('REST past the end of a file leaves a hole of zeros; APPE keeps the old bytes', async () => {
    const p = fresh({ chunkSize: 4 * KiB });
    await writeAll(p, '/f', 'abc');
    await writeAll(p, '/f', 'XY', { start: 10_000 });
    const back = await readAll(p, '/f');
    expect(back.length).toBe(10_002);
    expect(back.subarray(0, 3).toString()).toBe('abc');
    expect(back.subarray(3, 10_000).every((b) => b === 0)).toBe(true);
    await writeAll(p, '/f', 'Z', { append: true });
    expect((await readAll(p, '/f', { start: 9_999 })).toString()).toBe('\0XYZ');
  });
});

describe('RedisProvider: a reply lost or late (the connection drops, a command times out)', () => {
  /**
   * A provider whose connection goes through `proxy`, every script already in Redis's cache: a reply the proxy loses
   * or delays is then the reply of the very call made next, never a NOSCRIPT answered before the script runs.
   */
  async function proxied(proxy: RedisProxy, options: Partial<RedisProviderOptions> = {}, connection: RedisOptions = {}): Promise<RedisProvider> {
    for (const s of Object.values(scripts)) if (typeof s === 'object' && 'source' in s) await redis.script('LOAD', s.source);
    const prefix = testPrefix('lost');
    used.push(prefix);
    const p = new RedisProvider({ redis: { host: '127.0.0.1', port: proxy.port, ...connection }, prefix, chunkSize: 16 * KiB, ...options });
    await p.stat('/');
    return p;
  }

  /** Writes `data` and waits until Redis has answered every command the upload sent so far. */
  async function stored(p: RedisProvider, ws: NodeJS.WritableStream, data: Buffer): Promise<void> {
    await new Promise<void>((resolve, reject) => ws.write(data, (err) => (err ? reject(err) : resolve())));
    await p.client.ping();
  }

  /** How an upload stream ends: 'finished', or the code of its error. */
  async function ending(ws: NodeJS.WritableStream): Promise<string> {
    return endStream(ws).then(
      () => 'finished',
      (err: NodeJS.ErrnoException) => err.code ?? 'error',
    );
  }

  it('a commit run twice (its reply lost, ioredis sending it again) keeps the upload: STOR and APPE answer OK, the file whole', async () => {
    const proxy = await startProxy();
    const p = await proxied(proxy);
    try {
      await writeAll(p, '/f', 'the old version');
      const first = deterministicBytes(16 * KiB, 1);
      const stor = await p.createWriteStream('/f');
      // One whole chunk, stored by write() itself: end() sends the commit alone.
      await stored(p, stor, first);
      proxy.dropNextReply();
      expect(await ending(stor)).toBe('finished');
      expect((await readAll(p, '/f')).equals(first)).toBe(true);
      const second = deterministicBytes(16 * KiB, 2);
      const appe = await p.createWriteStream('/f', { append: true });
      await stored(p, appe, second);
      proxy.dropNextReply();
      expect(await ending(appe)).toBe('finished');
      expect((await readAll(p, '/f')).equals(Buffer.concat([first, second]))).toBe(true);
      expect(proxy.tampered).toBe(2);
      // Nothing left of the replaced version, nor of the uploads.
      expect(await countKeys(redis, p.keys.prefix, 'c:*')).toBe(1);
    } finally {
      await p.close();
      await proxy.close();
    }
  });

  it('mkdir, symlink, rename, delete and rmdir run twice (reply lost, sent again) answer OK and act once', async () => {
    const proxy = await startProxy();
    const p = await proxied(proxy);
    try {
      await writeAll(p, '/f', 'content');
      const lost = async (op: () => Promise<unknown>): Promise<void> => {
        await p.client.ping();
        proxy.dropNextReply();
        await op();
      };
      await lost(() => p.mkdir('/d'));
      await lost(() => p.symlink('/f', '/d/link'));
      await lost(() => p.rename('/f', '/d/g'));
      expect((await readAll(p, '/d/g')).toString()).toBe('content');
      expect(await p.readlink('/d/link')).toBe('/f');
      await lost(() => p.unlink('/d/link'));
      await lost(() => p.unlink('/d/g'));
      await lost(() => p.rmdir('/d'));
      expect(await p.readdir('/')).toEqual([]);
      expect(proxy.tampered).toBe(6);
    } finally {
      await p.close();
      await proxy.close();
    }
  });

  it('a commit that times out on the client but runs in Redis later: the upload fails, and its discard spares the file it made', async () => {
    const proxy = await startProxy();
    const p = await proxied(proxy, {}, { commandTimeout: 1000 });
    try {
      await writeAll(p, '/f', 'the old version');
      const data = deterministicBytes(16 * KiB, 3);
      const ws = await p.createWriteStream('/f');
      await stored(p, ws, data);
      // Every reply from the commit's on comes after 2.5 s: the commit (1 s) and the discard it sets off (2 s) time out.
      proxy.holdNextReply(2500);
      const outcome = await ending(ws);
      // The held replies relayed: every command sent so far has run.
      await vi.waitFor(() => p.client.ping(), { timeout: 5000, interval: 100 });
      expect((await readAll(p, '/f')).equals(data)).toBe(true);
      expect(outcome).toBe('EIO');
      expect(proxy.tampered).toBe(1);
      expect(await countKeys(redis, p.keys.prefix, 'c:*')).toBe(1);
    } finally {
      await p.close();
      await proxy.close();
    }
  });

  it('a commit that times out but ran is reported done when Redis answers the discard in time (upload stream, writable handle)', async () => {
    const proxy = await startProxy();
    const p = await proxied(proxy, {}, { commandTimeout: 1000 });
    try {
      await writeAll(p, '/f', 'the old version');
      // The commit's reply comes after its timeout (1 s), the discard's before its own.
      const data = deterministicBytes(16 * KiB, 4);
      const ws = await p.createWriteStream('/f');
      await stored(p, ws, data);
      proxy.holdNextReply(1500);
      const outcome = await ending(ws);
      expect((await readAll(p, '/f')).equals(data)).toBe(true);
      expect(outcome).toBe('finished');
      const byHandle = deterministicBytes(20 * KiB, 5);
      const h = await p.open('/f', 'w');
      await h.write(byHandle);
      await p.client.ping();
      proxy.holdNextReply(1500);
      const closed = await h.close().then(
        () => 'closed',
        (err: NodeJS.ErrnoException) => err.code,
      );
      expect((await readAll(p, '/f')).equals(byHandle)).toBe(true);
      expect(closed).toBe('closed');
      expect(proxy.tampered).toBe(2);
      expect(await countKeys(redis, p.keys.prefix, 'c:*')).toBe(1);
    } finally {
      await p.close();
      await proxy.close();
    }
  });
});

describe('RedisProvider: space and errors', () => {
  it('availableSpace follows maxmemory (Infinity when unset)', async () => {
    const p = fresh();
    const [, max] = (await redis.config('GET', 'maxmemory')) as [string, string];
    const space = await p.availableSpace('/');
    if (Number(max) === 0) expect(space).toBe(Infinity);
    else expect(space).toBeLessThanOrEqual(Number(max));
  });

  it('deleteFilesystem removes one filesystem only, even when its prefix has glob characters', async () => {
    const a = fresh();
    const globby = `${a.keys.prefix}*`;
    used.push(globby);
    const b = new RedisProvider({ redis, prefix: globby });
    await writeAll(a, '/kept', 'a');
    await writeAll(b, '/gone', 'b');
    expect(await deleteFilesystem(redis, globby)).toBeGreaterThan(0);
    expect((await readAll(a, '/kept')).toString()).toBe('a');
    await expect(b.stat('/gone')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses prefixes that would break the Cluster hash tag', () => {
    expect(() => new RedisProvider({ redis, prefix: 'a{b}' })).toThrow(TypeError);
  });

  it('a connection it opens from a URL fails fast while Redis is down, and quietly (no ioredis lines on stderr)', async () => {
    const printed = vi.spyOn(console, 'error');
    try {
      const p = new RedisProvider({ redis: 'redis://127.0.0.1:1', prefix: testPrefix('down') });
      expect(p.client.options).toMatchObject({ maxRetriesPerRequest: 1, commandTimeout: 30_000 });
      const t0 = Date.now();
      // Why, not ioredis's "Reached the max retries per request limit".
      await expect(p.stat('/')).rejects.toMatchObject({ code: 'EIO', message: expect.stringContaining('cannot reach Redis: connect ECONNREFUSED 127.0.0.1:1') });
      await expect(p.list('/')).rejects.toMatchObject({ code: 'EIO' });
      // File content goes through plain commands rather than scripts: the same reason.
      const internals = { client: p.client, keys: p.keys, chunkSize: 1024, uploadTtlMs: 1000, gracePeriodMs: 0, leaseMs: 0, maxInFlight: 1 };
      await expect(getChunk(internals, 1, 0)).rejects.toMatchObject({ code: 'EIO', message: expect.stringContaining('cannot reach Redis') });
      await expect(putChunk(internals, 1, 0, Buffer.from('x'))).rejects.toMatchObject({ code: 'EIO', message: expect.stringContaining('cannot reach Redis') });
      expect(Date.now() - t0).toBeLessThan(3000);
      await p.close();
      expect(printed.mock.calls.filter((c) => String(c[0]).includes('[ioredis]'))).toEqual([]);
    } finally {
      printed.mockRestore();
    }
  });

  it('a Redis that accepts and never answers (frozen, partitioned) fails a command at commandTimeout, not never', async () => {
    const silent = createServer((socket) => socket.on('error', () => undefined));
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const { port } = silent.address() as AddressInfo;
    const p = new RedisProvider({ redis: { host: '127.0.0.1', port, commandTimeout: 500 }, prefix: testPrefix('silent') });
    try {
      const t0 = Date.now();
      await expect(p.stat('/')).rejects.toMatchObject({ code: 'EIO' });
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      p.client.disconnect();
      silent.close();
    }
  });

  it('a Redis that cannot be reached fails operations with EIO, not a hang', async () => {
    const p = new RedisProvider({ redis: { host: '127.0.0.1', port: 1, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 }, prefix: testPrefix('down') });
    p.client.on('error', () => undefined);
    await expect(p.stat('/')).rejects.toMatchObject({ code: 'EIO' });
    await p.close();
  });
});

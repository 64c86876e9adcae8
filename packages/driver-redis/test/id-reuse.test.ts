import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { deterministicBytes, readAll, writeAll } from '@ftp/vfs-conformance';
import type { UploadStream } from '@ftp/vfs';
import { deleteFilesystem, RedisProvider } from '../src/index.js';
import type { RedisProviderOptions } from '../src/index.js';
import { deletePattern, partly, testPrefix, testRedis } from './redis.js';

/*
 * Objects of a running server (a download, an upload, a file handle, their lease timers) hold an inode id and act
 * on its keys later. Should that id name another file by then, they must not touch it: these tests remove a
 * filesystem under such objects, create it again and give its new files the ids the old ones had (as a counter
 * starting over would), then let the old objects go on.
 */

const redis = await testRedis();
const used: string[] = [];
const KiB = 1024;
const CHUNK = 16 * KiB;

afterEach(async () => {
  vi.restoreAllMocks();
  for (const p of used.splice(0)) await deleteFilesystem(redis, p, { removeIdCounter: true });
});
afterAll(async () => {
  await redis.quit();
});

/** A new prefix and a provider on it: one server of the filesystem. */
function server(prefix = testPrefix('reuse'), options: Partial<RedisProviderOptions> = {}): RedisProvider {
  if (!used.includes(prefix)) used.push(prefix);
  return new RedisProvider({ redis, prefix, chunkSize: CHUNK, ...options });
}

/** Writes to an upload stream and waits until its callback (the chunks it filled are stored). */
async function written(ws: Writable, data: Buffer): Promise<void> {
  await new Promise<void>((resolve, reject) => ws.write(data, (err) => (err ? reject(err) : resolve())));
}

/** Ends an upload stream and waits for its commit. */
async function finished(ws: Writable): Promise<void> {
  const done = once(ws, 'finish');
  ws.end();
  await done;
}

/** Lets what a stream's end sent (a release, a discard) reach Redis: the same connection answers in order. */
async function settled(): Promise<void> {
  await new Promise((r) => setTimeout(r, 50));
  await redis.ping();
}

/** Wipes every key of a prefix, the id counter included: FLUSHDB, an older deleteFilesystem, a Redis restarted empty. */
async function wipe(prefix: string): Promise<void> {
  await deletePattern(redis, `{${prefix}}:*`);
}

describe('ids of a filesystem deleted and created again are not handed out again', () => {
  it('a download of the deleted filesystem, ended later, leaves the upload in progress of the new one intact', async () => {
    const old = server();
    await writeAll(old, '/f', deterministicBytes(4 * CHUNK, 1));
    const reader = await partly(old, '/f');
    await deleteFilesystem(redis, old.keys.prefix);
    const now = server(old.keys.prefix);
    const data = deterministicBytes(3 * CHUNK, 2);
    const ws = await now.createWriteStream('/new');
    await written(ws, data);
    // The old download ends while the new upload (maybe with the id /f had) is not committed yet.
    reader.stream.destroy();
    await once(reader.stream, 'close');
    await settled();
    await finished(ws);
    expect((await readAll(now, '/new')).equals(data)).toBe(true);
  });

  it('a download of the deleted filesystem fails with EIO rather than go on with the bytes of a new file', async () => {
    const old = server();
    await writeAll(old, '/f', deterministicBytes(4 * CHUNK, 3));
    const reader = await partly(old, '/f');
    await deleteFilesystem(redis, old.keys.prefix);
    const now = server(old.keys.prefix);
    await writeAll(now, '/new', deterministicBytes(4 * CHUNK, 4));
    await expect(reader.rest()).rejects.toMatchObject({ code: 'EIO' });
    expect((await readAll(now, '/new')).equals(deterministicBytes(4 * CHUNK, 4))).toBe(true);
  });

  it('an upload of the deleted filesystem, going on then aborted, neither writes into nor deletes a new file', async () => {
    const old = server();
    const ws = (await old.createWriteStream('/up')) as Writable & UploadStream;
    await written(ws, deterministicBytes(CHUNK, 5));
    await deleteFilesystem(redis, old.keys.prefix);
    const now = server(old.keys.prefix);
    const data = deterministicBytes(2 * CHUNK + 100, 6);
    await writeAll(now, '/new', data);
    // The old upload writes its second chunk, then the client goes away (ABOR): the server discards it.
    await written(ws, deterministicBytes(CHUNK, 7));
    ws.transferError?.(new Error('aborted'));
    ws.destroy();
    await once(ws, 'close');
    await settled();
    expect((await readAll(now, '/new')).equals(data)).toBe(true);
  });

  it('an upload of the deleted filesystem that commits later does not take over a new file', async () => {
    const old = server();
    const ws = await old.createWriteStream('/up');
    await written(ws, deterministicBytes(CHUNK, 8));
    await deleteFilesystem(redis, old.keys.prefix);
    const now = server(old.keys.prefix);
    const data = deterministicBytes(CHUNK + 10, 9);
    await writeAll(now, '/new', data);
    // Its first chunk went with the filesystem: the commit finds it missing (EIO), and must not touch /new.
    ws.on('error', () => undefined);
    await finished(ws).catch(() => undefined);
    await settled();
    expect((await readAll(now, '/new')).equals(data)).toBe(true);
    await expect(now.stat('/up')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('deleteFilesystem keeps the id counter (and says so in its count); removeIdCounter removes it too', async () => {
    const p = server();
    await writeAll(p, '/a', 'a');
    await p.mkdir('/d');
    const seq = `{${p.keys.prefix}}:seq`;
    const last = Number(await redis.get(seq));
    // The root and its entries, /a's inode and content, /d and the record of its mkdir (against a replay of it).
    expect(await deleteFilesystem(redis, p.keys.prefix)).toBe(6);
    expect(await redis.get(seq)).toBe(String(last));
    // Created again: ids go on from there.
    const again = server(p.keys.prefix);
    await writeAll(again, '/b', 'b');
    expect((await again.stat('/b')).ino).toBe(last + 1);
    expect(await deleteFilesystem(redis, p.keys.prefix, { removeIdCounter: true })).toBe(5);
    expect(await redis.exists(seq)).toBe(0);
  });
});

describe('ids whose keys remain are never handed out again, whatever the counter says', () => {
  it('with the counter lost (or set back) while files exist, new files, directories and links get unused ids', async () => {
    const p = server();
    const a = deterministicBytes(2 * CHUNK, 10);
    await writeAll(p, '/a', a);
    await p.mkdir('/d');
    await writeAll(p, '/d/b', 'b');
    const taken = new Set([(await p.stat('/a')).ino, (await p.stat('/d')).ino, (await p.stat('/d/b')).ino]);
    await redis.del(`{${p.keys.prefix}}:seq`);
    await writeAll(p, '/c', 'c');
    await p.mkdir('/e');
    await p.symlink('/a', '/l');
    for (const path of ['/c', '/e', '/l']) expect(taken.has((await p.lstat(path)).ino)).toBe(false);
    expect((await readAll(p, '/a')).equals(a)).toBe(true);
    expect((await readAll(p, '/d/b')).toString()).toBe('b');
    expect((await p.stat('/d')).isDirectory()).toBe(true);
  });
});

describe('passing over ids still in use', () => {
  it('stops after 10,000 in one call (EBUSY: Redis is not held for long), and the next call goes on from there', async () => {
    const p = server();
    await p.mkdir('/d');
    // The counter set back under 10,500 ids that still have keys.
    const seq = `{${p.keys.prefix}}:seq`;
    const last = Number(await redis.get(seq));
    const pipeline = redis.pipeline();
    for (let id = last + 1; id <= last + 10_500; id++) pipeline.hset(p.keys.inode(id), 't', 'f', 's', 0);
    await pipeline.exec();
    await expect(p.mkdir('/d/x')).rejects.toMatchObject({ code: 'EBUSY' });
    await p.mkdir('/d/x');
    expect((await p.stat('/d/x')).ino).toBe(last + 10_501);
  });
});

describe('a lease only ever protects, renews and deletes the content it was taken on', () => {
  it('with every key wiped (counter included), the old download renewing and ending spares the new upload with its id', async () => {
    // Renewed every 50 ms: several renewals happen while the new upload is in progress.
    const old = server(testPrefix('reuse'), { readerLeaseMs: 200 });
    await writeAll(old, '/f', deterministicBytes(4 * CHUNK, 11));
    const ino = (await old.stat('/f')).ino;
    const reader = await partly(old, '/f');
    await wipe(old.keys.prefix);
    const now = server(old.keys.prefix);
    const data = deterministicBytes(3 * CHUNK, 12);
    const ws = await now.createWriteStream('/new');
    await written(ws, data);
    // The counter starting over, the upload has the id of the file being read: the case to guard against.
    expect(await redis.hlen(now.keys.content(ino))).toBe(3);
    await new Promise((r) => setTimeout(r, 200));
    // No renewal brought the old lease back onto the new content.
    expect(await redis.exists(now.keys.readers(ino))).toBe(0);
    reader.stream.destroy();
    await once(reader.stream, 'close');
    await settled();
    await finished(ws);
    expect((await now.stat('/new')).ino).toBe(ino);
    expect((await readAll(now, '/new')).equals(data)).toBe(true);
  });
});

import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { BanStoreTimeoutError, RedisBanStore, RedisProvider } from '../src/index.js';
import { ftpClient, startFtp } from './ftp-helpers.js';
import { deletePattern, testPrefix, testRedis } from './redis.js';

const redis = await testRedis();
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  await redis.quit();
});

function banPrefix(): string {
  const prefix = testPrefix('ban');
  cleanups.push(() => deletePattern(redis, `${prefix}:*`));
  return prefix;
}

/** A "frozen" Redis: accepts connections and reads what it is sent, never answers. */
async function silentServer(): Promise<{ port: number }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as { port: number }).port };
}

async function timed<T>(p: Promise<T>): Promise<{ value: T | Error; ms: number }> {
  const t0 = performance.now();
  const value = await p.catch((err: unknown) => err as Error);
  return { value, ms: performance.now() - t0 };
}

describe('RedisBanStore on a Redis that does not answer', () => {
  it('answers isBanned false within its default deadline, and addFailure / ban give up instead of hanging', { timeout: 15_000 }, async () => {
    const { port } = await silentServer();
    const store = new RedisBanStore({ redis: { host: '127.0.0.1', port }, prefix: banPrefix() });
    cleanups.push(() => store.close());
    const banned = await timed(store.isBanned('192.0.2.1'));
    expect(banned.value).toBe(false);
    expect(banned.ms).toBeGreaterThan(1_300);
    expect(banned.ms).toBeLessThan(3_000);
    const [failure, ban] = await Promise.all([timed(store.addFailure('192.0.2.1', 60_000)), timed(store.ban('192.0.2.1', Date.now() + 60_000))]);
    expect(failure.value).toBeInstanceOf(BanStoreTimeoutError);
    expect(ban.value).toBeInstanceOf(BanStoreTimeoutError);
    expect(Math.max(failure.ms, ban.ms)).toBeLessThan(3_000);
  });

  it('greets and logs in through @ftp/server within the ban store deadline (timeoutMs)', { timeout: 15_000 }, async () => {
    const { port } = await silentServer();
    const store = new RedisBanStore({ redis: { host: '127.0.0.1', port }, prefix: banPrefix(), timeoutMs: 200 });
    cleanups.push(() => store.close());
    const fs = new RedisProvider({ redis: 'redis://127.0.0.1:6379', prefix: testPrefix('ban-fs') });
    cleanups.push(() => fs.close());
    // Loopback is exempt from bans by default (banExempt): the store is asked only without the exemption.
    const ftp = await startFtp(fs, { banExempt: [] }, { banStore: store });
    cleanups.push(() => ftp.server.close());
    const t0 = performance.now();
    const client = await ftpClient(ftp.port);
    client.close();
    // The greeting and PASS each wait for the deadline at most.
    expect(performance.now() - t0).toBeLessThan(2_000);
  });

  it('keeps answering when Redis does', async () => {
    const store = new RedisBanStore({ redis, prefix: banPrefix(), timeoutMs: 1_000 });
    expect(await store.addFailure('192.0.2.2', 60_000)).toBe(1);
    expect(await store.isBanned('192.0.2.2')).toBe(false);
    await store.ban('192.0.2.2', Date.now() + 60_000);
    expect(await store.isBanned('192.0.2.2')).toBe(true);
  });

  it('refuses a deadline that is not a positive number', () => {
    expect(() => new RedisBanStore({ redis, timeoutMs: 0 })).toThrow(RangeError);
    expect(() => new RedisBanStore({ redis, timeoutMs: Number.NaN })).toThrow(RangeError);
  });
});

describe('RedisBanStore with instances whose clocks are off', () => {
  const SKEW = 20 * 60_000;
  const realNow = Date.now.bind(Date);
  function skewed<T>(offset: number, fn: () => T): T {
    const spy = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
    try {
      return fn();
    } finally {
      spy.mockRestore();
    }
  }

  it('a ban by an instance 20 min behind lasts its duration for all; an instance 20 min ahead sees bans', async () => {
    const prefix = banPrefix();
    const a = new RedisBanStore({ redis, prefix });
    const behind = new RedisBanStore({ redis, prefix });
    // As LoginGuard.failure does, by the banning instance's clock: its own now + banDuration.
    await skewed(-SKEW, () => behind.ban('198.51.100.7', Date.now() + 900_000));
    const ttl = await redis.pttl(`${prefix}:b:198.51.100.7`);
    expect(ttl).toBeGreaterThan(890_000);
    expect(ttl).toBeLessThanOrEqual(900_000);
    expect(await a.isBanned('198.51.100.7')).toBe(true);
    expect(await skewed(-SKEW, () => behind.isBanned('198.51.100.7'))).toBe(true);

    await a.ban('198.51.100.8', Date.now() + 900_000);
    expect(await skewed(SKEW, () => behind.isBanned('198.51.100.8'))).toBe(true);
    // A shorter ban from the instance ahead does not shorten it, nor a longer one get refused.
    await skewed(SKEW, () => behind.ban('198.51.100.8', Date.now() + 1_000));
    expect(await redis.pttl(`${prefix}:b:198.51.100.8`)).toBeGreaterThan(890_000);
    await skewed(SKEW, () => behind.ban('198.51.100.8', Date.now() + 1_800_000));
    expect(await redis.pttl(`${prefix}:b:198.51.100.8`)).toBeGreaterThan(1_790_000);
  });

  it('a ban that has ended by the caller\'s clock stores nothing', async () => {
    const prefix = banPrefix();
    const store = new RedisBanStore({ redis, prefix });
    await skewed(SKEW, () => store.ban('198.51.100.9', realNow() + 60_000));
    expect(await redis.exists(`${prefix}:b:198.51.100.9`)).toBe(0);
    expect(await store.isBanned('198.51.100.9')).toBe(false);
  });
});

import { createHash, randomBytes } from 'node:crypto';
import { connect, evalScript } from './client.js';
import type { RedisClient, RedisTarget } from './client.js';

/**
 * The shape of `@ftp/server`'s `BanStore`, declared here so that this package does not depend on the server:
 * failed logins and bans keyed by client address.
 */
export interface BanStoreLike {
  /** Records a failed login of `key`; answers how many it had within the last `windowMs`, this one included. */
  addFailure(key: string, windowMs: number): Promise<number>;
  /** Bans `key` until `untilMs` (milliseconds since the epoch). */
  ban(key: string, untilMs: number): Promise<void>;
  /** Whether `key` is banned now. */
  isBanned(key: string): Promise<boolean>;
}

/** Options of {@link RedisBanStore}. */
export interface RedisBanStoreOptions {
  /** A `redis://` URL or ioredis options (owned, closed by `close()`), or a shared `Redis` / `Cluster` client. */
  redis: RedisTarget;
  /** Key prefix (default `ftp:ban`): keys are `<prefix>:f:<address>` (failures) and `<prefix>:b:<address>` (ban). */
  prefix?: string;
  /** Most failures remembered per address (default 1000): a flood cannot grow a key without bound. */
  maxFailures?: number;
}

/*
 * KEYS[1]: the address's failures (a sorted set: score = time of the failure, by the Redis clock so that servers with
 * skewed clocks count alike). ARGV: window ms, the failure's unique member, most kept. Drops failures older than the
 * window, adds this one, keeps the key only as long as the window. Answers the count. The member is the caller's, not
 * made of the time: a call sent again after its reply was lost (ioredis resends such commands after reconnecting)
 * moves its failure rather than count a second one.
 */
const ADD_FAILURE = {
  name: 'ban-add-failure',
  source: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
redis.call('PEXPIRE', KEYS[1], window)
return redis.call('ZCARD', KEYS[1])
`,
};

/* KEYS[1]: the address's ban (a string: until ms, expiring then). ARGV: until. A shorter ban never replaces a longer one. */
const BAN = {
  name: 'ban-set',
  source: `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local untilMs = tonumber(ARGV[1])
if cur >= untilMs then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[1])
return 1
`,
};

function withSha<T extends { name: string; source: string }>(s: T): T & { sha: string } {
  return { ...s, sha: createHash('sha1').update(s.source).digest('hex') };
}

const ADD_FAILURE_SCRIPT = withSha(ADD_FAILURE);
const BAN_SCRIPT = withSha(BAN);

/**
 * A `BanStore` for `@ftp/server` (`new FtpServer({ banStore })`) in Redis, so that several server instances ban
 * together: failures of an address counted by all of them, a ban by one refused by all. Each operation is one
 * atomic script over one key; every key has a TTL (the failure window, the ban's end), so nothing accumulates.
 */
export class RedisBanStore implements BanStoreLike {
  /** The ioredis client in use. */
  readonly client: RedisClient;
  readonly #owned: boolean;
  readonly #prefix: string;
  readonly #maxFailures: number;

  /** @param options where the bans live. */
  constructor(options: RedisBanStoreOptions) {
    const { client, owned } = connect(options.redis);
    this.client = client;
    this.#owned = owned;
    this.#prefix = options.prefix ?? 'ftp:ban';
    this.#maxFailures = options.maxFailures ?? 1000;
    if (!(Number.isSafeInteger(this.#maxFailures) && this.#maxFailures > 0)) throw new RangeError('maxFailures must be a positive integer');
  }

  /** @inheritdoc */
  async addFailure(key: string, windowMs: number): Promise<number> {
    const window = Math.max(1, Math.ceil(windowMs));
    return Number(await evalScript(this.client, ADD_FAILURE_SCRIPT, [`${this.#prefix}:f:${key}`], [window, randomBytes(8).toString('hex'), this.#maxFailures]));
  }

  /** @inheritdoc */
  async ban(key: string, untilMs: number): Promise<void> {
    const until = Math.ceil(untilMs);
    if (until <= Date.now()) return;
    await evalScript(this.client, BAN_SCRIPT, [`${this.#prefix}:b:${key}`], [until]);
  }

  /** @inheritdoc */
  async isBanned(key: string): Promise<boolean> {
    const v = await this.client.get(`${this.#prefix}:b:${key}`);
    return v !== null && Number(v) > Date.now();
  }

  /** Ends the connection when the store opened it. */
  async close(): Promise<void> {
    if (!this.#owned) return;
    if (this.client.status !== 'ready') this.client.disconnect();
    else await this.client.quit().catch(() => undefined);
  }
}

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
  /**
   * How long each call waits for Redis, in ms (default 1500; `Infinity` waits as long as the client does). The server
   * awaits `isBanned` before its greeting and after each PASS, and the connection's own deadline (30 s, meant for
   * filesystem scripts) would hold every login that long on a Redis that accepts connections but does not answer.
   * Past it, `isBanned` answers false and `addFailure` / `ban` reject: the server then fails open (nobody banned,
   * the failure not counted) rather than lock everybody out or stall.
   */
  timeoutMs?: number;
}

/** What {@link RedisBanStore} rejects with when Redis does not answer within its `timeoutMs`. */
export class BanStoreTimeoutError extends Error {
  constructor(operation: string, ms: number) {
    super(`ban store: Redis did not answer ${operation} within ${ms} ms`);
    this.name = 'BanStoreTimeoutError';
  }
}

const TIMED_OUT: unique symbol = Symbol('timed out');

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

/*
 * KEYS[1]: the address's ban (a string expiring at the ban's end). ARGV: its duration in ms. The end is reckoned by the
 * Redis clock alone (PX, not the caller's absolute time), so that an instance whose clock is off neither bans nobody
 * nor ignores bans. The value, the end by the Redis clock, is for people reading the key (and for servers of an older
 * version during an upgrade, which compare it with their clock); only the key's existence means banned. A shorter ban
 * never replaces a longer one: the remaining TTL is compared (-2: no key).
 */
const BAN = {
  name: 'ban-set',
  source: `
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) >= ttl then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], now + ttl, 'PX', ttl)
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
  readonly #timeoutMs: number;

  /** @param options where the bans live. */
  constructor(options: RedisBanStoreOptions) {
    const { client, owned } = connect(options.redis);
    this.client = client;
    this.#owned = owned;
    this.#prefix = options.prefix ?? 'ftp:ban';
    this.#maxFailures = options.maxFailures ?? 1000;
    if (!(Number.isSafeInteger(this.#maxFailures) && this.#maxFailures > 0)) throw new RangeError('maxFailures must be a positive integer');
    this.#timeoutMs = options.timeoutMs ?? 1500;
    if (!(this.#timeoutMs > 0)) throw new RangeError('timeoutMs must be a positive number of milliseconds (or Infinity)');
  }

  /**
   * `call`'s answer, or TIMED_OUT once `timeoutMs` has passed. The command itself stays queued in ioredis until the
   * client's own deadline; its late failure is swallowed here, as nobody waits for it any more.
   */
  async #deadline<T>(call: Promise<T>): Promise<T | typeof TIMED_OUT> {
    const ms = this.#timeoutMs;
    if (!Number.isFinite(ms)) return call;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(resolve, ms, TIMED_OUT);
      // A call still waiting must not keep the process alive.
      timer.unref();
    });
    try {
      return await Promise.race([call, expired]);
    } finally {
      clearTimeout(timer);
      call.catch(() => undefined);
    }
  }

  /** @inheritdoc */
  async addFailure(key: string, windowMs: number): Promise<number> {
    const window = Math.max(1, Math.ceil(windowMs));
    const answer = await this.#deadline(evalScript(this.client, ADD_FAILURE_SCRIPT, [`${this.#prefix}:f:${key}`], [window, randomBytes(8).toString('hex'), this.#maxFailures]));
    if (answer === TIMED_OUT) throw new BanStoreTimeoutError('addFailure', this.#timeoutMs);
    return Number(answer);
  }

  /** @inheritdoc */
  async ban(key: string, untilMs: number): Promise<void> {
    // The end is the caller's clock plus the ban's duration: only the duration means the same to every clock.
    const duration = Math.ceil(untilMs - Date.now());
    if (!(duration > 0)) return;
    const answer = await this.#deadline(evalScript(this.client, BAN_SCRIPT, [`${this.#prefix}:b:${key}`], [duration]));
    if (answer === TIMED_OUT) throw new BanStoreTimeoutError('ban', this.#timeoutMs);
  }

  /** @inheritdoc */
  async isBanned(key: string): Promise<boolean> {
    // The key expires at the ban's end by the Redis clock: no comparison with this instance's clock.
    const answer = await this.#deadline(this.client.exists(`${this.#prefix}:b:${key}`));
    return answer !== TIMED_OUT && answer > 0;
  }

  /** Ends the connection when the store opened it. */
  async close(): Promise<void> {
    if (!this.#owned) return;
    if (this.client.status !== 'ready') this.client.disconnect();
    else await this.client.quit().catch(() => undefined);
  }
}

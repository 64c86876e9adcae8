import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Cluster, RedisOptions } from 'ioredis';
import { fsError, resolvePath, splitPath } from '@ftp/vfs';
import { isErrorCode, redisError } from './errors.js';
import type { LuaScript } from './scripts.js';

/** A Redis connection as ioredis gives it: a single node or a Cluster. */
export type RedisClient = Redis | Cluster;

/** Where to connect: a `redis://` URL, ioredis options, or a client (Redis or Cluster) owned by the caller. */
export type RedisTarget = string | RedisOptions | RedisClient;

/** This process's part of call ids: they must be unique across every server sharing the filesystem. */
const CALL_PREFIX = randomBytes(9).toString('base64url');
let calls = 0;

/**
 * A new id for one call of a script that changes the filesystem: the script records it, so that a copy of the call
 * sent again after a lost reply answers OK instead of running twice (see `REPLAY_WINDOW_MS`).
 */
export function newCallId(): string {
  return `${CALL_PREFIX}.${(++calls).toString(36)}`;
}

/** Most symbolic links followed while resolving one path, as Linux's MAXSYMLINKS. */
const MAX_LINK_HOPS = 40;

/**
 * Whether `target` is an ioredis client (Redis or Cluster), told by its methods rather than `instanceof`: an
 * application with its own copy of ioredis (another version, or a duplicate install) passes clients whose classes
 * are not this package's, and taking one for options would connect somewhere else (localhost, database 0).
 */
export function isRedisClient(target: unknown): target is RedisClient {
  if (typeof target !== 'object' || target === null) return false;
  const c = target as Record<string, unknown>;
  return typeof c.sendCommand === 'function' && typeof c.evalsha === 'function' && typeof c.callBuffer === 'function';
}

/** Whether `client` is a Redis Cluster (ioredis sets `isCluster` on both kinds). */
export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: unknown }).isCluster === true;
}

/**
 * ioredis settings of the connections this package opens (from a URL, or under options given, which win). ioredis's
 * own defaults retry a command through 20 reconnections and wait for ever on a Redis that stopped answering, so
 * while Redis was down or frozen an FTP command took 10–84 s to fail, or never did (the server's start too).
 * - `lazyConnect`: constructing a provider does no I/O; the first command connects.
 * - `maxRetriesPerRequest: 1`: a command fails after one reconnection that did not work (FTP clients retry a 451).
 * - `commandTimeout`: a command Redis does not answer within 30 s fails (a frozen host, a partition). Each script
 *   here touches one directory or one chunk, a few milliseconds of Redis's time.
 */
export const CONNECTION_DEFAULTS = { lazyConnect: true, maxRetriesPerRequest: 1, commandTimeout: 30_000, connectTimeout: 10_000 } as const satisfies RedisOptions;

/** Opens the connection for a target; `owned` is true when this package created it (and must close it). */
export function connect(target: RedisTarget): { client: RedisClient; owned: boolean } {
  if (isRedisClient(target)) return { client: target, owned: false };
  if (typeof target === 'string') return { client: quiet(new Redis(target, CONNECTION_DEFAULTS)), owned: true };
  // Options are a plain object; anything else (a client of another library) would silently become a connection to
  // the default Redis.
  const proto: unknown = typeof target === 'object' && target !== null ? Object.getPrototypeOf(target) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError('redis: expected a redis:// URL, ioredis options (a plain object) or an ioredis client (Redis or Cluster)');
  }
  return { client: quiet(new Redis({ ...CONNECTION_DEFAULTS, ...target })), owned: true };
}

/**
 * A connection of ours reports its failures through the commands that fail (each an EIO the FTP client gets as
 * 451); without a listener ioredis would also print every failed reconnection to stderr, about one a second for as
 * long as Redis is down, outside the server's log.
 */
function quiet(client: Redis): Redis {
  client.on('error', (err: Error) => lastConnectionErrors.set(client, err));
  client.on('ready', () => lastConnectionErrors.delete(client));
  return client;
}

/** The last connection failure of each connection of ours, to say why a command gave up (see {@link explained}). */
const lastConnectionErrors = new WeakMap<RedisClient, Error>();

/**
 * ioredis gives up on a command with "Reached the max retries per request limit", which hides why: the error says
 * what the connection met instead ("connect ECONNREFUSED 127.0.0.1:6379"), when it is known.
 */
export function explained(client: RedisClient, err: unknown): unknown {
  const cause = lastConnectionErrors.get(client);
  if (cause === undefined || !(err instanceof Error) || err.name !== 'MaxRetriesPerRequestError') return err;
  return new Error(`cannot reach Redis: ${cause.message}`, { cause: err });
}

/** Runs a script by SHA, loading it (EVAL) on a node whose cache lacks it. */
export async function evalScript(client: RedisClient, s: LuaScript, keys: readonly string[], args: readonly (string | Buffer | number)[], binary = false): Promise<unknown> {
  try {
    return binary ? await client.callBuffer('EVALSHA', s.sha, keys.length, ...keys, ...args) : await client.evalsha(s.sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw explained(client, err);
    return binary ? await client.callBuffer('EVAL', s.source, keys.length, ...keys, ...args) : await client.eval(s.source, keys.length, ...keys, ...args);
  }
}

function text(v: unknown): string {
  return Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
}

/** The path that a link at component `index` (1-based) of `path` leads to, with the components after it. */
export function followLink(path: string, index: number, target: string): string {
  const comps = splitPath(path);
  const parent = `/${comps.slice(0, index - 1).join('/')}`;
  return resolvePath(resolvePath(parent, target), comps.slice(index).join('/'));
}

/**
 * Runs a filesystem script over `paths` (ARGV[2..]) and `args` after them, following symbolic links: each `LINK`
 * answer rewrites one path and runs the script again (at most 40 times, then ELOOP). Error statuses become
 * {@link VfsError}s naming `shownPath` (the path the caller asked for). Answers the rest of the reply after 'OK'.
 */
/**
 * The filesystem's root is not in Redis (it lost its data): thrown by {@link runFs} for the provider to make the
 * root again and run the call once more.
 */
export class RootMissing extends Error {
  constructor(
    readonly syscall: string,
    readonly path: string | undefined,
  ) {
    super('the filesystem root is missing in Redis');
  }
}

export async function runFs(
  client: RedisClient,
  tag: string,
  route: string,
  s: LuaScript,
  syscall: string,
  paths: readonly string[],
  args: readonly (string | number | Buffer)[],
  binary = false,
): Promise<unknown[]> {
  const current = [...paths];
  const shownPath = paths[0];
  for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
    let reply: unknown;
    try {
      reply = await evalScript(client, s, [route], [tag, ...current, ...args], binary);
    } catch (err) {
      throw redisError(err, syscall, shownPath);
    }
    if (!Array.isArray(reply) || reply.length === 0) throw redisError(new Error(`unexpected reply of script ${s.name}`), syscall, shownPath);
    const status = text(reply[0]);
    if (status === 'OK') return reply.slice(1);
    if (status === 'NOROOT') throw new RootMissing(syscall, shownPath);
    if (status === 'LINK') {
      const which = Number(reply[1]) - 1;
      const p = current[which];
      if (p === undefined) throw redisError(new Error('bad LINK reply'), syscall, shownPath);
      current[which] = followLink(p, Number(reply[2]), text(reply[3]));
      continue;
    }
    if (isErrorCode(status)) throw fsError(status, syscall, shownPath);
    throw redisError(new Error(`script ${s.name}: ${status}`), syscall, shownPath);
  }
  throw fsError('ELOOP', syscall, shownPath);
}


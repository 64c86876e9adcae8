import type { RedisClient } from './client.js';
import { VfsError } from '@ftp/vfs';
import { evalScript, explained } from './client.js';
import { redisError } from './errors.js';
import type { Keys } from './keys.js';
import { COPY_CHUNKS, DISCARD } from './scripts.js';

/** Settings and helpers the streams and handles share with the provider. */
export interface Internals {
  readonly client: RedisClient;
  readonly keys: Keys;
  /** Bytes per chunk, as recorded in the filesystem's root. */
  readonly chunkSize: number;
  /** TTL of the content of an upload in progress, ms, refreshed by every chunk written. */
  readonly uploadTtlMs: number;
  /** How long the content of a replaced or deleted file stays readable while a download reads it, ms. */
  readonly gracePeriodMs: number;
  /** Length of a reader's lease, ms (renewed every third of it); 0 when readers take none (grace period 0). */
  readonly leaseMs: number;
  /** Chunk writes of one upload that may be in flight at once. */
  readonly maxInFlight: number;
}

/** Reads chunk `seq` of inode `ino`; null when it does not exist. */
export async function getChunk(fs: Internals, ino: number, seq: number): Promise<Buffer | null> {
  try {
    return await fs.client.hgetBuffer(fs.keys.content(ino), String(seq));
  } catch (err) {
    throw redisError(explained(fs.client, err), 'read');
  }
}

/**
 * Writes chunk `seq` of the (private) inode `ino` and refreshes the content's upload TTL, atomically (MULTI/EXEC: the
 * key never exists without its TTL). A transaction rather than a script: Redis copies a script's arguments once more
 * into Lua, which measured at about half the throughput for 256 KiB chunks.
 */
export async function putChunk(fs: Internals, ino: number, seq: number, data: Buffer): Promise<void> {
  const key = fs.keys.content(ino);
  let results: [Error | null, unknown][] | null;
  try {
    results = await fs.client.multi().hset(key, String(seq), data).pexpire(key, fs.uploadTtlMs).exec();
  } catch (err) {
    // EXECABORT hides the cause (OOM under maxmemory, for one) in previousErrors.
    const previous = (err as { previousErrors?: unknown[] }).previousErrors?.[0];
    throw redisError(explained(fs.client, previous ?? err), 'write');
  }
  const failed = results?.find(([e]) => e !== null)?.[0];
  if (results === null || failed) throw redisError(failed ?? new Error('transaction discarded'), 'write');
}

/** Bytes copied per COPY_CHUNKS call: 2 MiB, measured at about 10 ms of Redis time per step. */
const COPY_STEP_BYTES = 2 * 1024 * 1024;

/**
 * Copies chunks `0 … count-1` of inode `from` to the upload inode `to`, inside Redis, a batch per round-trip;
 * `onStep` hears the chunks copied after each, and `stopped` ends the copy early when it says so. Answers false when
 * a chunk of `from` is gone (the file was deleted or replaced meanwhile).
 */
export async function copyChunks(fs: Internals, from: number, to: number, count: number, onStep?: (copied: number) => void, stopped?: () => boolean): Promise<boolean> {
  const src = fs.keys.content(from);
  const dst = fs.keys.content(to);
  const batch = Math.max(1, Math.floor(COPY_STEP_BYTES / fs.chunkSize));
  for (let first = 0; first < count; first += batch) {
    if (stopped?.()) return true;
    const last = Math.min(count, first + batch) - 1;
    let ok: unknown;
    try {
      ok = await evalScript(fs.client, COPY_CHUNKS, [src, dst], [first, last, fs.uploadTtlMs]);
    } catch (err) {
      throw redisError(err, 'copy');
    }
    if (Number(ok) !== 1) return false;
    onStep?.(Math.min(count, first + batch));
  }
  return true;
}

/** Gives the content of an upload in progress its full TTL again. */
export async function refreshContent(fs: Internals, ino: number): Promise<void> {
  try {
    await fs.client.pexpire(fs.keys.content(ino), fs.uploadTtlMs);
  } catch (err) {
    throw redisError(explained(fs.client, err), 'write');
  }
}

/**
 * Deletes the content of an upload that will not be committed, unless a commit of it took effect after all (see the
 * DISCARD script): a commit that failed on the client side (a timeout, a lost connection) may have run in Redis.
 * Answers true when the upload turned out committed, false once its content is discarded, undefined when Redis
 * could not be asked (best effort: an upload's TTL removes its content by itself).
 */
export async function discardContent(fs: Internals, ino: number): Promise<boolean | undefined> {
  try {
    return Number(await evalScript(fs.client, DISCARD, [fs.keys.inode(ino), fs.keys.content(ino), fs.keys.readers(ino)], [])) === 1;
  } catch {
    return undefined;
  }
}

/**
 * The error of a read whose chunk vanished: the file was replaced or deleted and its content removed (its grace
 * period ended, there was none, or the reader's lease had lapsed).
 */
export function contentGone(seq: number): VfsError {
  return new VfsError('EIO', `EIO: chunk ${seq} is gone: the file was replaced or deleted and this version's content removed`, { syscall: 'read' });
}

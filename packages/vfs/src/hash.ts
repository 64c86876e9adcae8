import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { VfsError, toVfsError } from './errors.js';
import type { Readable } from 'node:stream';
import type { FsProvider, HashAlgorithm, HashOptions } from './spec.js';
import { openReadStream } from './streams.js';

const NODE_ALGORITHMS: Record<Exclude<HashAlgorithm, 'CRC32'>, string> = {
  'SHA-1': 'sha1',
  'SHA-256': 'sha256',
  'SHA-512': 'sha512',
  MD5: 'md5',
};

/** The algorithms of the HASH extension this package computes. */
export const HASH_ALGORITHMS: readonly HashAlgorithm[] = Object.freeze(['SHA-1', 'SHA-256', 'SHA-512', 'MD5', 'CRC32'] as const);

/** An incremental digest: `update` per chunk, `digest` as lower-case hex (CRC32: 8 digits). */
export interface Digest {
  update(chunk: Uint8Array): void;
  digest(): string;
}

/**
 * Creates an incremental digest for a HASH algorithm (CRC32 through `zlib.crc32`).
 * @throws VfsError `EINVAL` for an unknown algorithm.
 */
export function createDigest(algorithm: HashAlgorithm): Digest {
  if (algorithm === 'CRC32') {
    let value = 0;
    return {
      update(chunk) {
        value = crc32(chunk, value);
      },
      digest() {
        return value.toString(16).padStart(8, '0');
      },
    };
  }
  const name = NODE_ALGORITHMS[algorithm];
  if (name === undefined) throw new VfsError('EINVAL', `EINVAL: unknown hash algorithm ${String(algorithm)}`);
  const h = createHash(name);
  return {
    update(chunk) {
      h.update(chunk);
    },
    digest() {
      return h.digest('hex');
    },
  };
}

/**
 * The hex digest of a file or of the byte range `[start, end)` of it (HASH). Uses the provider's `hash` when
 * present, else streams the range through node:crypto / `zlib.crc32` without holding it ({@link digestStream}).
 * With `options.signal`, the hash stops when it aborts and rejects with its reason; a provider's own `hash` is
 * handed the signal (one that ignores it is waited for, so that a caller counting hashes in progress stays right).
 */
export async function hashFile(p: FsProvider, path: string, algorithm: HashAlgorithm, start?: number, end?: number, options: HashOptions = {}): Promise<string> {
  const { signal } = options;
  signal?.throwIfAborted();
  try {
    if (typeof p.hash === 'function') {
      const digest = await p.hash(path, algorithm, start, end, options);
      signal?.throwIfAborted();
      return digest;
    }
    const digest = createDigest(algorithm);
    const from = start ?? 0;
    if (end !== undefined && end <= from) {
      // Still check the file exists and is a file.
      (await openReadStream(p, path, { start: 0, end: 0 })).destroy();
      return digest.digest();
    }
    return await digestStream(await openReadStream(p, path, end === undefined ? { start: from } : { start: from, end: end - 1 }), digest, signal);
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw toVfsError(err, path);
  }
}

/** Bytes hashed between turns given to the rest of the process (~5 ms of SHA-256). */
const BYTES_PER_TURN = 4 * 1024 * 1024;

/**
 * Feeds `stream` into `digest` and returns the hex digest: what a provider's `hash` streams through. The rest of
 * the process gets a turn every 4 MiB (a stream that always has data ready, as memory or SQLite reads, would
 * otherwise hold every session: a 5 GiB hash held them for 8 s); with `signal`, the stream is destroyed and the
 * signal's reason thrown as soon as it aborts (a hash nobody waits for must not read on).
 */
export async function digestStream(stream: Readable, digest: Digest, signal?: AbortSignal): Promise<string> {
  const stop = (): void => {
    stream.destroy(signal?.reason as Error);
  };
  if (signal?.aborted) stop();
  signal?.addEventListener('abort', stop, { once: true });
  try {
    let sinceTurn = 0;
    for await (const chunk of stream) {
      digest.update(chunk as Buffer);
      sinceTurn += (chunk as Buffer).length;
      if (sinceTurn >= BYTES_PER_TURN) {
        sinceTurn = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  } catch (err) {
    throw signal?.aborted ? signal.reason : err;
  } finally {
    signal?.removeEventListener('abort', stop);
  }
  signal?.throwIfAborted();
  return digest.digest();
}

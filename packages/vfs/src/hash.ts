import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { VfsError, toVfsError } from './errors.js';
import type { FsProvider, HashAlgorithm } from './spec.js';
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
 * present, else streams the range through node:crypto / `zlib.crc32` without holding it.
 */
export async function hashFile(p: FsProvider, path: string, algorithm: HashAlgorithm, start?: number, end?: number): Promise<string> {
  try {
    if (typeof p.hash === 'function') return await p.hash(path, algorithm, start, end);
    const digest = createDigest(algorithm);
    const from = start ?? 0;
    if (end !== undefined && end <= from) {
      // Still check the file exists and is a file.
      (await openReadStream(p, path, { start: 0, end: 0 })).destroy();
      return digest.digest();
    }
    const stream = await openReadStream(p, path, end === undefined ? { start: from } : { start: from, end: end - 1 });
    for await (const chunk of stream) digest.update(chunk as Buffer);
    return digest.digest();
  } catch (err) {
    throw toVfsError(err, path);
  }
}

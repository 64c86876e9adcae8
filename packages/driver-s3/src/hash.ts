import { createDigest, digestStream, fsError, type HashAlgorithm } from '@ftp/vfs';
import type { HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import type { S3Context } from './context.js';
import { openDownload } from './download.js';
import { kindOf, SHA256_META } from './objects.js';

/** A full-object checksum S3 stored (base64), as lower-case hex; undefined for a composite (multipart) one. */
function checksumHex(value: string | undefined, type: string | undefined): string | undefined {
  if (value === undefined || value.includes('-') || type === 'COMPOSITE') return undefined;
  return Buffer.from(value, 'base64').toString('hex');
}

/**
 * The digest of a whole object that is already stored with it: the SHA-256 this driver recorded at upload
 * (`x-amz-meta-sha256`), or a full-object checksum S3 keeps (ChecksumSHA256, ChecksumSHA1, ChecksumCRC32 of uploads
 * made with checksums). Undefined when there is none for `algorithm`.
 */
export function storedDigest(head: HeadObjectCommandOutput, algorithm: HashAlgorithm): string | undefined {
  switch (algorithm) {
    case 'SHA-256': {
      const meta = head.Metadata?.[SHA256_META];
      if (meta !== undefined && /^[0-9a-f]{64}$/.test(meta)) return meta;
      return checksumHex(head.ChecksumSHA256, head.ChecksumType);
    }
    case 'SHA-1':
      return checksumHex(head.ChecksumSHA1, head.ChecksumType);
    case 'CRC32':
      return checksumHex(head.ChecksumCRC32, head.ChecksumType);
    default:
      return undefined;
  }
}

/**
 * HASH: the hex digest of `[start, end)` of a file. A whole-file digest that is stored with the object costs one
 * HEAD; anything else streams the range through one ranged GET (never held whole).
 */
export async function hashObject(ctx: S3Context, path: string, algorithm: HashAlgorithm, start?: number, end?: number, signal?: AbortSignal): Promise<string> {
  const k = await kindOf(ctx, path, true);
  if (k.kind === 'directory') throw fsError('EISDIR', 'open', path);
  if (k.kind === 'none') throw fsError('ENOENT', 'open', path);
  const size = k.head.ContentLength ?? 0;
  const from = start ?? 0;
  const to = Math.min(end ?? size, size);
  const digest = createDigest(algorithm);
  if (from === 0 && to === size) {
    const stored = storedDigest(k.head, algorithm);
    if (stored !== undefined) return stored;
  }
  if (to <= from) return digest.digest();
  const body = await openDownload(ctx, path, { start: from, end: to - 1, ifMatch: k.head.ETag });
  return digestStream(body, digest, signal);
}

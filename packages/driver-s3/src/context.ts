import type { S3Client } from '@aws-sdk/client-s3';
import type { ResolvedOptions } from './options.js';
import type { PartSchedule } from './parts.js';
import type { KeyMapper } from './paths.js';

/** What the parts of the provider share: the client, the bucket, the key mapping and the options. */
export interface S3Context {
  readonly client: S3Client;
  readonly bucket: string;
  readonly keys: KeyMapper;
  readonly options: ResolvedOptions;
  /**
   * Whether the store answered UploadPartCopy with NotImplemented once (s3rver, some gateways): APPE and REST then
   * re-upload the kept bytes instead of asking again each time.
   */
  partCopyUnsupported: boolean;
  /**
   * Whether the store refused If-Match / If-None-Match on PutObject or CompleteMultipartUpload (NotImplemented, 501,
   * 400) once: APPE and REST + STOR then rely on their HEAD just before completing, without the header.
   */
  conditionalWritesUnsupported: boolean;
  /** Whether the store refused If-Match on DeleteObject (or ETags in DeleteObjects) once: renames then delete without. */
  conditionalDeletesUnsupported: boolean;
  /** Objects larger than this are copied by multipart UploadPartCopy (S3's CopyObject limit: 5 GiB). */
  readonly multipartCopyThreshold: number;
  /** Size of the UploadPartCopy ranges of such a copy (larger for objects that would need more than 10,000). */
  readonly multipartCopyPartSize: number;
  /** S3's part and object limits, and how upload parts grow within them (lowered by a test hook). */
  readonly partSchedule: PartSchedule;
}

/** The `x-amz-copy-source` value of a key: `bucket/key`, URL-encoded segment by segment (slashes kept). */
export function copySource(ctx: S3Context, key: string): string {
  return `${ctx.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * The handler options of a request about names and metadata: aborted after `metadataTimeoutMs`, retries included
 * (see the option). Aborted, it fails as any request that got no answer (EIO, the server's 451).
 */
export function metadataDeadline(ctx: S3Context): { abortSignal: AbortSignal } {
  return { abortSignal: AbortSignal.timeout(ctx.options.metadataTimeoutMs) };
}

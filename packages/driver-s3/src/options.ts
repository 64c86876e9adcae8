import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { UploadMemoryBudget } from './budget.js';

/** 1 MiB. */
export const MiB = 1024 * 1024;
/** S3's smallest part (all but the last part of a multipart upload). */
export const MIN_PART_SIZE = 5 * MiB;
/** S3's largest part, and the largest object a single CopyObject / PutObject handles. */
export const MAX_PART_SIZE = 5 * 1024 * MiB;
/** S3's limit on the number of parts of one upload. */
export const MAX_PARTS = 10_000;

/** Options of {@link S3Provider}. */
export interface S3ProviderOptions {
  /** The bucket. It must exist; the provider never creates or deletes buckets. */
  bucket: string;
  /**
   * Key prefix of the tree (`users/alice/`): `/` of the provider is this prefix, nothing outside it is ever read,
   * listed or written. One bucket can so serve many users. Default: the whole bucket.
   */
  prefix?: string;
  /** An S3 client to use as is (its region, endpoint and credentials apply; the options below are then ignored). */
  client?: S3Client;
  /** Region. Default: the SDK's (`AWS_REGION`, profile), else `us-east-1`. */
  region?: string;
  /** Endpoint of an S3-compatible store (`http://127.0.0.1:9000` for MinIO, `https://<account>.r2.cloudflarestorage.com`). */
  endpoint?: string;
  /** Path-style addressing (`endpoint/bucket/key`), which MinIO, Ceph RGW and most local stores need. Default false. */
  forcePathStyle?: boolean;
  /** Explicit credentials. Default: the SDK's default chain (environment, profile, SSO, instance role...). */
  credentials?: S3ClientConfig['credentials'];
  /** Further `S3Client` settings (retries, request handler, logger...), applied when the provider creates the client. */
  clientConfig?: S3ClientConfig;
  /**
   * Bytes of the first parts of multipart uploads, and the size under which an upload is a single PutObject. 5 MiB
   * (S3's minimum part size) to 5 GiB. Default 8 MiB.
   *
   * An FTP upload's size is not known in advance and S3 takes at most 10,000 parts, so parts grow with the part
   * count: parts 1–800 are `partSize`, 801–1,600 twice that, doubling every 800 parts until a part is 1 GiB or more
   * (never above 5 GiB). 10,000 parts then hold more than S3's 5 TiB object limit for any `partSize` (8 MiB: ~5.07
   * TiB, 5 MiB: ~5.37 TiB); a larger upload fails with ENOSPC (FTP 552) when it passes 5 TiB.
   *
   * Memory of one upload: the part being filled plus the parts in flight, at most
   * `max(partSize × uploadConcurrency, P) + P` bytes, P being the size of the part being filled. That is
   * `partSize × (uploadConcurrency + 1)`, as with fixed parts (40 MiB by default), for the first 800 parts (6.25 GiB
   * at 8 MiB); it grows only for uploads already that huge, to 2 × P once parts are larger than the bytes allowed in
   * flight. Default sizes: 48 MiB from 6.25 GiB, 64 MiB from 18.75 GiB, 128 MiB from 43.75 GiB, 256 MiB from
   * 93.75 GiB, 512 MiB from 193.75 GiB, 1 GiB from 393.75 GiB, 2 GiB (two 1 GiB parts) from 793.75 GiB on.
   */
  partSize?: number;
  /**
   * Parts of one upload in flight at once, default 4. Also sets the bytes in flight: at most `partSize ×
   * uploadConcurrency`, so that once parts have grown fewer of them are in flight (always at least one).
   */
  uploadConcurrency?: number;
  /** Objects copied (or deleted) at once by a directory rename. Default 16. */
  renameConcurrency?: number;
  /**
   * The most objects (markers included) a directory rename moves. A rename holds every key of the tree in memory
   * (about 600 bytes per object) until its sources are deleted; a larger tree is refused with EPERM (FTP 550) before
   * anything is copied. Default 100,000 (about 60 MB).
   */
  maxRenameObjects?: number;
  /**
   * Compute the SHA-256 of uploads while they stream and store it in the object's metadata (`x-amz-meta-sha256`),
   * so that HASH answers without reading the object. A single-part upload carries it in its PutObject; a multipart
   * upload gets it by one server-side self-copy (CopyObject, MetadataDirective REPLACE) after completion, up to
   * 5 GiB. Default true.
   */
  storeSha256?: boolean;
  /**
   * The bytes of part buffers that all uploads of this provider may hold at once: a number (bytes, at least 1 MiB)
   * gives the provider a budget of its own; an {@link UploadMemoryBudget} is shared with every provider given the
   * same instance. Default: a budget of 256 MiB for this provider (see {@link UploadMemoryBudget} for why). When it
   * is spent, uploads wait for the parts in flight of others to complete (their data connections are not read
   * meanwhile); none fails for it. The first 64 KiB of each upload are outside the budget, so small files never wait.
   */
  uploadMemory?: number | UploadMemoryBudget;
  /**
   * How long a request about names and metadata (a stat, a listing page, a delete, a folder marker) may take in all,
   * the SDK's retries included (ms). The silence limit of the client (`S3_TIMEOUTS`) is long, for transfers paced by
   * slow FTP clients, and each retry starts it again: a store that accepts connections and stops answering held a
   * SIZE for over ten minutes. Default 60,000. A download's wait for the store's first answer is bounded by it too;
   * transfers themselves (a download's body, parts, copies) are not.
   */
  metadataTimeoutMs?: number;
}

/** The options with defaults applied. */
export interface ResolvedOptions {
  bucket: string;
  prefix: string;
  partSize: number;
  uploadConcurrency: number;
  renameConcurrency: number;
  maxRenameObjects: number;
  storeSha256: boolean;
  uploadMemory: UploadMemoryBudget;
  metadataTimeoutMs: number;
}

function positiveInt(name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`S3Provider: ${name} must be an integer >= ${min}, got ${String(value)}`);
  return value;
}

/** Checks the options and applies the defaults. @throws RangeError for a bad value. */
export function resolveOptions(options: S3ProviderOptions): ResolvedOptions {
  if (typeof options.bucket !== 'string' || options.bucket === '') throw new RangeError('S3Provider: bucket is required');
  const partSize = positiveInt('partSize', options.partSize, 8 * MiB, MIN_PART_SIZE);
  if (partSize > MAX_PART_SIZE) throw new RangeError(`S3Provider: partSize must be at most 5 GiB, got ${partSize}`);
  return {
    bucket: options.bucket,
    prefix: options.prefix ?? '',
    partSize,
    uploadConcurrency: positiveInt('uploadConcurrency', options.uploadConcurrency, 4),
    renameConcurrency: positiveInt('renameConcurrency', options.renameConcurrency, 16),
    maxRenameObjects: positiveInt('maxRenameObjects', options.maxRenameObjects, 100_000),
    storeSha256: options.storeSha256 ?? true,
    uploadMemory: options.uploadMemory instanceof UploadMemoryBudget ? options.uploadMemory : new UploadMemoryBudget(options.uploadMemory),
    metadataTimeoutMs: positiveInt('metadataTimeoutMs', options.metadataTimeoutMs, 60_000),
  };
}

/**
 * Time limits of the client the driver creates (ms; `clientConfig.requestHandler` replaces them). The SDK's default
 * is none: a store that accepts and stops answering (a frozen host, a partition) held an FTP command for ever.
 * `socketTimeout` is a limit on silence, not on a request's length: a part sent over a slow uplink, or a big
 * server-side copy, takes what it takes while bytes move. A download's response is paced by the FTP client, which
 * the server lets pause for `dataStallTimeout` (300 s by default): the limit is that long, so that it never cuts a
 * slow client the server would keep.
 */
export const S3_TIMEOUTS = { connectionTimeout: 10_000, socketTimeout: 300_000 } as const;

/**
 * Creates the S3 client of a provider from its options. Checksums are computed only where S3 requires them
 * (`WHEN_REQUIRED`): the SDK's newer default sends CRC32 trailers in `aws-chunked` bodies, which many S3-compatible
 * stores (older MinIO, Ceph RGW, s3rver) do not understand.
 */
export function createClient(options: S3ProviderOptions): S3Client {
  const config: S3ClientConfig = {
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { ...S3_TIMEOUTS },
    ...options.clientConfig,
  };
  if (options.region !== undefined) config.region = options.region;
  // The SDK reads AWS_REGION (and profiles) but not the CLI's AWS_DEFAULT_REGION; without either it refuses to start.
  else if (config.region === undefined && process.env.AWS_REGION === undefined) config.region = process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  if (options.endpoint !== undefined) config.endpoint = options.endpoint;
  if (options.forcePathStyle !== undefined) config.forcePathStyle = options.forcePathStyle;
  if (options.credentials !== undefined) config.credentials = options.credentials;
  return new S3Client(config);
}

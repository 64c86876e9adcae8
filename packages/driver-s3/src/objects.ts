import { HeadObjectCommand, ListObjectsV2Command, type HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { VfsStats, fsError } from '@ftp/vfs';
import { metadataDeadline, type S3Context } from './context.js';
import { isNotFound, toS3Error } from './errors.js';

/** Permission bits reported for objects and prefixes (S3 has none; these say "readable, writable by the user"). */
export const FILE_MODE = 0o644;
/** Permission bits reported for directories. */
export const DIR_MODE = 0o755;
/**
 * The user-metadata key (`x-amz-meta-mtime`) of a modification time set by `setTimes`: whole ms since the epoch as a
 * decimal integer, with a leading `-` for times before 1970 (`-1000` is 1969-12-31T23:59:59Z).
 */
export const MTIME_META = 'mtime';

/** The largest distance from the epoch a JavaScript Date can hold (±100,000,000 days), in ms. */
const MAX_TIME_MS = 8.64e15;

/** The `x-amz-meta-mtime` value of a time (whole ms, rounded); throws on a time no Date can hold. */
export function encodeMtime(ms: number): string {
  const whole = Math.round(ms);
  if (!Number.isFinite(whole) || Math.abs(whole) > MAX_TIME_MS) throw new RangeError(`not a time: ${ms}`);
  return String(whole === 0 ? 0 : whole); // never "-0"
}

/**
 * The time an `x-amz-meta-mtime` value holds, in ms since the epoch; undefined for anything else (the value is set
 * by whoever can write the object). Reads what every version of the driver wrote: non-negative integers up to 15
 * digits, and now negative ones (before 1970) and 16-digit ones (after the year 33658), within a Date's range.
 */
export function decodeMtime(value: string | undefined): number | undefined {
  if (value === undefined || !/^-?\d{1,16}$/.test(value)) return undefined;
  const ms = Number(value);
  if (Math.abs(ms) > MAX_TIME_MS) return undefined;
  return ms === 0 ? 0 : ms; // "-0" is 0
}
/** The user-metadata key (`x-amz-meta-sha256`) of the SHA-256 computed while the object was uploaded. */
export const SHA256_META = 'sha256';

/** The modification time of an object: the one `setTimes` stored, else S3's LastModified. */
export function objectMtime(metadata: Record<string, string> | undefined, lastModified: Date | undefined): number {
  const stored = decodeMtime(metadata?.[MTIME_META]);
  if (stored !== undefined) return stored;
  return lastModified?.getTime() ?? Date.now();
}

/** Stats of a file from its HEAD response. */
export function fileStats(head: HeadObjectCommandOutput): VfsStats {
  return new VfsStats({ kind: 'file', size: head.ContentLength ?? 0, mode: FILE_MODE, mtimeMs: objectMtime(head.Metadata, head.LastModified) });
}

/** Stats of a directory; S3 keeps no time for a prefix, so it is the marker's if known, else now. */
export function dirStats(mtimeMs = Date.now()): VfsStats {
  return new VfsStats({ kind: 'directory', size: 0, mode: DIR_MODE, mtimeMs });
}

/**
 * HEAD of the file object at `path`; undefined when there is no such key. `checksums` asks for the stored checksums
 * too (only HASH needs them; with SSE-KMS they also need kms:Decrypt).
 */
export async function headFile(ctx: S3Context, path: string, checksums = false): Promise<HeadObjectCommandOutput | undefined> {
  if (path === '/') return undefined;
  try {
    return await ctx.client.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: ctx.keys.fileKey(path), ...(checksums ? { ChecksumMode: 'ENABLED' as const } : {}) }), metadataDeadline(ctx));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw toS3Error(err, path, 'stat');
  }
}

/** What one short listing of a directory prefix tells. */
export interface DirProbe {
  /** The prefix has a marker or any object below it (the root always exists). */
  exists: boolean;
  /** Something other than the marker lies below it. */
  nonEmpty: boolean;
  /** LastModified of the marker, if there is one. */
  markerMtimeMs: number | undefined;
}

/**
 * Looks at the first two entries under the directory prefix of `path` (delimited, so the size of the tree below does
 * not matter). The marker `dir/` sorts before every other key under `dir/`, so two entries are enough to tell an empty
 * directory from a non-empty one.
 */
export async function probeDir(ctx: S3Context, path: string): Promise<DirProbe> {
  const prefix = ctx.keys.dirKey(path);
  let out;
  try {
    out = await ctx.client.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: prefix, Delimiter: '/', MaxKeys: 2 }), metadataDeadline(ctx));
  } catch (err) {
    throw toS3Error(err, path, 'stat');
  }
  const contents = out.Contents ?? [];
  const marker = contents.find((o) => o.Key === prefix);
  const others = contents.length - (marker === undefined ? 0 : 1) + (out.CommonPrefixes?.length ?? 0);
  return { exists: path === '/' || contents.length > 0 || others > 0, nonEmpty: others > 0, markerMtimeMs: marker?.LastModified?.getTime() };
}

/** What a path is: a file (with its HEAD), a directory, or nothing. */
export type PathKind = { kind: 'file'; head: HeadObjectCommandOutput } | { kind: 'directory'; probe: DirProbe } | { kind: 'none' };

/**
 * Finds what `path` is: one HEAD for a file (the common case of transfers), one short listing more for a directory.
 * A key that is both a file and a prefix (possible in S3, written by other tools) counts as the file.
 */
export async function kindOf(ctx: S3Context, path: string, checksums = false): Promise<PathKind> {
  if (path !== '/') {
    const head = await headFile(ctx, path, checksums);
    if (head !== undefined) return { kind: 'file', head };
  }
  const probe = await probeDir(ctx, path);
  return probe.exists ? { kind: 'directory', probe } : { kind: 'none' };
}

/** Throws ENOENT unless `path` is an existing directory (ENOTDIR when it is a file). */
export async function requireDirectory(ctx: S3Context, path: string, syscall: string, reported = path): Promise<void> {
  if (path === '/') return;
  const k = await kindOf(ctx, path);
  if (k.kind === 'file') throw fsError('ENOTDIR', syscall, reported);
  if (k.kind === 'none') throw fsError('ENOENT', syscall, reported);
}

import { Readable, Transform } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { attachFileSize, fsError, type ReadStreamOptions } from '@ftp/vfs';
import type { S3Context } from './context.js';
import { isNotFound, s3CodeOf, httpStatusOf, toS3Error } from './errors.js';
import { probeDir } from './objects.js';

/** The HTTP Range header of a byte range (`end` inclusive), or undefined for the whole object. */
function rangeHeader(start: number, end: number | undefined): string | undefined {
  if (start === 0 && end === undefined) return undefined;
  return `bytes=${start}-${end ?? ''}`;
}

/** Options of {@link openDownload}. */
export interface DownloadOptions extends ReadStreamOptions {
  /** Fail (EBUSY) when the object is no longer this version (If-Match), e.g. while its bytes are re-uploaded. */
  ifMatch?: string;
  /** Aborts the request. */
  signal?: AbortSignal;
}

/**
 * Streams an object, or a byte range of it, with one ranged GET: the response body is returned as it arrives
 * (backpressure reaches the socket), never buffered. A range past the end yields an empty stream (S3 answers 416).
 *
 * @throws VfsError EISDIR for a directory, ENOENT for a missing file.
 */
export async function openDownload(ctx: S3Context, path: string, options: DownloadOptions = {}): Promise<Readable> {
  if (path === '/') throw fsError('EISDIR', 'open', path);
  const start = options.start ?? 0;
  if (options.end !== undefined && options.end < start) return Readable.from([]);
  // The store must begin its answer within metadataTimeoutMs, retries included: only the body is paced by the FTP
  // client, and a store that accepts connections and never answers held a RETR for the client's socket timeout (300 s).
  const firstAnswer = new AbortController();
  const deadline = setTimeout(() => firstAnswer.abort(new Error('the store did not answer in time')), ctx.options.metadataTimeoutMs);
  const signal = options.signal === undefined ? firstAnswer.signal : AbortSignal.any([options.signal, firstAnswer.signal]);
  try {
    const out = await ctx.client
      .send(
        new GetObjectCommand({ Bucket: ctx.bucket, Key: ctx.keys.fileKey(path), Range: rangeHeader(start, options.end), IfMatch: options.ifMatch }),
        { abortSignal: signal },
      )
      .finally(() => clearTimeout(deadline));
    const body = out.Body;
    if (body === undefined) return Readable.from([]);
    // In Node the SDK's body is the http.IncomingMessage itself (a Readable).
    const stream = body as unknown as Readable;
    // The whole object: its size is that of the version this GET reads. A stat made after it could see a newer
    // version (an upload that replaced the file meanwhile), and the server would send this body cut to that size.
    if (start === 0 && options.end === undefined && out.ContentLength !== undefined) return attachFileSize(stream, out.ContentLength);
    if (options.end !== undefined && (out.ContentLength ?? 0) > options.end - start + 1) {
      // Some stores answer a range they do not handle with more than asked (s3rver sends the whole object for
      // `bytes=0-0`): cut the excess rather than hand it on.
      return limitStream(stream, options.end - start + 1);
    }
    return stream;
  } catch (err) {
    if (s3CodeOf(err) === 'InvalidRange' || httpStatusOf(err) === 416) return Readable.from([]);
    if (isNotFound(err)) {
      if ((await probeDir(ctx, path)).exists) throw fsError('EISDIR', 'open', path);
      throw fsError('ENOENT', 'open', path);
    }
    throw toS3Error(err, path, 'open');
  }
}

/** Passes the first `limit` bytes of `source` and then ends (destroying the source). */
function limitStream(source: Readable, limit: number): Readable {
  let left = limit;
  const cut = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (left <= 0) return cb();
      const part = chunk.length <= left ? chunk : chunk.subarray(0, left);
      left -= part.length;
      cb(null, part);
      if (left <= 0) {
        cut.end();
        source.unpipe(cut);
        source.destroy();
      }
    },
  });
  source.on('error', (err) => cut.destroy(err));
  cut.on('close', () => source.destroy());
  return source.pipe(cut);
}

import { VfsError, type VfsErrorCode } from '@ftp/vfs';

/** S3 error codes (the `Code` of an error response, the `name` of the SDK's exception) with a contract equivalent. */
const S3_CODES: Record<string, VfsErrorCode> = {
  NoSuchKey: 'ENOENT',
  NotFound: 'ENOENT',
  NoSuchUpload: 'ENOENT',
  AccessDenied: 'EACCES',
  Forbidden: 'EACCES',
  AllAccessDisabled: 'EACCES',
  InvalidAccessKeyId: 'EACCES',
  SignatureDoesNotMatch: 'EACCES',
  ExpiredToken: 'EACCES',
  InvalidToken: 'EACCES',
  AccountProblem: 'EACCES',
  InvalidObjectState: 'EACCES',
  KeyTooLongError: 'ENAMETOOLONG',
  EntityTooLarge: 'ENOSPC',
  QuotaExceeded: 'EDQUOT',
  XMinioStorageFull: 'ENOSPC',
  NotImplemented: 'ENOTSUP',
  MethodNotAllowed: 'ENOTSUP',
  // The SDK retried these already (its standard retry strategy); what is left is a busy store.
  SlowDown: 'EBUSY',
  Throttling: 'EBUSY',
  ThrottlingException: 'EBUSY',
  RequestLimitExceeded: 'EBUSY',
  ServiceUnavailable: 'EBUSY',
  PreconditionFailed: 'EBUSY',
  // A conditional write that raced another write of the same key (S3: fetch the ETag and retry).
  ConditionalRequestConflict: 'EBUSY',
  OperationAborted: 'EBUSY',
  InvalidArgument: 'EINVAL',
};

/** HTTP statuses that say enough when the body had no code (HEAD responses have no body). */
const HTTP_CODES: Record<number, VfsErrorCode> = {
  403: 'EACCES',
  404: 'ENOENT',
  412: 'EBUSY',
  501: 'ENOTSUP',
  503: 'EBUSY',
};

/** The S3 error code of an SDK error (`name`, or `Code` for errors the SDK could not model), if it has one. */
export function s3CodeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { name?: unknown; Code?: unknown };
  if (typeof e.Code === 'string') return e.Code;
  return typeof e.name === 'string' ? e.name : undefined;
}

/** The HTTP status of an SDK error, if the request got a response. */
export function httpStatusOf(err: unknown): number | undefined {
  const status = (err as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/** True for an S3 "no such key" (GET's NoSuchKey, HEAD's bare 404). */
export function isNotFound(err: unknown): boolean {
  const code = s3CodeOf(err);
  return code === 'NoSuchKey' || code === 'NotFound' || (httpStatusOf(err) === 404 && code !== 'NoSuchBucket' && code !== 'NoSuchUpload');
}

/** True when the store does not implement a request (s3rver and some gateways lack UploadPartCopy). */
export function isNotImplemented(err: unknown): boolean {
  const code = s3CodeOf(err);
  return code === 'NotImplemented' || code === 'MethodNotAllowed' || httpStatusOf(err) === 501;
}

/** True when a condition (If-Match, If-None-Match, x-amz-copy-source-if-match) did not hold: 412, or S3's 409. */
export function isPreconditionFailed(err: unknown): boolean {
  const code = s3CodeOf(err);
  return code === 'PreconditionFailed' || code === 'ConditionalRequestConflict' || httpStatusOf(err) === 412;
}

/**
 * True for an answer that may mean "this store does not take that condition header" (NotImplemented, 501, or a
 * 400 such as InvalidArgument / InvalidRequest): the driver then repeats the request without the header.
 */
export function isConditionRefused(err: unknown): boolean {
  if (isNotImplemented(err)) return true;
  const code = s3CodeOf(err);
  return httpStatusOf(err) === 400 && (code === 'InvalidArgument' || code === 'InvalidRequest' || code === 'NotImplemented' || code === 'BadRequest');
}

/**
 * Turns anything an S3 call threw into a {@link VfsError} naming `path`: S3 codes by the table above, then the HTTP
 * status; everything else is EIO with the S3 code and message kept (`EIO: S3 InternalError: ...`) so an operator can
 * tell what the store said. A `VfsError` passes through. The original is the `cause`.
 */
export function toS3Error(err: unknown, path: string, syscall?: string): VfsError {
  if (VfsError.isInstance(err)) return err;
  const s3Code = s3CodeOf(err);
  const status = httpStatusOf(err);
  let code: VfsErrorCode | undefined = s3Code === undefined ? undefined : S3_CODES[s3Code];
  if (code === undefined && status !== undefined && s3Code !== 'NoSuchBucket') code = HTTP_CODES[status];
  const message = err instanceof Error ? err.message : String(err);
  const options = { path, cause: err, ...(syscall === undefined ? {} : { syscall }) };
  if (code === undefined) {
    // Node's own network errors (ECONNREFUSED, ECONNRESET...) also land here: the store is unreachable.
    const what = s3Code === undefined || s3Code === 'Error' ? '' : `${s3Code}: `;
    return new VfsError('EIO', `EIO: S3 ${what}${message}${status === undefined ? '' : ` (HTTP ${status})`}, '${path}'`, options);
  }
  return new VfsError(code, `${code}: S3 ${s3Code ?? `HTTP ${status}`}: ${message}, '${path}'`, options);
}

import { VfsError, VFS_ERROR_CODES } from '@ftp/vfs';
import type { VfsErrorCode } from '@ftp/vfs';

const CODES = new Set<string>(VFS_ERROR_CODES);

/** True when a script's status is a contract error code. */
export function isErrorCode(status: string): status is VfsErrorCode {
  return CODES.has(status);
}

/**
 * A contract error for a failure of Redis itself: a full server (`OOM command not allowed` under `maxmemory`)
 * becomes ENOSPC, so the FTP client gets 452 (552 once an upload has begun) rather than a generic failure; anything
 * else EIO.
 */
export function redisError(err: unknown, syscall: string, path?: string): VfsError {
  if (VfsError.isInstance(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code: VfsErrorCode = message.startsWith('OOM') ? 'ENOSPC' : 'EIO';
  return new VfsError(code, `${code}: redis: ${message}, ${syscall}${path === undefined ? '' : ` '${path}'`}`, {
    syscall,
    ...(path === undefined ? {} : { path }),
    cause: err,
  });
}

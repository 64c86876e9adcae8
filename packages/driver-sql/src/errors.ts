import { errorCodeOf, toVfsError, VfsError } from '@ftp/vfs';
import type { VfsErrorCode } from '@ftp/vfs';

/** PostgreSQL SQLSTATEs with a contract equivalent. */
const PG: Record<string, VfsErrorCode> = {
  '23505': 'EEXIST', // unique_violation
  '42501': 'EACCES', // insufficient_privilege
  '28000': 'EACCES', // invalid_authorization_specification
  '28P01': 'EACCES', // invalid_password
  '40001': 'EBUSY', // serialization_failure
  '40P01': 'EBUSY', // deadlock_detected
  '55P03': 'EBUSY', // lock_not_available
  '53100': 'ENOSPC', // disk_full
  '53200': 'EIO', // out_of_memory
  '25006': 'EROFS', // read_only_sql_transaction (a hot standby)
};

/** MySQL / MariaDB error numbers with a contract equivalent. */
const MYSQL: Record<number, VfsErrorCode> = {
  1062: 'EEXIST', // ER_DUP_ENTRY
  1044: 'EACCES', // ER_DBACCESS_DENIED_ERROR
  1045: 'EACCES', // ER_ACCESS_DENIED_ERROR
  1142: 'EACCES', // ER_TABLEACCESS_DENIED_ERROR
  1143: 'EACCES', // ER_COLUMNACCESS_DENIED_ERROR
  1227: 'EACCES', // ER_SPECIFIC_ACCESS_DENIED_ERROR
  1205: 'EBUSY', // ER_LOCK_WAIT_TIMEOUT
  1213: 'EBUSY', // ER_LOCK_DEADLOCK
  1114: 'ENOSPC', // ER_RECORD_FILE_FULL
  1021: 'ENOSPC', // ER_DISK_FULL
  1290: 'EROFS', // ER_OPTION_PREVENTS_STATEMENT (read_only)
  1792: 'EROFS', // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
};

/** SQLite extended result codes that matter beyond the primary ones `toVfsError` knows. */
const SQLITE_EXTENDED: Record<number, VfsErrorCode> = {
  2067: 'EEXIST', // SQLITE_CONSTRAINT_UNIQUE
  1555: 'EEXIST', // SQLITE_CONSTRAINT_PRIMARYKEY
};

/** Node socket errors of a database that cannot be reached. */
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'PROTOCOL_SEQUENCE_TIMEOUT', 'PROTOCOL_CONNECTION_LOST']);

/** The contract code of a database error, or undefined when it is not one this module knows. */
export function dbErrorCode(err: unknown): VfsErrorCode | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; errno?: unknown; errcode?: unknown; severity?: unknown; sqlState?: unknown };
  if (typeof e.code === 'string' && typeof e.severity === 'string') return PG[e.code] ?? 'EIO';
  if (typeof e.errno === 'number' && typeof e.sqlState === 'string') return MYSQL[e.errno] ?? 'EIO';
  if (e.code === 'ERR_SQLITE_ERROR' && typeof e.errcode === 'number') return SQLITE_EXTENDED[e.errcode] ?? errorCodeOf(err);
  if (typeof e.code === 'string' && NETWORK.has(e.code)) return 'EIO';
  if (err instanceof AggregateError) return err.errors.map(dbErrorCode).find((c) => c !== undefined);
  return undefined;
}

/** True for a lock conflict worth retrying the transaction for (deadlock, serialization failure, busy). */
export function isRetryable(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown; errcode?: unknown };
  if (e === null || typeof e !== 'object') return false;
  if (e.code === '40P01' || e.code === '40001') return true;
  if (e.errno === 1213 || e.errno === 1205) return true;
  return e.code === 'ERR_SQLITE_ERROR' && typeof e.errcode === 'number' && (e.errcode & 0xff) === 5;
}

/** True for a unique-key violation (two writers created the same name at once). */
export function isUniqueViolation(err: unknown): boolean {
  return dbErrorCode(err) === 'EEXIST';
}

/** The message of an error, or of the first of an AggregateError (pg reports a refused IPv4+IPv6 connect so). */
function messageOf(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return messageOf(err.errors[0]);
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const text = err.message !== '' ? err.message : 'failed';
    return typeof code === 'string' && !text.includes(code) ? `${text} (${code})` : text;
  }
  return String(err);
}

/**
 * Turns a database failure into a {@link VfsError} whose message says what failed and where (the database URL,
 * password removed): `EACCES: @ftp/driver-sql: postgres://app@db:5432/files: permission denied for table x`.
 * Errors that already are VfsErrors pass through.
 */
export function dbError(err: unknown, where: string, path?: string): VfsError {
  if (VfsError.isInstance(err)) {
    if (path === undefined || err.path === path) return err;
    // Our own database errors keep their message (it names the database, never a password); others are rebuilt
    // around the virtual path.
    if (err.message.includes('@ftp/driver-sql: ')) return new VfsError(err.code, err.message, { path, cause: err.cause });
    return toVfsError(err, path);
  }
  const code = dbErrorCode(err);
  if (code === undefined) return toVfsError(err, path);
  const options = path === undefined ? { cause: err } : { cause: err, path };
  return new VfsError(code, `${code}: @ftp/driver-sql: ${where}: ${messageOf(err)}`, options);
}

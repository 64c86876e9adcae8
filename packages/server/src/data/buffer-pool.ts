/**
 * Reused buffers for sending files: a fresh 256 KiB buffer per chunk costs an allocation, page faults and garbage
 * collection, which on a busy server costs more than the copy into the socket. Bounded, so an idle server keeps
 * at most a few MiB.
 */
import { TRANSFER_CHUNK_SIZE } from '@ftp/vfs';

const KEPT = 32;
const free: Buffer[] = [];

/** A buffer of TRANSFER_CHUNK_SIZE bytes (contents undefined); give it back with {@link releaseBuffer}. */
export function takeBuffer(): Buffer {
  return free.pop() ?? Buffer.allocUnsafeSlow(TRANSFER_CHUNK_SIZE);
}

/** Returns a buffer once nothing reads or writes it any more. */
export function releaseBuffer(buffer: Buffer): void {
  if (free.length < KEPT) free.push(buffer);
}

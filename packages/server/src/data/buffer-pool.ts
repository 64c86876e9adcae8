/**
 * Reused buffers for sending files: a fresh 256 KiB buffer per chunk costs an allocation, page faults and garbage
 * collection, which on a busy server costs more than the copy into the socket. Bounded, so an idle server keeps
 * at most a few MiB.
 */
import { TRANSFER_CHUNK_SIZE } from '@ftp/vfs';

const KEPT = 32;
const free: Buffer[] = [];

/**
 * Size of the buffers of a big file's download. Each read is a thread-pool round trip (~150 µs of latency on a
 * 2-core VM), and a download waits for one read per buffer: with 256 KiB that alone caps a download near
 * 1.7 GB/s, with 1 MiB near 5 GB/s. Two per download, so they are kept for big files only, and few are kept idle.
 */
export const BIG_CHUNK_SIZE = 1024 * 1024;
/** Files from this size on are sent through {@link BIG_CHUNK_SIZE} buffers. */
export const BIG_FILE_SIZE = 8 * 1024 * 1024;
const KEPT_BIG = 4;
const freeBig: Buffer[] = [];
/**
 * Big buffers in use at most (64 MiB): past that, downloads get the 256 KiB ones, so a thousand big downloads at
 * once cost no more memory than they did before big buffers existed.
 */
export const MAX_BIG_IN_USE = 64;
let bigInUse = 0;

/**
 * Size of the buffer an upload starts reading into: a small file fits in it whole, and a client that opens an
 * upload and sends nothing holds no more than this.
 */
export const FIRST_UPLOAD_SIZE = 64 * 1024;
const KEPT_FIRST = 64;
const freeFirst: Buffer[] = [];

/** A buffer of {@link FIRST_UPLOAD_SIZE} bytes (contents undefined); give it back with {@link releaseBuffer}. */
export function takeFirstUploadBuffer(): Buffer {
  return freeFirst.pop() ?? Buffer.allocUnsafeSlow(FIRST_UPLOAD_SIZE);
}

/**
 * A buffer of TRANSFER_CHUNK_SIZE bytes, or of BIG_CHUNK_SIZE when `big` is asked for and fewer than
 * {@link MAX_BIG_IN_USE} are out (contents undefined); give it back with {@link releaseBuffer}.
 */
export function takeBuffer(big = false): Buffer {
  if (big && bigInUse < MAX_BIG_IN_USE) {
    bigInUse++;
    return freeBig.pop() ?? Buffer.allocUnsafeSlow(BIG_CHUNK_SIZE);
  }
  return free.pop() ?? Buffer.allocUnsafeSlow(TRANSFER_CHUNK_SIZE);
}

/**
 * Gives up a buffer that something may still read or write (an upload destroyed with writes in flight): it is
 * left to the garbage collector, never handed out again, and no longer counts as in use.
 */
export function forgetBuffer(buffer: Buffer): void {
  if (buffer.length === BIG_CHUNK_SIZE) bigInUse--;
}

/** Returns a buffer once nothing reads or writes it any more. */
export function releaseBuffer(buffer: Buffer): void {
  if (buffer.length === BIG_CHUNK_SIZE) {
    bigInUse--;
    if (freeBig.length < KEPT_BIG) freeBig.push(buffer);
  } else if (buffer.length === FIRST_UPLOAD_SIZE) {
    if (freeFirst.length < KEPT_FIRST) freeFirst.push(buffer);
  } else if (free.length < KEPT) free.push(buffer);
}

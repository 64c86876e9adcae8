/**
 * Reused buffers for sending files: a fresh 256 KiB buffer per chunk costs an allocation, page faults and garbage
 * collection, which on a busy server costs more than the copy into the socket. Each size keeps a few free buffers
 * when idle and, for a while, as many as its recent peak use under load (see {@link ReusedBuffers}).
 */
import { TRANSFER_CHUNK_SIZE } from '@ftp/vfs';
import { ReusedBuffers } from './reused-buffers.js';

/** Extra buffers kept after a burst go 10–20 s after it (one or two of these windows). */
const WINDOW_MS = 10_000;

/** Free buffers of each size are bounded at 64 MiB. */
const chunks = new ReusedBuffers(TRANSFER_CHUNK_SIZE, 32, 256, WINDOW_MS);

/**
 * Size of the buffers of a big file's download. Each read is a thread-pool round trip (~150 µs of latency on a
 * 2-core VM), and a download waits for one read per buffer: with 256 KiB that alone caps a download near
 * 1.7 GB/s, with 1 MiB near 5 GB/s. Two per download, so they are kept for big files only, and few are kept idle.
 */
export const BIG_CHUNK_SIZE = 1024 * 1024;
/** Files from this size on are sent through {@link BIG_CHUNK_SIZE} buffers. */
export const BIG_FILE_SIZE = 8 * 1024 * 1024;
/**
 * Big buffers in use at most (64 MiB): past that, downloads get the 256 KiB ones, so a thousand big downloads at
 * once cost no more memory than they did before big buffers existed.
 */
export const MAX_BIG_IN_USE = 64;
const bigChunks = new ReusedBuffers(BIG_CHUNK_SIZE, 4, MAX_BIG_IN_USE, WINDOW_MS);

/**
 * Size of the buffer an upload starts reading into: a small file fits in it whole, and a client that opens an
 * upload and sends nothing holds no more than this.
 */
export const FIRST_UPLOAD_SIZE = 64 * 1024;
const firstUploads = new ReusedBuffers(FIRST_UPLOAD_SIZE, 64, 1024, WINDOW_MS);

/** A buffer of {@link FIRST_UPLOAD_SIZE} bytes (contents undefined); give it back with {@link releaseBuffer}. */
export function takeFirstUploadBuffer(): Buffer {
  return firstUploads.take();
}

/**
 * A buffer of TRANSFER_CHUNK_SIZE bytes, or of BIG_CHUNK_SIZE when `big` is asked for and fewer than
 * {@link MAX_BIG_IN_USE} are out (contents undefined); give it back with {@link releaseBuffer}.
 */
export function takeBuffer(big = false): Buffer {
  return big && bigChunks.inUse < MAX_BIG_IN_USE ? bigChunks.take() : chunks.take();
}

/**
 * Gives up a buffer that something may still read or write (an upload destroyed with writes in flight): it is
 * left to the garbage collector, never handed out again, and no longer counts as in use.
 */
export function forgetBuffer(buffer: Buffer): void {
  poolOf(buffer).forget(buffer);
}

/** Returns a buffer once nothing reads or writes it any more. */
export function releaseBuffer(buffer: Buffer): void {
  poolOf(buffer).release(buffer);
}

function poolOf(buffer: Buffer): ReusedBuffers {
  return buffer.length === BIG_CHUNK_SIZE ? bigChunks : buffer.length === FIRST_UPLOAD_SIZE ? firstUploads : chunks;
}

import type { Socket } from 'node:net';
import type { UploadStream } from '@ftp/vfs';
import { BIG_CHUNK_SIZE, forgetBuffer, releaseBuffer, takeBuffer } from './buffer-pool.js';
import { readIntoBuffers } from './pooled-reads.js';
import type { Transfer } from './transfer.js';

/**
 * Bytes an upload may have handed to storage and not yet had back, before the socket is paused: two big
 * buffers (a disk write of one while the next is read), or four of the 256 KiB ones once big buffers run out
 * (as much as the ordinary path buffers).
 */
function inFlightLimit(buffer: Buffer): number {
  return buffer.length === BIG_CHUNK_SIZE ? 2 * BIG_CHUNK_SIZE : 4 * buffer.length;
}

/** A socket feeding an upload through reused buffers; {@link dispose} once the upload has finished or failed. */
export interface PooledFeed {
  dispose(): void;
}

/**
 * Feeds the data socket into `upload` through the shared transfer buffers, for plain (unencoded, unencrypted)
 * uploads to storage that lets chunk memory be reused ({@link UploadStream.releasesChunks}). A buffer goes back to
 * the pool once storage has called back for it. Returns null, changing nothing, when the socket cannot be read
 * this way: the caller pipes it as usual.
 */
export function feedThroughBuffers(transfer: Transfer, socket: Socket, upload: UploadStream): PooledFeed | null {
  /** Buffers handed to storage whose write has not called back. */
  const held = new Set<Buffer>();
  let heldBytes = 0;
  let paused = false;
  let disposed = false;
  let target = takeBuffer(true);
  const onWritten = (buffer: Buffer): void => {
    if (disposed) return;
    held.delete(buffer);
    heldBytes -= buffer.length;
    releaseBuffer(buffer);
    if (paused && heldBytes < inFlightLimit(target) && !socket.destroyed) {
      paused = false;
      socket.resume();
    }
  };
  const earlier = readIntoBuffers(
    socket,
    target,
    () => (target = takeBuffer(true)),
    (bytes, buffer) => {
      transfer.progress(bytes.length);
      held.add(buffer);
      heldBytes += buffer.length;
      // write()'s answer is not the limit: the bytes held are (the upload's own buffer would stop at one chunk).
      upload.write(bytes, () => onWritten(buffer));
      if (heldBytes < inFlightLimit(buffer)) return true;
      paused = true;
      return false;
    },
  );
  if (earlier === null) {
    releaseBuffer(target);
    return null;
  }
  for (const chunk of earlier) {
    transfer.progress(chunk.length);
    upload.write(chunk);
  }
  socket.resume();
  return {
    dispose(): void {
      if (disposed) return;
      disposed = true;
      // Storage may still write from a buffer it has not called back for: those are never reused. The buffer
      // being read into is free once the socket can read no more (its end was read, or it is closed).
      for (const buffer of held) forgetBuffer(buffer);
      held.clear();
      if (socket.destroyed || socket.readableEnded) releaseBuffer(target);
      else forgetBuffer(target);
    },
  };
}

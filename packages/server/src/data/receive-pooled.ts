import type { Socket } from 'node:net';
import type { UploadStream } from '@ftp/vfs';
import { BIG_CHUNK_SIZE, FIRST_UPLOAD_SIZE, forgetBuffer, releaseBuffer, takeBuffer, takeFirstUploadBuffer } from './buffer-pool.js';
import { readIntoBuffers } from './pooled-reads.js';
import type { Transfer } from './transfer.js';

/**
 * Room a buffer must have left to be read into: below it the next buffer is taken. TLS hands over at most a
 * 16 KiB record per read, a socket what it holds (often the whole buffer when storage is the slower side).
 */
const MIN_ROOM = 64 * 1024;

/**
 * Bytes read before storage is handed them as one write (less when the buffer is smaller): each write is a
 * thread-pool round trip, ~14 µs of the event loop's time on a 2-core VM, and a TLS upload reads 16 KiB records, so
 * a write per record cost 0.9 s per GiB, more than the decryption.
 */
const HAND_AT = 256 * 1024;

/**
 * Longest a slow upload's bytes wait for the rest of a write's worth (ms): storage gets them at least this often.
 * Storage that sees no write for seconds takes the upload for one whose client is gone (a newcomer, a DELE or an
 * RNTO of the file may then end it: see WRITER_TAKEOVER_IDLE_MS in @ftp/vfs); below ~50 KiB/s, 256 KiB took longer.
 */
const SLOW_HAND_MS = 1000;

/**
 * Feeds with bytes storage may not have been handed yet, each with its check: bytes that arrive and are followed by
 * nothing (a client that sent a little and paused) would otherwise wait for the next read, and storage, seeing no
 * write, would take the upload for one whose client is gone and let a newcomer end it with those bytes unwritten.
 * One timer for all of them, running only while there are any.
 */
const slowFeeds = new Set<() => void>();
let slowSweep: NodeJS.Timeout | null = null;

function watchSlowFeed(check: () => void): void {
  slowFeeds.add(check);
  if (slowSweep !== null) return;
  slowSweep = setInterval(() => {
    for (const c of slowFeeds) c();
    if (slowFeeds.size === 0 && slowSweep !== null) {
      clearInterval(slowSweep);
      slowSweep = null;
    }
  }, SLOW_HAND_MS / 2);
  slowSweep.unref();
}

/** Buffers an upload keeps for itself between two reads, rather than giving them back to the pool and taking again. */
const SPARES = 2;

/**
 * Bytes of full buffers an upload may have waiting on storage before the socket is paused: two big buffers, or
 * four of the 256 KiB ones once big buffers run out (about what the ordinary path buffers).
 */
function waitingLimit(buffer: Buffer): number {
  return buffer.length === BIG_CHUNK_SIZE ? 2 * BIG_CHUNK_SIZE : 4 * Math.max(buffer.length, FIRST_UPLOAD_SIZE);
}

/**
 * Someone to take the rest of an upload over once it proved big (see receive-file.ts): small files never leave
 * the event loop's thread.
 */
export interface HandOff {
  /** Bytes read here first. */
  readonly after: number;
  /**
   * Called once those arrived and storage has stored all of them, with the socket paused (its end not read yet).
   * `resume` reads on here: called once the taker is done with the socket (at its end, which is then read here), or
   * at once when it cannot take the upload after all. Not called after a failure the caller reports otherwise.
   */
  take(resume: () => void): void;
}

/** A socket feeding an upload through reused buffers. */
export interface PooledFeed {
  /** Hands storage what was read and not yet handed over: call at the end of the data, before `upload.end()`. */
  flush(): void;
  /**
   * {@link flush}, then resolves once storage has called back for every write it was handed (at once when none is
   * pending), or after `waitMs`: an interrupted upload written in place keeps all that arrived before it is ended.
   */
  settle(waitMs: number): Promise<void>;
  /** Once the upload has finished or failed: buffers go back to the pool, or are forgotten if still in use. */
  dispose(): void;
}

/**
 * Feeds the data socket into `upload` through the shared transfer buffers, for unencoded uploads to storage that
 * lets chunk memory be reused ({@link UploadStream.releasesChunks}), in clear or over TLS.
 *
 * Reads fill a buffer one after the other; whenever storage has nothing in hand and {@link HAND_AT} bytes have
 * arrived since its last write, it gets them in one chunk (the rest at the end of the data, or when the buffer is
 * full). So a fast disk gets a write per 256 KiB however small the reads (TLS reads are 16 KiB records), and a disk
 * slower than the network gets fewer, bigger ones. A buffer goes back to the pool once storage has called back for
 * every chunk of it. Returns null, changing nothing, when the socket
 * cannot be read this way: the caller pipes it as usual.
 */
export function feedThroughBuffers(transfer: Transfer, socket: Socket, upload: UploadStream, handOff?: HandOff): PooledFeed | null {
  // A small buffer first: a client that opens an upload and sends nothing, or a small file, must not hold one of
  // the few big buffers downloads share. Those follow once it is full.
  let target = takeFirstUploadBuffer();
  /** Bigger buffers done with, kept for the next ones this upload needs. */
  const spares: Buffer[] = [];
  /** Done with `buffer`: kept as a spare, or back to the pool. */
  const recycle = (buffer: Buffer): void => {
    if (buffer.length > FIRST_UPLOAD_SIZE && spares.length < SPARES) spares.push(buffer);
    else releaseBuffer(buffer);
  };
  /** Bytes read into `target`, and how many of them storage has been handed. */
  let filled = 0;
  let handed = 0;
  /** Writes storage has not called back for, per buffer (none listed: storage has nothing in hand). */
  const pending = new Map<Buffer, number>();
  /** Bytes of buffers no longer read into whose writes are pending (a few buffers at most). */
  const waiting = (): number => {
    let bytes = 0;
    for (const buffer of pending.keys()) if (buffer !== target) bytes += buffer.length;
    return bytes;
  };
  let paused = false;
  let disposed = false;
  /** Called once storage has nothing in hand (see `settle`). */
  let onIdle: (() => void) | null = null;
  /** The hand-off: still ahead, waiting for storage to store what was read, or done with (it happens once at most). */
  let handOffState: 'ahead' | 'waiting' | 'done' = handOff === undefined ? 'done' : 'ahead';
  /** Storage has stored everything read: the taker gets the socket (paused since the last read). */
  const offerIfIdle = (): void => {
    if (handOffState !== 'waiting' || pending.size > 0 || disposed) return;
    handOffState = 'done';
    handOff!.take(() => {
      if (disposed || socket.destroyed) return;
      paused = false;
      socket.resume();
    });
  };

  /** When storage was last handed a write (a slow upload's bytes go at least every SLOW_HAND_MS). */
  let handedAt = performance.now();
  const enoughToHand = (): boolean => filled - handed >= Math.min(HAND_AT, target.length / 2) || performance.now() - handedAt >= SLOW_HAND_MS;
  const hand = (): void => {
    if (filled === handed) return;
    handedAt = performance.now();
    const buffer = target;
    const chunk = buffer.subarray(handed, filled);
    handed = filled;
    pending.set(buffer, (pending.get(buffer) ?? 0) + 1);
    upload.write(chunk, (err) => written(buffer, err));
  };
  const written = (buffer: Buffer, err?: Error | null): void => {
    if (disposed) return;
    // A failed write leaves a gap where its bytes belonged: nothing may be handed off after it (the upload fails).
    if (err) handOffState = 'done';
    const left = pending.get(buffer)! - 1;
    if (left > 0) pending.set(buffer, left);
    else {
      pending.delete(buffer);
      if (buffer !== target) recycle(buffer);
    }
    if (onIdle !== null) {
      if (pending.size === 0) onIdle();
      return;
    }
    if (pending.size === 0 && enoughToHand()) hand();
    if (handOffState === 'waiting') return offerIfIdle();
    if (paused && waiting() < waitingLimit(target) && !socket.destroyed) {
      paused = false;
      socket.resume();
    }
  };
  const earlier = readIntoBuffers(
    socket,
    target,
    // The next read lands after the bytes already there.
    () => target.subarray(filled),
    (length) => {
      // After dispose (the upload failed), TLS still hands over the records it had decrypted: dropped, and no buffer
      // is taken from the pool for them (it would never go back).
      if (disposed) return false;
      transfer.progress(length);
      filled += length;
      if (pending.size === 0 && enoughToHand()) hand();
      if (target.length - filled < Math.min(MIN_ROOM, target.length / 4)) {
        hand();
        const full = target;
        target = spares.pop() ?? takeBuffer(true);
        filled = handed = 0;
        // Still written from: recycled by its last callback.
        if (!pending.has(full)) recycle(full);
      }
      if (handOffState === 'ahead' && transfer.bytes >= handOff!.after) {
        // Everything read goes to storage now; once stored, the rest of the socket is the taker's.
        hand();
        handOffState = 'waiting';
        paused = true;
        queueMicrotask(offerIfIdle);
        return false;
      }
      if (waiting() < waitingLimit(target)) return true;
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
  const handIfDue = (): void => {
    if (!disposed && pending.size === 0 && filled > handed && performance.now() - handedAt >= SLOW_HAND_MS) hand();
  };
  watchSlowFeed(handIfDue);
  socket.resume();
  return {
    flush: hand,
    settle(waitMs: number): Promise<void> {
      if (disposed) return Promise.resolve();
      hand();
      if (pending.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, waitMs);
        timer.unref();
        function done(): void {
          clearTimeout(timer);
          onIdle = null;
          resolve();
        }
        onIdle = done;
      });
    },
    dispose(): void {
      if (disposed) return;
      disposed = true;
      slowFeeds.delete(handIfDue);
      // Storage may still write from a buffer it has not called back for: those are never reused. The buffer
      // being read into is free once the socket can read no more (its end was read, or it is closed).
      for (const buffer of pending.keys()) forgetBuffer(buffer);
      if (!pending.has(target)) {
        if (socket.destroyed || socket.readableEnded) releaseBuffer(target);
        else forgetBuffer(target);
      }
      pending.clear();
      for (const buffer of spares.splice(0)) releaseBuffer(buffer);
    },
  };
}

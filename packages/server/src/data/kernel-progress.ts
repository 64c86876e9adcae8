/**
 * What a transfer moved by the kernel on @ftp/native's threads (send-file.ts, receive-file.ts) needs from the event
 * loop: its bytes counted as progress (STAT, the stall timer, the transfer event), and a cancel when the data
 * socket closes (ABOR, a stall, the client's reset): the addon holds its own copy of the socket, which nothing else
 * would end.
 */
import type { Socket } from 'node:net';
import type { Transfer } from './transfer.js';

/** How often the bytes are counted: well under the stall timeout's one second. */
const PROGRESS_INTERVAL_MS = 250;

/** A kernel transfer being followed: `count()` counts now and returns the total; `stop()` once it has ended. */
export interface KernelProgress {
  count(): number;
  stop(): void;
}

/**
 * Follows a kernel transfer whose bytes so far `moved()` reads, cancelled by `cancel`; `onMore` runs whenever a
 * count found more. Not unref'd: the addon's completion does not hold the event loop, and a process closing
 * meanwhile must still see the transfer end (its event and log line).
 */
export function followKernelTransfer(transfer: Transfer, socket: Socket, moved: () => number, cancel: () => void, onMore?: () => void): KernelProgress {
  socket.once('close', cancel);
  let counted = 0;
  const count = (): number => {
    const now = moved();
    if (now > counted) {
      transfer.progress(now - counted);
      counted = now;
      onMore?.();
    }
    return counted;
  };
  const timer = setInterval(count, PROGRESS_INTERVAL_MS);
  // STAT reads the count at once: up to a quarter of a second late, it said 0 bytes of a download under way.
  transfer.countKernelProgress = count;
  return {
    count,
    stop() {
      clearInterval(timer);
      socket.off('close', cancel);
      transfer.countKernelProgress = () => undefined;
    },
  };
}

import { addonFor, addonForReason } from './addon.js';

/** `FTP_MALLOC_TRIM=0` turns {@link trimHeap} off, for A/B measurements. */
const SWITCH = 'FTP_MALLOC_TRIM';

/**
 * Gives the free pages inside the process's malloc heaps back to the system (glibc's `malloc_trim`), and says
 * whether there were any: true if memory was released, false if none was free, null where it cannot be done (the
 * addon is missing, or the C library is not glibc: musl has no such call; {@link trimHeapUnavailableReason} says
 * which; `FTP_MALLOC_TRIM=0` in the environment also turns it off).
 *
 * Why: glibc returns freed memory to the kernel on its own only from the top of a heap. After a burst of work the
 * native parts of a Node server allocate (TLS records, deflate state, SQLite pages, buffers), the freed chunks that
 * sit between live ones keep their pages resident for the life of the process: ~67 MB of a 90 MB heap after 30
 * sessions' uploads and downloads, measured. The allocations still in use stay where they are; the cost is that
 * later allocations fault the released pages in again, so call it after a burst, when the process is quiet, not
 * on a timer that runs under load. It walks every arena and holds each one's lock while it does: a few
 * milliseconds after a server's burst (1–7 ms measured in ftpd), ~15 ms for 200 MB freed in 32 KiB holes, ~120 ms
 * for 400 MB in 256-byte ones: its time grows with the number of free chunks.
 *
 * @example
 * ```ts
 * import { trimHeap } from '@ftp/native';
 * // after the server has been idle for a while:
 * trimHeap(); // true: pages went back; RSS falls by what malloc held free
 * ```
 */
export function trimHeap(): boolean | null {
  const native = addonFor(SWITCH);
  if (native === null || !native.HAS_MALLOC_TRIM) return null;
  return native.trimHeap() === 1;
}

/** Null when {@link trimHeap} works here; otherwise why not. */
export function trimHeapUnavailableReason(): string | null {
  const native = addonFor(SWITCH);
  if (native === null) return addonForReason(SWITCH);
  return native.HAS_MALLOC_TRIM ? null : 'the C library is not glibc (malloc_trim is glibc’s; musl has none)';
}

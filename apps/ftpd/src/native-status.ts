import { sendfileUnavailableReason, trimHeapUnavailableReason } from '@ftp/native';

/**
 * Fields for ftpd's `ready` log line naming what runs without @ftp/native's fast paths, and why: downloads and
 * uploads copying through buffers, and an idle process keeping malloc's free pages (no C compiler at install, a
 * package manager that skipped the addon's build, musl, not Linux). Nothing when they all work. An operator
 * otherwise sees it only as CPU and memory.
 */
export function nativeStatus(): { nativeFastPathsOff?: string; mallocTrimOff?: string } {
  const fastPaths = sendfileUnavailableReason();
  const trim = trimHeapUnavailableReason();
  return {
    ...(fastPaths === null ? {} : { nativeFastPathsOff: fastPaths }),
    ...(trim === null || trim === fastPaths ? {} : { mallocTrimOff: trim }),
  };
}

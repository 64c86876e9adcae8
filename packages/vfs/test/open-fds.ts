import fs from 'node:fs';

/** O_PATH, in /proc/self/fdinfo's octal `flags`. */
const O_PATH = 0o10000000;

/**
 * Descriptors this process has open, the path-only ones (O_PATH) left out: @ftp/native's batch lookups hold one
 * of the folder for the length of a slice (on the listing thread, possibly just after a listing has been closed).
 * It reads nothing and goes with its slice; what these tests watch is the folder's handle and the files.
 */
export function openFds(): string[] {
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      const flags = /^flags:\s*([0-7]+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      return flags === null || (parseInt(flags[1]!, 8) & O_PATH) === 0;
    } catch {
      return false; // closed meanwhile (the listing of /proc/self/fd itself, one on another thread)
    }
  });
}

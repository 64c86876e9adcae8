import type { Stats } from 'node:fs';
import { fsError } from '../errors.js';

/**
 * The local files this process has open for writing, by `dev:ino`: what {@link LocalProvider} checks before an
 * upload writes a byte or a download reads one. It stands in for vsftpd's `lock_upload_files` (fcntl locks), which
 * Node cannot take: a second writer of a file, or a reader of a file being written, is refused with EBUSY (the
 * server's "450 File busy, try again later", RFC 959), so two uploads never interleave their blocks and a download
 * never reads a file that an upload is rewriting under it.
 *
 * One set for the whole process, kept under a registered symbol so that every `LocalProvider` shares it, those of
 * another copy of this package too. A key is taken with the file open (after the `/proc/self/fd` check, before any
 * truncation) and released exactly once, when the descriptor is closed. Its cost is a string and a `Set` lookup
 * per open. It is not seen by other processes (several `ftpd --workers`, or any other program writing the folder).
 */
const writers: Set<string> = ((globalThis as Record<symbol, unknown>)[Symbol.for('@ftp/vfs.LocalProvider.writers')] ??= new Set<string>()) as Set<string>;

/**
 * The registry key of an opened file: its device and inode. Node gives them as doubles, exact up to 2^53; two inodes
 * of one device beyond that could share a key, which errs on the safe side (a needless EBUSY, never two writers).
 */
function keyOf(st: Stats): string {
  return `${st.dev}:${st.ino}`;
}

/**
 * Registers a writer of the opened file `st` and returns the key to release when its descriptor closes.
 * @throws VfsError EBUSY when another writer of this process has the file open.
 */
export function takeWriter(st: Stats, path: string): string {
  const key = keyOf(st);
  if (writers.has(key)) throw fsError('EBUSY', 'open', path);
  writers.add(key);
  return key;
}

/** Releases what {@link takeWriter} took. The caller does it once, when it closes the descriptor. */
export function releaseWriter(key: string): void {
  writers.delete(key);
}

/**
 * Refuses to read the opened file `st` while a writer of this process has it open (readers do not block each other
 * nor writers).
 * @throws VfsError EBUSY
 */
export function refuseIfWritten(st: Stats, path: string): void {
  if (writers.size > 0 && writers.has(keyOf(st))) throw fsError('EBUSY', 'open', path);
}

/** @internal How many files are registered as being written (for tests: it must fall back to 0). */
export function openWriterCount(): number {
  return writers.size;
}

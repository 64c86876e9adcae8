import type { Stats } from 'node:fs';
import { fsError } from '../errors.js';

/**
 * The local files this process has open for writing, by `dev:ino`: what {@link LocalProvider} checks before an
 * upload writes a byte or a download reads one. It stands in for vsftpd's `lock_upload_files` (fcntl locks), which
 * Node cannot take: a second writer of a file, or a reader of a file being written, is refused with EBUSY (the
 * server's "450 File busy, try again later", RFC 959), so two uploads never interleave their blocks and a download
 * never reads a file that an upload is rewriting under it.
 *
 * An upload idle for {@link WRITER_TAKEOVER_IDLE_MS} gives way to the newcomer (its client is most likely gone).
 *
 * One map for the whole process, kept under a registered symbol so that every `LocalProvider` shares it, those of
 * another copy of this package too. A key is taken with the file open (after the `/proc/self/fd` check, before any
 * truncation) and released exactly once, when the descriptor is closed. Its cost is a string and a `Set` lookup
 * per open. It is not seen by other processes (several `ftpd --workers`, or any other program writing the folder).
 */
const writers: Map<string, WriterClaim> = ((globalThis as Record<symbol, unknown>)[Symbol.for('@ftp/vfs.LocalProvider.writers.v2')] ??= new Map<string, WriterClaim>()) as Map<string, WriterClaim>;

/**
 * How long an upload must have written nothing before another writer or a reader of its file may take it over
 * (ms). A client whose connection died without a reset (a Wi-Fi change, a NAT timeout) leaves its upload open until
 * the server's data stall timeout (5 minutes by default); its resume (REST + STOR, APPE) or download would get 450
 * all that time, and clients give up after two or three tries a few seconds apart. An upload this quiet has lost
 * its client, or is so stalled that ending it (the server answers it 451) costs less than refusing the newcomer.
 */
export const WRITER_TAKEOVER_IDLE_MS = 5000;

/** A writer's registration: what {@link takeWriter} returns and {@link releaseWriter} gives back. */
export interface WriterClaim {
  readonly key: string;
  readonly path: string;
  /** When its last write ended (ms, `Date.now()`); 0 while a write is running. */
  idleSince: number;
  /** Ends the writer (an upload stream) so another can take the file; null for one that cannot be (a file handle). */
  revoke: ((err: Error) => void) | null;
}

/**
 * The registry key of an opened file: its device and inode. Node gives them as doubles, exact up to 2^53; two inodes
 * of one device beyond that could share a key, which errs on the safe side (a needless EBUSY, never two writers).
 */
function keyOf(st: Stats): string {
  return `${st.dev}:${st.ino}`;
}

/**
 * Whether the file of `key` is free, after ending its writer if that one has been idle for
 * {@link WRITER_TAKEOVER_IDLE_MS}; false while a writer is active.
 */
function freeOrTakenOver(key: string, path: string): boolean {
  const held = writers.get(key);
  if (held === undefined) return true;
  if (held.revoke === null || held.idleSince === 0 || Date.now() - held.idleSince < WRITER_TAKEOVER_IDLE_MS) return false;
  writers.delete(key);
  held.revoke(fsError('EBUSY', 'write', held.path === path ? path : held.path));
  return true;
}

/**
 * Registers a writer of the opened file `st` and returns its claim, to release when its descriptor closes.
 * @throws VfsError EBUSY when another writer of this process has the file open and is not idle.
 */
export function takeWriter(st: Stats, path: string): WriterClaim {
  const key = keyOf(st);
  if (!freeOrTakenOver(key, path)) throw fsError('EBUSY', 'open', path);
  const claim: WriterClaim = { key, path, idleSince: Date.now(), revoke: null };
  writers.set(key, claim);
  return claim;
}

/** Releases what {@link takeWriter} took, unless another writer has taken the file over since. Once, at close. */
export function releaseWriter(claim: WriterClaim): void {
  if (writers.get(claim.key) === claim) writers.delete(claim.key);
}

/**
 * Refuses to read the opened file `st` while a writer of this process has it open and is not idle (readers do not
 * block each other nor writers).
 * @throws VfsError EBUSY
 */
export function refuseIfWritten(st: Stats, path: string): void {
  if (writers.size > 0 && !freeOrTakenOver(keyOf(st), path)) throw fsError('EBUSY', 'open', path);
}

/** @internal How many files are registered as being written (for tests: it must fall back to 0). */
export function openWriterCount(): number {
  return writers.size;
}

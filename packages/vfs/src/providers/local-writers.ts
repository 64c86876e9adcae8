import type { Stats } from 'node:fs';
import { fsError, takenOverError, VfsError } from '../errors.js';
import { countWhileOpen } from '../streams.js';
import { UPLOAD_HOLD_MS, UploadHolds } from '../upload-holds.js';
import { claimIntact, claimLent, claimRead, claimWrite, lentByOthers, readByOthers, release as releaseShared, sharingFileClaims, writtenByOthers, type SharedClaim } from './shared-claims.js';

/**
 * The local files this process has open, by `dev:ino`: what {@link LocalProvider} checks before an upload writes a
 * byte or a download reads one. It stands in for vsftpd's `lock_upload_files` (fcntl locks), which Node cannot take,
 * both ways: a second writer of a file, a reader of a file being written, and a writer of a file being read are
 * refused with EBUSY (the server's "450 File busy, try again later", RFC 959), so two uploads never interleave their
 * blocks, a download never reads a file that an upload is rewriting under it, and an upload never rewrites a file
 * under a download that is still reading it. Readers do not block each other.
 *
 * An upload idle for {@link WRITER_TAKEOVER_IDLE_MS} gives way to the newcomer (its client is most likely gone).
 * A reader is never taken over: the server ends a stalled download itself (its data stall timeout).
 *
 * Two maps for the whole process (writers, and the count of readers), each kept under a registered symbol so that
 * every `LocalProvider` shares them, those of another copy of this package too. A key is taken with the file open
 * (after the `/proc/self/fd` check, before any truncation) and released exactly once, when the descriptor is closed;
 * a reader count that falls to zero removes its entry. Its cost is a string and a `Map` lookup or two per open, on
 * the `fstat` the open does anyway. Other processes serving the same files (`ftpd --workers`) see it when
 * `shareFileClaims` names a folder they share (`shared-claims.ts`); other programs writing the folder never do.
 */
const writers: Map<string, WriterClaim> = ((globalThis as Record<symbol, unknown>)[Symbol.for('@ftp/vfs.LocalProvider.writers.v3')] ??= new Map<string, WriterClaim>()) as Map<string, WriterClaim>;

/** How many readers (read streams, handles opened read-only) have each file open, by `dev:ino`; never 0. */
const readers: Map<string, number> = ((globalThis as Record<symbol, unknown>)[Symbol.for('@ftp/vfs.LocalProvider.readers.v1')] ??= new Map<string, number>()) as Map<string, number>;

/**
 * Files whose pages finished downloads may still have in their sockets, by key, with how many such sockets are open
 * (see `FileDescriptorSource.lendPages`): sendfile gives the kernel references to the file's pages, not copies, so an
 * upload rewriting them in place (REST + STOR inside the file) would change bytes a download has already sent. A
 * socket counts until it closes.
 */
const lent: Map<string, number> = ((globalThis as Record<symbol, unknown>)[Symbol.for('@ftp/vfs.LocalProvider.lent.v2')] ??= new Map<string, number>()) as Map<string, number>;

/**
 * Registers a download's pages of the file `st` as lent until `socket` closes (see {@link lent}). With claims shared
 * between processes, the others are told too (an entry in the claims folder, until then).
 */
export function lendPages(st: Stats, socket: { once(event: 'close', listener: () => void): unknown }): void {
  const key = keyOf(st);
  countWhileOpen(lent, key, socket);
  if (!sharingFileClaims()) return;
  try {
    const shared = claimLent(key);
    socket.once('close', () => releaseShared(shared));
  } catch {
    // The claims folder failing: the other processes are not told (a download is not failed for it).
  }
}

/** Whether a download's socket of this process, or of another one sharing claims, still holds pages of the file of `key`. */
function pagesLent(key: string): boolean {
  return (lent.size > 0 && lent.has(key)) || lentByOthers(key);
}

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
  /**
   * When its last write ended (ms, `performance.now()`: the monotonic clock, as a wall clock set forward would make
   * a running upload look idle); 0 while a write is running.
   */
  idleSince: number;
  /**
   * Ends the writer (an upload stream) so another can take the file; null for one that cannot be (a file handle).
   * `untouched`: another process uses the file now, so the upload leaves its bytes as they are (nothing held is
   * written out, nothing cut) and only sets its modification time to now (see `LocalProvider`'s end-of-file check).
   */
  revoke: ((err: Error, untouched?: boolean) => void) | null;
  /** Its claim in the folder shared with other processes, if claims are shared. */
  shared: SharedClaim | null;
  /**
   * Whether it took the file over from an idle writer, which wrote out what it held as it ended: the file's size
   * may have changed since it was looked at.
   */
  readonly tookOver: boolean;
}

/** A reader's registration: what {@link takeReader} returns and {@link releaseReader} gives back (once). */
export interface ReaderClaim {
  readonly key: string;
  readonly reader: true;
  released: boolean;
  /** Its claim in the folder shared with other processes, if claims are shared. */
  shared: SharedClaim | null;
  /**
   * Whether it ended an idle writer of the file, which wrote out what it held and cut the file as it ended: the size
   * looked at before may be stale.
   */
  readonly tookOver: boolean;
}

/** Either registration, as a file handle holds it: released with {@link releaseClaim}. */
export type FileClaim = WriterClaim | ReaderClaim;

/**
 * The registry key of an opened file: its device and inode. Node gives them as doubles, exact up to 2^53; two inodes
 * of one device beyond that could share a key, which errs on the safe side (a needless EBUSY, never two writers nor
 * a writer under a reader).
 */
function keyOf(st: Stats): string {
  return `${st.dev}:${st.ino}`;
}

/** Whether the file of `key` has no writer of this process, or one idle long enough ({@link WRITER_TAKEOVER_IDLE_MS}) to end. */
function freeOrIdle(key: string): boolean {
  const held = writers.get(key);
  if (held === undefined) return true;
  return held.revoke !== null && held.idleSince !== 0 && performance.now() - held.idleSince >= WRITER_TAKEOVER_IDLE_MS;
}

/** Ends the idle writer of `key`, if any ({@link freeOrIdle} said the file may be taken). */
function takeOver(key: string): boolean {
  const held = writers.get(key);
  if (held === undefined) return false;
  writers.delete(key);
  held.revoke?.(takenOverError(held.path));
  return true;
}

/**
 * Registers a writer of the opened file `st` and returns its claim, to release when its descriptor closes.
 * `inPlace`: it rewrites bytes the file has (a restart point inside it).
 * @throws VfsError EBUSY when a reader of this process has the file open (it would read the file rewritten under
 * it), or another writer that is not idle; or, with shared claims, a reader or a writer of another process; or,
 * `inPlace`, while a finished download's socket still holds the file's pages (see {@link lendPages}).
 */
export function takeWriter(st: Stats, path: string, inPlace = false): WriterClaim {
  const key = keyOf(st);
  // Every refusal before anything is changed: an upload refused must not end an idle writer on its way.
  if (readers.size > 0 && readers.has(key)) throw fsError('EBUSY', 'open', path);
  if (inPlace && pagesLent(key)) throw fsError('EBUSY', 'open', path);
  if (!freeOrIdle(key)) throw fsError('EBUSY', 'open', path);
  let shared: SharedClaim | null = null;
  if (sharingFileClaims()) {
    // The claim a hold took for this file (another writer of this process taking it ends the hold, as below).
    shared = takeHeldShared(key) ?? claimWrite(key);
    if (shared === null) throw fsError('EBUSY', 'open', path);
  }
  const tookOver = takeOver(key);
  // The upload announced for this file opens (or another writer, which the announced one will then meet).
  announced.release(key);
  const claim: WriterClaim = { key, path, idleSince: performance.now(), revoke: null, shared, tookOver };
  if (shared !== null) {
    shared.onLost = (why) => {
      if (claim.revoke === null) return false;
      claim.revoke(new VfsError('EIO', why, { path }), true);
      return true;
    };
  }
  writers.set(key, claim);
  return claim;
}

/**
 * Files held for an upload the server has announced (its 150 is on the way) but not opened yet, by key (see
 * {@link writerRefused}'s `hold`); one set for the process, as the writers are.
 */
const announced: UploadHolds<string> = ((globalThis as Record<symbol, unknown>)[Symbol.for('@ftp/vfs.LocalProvider.held.v1')] ??= new UploadHolds<string>()) as UploadHolds<string>;

/**
 * Writer claims in the folder shared with other processes (`ftpd --workers`) taken for files held for announced
 * uploads (see {@link writerRefused}), by key: the other processes then refuse their uploads and downloads of the file
 * too, as this one does, from the 150 on. The upload's open takes its file's claim ({@link takeWriter}); one never
 * taken is given back after {@link UPLOAD_HOLD_MS}.
 */
const heldShared: Map<string, { claim: SharedClaim; timer: NodeJS.Timeout }> = ((globalThis as Record<symbol, unknown>)[Symbol.for('@ftp/vfs.LocalProvider.heldShared.v1')] ??= new Map()) as Map<string, { claim: SharedClaim; timer: NodeJS.Timeout }>;

/** Keeps other processes out of the held file `key`: false when one of them reads or writes it (busy after all). */
function holdShared(key: string): boolean {
  const held = heldShared.get(key);
  if (held !== undefined) {
    held.timer.refresh();
    return true;
  }
  const claim = claimWrite(key);
  if (claim === null) return false;
  const timer = setTimeout(() => {
    if (heldShared.get(key)?.claim !== claim) return;
    heldShared.delete(key);
    releaseShared(claim);
  }, UPLOAD_HOLD_MS);
  timer.unref();
  heldShared.set(key, { claim, timer });
  return true;
}

/** The shared claim held for the file `key`, handed to its writer (null: none held). */
function takeHeldShared(key: string): SharedClaim | null {
  const held = heldShared.get(key);
  if (held === undefined) return null;
  clearTimeout(held.timer);
  heldShared.delete(key);
  return held.claim;
}

/**
 * `owner`'s hold of the file `key` (or of a new file's key), its upload ended without opening it: given back now,
 * with the claim it kept other processes out with.
 */
export function releaseHeld(key: string, owner: object): void {
  if (!announced.releaseOwned(key, owner)) return;
  const shared = takeHeldShared(key);
  if (shared !== null) releaseShared(shared);
}

/** {@link releaseHeld} for the file `st`. */
export function releaseHeldFile(st: Stats, owner: object): void {
  releaseHeld(keyOf(st), owner);
}

/** Whether any upload is held (announced, not opened): else a release has nothing to look up. */
export function anyHeld(): boolean {
  return announced.size > 0;
}

/** Whether any transfer of this process, or of another one sharing claims, could be in the way of a new upload. */
export function transfersMayRun(): boolean {
  return writers.size > 0 || readers.size > 0 || announced.size > 0 || lent.size > 0 || sharingFileClaims();
}

/**
 * Whether {@link takeWriter} would refuse an upload of the file `st` now (a reader, a writer that is not idle, or
 * another process's of either; or another announced upload holds it), asked without taking or ending anything: the
 * server looks before it says 150, so that a client is refused (450) before it sends a byte.
 *
 * With `hold`, a file found free is held for the upload that asked until it opens (the next writer to open the file
 * takes the hold) or for `UPLOAD_HOLD_MS` (upload-holds.ts): meanwhile another upload asking is refused, and so are downloads;
 * with claims shared between processes, those of the other processes too (a writer's claim is taken for the hold).
 * Two uploads announced at the same moment would otherwise both be told 150, the second refused at its open (451),
 * and clients resume such an upload (REST, APPE) onto the other one's file.
 */
export function writerRefused(st: Stats, hold: boolean | object = false, inPlace = false): boolean {
  const key = keyOf(st);
  if (readers.has(key) || !freeOrIdle(key) || writtenByOthers(key) || readByOthers(key)) return true;
  if (inPlace && pagesLent(key)) return true;
  if (announced.ask(key, hold)) return true;
  // Held for this upload: with claims shared between processes, kept from them too (their asks see its claim).
  if (hold !== false && sharingFileClaims()) {
    let kept: boolean;
    try {
      kept = holdShared(key);
    } catch (err) {
      announced.release(key);
      throw err;
    }
    if (!kept) {
      announced.release(key);
      return true;
    }
  }
  return false;
}

/**
 * {@link writerRefused} for a file that does not exist yet, told by `key` (its provider's root and its path: no
 * inode to tell it by): two uploads of a new name announced at the same moment are no more both told 150 than two of
 * an existing file. Given back by {@link releaseNewFile} when an upload of that path opens.
 */
export function newFileRefused(key: string, hold: boolean | object): boolean {
  return announced.ask(key, hold);
}

/**
 * An upload of a path has opened: a hold of it as a new name (see {@link newFileRefused}) is given back. `key` makes
 * the key, only when there are holds (every upload's open passes here).
 */
export function releaseNewFile(key: () => string): void {
  if (announced.size > 0) announced.release(key());
}

/**
 * Refuses (EBUSY: the server's 450) to remove or replace the file `st` while an upload still writes it: the upload
 * would go on into a file no longer in the tree and be told it completed (DELE, or RNTO over it, in another
 * session). Uploads of this process, and of other processes when claims are shared (`ftpd --workers`). One of this
 * process idle for {@link WRITER_TAKEOVER_IDLE_MS} is not in the way: call {@link endIdleWriter} for it right before
 * the removal, once nothing else refuses it.
 */
export function refuseWhileWritten(st: Stats, path: string, syscall: string): void {
  const key = keyOf(st);
  if (writers.size > 0 && !freeOrIdle(key)) throw fsError('EBUSY', syscall, path);
  if (writtenByOthers(key)) throw fsError('EBUSY', syscall, path);
}

/** Whether an upload could be in the way of a removal: one of this process, or claims shared with other processes. */
export function uploadsMayRun(): boolean {
  return writers.size > 0 || sharingFileClaims();
}

/** Ends the idle upload of `st`, if any, as a newcomer's upload would ({@link refuseWhileWritten} let it through). */
export function endIdleWriter(st: Stats, path: string): void {
  if (writers.size > 0) takeOver(keyOf(st));
}

/** {@link refuseWhileWritten}, then {@link endIdleWriter}: for a removal that nothing else refuses after this look. */
export function clearForRemoval(st: Stats, path: string, syscall: string): void {
  refuseWhileWritten(st, path, syscall);
  endIdleWriter(st, path);
}

/** Releases what {@link takeWriter} took, unless another writer has taken the file over since. Once, at close. */
export function releaseWriter(claim: WriterClaim): void {
  if (writers.get(claim.key) === claim) writers.delete(claim.key);
  if (claim.shared !== null) {
    releaseShared(claim.shared);
    claim.shared = null;
  }
}

/**
 * Registers a reader of the opened file `st` (readers do not block each other) and returns its claim, to release
 * when its descriptor closes.
 * @throws VfsError EBUSY while a writer of this process has the file open and is not idle; or, with shared
 * claims, while a writer of another process has.
 */
export function takeReader(st: Stats, path: string): ReaderClaim {
  const key = keyOf(st);
  if (writers.size > 0 && !freeOrIdle(key)) throw fsError('EBUSY', 'open', path);
  // An announced upload is about to rewrite it: a download now would hold the file and refuse that upload at its open.
  if (announced.held(key)) throw fsError('EBUSY', 'open', path);
  let shared: SharedClaim | null = null;
  if (sharingFileClaims()) {
    shared = claimRead(key);
    if (shared === null) throw fsError('EBUSY', 'open', path);
  }
  const tookOver = writers.size > 0 && takeOver(key);
  readers.set(key, (readers.get(key) ?? 0) + 1);
  return { key, reader: true, released: false, shared, tookOver };
}

/** Releases what {@link takeReader} took (a second call does nothing); the file's entry goes with its last reader. */
export function releaseReader(claim: ReaderClaim): void {
  if (claim.released) return;
  claim.released = true;
  if (claim.shared !== null) releaseShared(claim.shared);
  const n = readers.get(claim.key) ?? 0;
  if (n > 1) readers.set(claim.key, n - 1);
  else readers.delete(claim.key);
}

/**
 * Whether a reader's claim shared with other processes was lost while it read (see `claimIntact`): a writer of
 * another process may then have rewritten the file under it.
 */
export function readerClaimLost(claim: ReaderClaim): boolean {
  return claim.shared !== null && !claimIntact(claim.shared);
}

/** Releases a writer's or a reader's registration. */
export function releaseClaim(claim: FileClaim): void {
  if ('reader' in claim) releaseReader(claim);
  else releaseWriter(claim);
}

/** @internal How many files are registered as being written (for tests: it must fall back to 0). */
export function openWriterCount(): number {
  return writers.size;
}

/** @internal How many files are held for announced uploads (for tests). */
export function heldCount(): number {
  return announced.size;
}

/** @internal How many files have pages lent to finished downloads' sockets (for tests: it must fall back to 0). */
export function lentCount(): number {
  return lent.size;
}

/** @internal How many files are registered as being read (for tests: it must fall back to 0). */
export function openReaderCount(): number {
  return readers.size;
}

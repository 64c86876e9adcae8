/**
 * The FTP server's Linux fast paths. sendfile(2) ({@link sendFile}) moves a file's bytes to a TCP socket inside
 * the kernel, without reading them into JavaScript buffers first: an FTP download through it costs about half the
 * CPU of read-then-write and runs about twice as fast where the CPU is what limits it. {@link lstatRows} looks up
 * many entries of a folder in one call, for listings (see lstat.ts); {@link openBeneath} opens a path confined
 * below a folder by the kernel (see open.ts).
 *
 * The addon is built from C when the package installs (a C compiler and Node's headers are needed; the `node`
 * npm package and Node's tarballs ship the headers). Where it could not be built, {@link sendfileUnavailableReason}
 * says why and callers copy through buffers as before.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:net';
 * import { closeSync, openSync } from 'node:fs';
 * import { sendFile, socketDescriptorOf, sendfileUnavailableReason } from '@ftp/native';
 *
 * createServer(async (socket) => {
 *   socket.on('error', () => {}); // a client's reset: 'close' follows, and `done` rejects
 *   const fd = socketDescriptorOf(socket);
 *   if (fd === null || sendfileUnavailableReason() !== null) return socket.end('no sendfile here\n');
 *   const file = openSync('/etc/os-release', 'r');
 *   const send = sendFile(fd, file, { start: 0 });
 *   closeSync(file); // the send has its own copy
 *   socket.once('close', () => send.cancel());
 *   try {
 *     await send.done;
 *     socket.end();
 *   } catch {
 *     socket.destroy(); // ECONNRESET, EPIPE, ECANCELED…
 *   }
 * }).listen(2121, '127.0.0.1');
 * ```
 */
import type { Socket } from 'node:net';
import { addonFor, addonForReason, errnoName, loadAddon } from './addon.js';

/** Null when {@link sendFile} can be used; otherwise why not (not Linux, the addon was not built or did not load, `FTP_SENDFILE=0`). */
export function sendfileUnavailableReason(): string | null {
  return addonForReason('FTP_SENDFILE');
}

/**
 * The descriptor of a plain TCP socket Node made or accepted, or null for anything sendfile must not write to
 * directly: a TLS socket (its bytes must be encrypted), a socket over another stream, one being closed, or one with
 * writes still queued in Node (they must go out first, and would be overtaken).
 */
export function socketDescriptorOf(socket: Socket): number | null {
  if (socket.destroyed || socket.writableEnded || socket.writableLength > 0 || 'encrypted' in socket) return null;
  const handle = (socket as unknown as { _handle?: { fd?: unknown; writeQueueSize?: unknown } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null;
  if (typeof handle!.writeQueueSize === 'number' && handle!.writeQueueSize > 0) return null;
  return fd;
}

/** What to send of the file: bytes `start` up to `end` (exclusive), or to the file's end as it is when reached. */
export interface SendFileRange {
  start: number;
  /** Exclusive; omitted or Infinity: until the end of the file, however long it is by then. */
  end?: number;
  /**
   * Bytes to try at once on the calling thread before anything goes to a background thread (default 0). Sent
   * while the socket's buffer takes them, so the client never holds the thread up; a file not in the page cache
   * would, so this suits small files only.
   */
  inlineBytes?: number;
}

/** How a send ended: everything asked for went (`atEnd`: the file ended first), after `sent` bytes. */
export interface SendFileResult {
  sent: number;
  /** The file ended before `end` (or `end` was not given). */
  atEnd: boolean;
}

/** A send in progress. */
export interface FileSend {
  /**
   * Settles when the send ends: with the result, or rejected with a system error (`code` ECONNRESET, EPIPE, EIO…,
   * `syscall` 'sendfile'), or with code 'ECANCELED' after {@link cancel}.
   */
  readonly done: Promise<SendFileResult>;
  /** Bytes the kernel has taken so far (read at any time; it is updated as the send goes). */
  sent(): number;
  /**
   * Ends the send and closes its own copies of the descriptors: at once, or once the sendfile call under way
   * returns (it may be waiting for a slow disk to read the file). Call it when the socket closes: until then
   * the send holds the connection open, even after Node closed its descriptor.
   */
  cancel(): void;
}

/**
 * Sends a range of `fileFd` (a regular file, read with its own offsets: the descriptor's position is not used)
 * to `socketFd` (a non-blocking TCP socket, see {@link socketDescriptorOf}). Nothing else may write to the socket
 * until `done` settles. The caller may close `fileFd` as soon as this returns (a background send has its own copy).
 * Throws when {@link sendfileUnavailableReason} is not null.
 */
export function sendFile(socketFd: number, fileFd: number, range: SendFileRange): FileSend {
  const native = addonFor('FTP_SENDFILE');
  if (native === null) throw new Error(`sendfile is not available: ${sendfileUnavailableReason()}`);
  const { SENT_ALL, WOULD_BLOCK, AT_EOF, CANCELLED, BUDGET_USED } = native.states;
  const end = range.end ?? Infinity;
  const progress = new Float64Array(1);
  let before = 0;
  let position = range.start;
  const inline = Math.max(0, range.inlineBytes ?? 0);
  if (inline > 0 && position < end) {
    const state = native.trySend(socketFd, fileFd, position, countOf(end - position), inline, progress);
    before = progress[0]!;
    position += before;
    if (state < 0) return settled(Promise.reject(systemError(state)), before);
    if (state === AT_EOF) return settled(Promise.resolve({ sent: before, atEnd: true }), before);
    if (state !== BUDGET_USED && state !== SENT_ALL && state !== WOULD_BLOCK) return settled(Promise.reject(new Error(`sendfile: unexpected state ${state}`)), before);
  }
  // Everything asked for went inline (SENT_ALL), or there was nothing to send.
  if (position >= end) return settled(Promise.resolve({ sent: before, atEnd: false }), before);
  progress[0] = 0;
  let id = 0;
  let finished = false;
  const done = new Promise<SendFileResult>((resolve, reject) => {
    id = native.start(socketFd, fileFd, position, countOf(end - position), progress, (state, sent) => {
      finished = true;
      const total = before + sent;
      if (state === SENT_ALL || state === AT_EOF) resolve({ sent: total, atEnd: state === AT_EOF });
      else if (state === CANCELLED) reject(Object.assign(new Error('sendfile cancelled'), { code: 'ECANCELED', syscall: 'sendfile' }));
      else reject(systemError(state));
    });
  });
  return {
    done,
    sent: () => before + progress[0]!,
    cancel: () => {
      if (!finished) native.cancel(id);
    },
  };
}

/** The native count: -1 for "until the end of the file". */
function countOf(bytes: number): number {
  return Number.isFinite(bytes) ? bytes : -1;
}

function settled(done: Promise<SendFileResult>, sent: number): FileSend {
  done.catch(() => {});
  return { done, sent: () => sent, cancel: () => {} };
}

function systemError(state: number): NodeJS.ErrnoException {
  const [code] = errnoName(state);
  const err: NodeJS.ErrnoException = new Error(`sendfile failed: ${code}`);
  err.code = code;
  err.errno = state;
  err.syscall = 'sendfile';
  return err;
}

export { lstatRows, LSTAT_ROW_FIELDS, lstatRowsUnavailableReason, type ExpectedFolder } from './lstat.js';
export { openBeneath, openBeneathOrErrno, openBeneathUnavailableReason, openPathFlag } from './open.js';

/**
 * Bytes a TCP socket (its descriptor) holds that the peer has not acknowledged yet (SIOCOUTQ), or null where the
 * addon is missing or the descriptor is no TCP socket. A download's stall check reads it: a slow client empties a
 * send buffer of megabytes for minutes while the server hands the kernel nothing new.
 */
export function unackedBytes(fd: number): number | null {
  const native = loadAddon();
  if (native === null || !Number.isInteger(fd) || fd < 0) return null;
  const n = native.unackedBytes(fd);
  return n >= 0 ? n : null;
}
export { receiveToFile, receiveUnavailableReason, type FileReceive, type ReceiveError } from './receive.js';
export { trimHeap, trimHeapUnavailableReason } from './heap-trim.js';

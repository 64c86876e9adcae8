/**
 * Uploads received straight into a file on the addon's threads (sendfile.c's `receive`): read from the socket into
 * a small buffer one thread reuses, written to the file at once. Node's own way reads into a buffer on the event
 * loop's thread and writes it from a thread-pool thread, so every byte crosses between cores through memory.
 */
import { addonFor, addonForReason, errnoName } from './addon.js';

/** Null when {@link receiveToFile} can be used; otherwise why not (not Linux, no addon, `FTP_KERNEL_RECEIVE=0`). */
export function receiveUnavailableReason(): string | null {
  return addonForReason('FTP_KERNEL_RECEIVE');
}

/** A receive's failure: a system error, from the socket (`syscall` 'recv') or the file (`'write'`, `fileFailed`). */
export interface ReceiveError extends NodeJS.ErrnoException {
  /** The file could not be written (a full disk, an I/O error): storage's failure, not the connection's. */
  fileFailed: boolean;
}

/** A receive in progress. */
export interface FileReceive {
  /**
   * Settles once the socket's data ended (its FIN was read: resolves with the bytes written), or with a
   * {@link ReceiveError}, or with code 'ECANCELED' after {@link cancel}. Bytes written before a failure stay in
   * the file; {@link written} says how many.
   */
  readonly done: Promise<number>;
  /** Bytes written to the file so far (updated as the receive goes; final once `done` settled). */
  written(): number;
  /** Whether a write to the file is under way: a receive that makes no progress meanwhile waits on storage. */
  writing(): boolean;
  /**
   * Ends the receive and closes its own copies of the descriptors: at once, or once the write under way returns.
   * Call it when the socket closes: until then the receive holds the connection open.
   */
  cancel(): void;
}

/**
 * Reads `socketFd` (a non-blocking TCP socket nothing else reads meanwhile: a paused Node socket, see
 * `socketDescriptorOf`) until its end and writes what arrives to `fileFd` from `position` on, or at the file's end
 * with `position` null (a descriptor opened for appending). The end itself stays unread as far as Node is
 * concerned: a socket resumed afterwards reads its end again (TCP reports it on every read). The caller may close
 * `fileFd` as soon as this returns (the receive has its own copy). Throws when {@link receiveUnavailableReason} is
 * not null.
 */
export function receiveToFile(socketFd: number, fileFd: number, position: number | null): FileReceive {
  const native = addonFor('FTP_KERNEL_RECEIVE');
  if (native === null) throw new Error(`receiving into a file is not available: ${receiveUnavailableReason()}`);
  const { AT_EOF, CANCELLED } = native.states;
  if (position !== null && !(Number.isSafeInteger(position) && position >= 0)) throw new RangeError(`position must be a whole number of bytes, not negative, or null (got ${position})`);
  // [0]: bytes written (final before the callback runs); [1]: 1 while a write is under way.
  const progress = new Float64Array(2);
  let finished = false;
  let settle!: { resolve: (written: number) => void; reject: (err: Error) => void };
  const done = new Promise<number>((resolve, reject) => (settle = { resolve, reject }));
  // Called here, not inside the promise: wrong arguments throw to the caller.
  const id = native.receive(socketFd, fileFd, position ?? -1, progress, (state, written, fileFailed) => {
    finished = true;
    if (state === AT_EOF) settle.resolve(written);
    else if (state === CANCELLED) settle.reject(Object.assign(new Error('receive cancelled'), { code: 'ECANCELED', syscall: 'recv', fileFailed: false }));
    else settle.reject(receiveError(state, fileFailed));
  });
  return {
    done,
    written: () => progress[0]!,
    writing: () => progress[1] === 1,
    cancel: () => {
      if (!finished) native.cancel(id);
    },
  };
}

function receiveError(state: number, fileFailed: boolean): ReceiveError {
  const [code, description] = errnoName(state);
  const syscall = fileFailed ? 'write' : 'recv';
  return Object.assign(new Error(`${syscall} failed: ${code} (${description})`), { code, errno: state, syscall, fileFailed });
}

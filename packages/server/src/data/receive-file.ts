/**
 * Big uploads received on @ftp/native's threads, straight from the socket into the file: the mirror of
 * send-file.ts. Node's own way reads each chunk into a buffer on the event loop's thread and writes it from a
 * thread-pool thread, so every byte crosses between cores through memory, and the event loop works for every read;
 * one thread reading into a small buffer it reuses and writing it out at once costs about half the CPU per GiB.
 *
 * Only where nothing has to see the bytes on the way: a plain TCP data connection (not TLS), no decoding (TYPE I,
 * MODE S), no rate limit, storage that lends its file descriptor (the local disk, not under a quota), Linux with
 * the addon built. The first {@link KERNEL_RECEIVE_AFTER} bytes still come through buffers: a small file is
 * stored before a thread would even have woken up.
 */
import type { Socket } from 'node:net';
import { receiveToFile, receiveUnavailableReason, socketDescriptorOf, type FileReceive, type ReceiveError } from '@ftp/native';
import { fileDescriptorSinkOf, type FileDescriptorSink, type UploadStream } from '@ftp/vfs';
import { followKernelTransfer } from './kernel-progress.js';
import type { HandOff } from './receive-pooled.js';
import type { Transfer } from './transfer.js';

/** Bytes an upload reads through buffers before the rest goes to the addon's threads. */
export const KERNEL_RECEIVE_AFTER = 1024 * 1024;

/** The hand-off of an upload's rest to the kernel receive, when every condition holds; else undefined. */
export function kernelReceiveHandOff(transfer: Transfer, socket: Socket, upload: UploadStream): HandOff | undefined {
  const sink = fileDescriptorSinkOf(upload);
  if (sink === undefined || 'encrypted' in socket || receiveUnavailableReason() !== null) return undefined;
  return {
    after: KERNEL_RECEIVE_AFTER,
    take(resume) {
      const socketFd = socketDescriptorOf(socket);
      const lent = socketFd !== null && sink.lend((fd, position, done) => receiveInto(transfer, socket, sink, socketFd, fd, position, done, resume));
      if (!lent) resume();
    },
  };
}

/**
 * Runs the receive, counting its progress, until the socket's end (then `resume`: the feed reads the end and ends
 * the upload as usual), a failure, or the socket's close (ABOR, a stall, the session's end: cancelled, and the
 * failure is the close's). A failure of the socket destroys it with that error; one of the file goes to `done`,
 * which fails the upload with it. Returns what ends it early (the upload destroyed or taken over).
 */
function receiveInto(
  transfer: Transfer,
  socket: Socket,
  sink: FileDescriptorSink,
  socketFd: number,
  fd: number,
  position: number | null,
  done: (written: number, err: NodeJS.ErrnoException | null) => void,
  resume: () => void,
): () => void {
  let receive: FileReceive;
  try {
    receive = receiveToFile(socketFd, fd, position);
  } catch {
    // The addon's threads could not start, or a descriptor could not be copied (EMFILE): buffers, as before.
    done(0, null);
    resume();
    return () => {};
  }
  transfer.receivedByKernel = true;
  const progress = followKernelTransfer(transfer, socket, () => receive.written(), () => receive.cancel(), () => sink.progressed());
  // A write that waits on the disk is storage's stall, not the client's (the stall timer's 451, not 426).
  const storageBusy = transfer.storageBusy;
  transfer.storageBusy = () => receive.writing() || storageBusy();
  const settle = (err: ReceiveError | null): void => {
    progress.stop();
    transfer.storageBusy = storageBusy;
    const counted = progress.count();
    if (err === null) {
      done(counted, null);
      return resume();
    }
    if (err.fileFailed) return done(counted, err);
    done(counted, null);
    // Cancelled: the socket closed, and its close tells the failure. Else the connection's own error (a reset).
    if (err.code !== 'ECANCELED' && !socket.destroyed) socket.destroy(err);
  };
  receive.done.then(
    () => settle(null),
    (err: ReceiveError) => settle(err),
  );
  return () => receive.cancel();
}

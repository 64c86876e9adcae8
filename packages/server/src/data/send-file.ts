/**
 * Downloads sent by the kernel (sendfile) from the local file to the data connection, without reading the file
 * into buffers here: about half the CPU per GiB, and twice the speed where the CPU is what limits it.
 *
 * Only where nothing has to touch the bytes on the way: TYPE I, MODE S, no rate limit, a plain TCP data connection
 * (not TLS), a provider that hands over its file descriptor (the local disk), Linux with @ftp/native's addon
 * built. Everything else goes through buffers as before.
 */
import type { Socket } from 'node:net';
import { finished } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { sendFile, sendfileUnavailableReason, socketDescriptorOf } from '@ftp/native';
import { fileDescriptorOf, type FileDescriptorSource } from '@ftp/vfs';
import { followKernelTransfer } from './kernel-progress.js';
import type { Transfer } from './transfer.js';


/** What sendfile would send, when every condition holds; else undefined (the caller copies through buffers). */
export function sendfileSource(source: Readable, socket: Socket): { file: FileDescriptorSource; socketFd: number } | undefined {
  const file = fileDescriptorOf(source);
  if (file === undefined) return undefined;
  const socketFd = socketDescriptorOf(socket);
  if (socketFd === null || sendfileUnavailableReason() !== null) return undefined;
  return { file, socketFd };
}

/** sendfile's answers for a file it cannot read at all (a filesystem without the support): nothing was sent. */
const UNSUPPORTED_CODES = new Set(['EINVAL', 'ENOSYS', 'EOPNOTSUPP']);

/**
 * Sends the file, then ends the data connection and waits for it to finish. Failures come out as the
 * transfer's errors: the connection's (426) or storage's (451), as for a send through buffers. Resolves to false,
 * having sent nothing and leaving `source` open, when sendfile cannot read this file: the caller sends it through
 * buffers instead.
 */
export async function sendWithSendfile(transfer: Transfer, source: Readable, file: FileDescriptorSource, socketFd: number, socket: Socket): Promise<boolean> {
  const send = sendFile(socketFd, file.fd, { start: file.start, end: file.end, inlineBytes: file.inlineBytes });
  transfer.sentByKernel = true;
  // Counted as it goes, and cancelled when the socket closes (the send holds its own copy of it).
  const progress = followKernelTransfer(transfer, socket, () => send.sent(), () => send.cancel());
  let handedBack = false;
  try {
    try {
      await send.done;
    } catch (err) {
      const counted = progress.count();
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== undefined && UNSUPPORTED_CODES.has(code) && counted === 0 && !socket.destroyed) {
        handedBack = true;
        transfer.sentByKernel = false;
        return false;
      }
      if (code === 'ECANCELED' || socket.destroyed) throw transfer.closedError();
      // Its code says whose side: the connection's (EPIPE, ECONNRESET…: 426) or the file's (EIO: 451).
      throw transfer.failure(err);
    }
    progress.count();
    // Reset (by the client, or by ABOR or a stall) after the kernel took the last bytes but before they reached the
    // client: the reset threw away what it held, so this is no complete transfer whatever `done` said. (A stop that
    // comes later still is runDataCommand's to catch.)
    if (socket.destroyed) throw transfer.closedError();
    const lost = file.atEnd();
    if (lost !== null) throw transfer.storageFailure(lost);
    socket.end();
    await finished(socket, { readable: false }).catch((err: unknown) => Promise.reject(transfer.failure(err)));
    lendUntilClosed(file, socket);
    return true;
  } catch (err) {
    send.cancel();
    socket.destroy();
    throw err;
  } finally {
    progress.stop();
    if (!handedBack) source.destroy();
  }
}

/**
 * sendfile hands the kernel the file's own pages, not copies of them: they stay in the socket until the client has
 * acknowledged them and, for a client on this machine (loopback, a container's veth), in the client's receive queue
 * until it reads them. An upload rewriting them in place meanwhile (REST + STOR inside the file, in another session)
 * would change bytes this client was told in its 226 it had been sent. They are reported lent (refused to such an
 * upload) until the connection closes, which comes once the client has closed its side (it read to the end, or gave
 * up; see data-command.ts' linger, which keeps it open until then).
 */
function lendUntilClosed(file: FileDescriptorSource, socket: Socket): void {
  if (!socket.destroyed) file.lendPages?.(socket);
}

/**
 * TLS that a client starts on a passive data connection before it sends the transfer command. The server starts a
 * data connection's handshake when a transfer takes the connection (after RETR, STOR, LIST…), as RFC 4217 orders
 * it; a client that opens its data connections with TLS and waits for the handshake before it sends the command
 * (Python's aioftp does) and the server then each waited for the other until a timeout. Clients that start TLS at
 * once but send the command without waiting (basic-ftp, Node's `ftp`) are served as before: the command takes the
 * connection first.
 *
 * So a PROT P data connection that has sent bytes before any transfer took it gets its handshake
 * {@link EARLY_TLS_WAIT_MS} later, or as soon after as the session has nothing left to run and waits for a command;
 * the transfer that takes it then uses that handshake (and refuses it if PROT C came meanwhile). Its role is a download's (the direction is not known yet): an upload over it is not
 * capped at TLS 1.2 (see TlsContexts' upload contexts), and it is not watched for close_notify, so with
 * `tlsUploadRequiresCloseNotify` nothing starts early.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Session } from '../session.js';

/** How long a connection that sent bytes waits for a transfer command before the server answers its handshake. */
export const EARLY_TLS_WAIT_MS = 200;

/** Checks at most (ten minutes' worth) for a session to wait for a command before the client's bytes are answered. */
const MAX_CHECKS = 3000;

const handshakes = new WeakMap<Socket, Promise<TLSSocket>>();

/**
 * Watches a data connection that arrived before its transfer (see the module's notes); returns how to stop, or
 * undefined when there is nothing to watch for (no PROT P).
 */
export function watchForEarlyTls(s: Session, socket: Socket): (() => void) | undefined {
  if (!wanted(s)) return undefined;
  let timer: NodeJS.Timeout | null = null;
  let checks = 0;
  const check = (): void => {
    timer = null;
    if (socket.destroyed || !wanted(s)) return;
    // The session still runs a command (a HASH, a slow lookup): asked again until it waits, or the bound.
    if (!s.conn.waitingForCommand) {
      if (++checks < MAX_CHECKS) timer = setTimeout(check, EARLY_TLS_WAIT_MS);
      return;
    }
    const secured = s.ctx.tls.handshake(socket, s.tlsContext!, s.settings.tlsHandshakeTimeout * 1000, 'data');
    // Failed, the connection is gone: the transfer that takes it says so.
    secured.catch(() => undefined);
    handshakes.set(socket, secured);
  };
  const onReadable = (): void => {
    socket.off('readable', onReadable);
    // Readable with nothing to read: the client's FIN, before any byte. No handshake can follow; ended now, the
    // transfer that takes the connection says so at once (425), where a handshake begun on it would only have
    // ended at tlsHandshakeTimeout (reading it here took the FIN where the TLS layer would have seen it).
    if (socket.readableLength === 0) {
      // Only while PROT P still holds: after PROT C the FIN is a clear upload's end (an empty file).
      if (wanted(s)) socket.destroy();
      return;
    }
    timer = setTimeout(check, EARLY_TLS_WAIT_MS);
  };
  socket.on('readable', onReadable);
  return () => {
    socket.off('readable', onReadable);
    if (timer !== null) clearTimeout(timer);
  };
}

/** The handshake started early on `socket`, if one was. */
export function earlyHandshake(socket: Socket): Promise<TLSSocket> | undefined {
  return handshakes.get(socket);
}

function wanted(s: Session): boolean {
  return s.prot === 'P' && Boolean(s.tlsContext) && !s.settings.tlsUploadRequiresCloseNotify && s.conn.isOpen;
}

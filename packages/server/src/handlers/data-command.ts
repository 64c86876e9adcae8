import type { Socket } from 'node:net';
import { hexForEscapes } from '@ftp/protocol';
import { connectActive } from '../data/active.js';
import { earlyHandshake } from '../data/early-tls.js';
import { discardReads } from '../data/pooled-reads.js';
import { SocketPipe } from '../socket-pipe.js';
import { resetConnection, Transfer, TransferError, unackedOf } from '../data/transfer.js';
import { afterPreliminary, FtpError, isRefusal, toReply } from '../errors.js';
import type { Session } from '../session.js';

/** What the server reports of every transfer (the `transfer` event). */
export interface TransferEvent {
  session: number;
  user: string | undefined;
  direction: Transfer['direction'];
  path: string;
  bytes: number;
  durationMs: number;
  outcome: 'ok' | 'aborted' | 'failed';
  error?: string;
  /** Present for a download the kernel sent from the file (sendfile; see the `sendfile` setting). */
  sendfile?: true;
  /** Present for an upload whose rest went from the socket into the file on the addon's threads (the `kernelReceive` setting). */
  kernelReceive?: true;
}

/**
 * The session's data setup for a data command, or the refusal that comes before any 150: none set up (425), clear
 * data where the policy wants it protected (521), an active address that is this server's own (425).
 */
export function refuseDataSetup(s: Session): NonNullable<Session['dataSetup']> {
  const setup = s.dataSetup;
  if (!setup) throw new FtpError(425, 'Use PORT, PASV or EPSV first.');
  // RFC 4217 §9: a policy may refuse clear data connections.
  if (s.tlsRequired === 'all' && s.prot !== 'P') throw new FtpError(521, 'Data connections must be protected: use PBSZ 0 and PROT P.');
  // Checked at PORT too; again now, for a passive port of this server opened since then at the address given.
  if (setup.kind === 'active' && s.ctx.ownsEndpoint(setup.host, setup.port)) {
    s.setDataSetup(null);
    throw new FtpError(425, `Can't open data connection: port ${setup.port} is this server's own.`);
  }
  return setup;
}

/**
 * Runs one data command: takes the data setup (PASV/EPSV/PORT/EPRT), says 150, gets the data connection,
 * lets `work` move the bytes, and gives the final reply: 226 (with the text `work` returns, if any), 426 (the client's side failed or ABOR) or the
 * storage error's reply as RFC 959 allows it after a 150 (451, 551, 552: see {@link afterPreliminary}). The setup is
 * used once, as RFC 959 intends. `settle` runs once the outcome is known, right before the final reply (an upload
 * gives back what it held for itself: the client may act on the reply at once, on another connection too); it is
 * waited for {@link SETTLE_WAIT_MS} at most.
 */
export async function runDataCommand(
  s: Session,
  direction: Transfer['direction'],
  path: string,
  preliminary: string,
  work: (t: Transfer) => Promise<string | undefined | void>,
  settle?: () => Promise<void> | undefined,
): Promise<void> {
  const setup = refuseDataSetup(s);
  s.dataSetup = null;
  const t = new Transfer(direction, path);
  s.transfer = t;
  s.conn.setTransferring(true);
  const timeoutMs = s.settings.dataConnectTimeout * 1000;
  let outcome: TransferEvent['outcome'] = 'ok';
  let error: string | undefined;
  /** An upload the storage refused midway (a quota, a full disk): its client is still sending (see drainThenCut). */
  let drain = false;
  /** The final reply, `settle` run first (once: a 226 that fails to go out is followed by the failure's reply). */
  const finalReply = async (code: number, text: string): Promise<void> => {
    await settled(settle);
    settle = undefined;
    await s.reply(code, text);
  };
  try {
    // The 150 leaves before any byte of the data (RFC 959: "about to open data connection"), in its own write. Held
    // back to share a write with the 226 of a transfer that ends at once, it reached the client after the data and
    // with the 226: aria2c read both at once and waited 60 s for a 226 it had already read, every small file. Sent
    // alone, `pnpm bench`'s 16 KiB downloads were no slower (2,336 and 2,851 files/s against 2,184 and 2,216).
    await s.reply(150, preliminary);
    let socket = await t.race(
      setup.kind === 'passive' ? setup.listener.accept(timeoutMs) : connectActive(setup.host, setup.port, s.localAddress || undefined, timeoutMs),
    );
    // Gone before its transfer (a reset, or a FIN ending a PROT P connection before any byte: see early-tls.ts):
    // nothing can come over it, and a transfer begun on it would wait for events it will not send again.
    if (socket.destroyed) throw new FtpError(425, "Can't open data connection: the client closed it before the transfer.");
    // Under TLS the connection's own socket still shows the stall timer its write queue (see Transfer.attach).
    const tcp = socket;
    if (s.prot === 'P') socket = await t.race(protect(s, socket, t));
    else if (earlyHandshake(socket)) {
      // TLS began on it before the command (early-tls.ts), then PROT C: clear text cannot go over it.
      socket.destroy();
      throw new FtpError(425, "Can't open data connection: it began TLS before PROT C.");
    }
    t.attach(socket, s.settings.dataStallTimeout * 1000, tcp);
    s.ctx.emit('transfer:start', { session: s.id, user: s.user, direction, path });
    const said = await work(t);
    // Stopped (ABOR, a stall) after the last bytes went to the kernel but before this reply: the stop's reset threw
    // away what the kernel still held for the client, so the transfer is not complete whatever `work` saw.
    if (t.reason !== null) throw t.closedError();
    await finalReply(226, typeof said === 'string' ? said : 'Transfer complete.');
  } catch (err) {
    outcome = t.reason === 'aborted' ? 'aborted' : 'failed';
    if (err instanceof TransferError && err.reason !== 'local') {
      error = err.message;
      await finalReply(426, err.message);
    } else {
      const cause = err instanceof TransferError ? err.cause : err;
      // Said after the 150, so within RFC 959's set for that moment (a busy file: 451, not 450).
      const reply = afterPreliminary(toReply(cause, path), direction);
      error = reply.text;
      // A refusal the client caused or can retry (quota, missing folder, busy file) is in the transfer's own log line;
      // anything else (the storage failing, a full disk, a bug) is worth a warning with its stack.
      // A transfer stopped from outside for 'local' is one whose storage stopped taking data: worth a warning too.
      if (!isRefusal(cause) || t.reason === 'local') s.log.warn({ err: cause, path }, 'transfer failed');
      // Plain TCP read by this process only: under TLS the records must be read by the TLS layer, and bytes the
      // addon's threads receive are not this thread's to discard.
      drain = direction === 'upload' && t.socket !== null && s.prot !== 'P' && !t.receivedByKernel;
      await finalReply(reply.code, reply.text);
    }
  } finally {
    if (setup.kind === 'passive') setup.listener.dispose(true);
    release(s, t.socket, outcome === 'ok', t.sentByKernel ? s.settings.dataStallTimeout * 1000 : null, drain);
    s.transfer = null;
    s.conn.setTransferring(false);
    t.dispose();
    const event: TransferEvent = { session: s.id, user: s.user, direction, path, bytes: t.bytes, durationMs: Math.round(performance.now() - t.startedAt), outcome, ...(error ? { error } : {}), ...(t.sentByKernel ? { sendfile: true as const } : {}), ...(t.receivedByKernel ? { kernelReceive: true as const } : {}) };
    // The rate an operator reads in the log; the event keeps the raw figures. The session's logger already
    // names the session and the user.
    const { session: _session, user: _user, ...logged } = event;
    s.logAt('info')?.info({ ...logged, path: hexForEscapes(path), bytesPerSecond: Math.round((event.bytes * 1000) / Math.max(1, event.durationMs)) }, 'transfer');
    s.ctx.emit('transfer', event);
  }
}

/** How long a data command's `settle` may hold its final reply (ms): storage that does not answer holds it no longer. */
const SETTLE_WAIT_MS = 1000;

/**
 * Runs `settle` (if any), waiting {@link SETTLE_WAIT_MS} at most; its failure is not the transfer's. One with nothing
 * to do returns nothing: no timer then (every upload passes here).
 */
async function settled(settle: (() => Promise<void> | undefined) | undefined): Promise<void> {
  const settling = settle?.();
  if (settling === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([settling.catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, SETTLE_WAIT_MS)))]);
  clearTimeout(timer);
}

/**
 * Runs the TLS handshake of a PROT P data connection. With `tlsSessionReuse` the client must resume the control
 * connection's TLS session (vsftpd's require_ssl_reuse): proof that the data connection comes from the same client,
 * not from someone at its address racing to the port.
 */
async function protect(s: Session, socket: Socket, t: Transfer): Promise<Socket> {
  if (!s.tlsContext) throw new FtpError(425, "Can't open data connection: no TLS on the control connection.");
  // Only a relay can tell a close_notify from a bare FIN (see SocketPipe.tcpEnded).
  const relay = s.settings.tlsUploadRequiresCloseNotify && t.direction === 'upload' ? new SocketPipe(socket) : null;
  let secure;
  try {
    // An upload's connection may be capped at TLS 1.2: see TlsContexts' upload contexts. A client that began TLS
    // before its command may have it under way already (early-tls.ts).
    const role = t.direction === 'upload' ? 'upload' : 'data';
    secure = await (earlyHandshake(socket) ?? s.ctx.tls.handshake(socket, s.tlsContext, s.settings.tlsHandshakeTimeout * 1000, role, relay ?? socket));
  } catch (err) {
    throw new FtpError(425, `Can't open data connection: ${(err as Error).message}`);
  }
  // After CCC the control connection's TLS session has ended and clients no longer offer it: the peer address
  // check is what remains (an operator who allows CCC accepts that).
  if (s.settings.tlsSessionReuse && !s.clearedControl && !secure.isSessionReused()) {
    secure.destroy();
    s.log.warn('TLS data connection without session reuse refused');
    throw new FtpError(522, 'TLS session of the data connection was not resumed: session reuse required.');
  }
  if (t.direction !== 'upload') {
    // Node emits 'secure' from inside OpenSSL's handshake, and the promise settled there resumes this function
    // before OpenSSL has left it (under TLS 1.3 it still has its session tickets to write). A download that ends
    // the connection at once, as a short listing does, would shut TLS down "while in init": no close_notify, a bare
    // FIN, and clients that check for it (Python's ftplib) fail the transfer. One turn of the loop later the
    // handshake is over. (An upload ends only after the client's end of data, well after the handshake.)
    await new Promise((resolve) => setImmediate(resolve));
    // Gone meanwhile: said now, for a sender that listens for 'close' only from here on would wait for nothing.
    if (secure.destroyed) throw t.closedError();
  }
  if (relay) {
    let closeNotify = false;
    secure.once('end', () => (closeNotify = !relay.tcpEnded));
    t.endedCleanly = () => closeNotify;
  }
  return secure;
}

/** Milliseconds a finished data connection may linger for the client to close it, before it is cut. */
const DATA_LINGER_MS = 5000;

/**
 * Milliseconds a failed transfer's data connection is held, unread, after the final reply, before it is cut. Cut at
 * once, the reset can reach a client that is still sending (lftp) before the reply does: it takes the reset for a
 * network failure and sends the whole upload again, over and over, never reading why (a full disk, a quota).
 */
const FAILED_LINGER_MS = 500;

/**
 * How long, and how many bytes, an upload refused midway is read on and dropped after the refusal (see
 * {@link drainThenCut}).
 */
const REFUSED_DRAIN_MS = 2000;
const REFUSED_DRAIN_BYTES = 64 * 1024 * 1024;

/**
 * Frees a data connection: after a failure, unread, a moment after the reply; after a success, once the client
 * closes its side, or after a short linger, so that a client which never closes cannot pile up sockets. `lent`: the
 * download was sent from the file's own pages (sendfile), with the data stall timeout (ms) that bounds the linger
 * (see {@link lingerEnded}); null otherwise. `drain`: an upload refused midway, read on a while (see
 * {@link drainThenCut}).
 */
function release(s: Session, socket: Socket | null, ok: boolean, lent: number | null = null, drain = false): void {
  if (!socket || socket.destroyed) return;
  // Until it closes, the server's to end when it closes itself.
  const lingering = s.ctx.lingering;
  lingering.add(socket);
  socket.once('close', () => lingering.delete(socket));
  if (!ok && drain) return drainThenCut(socket);
  if (!ok) {
    socket.pause();
    const timer = setTimeout(() => socket.destroy(), FAILED_LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    return;
  }
  // A download has ended its side already; a second end() would only build (and drop) an error object.
  if (!socket.writableEnded) socket.end();
  socket.resume();
  lingerOn(socket, lent, performance.now(), Infinity);
}

/**
 * An upload refused midway (552, over a quota or on a full disk: see afterPreliminary): what its client still sends
 * is read and dropped for up to {@link REFUSED_DRAIN_MS} and {@link REFUSED_DRAIN_BYTES}, and a client that
 * finishes meanwhile gets a plain end. Clients that read the control connection only once their upload is sent
 * (curl, Python's ftplib) then read the refusal; cut while sending, the reset made them report "connection reset"
 * and never the 552 (ftplib took it, unread, for the reply to its next command). A client still sending past the
 * bounds is cut as before.
 */
function drainThenCut(socket: Socket): void {
  let dropped = 0;
  const count = (length: number): void => {
    dropped += length;
    if (dropped > REFUSED_DRAIN_BYTES) socket.destroy();
  };
  if (!discardReads(socket, count)) socket.on('data', (chunk: Buffer) => count(chunk.length));
  const timer = setTimeout(() => socket.destroy(), REFUSED_DRAIN_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('end', () => {
    clearTimeout(timer);
    socket.end();
    // Its FIN answered: closed once the client closes too, or a moment later whatever it does.
    setTimeout(() => socket.destroy(), FAILED_LINGER_MS).unref();
  });
  socket.resume();
}

function lingerOn(socket: Socket, lent: number | null, since: number, last: number): void {
  const timer = setTimeout(() => lingerEnded(socket, lent, since, last), DATA_LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/**
 * The end of a finished data connection's linger: closed, unless the download was sent from the file's own pages
 * (`lent`, see send-file.ts' `lendUntilClosed`) and the client has not closed its side: those pages may still be in
 * the socket or, for a client on this machine, in its receive queue, and are refused to an upload that would rewrite
 * them in place until the client closes. It lingers on meanwhile; once the client has taken nothing more for the data
 * stall timeout (`lent` ms, 0: no limit) it is reset. The reset drops what the kernel still holds (the client sees
 * its transfer fail), but not what a local client's queue holds: a client on this machine that reads none of a file
 * delivered whole for that long may read it rewritten afterwards.
 */
function lingerEnded(socket: Socket, lent: number | null, since: number, last: number): void {
  if (socket.destroyed) return;
  if (lent === null || socket.readableEnded) return void socket.destroy();
  const unacked = unackedOf(socket) ?? 0;
  const now = performance.now();
  if (unacked < last) since = now;
  else if (lent > 0 && now - since >= lent) return resetConnection(socket);
  lingerOn(socket, lent, since, unacked);
}

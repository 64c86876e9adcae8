import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { TlsRecordFramer } from './tls-records.js';

/**
 * A duplex that relays a TCP socket, so that TLS can be layered over it and later taken off again (CCC,
 * RFC 4217 §6): Node's TLS over a bare socket takes the socket over for good. Only the control connection
 * goes through it, and only when CCC is allowed; its traffic is small. Uploads over TLS go through it only when
 * a missing close_notify must fail them (`tlsUploadRequiresCloseNotify`), the one way to tell it from a FIN.
 */
export class SocketPipe extends Duplex {
  private readonly onData = (chunk: Buffer): void => {
    if (this.framer) {
      const records = this.framer.records(chunk);
      if (this.framer.clearText) {
        // The client is past TLS: its clear text waits in the socket for the command reader (after detach).
        this.raw.pause();
        this.raw.unshift(chunk.subarray(records));
        if (records > 0) this.push(chunk.subarray(0, records));
        this.emit('clear-text');
        return;
      }
    }
    if (!this.push(chunk)) this.raw.pause();
  };
  private readonly onEnd = (): void => {
    this.tcpEnded = true;
    this.push(null);
  };
  private readonly onError = (err: Error): void => {
    this.destroy(err);
  };
  private readonly onRawClose = (): void => {
    this.destroy();
  };
  private keepRawOpen = false;
  /**
   * The peer's TCP FIN has arrived. A TLS layer above that ends while this is still false ended on the peer's
   * close_notify (it is decoded before the FIN is relayed); one that ends after it saw a bare FIN.
   */
  tcpEnded = false;
  private detached = false;
  /** Set by {@link beginClearing}: only whole TLS records are relayed from then on. */
  private framer: TlsRecordFramer | null = null;

  constructor(readonly raw: Socket) {
    super({ allowHalfOpen: true });
    raw.on('data', this.onData);
    raw.on('end', this.onEnd);
    raw.on('error', this.onError);
    raw.on('close', this.onRawClose);
    raw.resume();
  }

  override _read(): void {
    if (!this.framer?.clearText && !this.detached) this.raw.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.raw.write(chunk, callback);
  }

  /** Ending the TLS layer ends the connection, except for CCC, where the session goes on in clear text. */
  override _final(callback: (err?: Error | null) => void): void {
    if (!this.keepRawOpen) this.raw.end();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.detached && !this.keepRawOpen) this.raw.destroy();
    callback(err);
  }

  /**
   * CCC: from now on ending or destroying the TLS layer leaves the TCP connection open, and only TLS records are
   * relayed to it; the first clear-text byte stops the relay (event `clear-text`) and stays in the socket.
   */
  beginClearing(): void {
    this.keepRawOpen = true;
    this.framer = new TlsRecordFramer();
  }

  /**
   * The session ended: if TLS was being taken off ({@link beginClearing}), the TCP connection that the TLS layer
   * now leaves open is destroyed; otherwise ending the TLS layer closes it as usual, after the last reply.
   */
  abandonIfClearing(): void {
    if (this.keepRawOpen) this.raw.destroy();
  }

  /**
   * Takes TLS off after the CCC reply was sent (call {@link beginClearing} before sending it). Clients disagree
   * on the order of close_notify (RFC 4217 §6 leaves it open): lftp sends its own first and then waits for ours,
   * and fails if ours arrives with the 200; curl's default waits for ours and never answers; others send nothing
   * and go on in clear text at once. So: answer the client's close_notify at once, send none once it speaks clear
   * text, and send ours after `graceMs` of silence.
   */
  async clearTls(tls: TLSSocket, graceMs: number): Promise<{ socket: Socket; framer: TlsRecordFramer }> {
    const framer = this.framer;
    // The TLS layer must be read for its close_notify to be seen; no application data is expected any more.
    tls.on('data', () => {});
    tls.resume();
    const first = await new Promise<'close-notify' | 'clear-text' | 'silence'>((resolve) => {
      const timer = setTimeout(() => resolve('silence'), graceMs);
      const done = (why: 'close-notify' | 'clear-text') => () => {
        clearTimeout(timer);
        resolve(why);
      };
      tls.once('end', done('close-notify'));
      tls.once('close', done('close-notify'));
      this.once('clear-text', done('clear-text'));
      if (framer?.clearText) done('clear-text')();
    });
    if (first !== 'clear-text' && !this.raw.destroyed) {
      // Our close_notify must be on the wire before any clear-text reply.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.once('finish', () => {
          clearTimeout(timer);
          resolve();
        });
        tls.end();
      });
    }
    tls.destroy();
    return this.detach();
  }

  /**
   * Stops relaying: from now on the raw socket is read directly. The framer says where the peer stands: TLS
   * records it has still to send (its close_notify) must be skipped by the next reader.
   */
  detach(): { socket: Socket; framer: TlsRecordFramer } {
    this.detached = true;
    this.raw.off('data', this.onData);
    this.raw.off('end', this.onEnd);
    this.raw.off('error', this.onError);
    this.raw.off('close', this.onRawClose);
    this.raw.pause();
    return { socket: this.raw, framer: this.framer ?? new TlsRecordFramer() };
  }
}

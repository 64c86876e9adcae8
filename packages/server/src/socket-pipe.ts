import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

/**
 * A duplex that relays a TCP socket, so that TLS can be layered over it and later taken off again (CCC,
 * RFC 4217 §6): Node's TLS over a bare socket takes the socket over for good. Only the control connection
 * goes through it, and only when CCC is allowed; its traffic is small.
 */
export class SocketPipe extends Duplex {
  private readonly onData = (chunk: Buffer): void => {
    if (!this.push(chunk)) this.raw.pause();
  };
  private readonly onEnd = (): void => {
    this.push(null);
  };
  private readonly onError = (err: Error): void => {
    this.destroy(err);
  };
  private readonly onRawClose = (): void => {
    this.destroy();
  };
  private keepRawOpen = false;
  private detached = false;

  constructor(readonly raw: Socket) {
    super({ allowHalfOpen: true });
    raw.on('data', this.onData);
    raw.on('end', this.onEnd);
    raw.on('error', this.onError);
    raw.on('close', this.onRawClose);
    raw.resume();
  }

  override _read(): void {
    this.raw.resume();
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

  /** CCC: ending or destroying the TLS layer from now on leaves the TCP connection open. */
  keepOpen(): void {
    this.keepRawOpen = true;
  }

  /** Stops relaying: from now on the raw socket is read directly. */
  detach(): Socket {
    this.detached = true;
    this.raw.off('data', this.onData);
    this.raw.off('end', this.onEnd);
    this.raw.off('error', this.onError);
    this.raw.off('close', this.onRawClose);
    this.raw.pause();
    return this.raw;
  }
}

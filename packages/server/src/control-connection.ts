import type { Socket } from 'node:net';
import { LineReader, formatReply } from '@ftp/protocol';
import type { TlsRecordFramer } from './tls-records.js';

/**
 * What the control connection hands the session: a command line, an over-long line it discarded, or a count of
 * lines it discarded because the client sent too many ahead (each is owed a 500, in order).
 */
export type ControlEvent = { type: 'line'; line: string } | { type: 'overflow'; length: number } | { type: 'dropped'; count: number };

/** Bytes of unsent replies past which the session stops taking commands until the client reads. */
const MAX_PENDING_REPLY_BYTES = 64 * 1024;

/**
 * The one owner of the line reader and the reply formatter: bytes in, command lines out; replies in, bytes out.
 * It also enforces the two memory bounds of a control connection: the line length (inside the reader) and the
 * number of commands read ahead (the socket is paused while the session is behind).
 */
export class ControlConnection {
  private readonly reader: LineReader;
  private readonly queue: ControlEvent[] = [];
  private waiting: ((e: ControlEvent | null) => void) | null = null;
  private ended = false;
  private pausedForQueue = false;
  private transferring = false;
  /**
   * Bytes read but not yet fed to the line reader because enough commands are queued: with the socket paused,
   * at most one read chunk is held, so a client that pipelines hundreds of commands loses none of them.
   */
  private unread: Buffer | null = null;
  /** After CCC: follows the client's last TLS records (its close_notify) so they are skipped; null otherwise. */
  private tlsRecords: TlsRecordFramer | null = null;

  private readonly onDataBound = (chunk: Buffer): void => this.onData(chunk);
  private readonly onEndBound = (): void => this.finish();
  private readonly onCloseBound = (): void => {
    this.finish();
    this.onClosed();
  };
  private readonly onClosed: () => void;

  constructor(
    public socket: Socket,
    maxLineLength: number,
    private readonly maxQueued: number,
    /** Called synchronously for each line; returning true means it was handled out of band (ABOR, STAT). */
    private readonly interceptor: (e: ControlEvent) => boolean,
    /** Called once the socket is gone: whatever the session was doing (a transfer) must stop. */
    onClosed: () => void,
  ) {
    this.reader = new LineReader({ maxLineLength });
    this.onClosed = onClosed;
    this.attach(socket);
    // A socket whose PROXY header was read first is paused with the bytes after it put back.
    socket.resume();
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onDataBound);
    socket.on('end', this.onEndBound);
    socket.on('close', this.onCloseBound);
    socket.on('error', this.onEndBound);
  }

  private detach(socket: Socket): void {
    socket.off('data', this.onDataBound);
    socket.off('end', this.onEndBound);
    socket.off('close', this.onCloseBound);
    socket.off('error', this.onEndBound);
    socket.on('error', () => {});
  }

  /**
   * Stops reading clear text before a TLS upgrade (AUTH TLS): the client's handshake must reach the TLS layer,
   * and nothing the client sent in clear after AUTH may be acted upon once the session is secure (RFC 4217 §4,
   * the STARTTLS command-injection attack).
   */
  prepareUpgrade(options: { watchClose?: boolean } = {}): void {
    this.detach(this.socket);
    // Still notice the client hanging up while no one reads (a handshake that never comes).
    if (options.watchClose !== false) this.socket.once('close', this.onCloseBound);
    this.socket.pause();
    this.reader.reset();
    this.queue.length = 0;
    this.unread = null;
  }

  /** Continues on another socket: the TLS socket that now wraps the connection, or the bare one after CCC. */
  upgrade(next: Socket, options: { tlsRecords?: TlsRecordFramer } = {}): void {
    this.tlsRecords = options.tlsRecords && !options.tlsRecords.clearText ? options.tlsRecords : null;
    this.socket = next;
    this.pausedForQueue = false;
    this.attach(next);
    next.resume();
  }

  /** Sends a reply and resolves once it is handed to the kernel (before a TLS handshake takes the socket). */
  sendFlushed(code: number, text: string): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed || !this.socket.writable) return resolve();
      this.socket.write(formatReply(code, text), () => resolve());
    });
  }

  private onData(chunk: Buffer): void {
    if (this.tlsRecords) {
      // After CCC the client may still send its close_notify before its next command: skip whole TLS records.
      chunk = chunk.subarray(this.tlsRecords.records(chunk));
      if (this.tlsRecords.clearText) this.tlsRecords = null;
      if (chunk.length === 0) return;
    }
    if (this.unread) {
      // Commands are still waiting unread: keep the order, and keep holding (the socket was paused).
      this.unread = Buffer.concat([this.unread, chunk]);
      return;
    }
    this.feed(chunk);
  }

  /**
   * Feeds the line reader no more lines than the queue has room for, so the queue never overflows outside a
   * transfer; the rest waits in {@link unread} with the socket paused.
   */
  private feed(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      const room = this.transferring ? Infinity : this.maxQueued - this.queue.length;
      if (room <= 0) {
        this.unread = chunk.subarray(pos);
        this.pausedForQueue = true;
        this.socket.pause();
        return;
      }
      const end = this.afterLines(chunk, pos, room);
      this.take(chunk.subarray(pos, end));
      pos = end;
    }
    this.pauseIfBehind();
  }

  /** The offset just past the `count`-th LF at or after `from` (or the chunk's end). */
  private afterLines(chunk: Buffer, from: number, count: number): number {
    if (count === Infinity) return chunk.length;
    let pos = from;
    for (let i = 0; i < count; i++) {
      const lf = chunk.indexOf(0x0a, pos);
      if (lf < 0) return chunk.length;
      pos = lf + 1;
    }
    return pos;
  }

  private take(bytes: Buffer): void {
    for (const event of this.reader.push(bytes)) {
      // Blank lines are no command (RFC 959 has none): ignore them here, so they can neither queue nor count.
      if (event.type === 'line' && event.line.trim() === '') continue;
      if (this.interceptor(event)) continue;
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(event);
      } else if (this.queue.length < this.hardLimit) {
        this.queue.push(event);
      } else {
        // Only reached by lines the LF count cannot see (bare CRs) or during a transfer: past the limit lines
        // are only counted, so memory stays bounded whatever one chunk holds.
        const last = this.queue[this.queue.length - 1];
        if (last?.type === 'dropped') last.count++;
        else this.queue.push({ type: 'dropped', count: 1 });
      }
    }
  }

  /**
   * Too many commands read ahead: stop reading the socket. Not while a transfer runs, though: ABOR and STAT
   * must still be heard, and so must the client hanging up; extra lines are then dropped (and answered 500).
   */
  private pauseIfBehind(): void {
    if (this.queue.length >= this.maxQueued && !this.pausedForQueue && !this.transferring) {
      this.pausedForQueue = true;
      this.socket.pause();
    }
  }

  /** While a transfer runs the socket is always read (see {@link pauseIfBehind}). */
  setTransferring(on: boolean): void {
    this.transferring = on;
    if (on) this.resumeReading();
    else this.pauseIfBehind();
  }

  /** Reads on: first what was held unread, then the socket (unless that refilled the queue). */
  private resumeReading(): void {
    if (!this.pausedForQueue) return;
    this.pausedForQueue = false;
    const held = this.unread;
    this.unread = null;
    if (held) this.feed(held);
    if (!this.pausedForQueue) this.socket.resume();
  }

  /** Lines queued past this are dropped: twice the pause threshold, the slack one chunk may bring. */
  private get hardLimit(): number {
    return this.maxQueued * 2;
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w(null);
    }
  }

  /** The next command, or null once the client is gone. Commands already read are served before the end. */
  next(): Promise<ControlEvent | null> | ControlEvent | null {
    let e = this.queue.shift();
    if (this.pausedForQueue && this.queue.length < this.maxQueued / 2) {
      this.resumeReading();
      e ??= this.queue.shift();
    }
    if (e) return e;
    if (this.ended) return null;
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  /** Sends one reply. Resolves at once unless the client stopped reading, then when it catches up. */
  send(code: number, text: string | readonly string[]): Promise<void> | void {
    if (this.socket.destroyed || !this.socket.writable) return;
    const flushed = this.socket.write(formatReply(code, text));
    if (!flushed && this.socket.writableLength > MAX_PENDING_REPLY_BYTES) {
      return new Promise((resolve) => {
        const done = (): void => {
          this.socket.off('drain', done);
          this.socket.off('close', done);
          resolve();
        };
        this.socket.on('drain', done);
        this.socket.on('close', done);
      });
    }
  }

  get isOpen(): boolean {
    return !this.ended && !this.socket.destroyed;
  }

  /** Ends the connection after the replies already written are flushed. */
  close(): void {
    if (this.socket.destroyed) return;
    this.socket.end();
    // A client that never reads must not keep a half-closed socket alive.
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }
}

import type { Socket } from 'node:net';
import { LineReader, encodeEscaped, formatReply, formatReplyPiece, hasByteEscapes, type LineEvent } from '@ftp/protocol';
import type { TlsRecordFramer } from './tls-records.js';

/**
 * What the control connection hands the session: a command line, an over-long line it discarded, a line it
 * discarded for a CR followed by neither LF nor NUL (see the line reader), or a count of lines it discarded
 * because the client sent too many ahead (each is owed a 500, in order).
 */
export type ControlEvent = LineEvent | { type: 'dropped'; count: number };

/**
 * Commands dropped for being sent too far ahead (during a transfer) past which the session ends the connection (421)
 * rather than answer each with 500. Past it the socket is no longer read either: the lines would all be dropped, and
 * a client streaming them kept the event loop parsing for as long as its transfer ran.
 */
export const MAX_DROPPED_COMMANDS = 1000;

/** Bytes of unsent replies past which the session stops taking commands until the client reads. */
const MAX_PENDING_REPLY_BYTES = 64 * 1024;

/** What a control connection reports to its session. */
export interface ControlOwner {
  /** Called synchronously for each line; returning true means it was handled out of band (ABOR, STAT). */
  intercept(e: ControlEvent): boolean;
  /** An event was queued, or the client left, while the owner was waiting for one (see {@link ControlConnection.next}). */
  wake(): void;
  /**
   * The client sent its FIN (or the socket failed): no more commands will come. Those already read are still
   * served (the server's sockets are half-open), so a session already serving them needs nothing more; one that
   * has not started yet must end the connection itself.
   */
  inputEnded(): void;
  /** Called once the socket is gone: whatever the session was doing (a transfer) must stop. */
  connectionClosed(): void;
  /** The socket failed (a reset, bytes that are not TLS on a TLS connection): said before {@link inputEnded}. */
  connectionFailed(err: Error): void;
}

/** The connection a socket's listeners serve: shared listener functions instead of closures per connection. */
const OWNER = Symbol('controlConnection');
type OwnedSocket = Socket & { [OWNER]?: ControlConnection };

function onSocketData(this: OwnedSocket, chunk: Buffer): void {
  this[OWNER]?.onData(chunk);
}
function onSocketEnd(this: OwnedSocket): void {
  const conn = this[OWNER];
  if (!conn) return;
  // A CR that ended the client's last bytes ended its last line: nothing can follow it now.
  conn.releaseHeldCR();
  conn.finish();
  conn.owner.inputEnded();
}
function onSocketError(this: OwnedSocket, err: Error): void {
  this[OWNER]?.owner.connectionFailed(err);
  onSocketEnd.call(this);
}
function onSocketClose(this: OwnedSocket): void {
  const conn = this[OWNER];
  if (!conn) return;
  conn.finish();
  conn.owner.connectionClosed();
}
function ignore(): void {}

/** What bounds a control connection (the server's settings of the same names). */
export interface ControlLimits {
  /** Longest command line, in bytes. */
  readonly maxLineLength: number;
  /** Commands read ahead of the one running before the socket is paused. */
  readonly maxPipelinedCommands: number;
}

const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;
/** Telnet's Interpret As Command byte: the line reader keeps Telnet state across chunks once it sees one. */
const IAC = 0xff;

/**
 * How long a CR that ended the client's bytes waits for the next one before it ends the line. Only a client that
 * sends nothing after a bare CR waits: ftplib's urgent-data ABOR (its LF is taken out of the stream), or one ending
 * lines with CR alone. A CR NUL split by the network arrives well within it.
 */
const HELD_CR_WAIT_MS = 100;
/**
 * The wait outside a transfer, longer: a CR NUL split by a lost segment arrives after a retransmission (200 ms or
 * more), and ending the line early runs the command on the name's first part. ftplib's ABOR outside a transfer
 * has nothing to abort and waits a second.
 */
const HELD_CR_IDLE_WAIT_MS = 1000;
/** The wait of each connection holding a CR (a map: the rare case should not cost every session a field). */
const heldCRTimers = new Map<ControlConnection, NodeJS.Timeout>();

/**
 * A reply as the socket takes it: the text itself (written as UTF-8 without a copy), or its bytes when it names
 * something by byte escapes (a name that is not UTF-8, sent back as the very bytes it was made of). A byte 0xFF,
 * which only an escape can give (UTF-8 has none), goes as IAC IAC (RFC 959 §4.1; RFC 2640 §3.1): clients read
 * the control connection as Telnet, as the server reads it.
 */
function wireReply(code: number, text: string | readonly string[]): string | Buffer {
  return wire(formatReply(code, text));
}

/** Formatted reply text as the socket takes it (see {@link wireReply}). */
function wire(reply: string): string | Buffer {
  if (!hasByteEscapes(reply)) return reply;
  const bytes = encodeEscaped(reply);
  return bytes.includes(0xff) ? doubleIac(bytes) : bytes;
}

function doubleIac(bytes: Buffer): Buffer {
  let count = 0;
  for (let i = bytes.indexOf(0xff); i !== -1; i = bytes.indexOf(0xff, i + 1)) count++;
  const out = Buffer.allocUnsafe(bytes.length + count);
  let length = 0;
  let from = 0;
  for (let i = bytes.indexOf(0xff); i !== -1; i = bytes.indexOf(0xff, i + 1)) {
    length += bytes.copy(out, length, from, i + 1);
    out[length++] = 0xff;
    from = i + 1;
  }
  bytes.copy(out, length, from);
  return out;
}

/** One reader per line length for every connection between lines (see {@link ControlConnection.frame}). */
const sharedReaders = new Map<number, LineReader>();
function sharedReader(maxLineLength: number): LineReader {
  let reader = sharedReaders.get(maxLineLength);
  if (!reader) sharedReaders.set(maxLineLength, (reader = new LineReader({ maxLineLength })));
  return reader;
}

// The connection's yes/no state, one bit each in `flags` (an idle connection is mostly these).
/** The owner asked for an event and got none: it is to be woken when one arrives (or the client leaves). */
const WAITING = 1;
/** The socket ended, failed or closed: no more commands will come. */
const ENDED = 2;
/** The socket is paused because enough commands are queued. */
const PAUSED_FOR_QUEUE = 4;
/** A transfer runs: the socket is always read. */
const TRANSFERRING = 8;
/** The connection's own reader was fed Telnet bytes, so its state may outlive a line: it is kept. */
const TELNET_SEEN = 16;
/** A wait on a held CR is armed (its timer is in `heldCRTimers`): chunks without one skip the map. */
const CR_TIMER = 32;
/** Between prepareUpgrade and upgrade: the socket carries (or is about to carry) a TLS handshake, not replies. */
const UPGRADING = 64;

/**
 * The one owner of the line reader and the reply formatter: bytes in, command lines out; replies in, bytes out.
 * It also enforces the two memory bounds of a control connection: the line length (inside the reader) and the
 * number of commands read ahead (the socket is paused while the session is behind).
 */
export class ControlConnection {
  /**
   * The connection's own line reader, only while a chunk left something behind in it (a partial line, Telnet
   * state); null between lines, when chunks go through a shared reader. Measured at 1,000 idle sessions
   * (issue 9): a reader per connection was ~90 bytes of every idle session.
   */
  private reader: LineReader | null = null;
  /** Events read ahead of the session (allocated when the first one must wait). */
  private queue: ControlEvent[] | null = null;
  /** WAITING, ENDED, PAUSED_FOR_QUEUE, TRANSFERRING, TELNET_SEEN, CR_TIMER, UPGRADING. */
  private flags = 0;
  /**
   * Bytes read but not yet fed to the line reader because enough commands are queued: with the socket paused,
   * at most one read chunk is held, so a client that pipelines hundreds of commands loses none of them.
   */
  private unread: Buffer | null = null;
  /** After CCC: follows the client's last TLS records (its close_notify) so they are skipped; null otherwise. */
  private tlsRecords: TlsRecordFramer | null = null;

  constructor(
    public socket: Socket,
    /** Line length and read-ahead bounds (the server's settings object, shared). */
    private readonly limits: ControlLimits,
    /** The session: intercepts lines (ABOR, STAT during a transfer), is woken for events, told of the close. */
    readonly owner: ControlOwner,
  ) {
    this.attach(socket);
    // A socket whose PROXY header was read first is paused with the bytes after it put back.
    socket.resume();
  }

  private is(flag: number): boolean {
    return (this.flags & flag) !== 0;
  }

  private set(flag: number, on: boolean): void {
    this.flags = on ? this.flags | flag : this.flags & ~flag;
  }

  private get maxQueued(): number {
    return this.limits.maxPipelinedCommands;
  }

  private attach(socket: Socket): void {
    (socket as OwnedSocket)[OWNER] = this;
    socket.on('data', onSocketData);
    socket.on('end', onSocketEnd);
    socket.on('close', onSocketClose);
    socket.on('error', onSocketError);
  }

  private detach(socket: Socket): void {
    socket.off('data', onSocketData);
    socket.off('end', onSocketEnd);
    socket.off('close', onSocketClose);
    socket.off('error', onSocketError);
    socket.on('error', ignore);
  }

  /**
   * Stops reading clear text before a TLS upgrade (AUTH TLS): the client's handshake must reach the TLS layer,
   * and nothing the client sent in clear after AUTH may be acted upon once the session is secure (RFC 4217 §4,
   * the STARTTLS command-injection attack).
   */
  prepareUpgrade(options: { watchClose?: boolean } = {}): void {
    this.detach(this.socket);
    // Still notice the client hanging up while no one reads (a handshake that never comes).
    if (options.watchClose !== false) this.socket.once('close', onSocketClose);
    this.socket.pause();
    this.stopWaitingOnHeldCR();
    this.reader = null;
    this.set(UPGRADING, true);
    this.set(TELNET_SEEN, false);
    this.queue = null;
    this.unread = null;
  }

  /** Continues on another socket: the TLS socket that now wraps the connection, or the bare one after CCC. */
  upgrade(next: Socket, options: { tlsRecords?: TlsRecordFramer } = {}): void {
    this.tlsRecords = options.tlsRecords && !options.tlsRecords.clearText ? options.tlsRecords : null;
    this.socket = next;
    this.set(PAUSED_FOR_QUEUE, false);
    this.set(UPGRADING, false);
    this.attach(next);
    next.resume();
    // The client's FIN may have come while no one listened (during CCC's hand-back): no 'end' will follow.
    if (next.readableEnded) {
      this.finish();
      this.owner.inputEnded();
    }
  }

  /**
   * Sends a reply and resolves once it is handed to the kernel (before a TLS handshake takes the socket). With
   * `timeoutMs`, resolves false if it is not by then (a client that does not read).
   */
  sendFlushed(code: number, text: string, timeoutMs?: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.socket.destroyed || !this.socket.writable) return resolve(true);
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => resolve(false), timeoutMs);
      this.socket.write(wireReply(code, text), () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** @internal the socket's data listener. */
  onData(chunk: Buffer): void {
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
    this.waitOnHeldCR();
  }

  /**
   * The client's bytes ended with a CR whose line may go on (CR NUL, a CR inside a name): wait a moment for the next
   * byte, then end the line there (ftplib's urgent-data ABOR sends nothing more; see the line reader).
   */
  private waitOnHeldCR(): void {
    if (this.is(CR_TIMER)) this.stopWaitingOnHeldCR();
    if (this.reader?.holding !== true) return;
    this.set(CR_TIMER, true);
    heldCRTimers.set(
      this,
      setTimeout(
        () => {
          heldCRTimers.delete(this);
          this.set(CR_TIMER, false);
          // Bytes held unread (the queue is full) come next: the reader sees them before deciding.
          if (this.unread === null) this.releaseHeldCR();
        },
        this.is(TRANSFERRING) ? HELD_CR_WAIT_MS : HELD_CR_IDLE_WAIT_MS,
      ),
    );
  }

  /** Ends the line a held CR ended (the wait is over, or the client sent its FIN). */
  releaseHeldCR(): void {
    const reader = this.reader;
    if (reader?.holding !== true || this.socket.destroyed || this.unread !== null) return;
    this.deliver(reader.release());
    this.pauseIfBehind();
  }

  private stopWaitingOnHeldCR(): void {
    if (!this.is(CR_TIMER)) return;
    this.set(CR_TIMER, false);
    clearTimeout(heldCRTimers.get(this));
    heldCRTimers.delete(this);
  }

  /**
   * Feeds the line reader no more lines than the queue has room for, so the queue never overflows outside a
   * transfer; the rest waits in {@link unread} with the socket paused.
   */
  private feed(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      const room = this.is(TRANSFERRING) ? Infinity : this.maxQueued - this.queued;
      if (room <= 0) {
        this.unread = chunk.subarray(pos);
        this.set(PAUSED_FOR_QUEUE, true);
        this.socket.pause();
        return;
      }
      const end = this.afterLines(chunk, pos, room);
      this.take(chunk.subarray(pos, end));
      pos = end;
    }
    this.pauseIfBehind();
  }

  /**
   * The offset just past the `count`-th line end at or after `from` (or the chunk's end). A line ends with CRLF or
   * LF; a bare CR is counted as an end too, though the line reader ends a line there only in a few cases (an ABOR,
   * a CR the client's bytes stop at): counting more ends than there are only feeds the reader less at a time,
   * while counting LFs alone let a client ending its commands with CR put a whole chunk of them past the bound.
   */
  private afterLines(chunk: Buffer, from: number, count: number): number {
    if (count === Infinity) return chunk.length;
    let pos = from;
    // The next CR and LF at or after `pos` (-1: none), each searched again only once passed, so a chunk of CR NULs
    // is still one scan.
    let cr = chunk.indexOf(CR, pos);
    let lf = chunk.indexOf(LF, pos);
    for (let i = 0; i < count; ) {
      if (cr !== -1 && cr < pos) cr = chunk.indexOf(CR, pos);
      if (lf !== -1 && lf < pos) lf = chunk.indexOf(LF, pos);
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        // A CR ends a line, except as CR NUL (a CR inside it); the LF right after it belongs to it.
        const next = chunk[cr + 1];
        pos = next === LF || next === NUL ? cr + 2 : cr + 1;
        if (next !== NUL) i++;
      } else if (lf !== -1) {
        pos = lf + 1;
        i++;
      } else return chunk.length;
    }
    return pos;
  }

  private take(bytes: Buffer): void {
    this.deliver(this.frame(bytes));
  }

  private deliver(events: LineEvent[]): void {
    for (const event of events) {
      // Blank lines are no command (RFC 959 has none): ignore them here, so they can neither queue nor count.
      if (event.type === 'line' && event.line.trim() === '') continue;
      if (this.owner.intercept(event)) continue;
      const queue = (this.queue ??= []);
      if (queue.length < this.hardLimit) {
        queue.push(event);
      } else {
        // Only reached by lines the LF count cannot see (bare CRs) or during a transfer: past the limit lines
        // are only counted, so memory stays bounded whatever one chunk holds.
        const last = queue[queue.length - 1];
        if (last?.type === 'dropped') last.count++;
        else queue.push({ type: 'dropped', count: 1 });
        // The connection is to end (421) once the session reaches these: nothing more needs reading until then.
        if (last?.type === 'dropped' && last.count > MAX_DROPPED_COMMANDS && !this.is(PAUSED_FOR_QUEUE)) {
          this.set(PAUSED_FOR_QUEUE, true);
          this.socket.pause();
        }
      }
      this.wakeOwner();
    }
  }

  /**
   * Frames bytes into events. A chunk of whole lines without Telnet bytes (nearly every chunk a client sends)
   * leaves a reader as it found it, so between lines a connection needs no reader of its own: such chunks go
   * through the shared one. Anything else (a partial line, a bare CR whose LF may follow, Telnet commands) gets
   * the connection its own reader, dropped again once a chunk of whole lines leaves it empty; one that saw
   * Telnet bytes is kept (it may be inside a sub-negotiation that spans lines).
   */
  private frame(bytes: Buffer): LineEvent[] {
    const telnet = bytes.indexOf(IAC) !== -1;
    const wholeLines = !telnet && bytes.length > 0 && bytes[bytes.length - 1] === LF;
    if (this.reader === null) {
      if (wholeLines) return sharedReader(this.limits.maxLineLength).push(bytes);
      this.reader = new LineReader({ maxLineLength: this.limits.maxLineLength });
    }
    if (telnet) this.set(TELNET_SEEN, true);
    const events = this.reader.push(bytes);
    if (wholeLines && !this.is(TELNET_SEEN)) this.reader = null;
    return events;
  }

  private get queued(): number {
    return this.queue?.length ?? 0;
  }

  private wakeOwner(): void {
    if (!this.is(WAITING)) return;
    this.set(WAITING, false);
    this.owner.wake();
  }

  /**
   * Too many commands read ahead: stop reading the socket. Not while a transfer runs, though: ABOR and STAT
   * must still be heard, and so must the client hanging up; extra lines are then dropped (and answered 500).
   */
  private pauseIfBehind(): void {
    if (this.queued >= this.maxQueued && !this.is(PAUSED_FOR_QUEUE) && !this.is(TRANSFERRING)) {
      this.set(PAUSED_FOR_QUEUE, true);
      this.socket.pause();
    }
  }

  /** While a transfer runs the socket is always read (see {@link pauseIfBehind}). */
  setTransferring(on: boolean): void {
    this.set(TRANSFERRING, on);
    if (on) {
      this.offerQueued();
      this.resumeReading();
    } else this.pauseIfBehind();
  }

  /**
   * Offers the lines queued while the command that starts a transfer was being served to the owner again: an ABOR a
   * client sent right behind its RETR (pipelined, or while storage was slow to open the file) is meant for that
   * transfer, and queued it would wait until the transfer had ended (at the data connection timeout when the client
   * never connects). Also called as stoppable work begins (a HASH, a STAT listing): an ABOR read with its command,
   * in one segment, was queued before there was anything to stop.
   */
  offerQueued(): void {
    const queue = this.queue;
    if (queue === null || queue.length === 0) return;
    this.queue = queue.filter((event) => !this.owner.intercept(event));
  }

  /** Reads on: first what was held unread, then the socket (unless that refilled the queue). */
  private resumeReading(): void {
    if (!this.is(PAUSED_FOR_QUEUE)) return;
    this.set(PAUSED_FOR_QUEUE, false);
    const held = this.unread;
    this.unread = null;
    if (held) this.feed(held);
    if (!this.unread) this.waitOnHeldCR();
    if (!this.is(PAUSED_FOR_QUEUE)) this.socket.resume();
  }

  /** Lines queued past this are dropped: twice the pause threshold, the slack one chunk may bring. */
  private get hardLimit(): number {
    return this.maxQueued * 2;
  }

  /** @internal the socket ended, failed or closed: no more commands will come. */
  finish(): void {
    if (this.is(ENDED)) return;
    this.stopWaitingOnHeldCR();
    this.set(ENDED, true);
    this.wakeOwner();
  }

  /**
   * The next command: an event, `null` once the client is gone (commands already read are served before the
   * end), or `undefined` when none has arrived yet; the owner's `wake()` is then called once one has (or the
   * client left). Nothing is held while the session waits: no promise, no closure.
   */
  next(): ControlEvent | null | undefined {
    let e = this.queue?.shift();
    if (this.is(PAUSED_FOR_QUEUE) && this.queued < this.maxQueued / 2) {
      this.resumeReading();
      e ??= this.queue?.shift();
    }
    if (e) return e;
    // An idle connection keeps no queue array.
    this.queue = null;
    if (this.is(ENDED)) return null;
    this.set(WAITING, true);
    return undefined;
  }

  /** Sends one reply. Resolves at once unless the client stopped reading, then when it catches up. */
  send(code: number, text: string | readonly string[]): Promise<void> | void {
    return this.#write(wireReply(code, text));
  }

  /**
   * Sends a piece of a multi-line reply too long to make in one go (see `formatReplyPiece`): its pieces, `first` to
   * `last`, must follow each other with no other reply between them.
   */
  sendPiece(code: number, lines: readonly string[], piece: 'first' | 'middle' | 'last'): Promise<void> | void {
    return this.#write(wire(formatReplyPiece(code, lines, piece)));
  }

  #write(reply: string | Buffer): Promise<void> | void {
    if (this.socket.destroyed || !this.socket.writable) return;
    const flushed = this.socket.write(reply);
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

  /** The session has served every command read and waits for the next. */
  get waitingForCommand(): boolean {
    return this.is(WAITING);
  }

  /** Lines read and not yet served: a line answered out of turn now would overtake them. */
  get hasQueued(): boolean {
    return this.queued > 0;
  }

  /** Replies are piling up unsent: the client is not reading them. */
  get backlogged(): boolean {
    return this.socket.writableLength > MAX_PENDING_REPLY_BYTES;
  }

  /**
   * A TLS handshake is due or under way on the socket (implicit FTPS before it, AUTH TLS after its 234, CCC's
   * hand-back): a clear-text reply written now would land inside it.
   */
  get upgrading(): boolean {
    return this.is(UPGRADING);
  }

  get isOpen(): boolean {
    return !this.is(ENDED) && !this.socket.destroyed;
  }

  /** Ends the connection after the replies already written are flushed. */
  close(): void {
    if (this.socket.destroyed) return;
    const socket = this.socket;
    socket.end();
    // A client that never reads must not keep a half-closed socket alive. Cleared when the socket closes: the
    // timer would otherwise keep the session, its socket and its TLS state for 2 s after every QUIT.
    const timer = setTimeout(() => socket.destroy(), 2000).unref();
    socket.once('close', () => clearTimeout(timer));
  }
}

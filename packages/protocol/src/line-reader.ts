/**
 * Control-connection framing: bytes in, command lines out.
 *
 * - Lines end with CRLF (RFC 959 §4.1.3, the Telnet end-of-line); a bare LF
 *   ends a line too. A CR that the client's bytes end with ends a line once
 *   the caller stops waiting for more ({@link LineReader.release}): clients
 *   send `ABOR\r\n` as TCP urgent data (Python's ftplib does), and the
 *   kernel pulls the last byte, the LF, out of the stream, so waiting for it
 *   would hang the abort.
 * - A CR followed by any byte but LF or NUL (RFC 854 allows no other) does
 *   not end the line: the whole line, up to its real end, is reported as a
 *   `bare-cr` event and never read as a command. Splitting there would run
 *   two commands where the client, and anything between it and the server
 *   that frames by CRLF (a proxy allowing some verbs, an application that
 *   checks a name for LF), saw one: `SIZE x<CR>DELE y`. One exception: a line
 *   that is `ABOR` so far ends at its CR (an urgent-data ABOR whose client
 *   sent its next command without waiting), also when `IAC IP` (the Telnet
 *   interrupt that starts an abort sequence) follows the CR.
 * - CR NUL is a CR inside the line, not an end (RFC 854's NVT; RFC 2640 §3.1
 *   and RFC 3659 §2.2 for pathnames): lftp sends a name holding a CR that
 *   way. Ending the line there would run the command on the name's first
 *   part (`STOR a<CR><NUL>b` overwriting `a`). A CR that is the last byte
 *   fed is therefore held ({@link LineReader.holding}) until the next byte
 *   tells which it is, or until the caller gives up waiting
 *   ({@link LineReader.release}) — the urgent-data ABOR above.
 * - Telnet commands (RFC 854) are removed from the stream, so `ABOR` sent
 *   after `IAC IP` / `IAC DM` (RFC 959 §4.1.3) reads as a plain `ABOR`.
 *   netkit/inetutils `ftp` send the `IAC` of that `IAC DM` as TCP urgent
 *   data, which the kernel takes out of the stream, so what arrives is
 *   `IAC IP`, a bare DM byte (0xF2), then `ABOR`. A 0xF2 that is the first
 *   data byte after an `IAC IP` (other Telnet commands in between allowed,
 *   no complete `IAC DM`) is therefore dropped as that remnant. Anywhere else
 *   0xF2 is data: it leads 4-byte UTF-8 sequences (U+80000 … U+BFFFF).
 * - Lines are decoded as UTF-8 (RFC 2640 §2.2). Bytes that are not valid
 *   UTF-8 come from a client writing its own 8-bit charset: each becomes a
 *   byte escape (byte-escapes.ts), so the name the client sent is the name
 *   stored and listed back, byte for byte, and two names differing in such
 *   bytes stay two names instead of both becoming U+FFFD. Decoding never
 *   throws.
 * - A line longer than `maxLineLength` bytes is discarded as it arrives and
 *   reported once, as an `overflow` event, when its end arrives. Memory is
 *   bounded by `maxLineLength` whatever is fed.
 *
 * @module
 */
import { decodeEscaped } from './byte-escapes.js';
import { ProtocolError } from './errors.js';

/** One framing result: a complete line, or the report of a discarded over-long line. */
export type LineEvent =
  | { type: 'line'; line: string }
  | { type: 'overflow'; length: number }
  /** A line holding a CR followed by neither LF nor NUL (RFC 854): malformed, not a command; `length` in bytes. */
  | { type: 'bare-cr'; length: number };

/** Options of {@link LineReader}. */
export interface LineReaderOptions {
  /**
   * Maximum length of one line in bytes, excluding the CRLF and after Telnet
   * sequences are removed. Longer lines are discarded and reported as an
   * `overflow` event. Default 4096. Must be an integer in 1 … 2^30.
   */
  maxLineLength?: number;
  /**
   * Whether a CR followed by any byte ends the line there, as LF and CRLF do (default false: such a line is a
   * `bare-cr` event). For reading a server's replies, where no command can be smuggled and a reply must never be
   * lost; a server reading commands keeps the default.
   */
  bareCrEndsLine?: boolean;
}

/** Default {@link LineReaderOptions.maxLineLength}. */
export const DEFAULT_MAX_LINE_LENGTH = 4096;

const NUL = 0x00;
const LF = 0x0a;
const CR = 0x0d;
// Telnet command bytes, RFC 854 "TELNET COMMAND STRUCTURE".
const IAC = 0xff;
const SE = 0xf0;
const DM = 0xf2;
const IP = 0xf4;
const SB = 0xfa;
const WILL = 0xfb;

// Telnet parser states.
const S_DATA = 0;
const S_IAC = 1; // after IAC
const S_OPTION = 2; // after IAC WILL/WONT/DO/DONT: one option byte follows
const S_SB = 3; // inside a sub-negotiation (IAC SB … IAC SE)
const S_SB_IAC = 4; // IAC seen inside a sub-negotiation

const LITERAL_FF = Buffer.from([IAC]);
const LITERAL_CR = Buffer.from([CR]);
const NOTHING = Buffer.alloc(0);
/** A pending buffer larger than this is released once its line completes (keeps idle sessions small). */
const KEEP_PENDING_CAPACITY = 512;

/**
 * Incremental line reader for the FTP control connection.
 *
 * Feed it the socket's chunks with {@link LineReader.push}; it returns the
 * events completed by that chunk (none, one or many: commands may be
 * pipelined). Chunks may be split anywhere: inside a CRLF, a Telnet
 * sequence or a UTF-8 character.
 *
 * @example
 * ```ts
 * const reader = new LineReader({ maxLineLength: 1024 });
 * socket.on('data', (chunk) => {
 *   for (const ev of reader.push(chunk)) {
 *     if (ev.type === 'line') handle(parseCommand(ev.line));
 *     else reply(500, 'Line too long');
 *   }
 * });
 * ```
 */
export class LineReader {
  readonly #max: number;
  readonly #bareCrEndsLine: boolean;
  /** Bytes of the current, incomplete line (allocated lazily). */
  #pending: Buffer | null = null;
  #pendingLen = 0;
  /** Whether the current line is over-long and being discarded. */
  #discarding = false;
  /** Length so far of the line being discarded. */
  #discardLen = 0;
  /** Whether the last line ended with a CR, so that an LF right after it is part of that end. */
  #afterCR = false;
  /** Whether the last byte fed was a CR ending the current line, unless a NUL follows (see {@link holding}). */
  #heldCR = false;
  /** Whether the current line holds a CR followed by neither LF nor NUL: it ends as a `bare-cr` event. */
  #bareCR = false;
  #telnet = S_DATA;
  /**
   * Whether an `IAC IP` came and no data byte or `IAC DM` since: a 0xF2 as the next data byte is the DM of a Synch
   * whose IAC was taken out of the stream as TCP urgent data, and is dropped.
   */
  #afterIP = false;

  /**
   * Create a reader.
   * @param options - see {@link LineReaderOptions}.
   * @throws ProtocolError `BAD_ARGUMENT` if `maxLineLength` is not an integer in 1 … 2^30.
   */
  constructor(options: LineReaderOptions = {}) {
    const max = options?.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 2 ** 30) {
      throw new ProtocolError('BAD_ARGUMENT', 'maxLineLength must be an integer between 1 and 2^30');
    }
    this.#max = max;
    this.#bareCrEndsLine = options?.bareCrEndsLine === true;
  }

  /** Number of bytes held for the incomplete current line (at most `maxLineLength + 1`). */
  get bufferedBytes(): number {
    return this.#pendingLen;
  }

  /**
   * Whether the last byte fed was a CR that ends the current line unless the next byte is a NUL (CR NUL is a CR
   * inside the line). The line comes out with the next {@link push}, or with {@link release} when the caller
   * stops waiting for more bytes (a client whose urgent-data ABOR lost its LF sends nothing more).
   */
  get holding(): boolean {
    return this.#heldCR;
  }

  /** Ends the line a held CR ({@link holding}) ended: its event, or none when nothing is held. */
  release(): LineEvent[] {
    if (!this.#heldCR) return [];
    const out: LineEvent[] = [];
    this.#heldCR = false;
    this.#endLine(NOTHING, 0, 0, out);
    // An LF arriving after all still belongs to this line's end.
    this.#afterCR = true;
    return out;
  }

  /** Forget any partial line, discard state and Telnet state. */
  reset(): void {
    this.#heldCR = false;
    this.#bareCR = false;
    this.#pending = null;
    this.#pendingLen = 0;
    this.#discarding = false;
    this.#discardLen = 0;
    this.#afterCR = false;
    this.#telnet = S_DATA;
    this.#afterIP = false;
  }

  /**
   * Feed bytes received on the control connection.
   * @param chunk - the next bytes (a `Buffer` or any `Uint8Array`).
   * @returns the lines (and overflow reports) completed by this chunk, in order.
   * @throws ProtocolError `BAD_ARGUMENT` if `chunk` is not a `Uint8Array`.
   */
  push(chunk: Buffer): LineEvent[] {
    const buf = toBuffer(chunk);
    const out: LineEvent[] = [];
    const n = buf.length;
    let pos = 0;
    // Next CR / LF / IAC positions at or after `pos`; -1 = not searched yet, n = none.
    // Cached so that a chunk full of Telnet sequences is still scanned in linear time.
    let cr = -1;
    let lf = -1;
    let iac = -1;
    while (pos < n) {
      switch (this.#telnet) {
        case S_DATA: {
          const b = buf[pos] as number;
          if (this.#afterIP && b !== IAC) {
            // The first data byte after IAC IP: a DM byte there is what is left of the Synch's `IAC DM` once its
            // IAC was read as TCP urgent data (netkit ftp's abort), not data; it is as transparent as the Telnet
            // commands around it.
            this.#afterIP = false;
            if (b === DM) {
              pos++;
              break;
            }
          }
          if (this.#heldCR && b !== IAC) {
            // The data byte after a held CR (Telnet commands in between are transparent): CR NUL is a CR in the
            // line, CR LF its end, CR and anything else a malformed line (but after ABOR: see the module's notes).
            this.#heldCR = false;
            if (b === NUL) {
              this.#append(LITERAL_CR, 0, 1);
              pos++;
              break;
            }
            if (b === LF || this.#crEndsLine(NOTHING, 0, 0)) {
              this.#endLine(NOTHING, 0, 0, out);
              if (b === LF) {
                pos++;
                break;
              }
            } else {
              this.#bareCR = true;
            }
          }
          if (this.#afterCR) {
            // The LF of a CRLF whose CR ended the previous line (one given up waiting for: see release()).
            if (b === LF) {
              this.#afterCR = false;
              pos++;
              break;
            }
            if (b !== IAC) this.#afterCR = false;
          }
          if (iac < pos) {
            iac = buf.indexOf(IAC, pos);
            if (iac === -1) iac = n;
          }
          // Plain data in [pos, iac): split it on CR and LF.
          while (pos < iac) {
            if (cr < pos) {
              cr = buf.indexOf(CR, pos);
              if (cr === -1) cr = n;
            }
            if (lf < pos) {
              lf = buf.indexOf(LF, pos);
              if (lf === -1) lf = n;
            }
            const end = cr < lf ? cr : lf;
            if (end >= iac) {
              this.#append(buf, pos, iac);
              pos = iac;
            } else if (end === cr && (end + 1 >= n || buf[end + 1] === IAC)) {
              // Whether this CR ends the line depends on the next data byte, not here yet.
              this.#append(buf, pos, end);
              this.#heldCR = true;
              pos = end + 1;
            } else if (end === cr && buf[end + 1] === NUL) {
              // CR NUL: a CR inside the line; the NUL is padding.
              this.#append(buf, pos, end + 1);
              pos = end + 2;
            } else if (end === cr && buf[end + 1] !== LF && !this.#crEndsLine(buf, pos, end)) {
              // CR and a byte that is neither LF nor NUL: the line is malformed, and goes on to its real end.
              this.#append(buf, pos, end);
              this.#bareCR = true;
              pos = end + 1;
            } else {
              this.#endLine(buf, pos, end, out);
              pos = end + 1;
              if (end === cr && buf[pos] === LF) pos++;
            }
          }
          if (pos < n && pos === iac) {
            // buf[pos] is IAC.
            this.#telnet = S_IAC;
            pos++;
          }
          break;
        }
        case S_IAC: {
          const b = buf[pos] as number;
          if (b === IAC) {
            // IAC IAC: an escaped data byte 255 (RFC 854), which after a held CR is a bare CR's (see S_DATA).
            this.#afterCR = false;
            if (this.#heldCR) {
              this.#heldCR = false;
              if (this.#crEndsLine(NOTHING, 0, 0)) this.#endLine(NOTHING, 0, 0, out);
              else this.#bareCR = true;
            }
            this.#append(LITERAL_FF, 0, 1);
            this.#telnet = S_DATA;
            pos++;
          } else if (b >= WILL) {
            // IAC WILL/WONT/DO/DONT <option>: option negotiation, 3 bytes (RFC 854).
            this.#telnet = S_OPTION;
            pos++;
          } else if (b === SB) {
            // IAC SB … IAC SE: sub-negotiation (RFC 854), dropped whole.
            this.#telnet = S_SB;
            pos++;
          } else if (b >= SE) {
            // IAC <command> (IP, DM, AO, AYT, EC, EL, GA, NOP, BRK, SE): 2 bytes. IP starts an interrupt whose Synch
            // may arrive without its IAC; a whole IAC DM ends it.
            if (b === IP) {
              this.#afterIP = true;
              // An interrupt after a held CR ends an urgent-data ABOR's line at once (the abort sequence follows).
              // Any other held CR waits for its next data byte, as after every Telnet command: LF ends the line,
              // anything else makes it malformed (`SIZE x<CR><IAC IP>DELE y` is one line, not a SIZE and a DELE).
              if (this.#heldCR && this.#crEndsLine(NOTHING, 0, 0)) {
                this.#heldCR = false;
                this.#endLine(NOTHING, 0, 0, out);
                // An LF after all still belongs to this line's end.
                this.#afterCR = true;
              }
            } else if (b === DM) this.#afterIP = false;
            this.#telnet = S_DATA;
            pos++;
          } else {
            // IAC followed by a byte that is no Telnet command. At the start of a line or after IAC IP, it is what
            // is left of a Synch whose `IAC DM` lost its DM to TCP urgent data (RFC 959 §4.1.3; Python's ftplib
            // aborts so): the IAC is dropped. Inside a line, it is a client that does not double a 0xFF in a name
            // (curl's `%FF`, Python's ftplib; a CP1251 `я`): the 0xFF is data. The byte after it is data either way.
            const lineStart = this.#heldCR || (this.#pendingLen === 0 && !this.#discarding);
            if (!this.#afterIP && !lineStart) this.#append(LITERAL_FF, 0, 1);
            this.#telnet = S_DATA;
          }
          break;
        }
        case S_OPTION:
          this.#telnet = S_DATA;
          pos++;
          break;
        case S_SB: {
          // Dropped up to its IAC SE, or up to a line end, which ends the line as usual: FTP negotiates no options
          // (RFC 959 §4.1, RFC 1123 §4.1.2.12), and a sub-negotiation left open (a client's bug, a cut IAC SE) would
          // otherwise swallow every later command, QUIT and ABOR included, until the idle timeout.
          let end = pos;
          while (end < n) {
            const b = buf[end] as number;
            if (b === IAC || b === CR || b === LF) break;
            end++;
          }
          if (end >= n) {
            pos = n;
          } else if (buf[end] === IAC) {
            this.#telnet = S_SB_IAC;
            pos = end + 1;
          } else {
            this.#telnet = S_DATA;
            pos = end;
          }
          break;
        }
        default: {
          // S_SB_IAC: IAC SE ends the sub-negotiation; a line end ends it too (see S_SB), and is read as one;
          // anything else (IAC IAC…) stays inside it.
          const b = buf[pos] as number;
          if (b === CR || b === LF) {
            this.#telnet = S_DATA;
            break;
          }
          this.#telnet = b === SE ? S_DATA : S_SB;
          pos++;
          break;
        }
      }
    }
    return out;
  }

  /** Add bytes [start, end) (no line end among them) to the current line. */
  #append(buf: Buffer, start: number, end: number): void {
    if (end <= start) return;
    if (this.#discarding) {
      this.#discardLen += end - start;
      return;
    }
    const len = this.#pendingLen + (end - start);
    if (len > this.#max) {
      this.#discarding = true;
      this.#discardLen = len;
      this.#pending = null;
      this.#pendingLen = 0;
      return;
    }
    let pending = this.#pending;
    if (pending === null || pending.length < len) {
      const grown = Buffer.allocUnsafe(Math.min(this.#max + 1, Math.max(64, len, (pending?.length ?? 0) * 2)));
      if (pending !== null) pending.copy(grown, 0, 0, this.#pendingLen);
      this.#pending = pending = grown;
    }
    buf.copy(pending, this.#pendingLen, start, end);
    this.#pendingLen = len;
  }

  /**
   * Whether a CR followed by a byte other than LF or NUL ends the current line (bytes [start, end) of `buf` added to
   * it): always with `bareCrEndsLine`; otherwise when the line is `ABOR` (any case, spaces around it), an urgent-data
   * ABOR whose LF the kernel took out of the stream, which ends at its CR whatever follows.
   */
  #crEndsLine(buf: Buffer, start: number, end: number): boolean {
    if (this.#bareCrEndsLine) return true;
    if (this.#discarding || this.#bareCR) return false;
    const length = this.#pendingLen + (end - start);
    if (length < 4 || length > 16) return false;
    const text = (this.#pending?.toString('latin1', 0, this.#pendingLen) ?? '') + buf.toString('latin1', start, end);
    // Spaces and tabs around it only, as parseCommand reads a verb (trim() would take NBSP, VT, FF and CR too).
    return /^[ \t]*ABOR[ \t]*$/i.test(text);
  }

  /** The line ends with bytes [start, end) of `buf`, `buf[end]` being its CR or LF. */
  #endLine(buf: Buffer, start: number, end: number, out: LineEvent[]): void {
    if (this.#bareCR) {
      // Reported whole, once, as an over-long line is (which it may also be: then as that).
      this.#bareCR = false;
      if (!this.#discarding) {
        const length = this.#pendingLen + (end - start);
        out.push(length > this.#max ? { type: 'overflow', length } : { type: 'bare-cr', length });
        this.#pendingLen = 0;
        if (this.#pending !== null && this.#pending.length > KEEP_PENDING_CAPACITY) this.#pending = null;
        return;
      }
    }
    if (this.#discarding) {
      const total = this.#discardLen + (end - start);
      this.#discarding = false;
      this.#discardLen = 0;
      out.push({ type: 'overflow', length: total });
      return;
    }
    if (this.#pendingLen === 0) {
      // Fast path: the whole line is inside this chunk, decode it in place.
      const length = end - start;
      if (length > this.#max) out.push({ type: 'overflow', length });
      else out.push({ type: 'line', line: decodeLine(buf, start, end) });
      return;
    }
    const length = this.#pendingLen + (end - start);
    if (length > this.#max) {
      out.push({ type: 'overflow', length });
    } else {
      this.#append(buf, start, end);
      const pending = this.#pending as Buffer;
      out.push({ type: 'line', line: decodeLine(pending, 0, length) });
    }
    this.#pendingLen = 0;
    if (this.#pending !== null && this.#pending.length > KEEP_PENDING_CAPACITY) this.#pending = null;
  }
}

/** Bytes [start, end) of `buf` as text: UTF-8, bytes outside valid UTF-8 as byte escapes (see the module's notes). */
function decodeLine(buf: Buffer, start: number, end: number): string {
  return decodeEscaped(buf, start, end);
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new ProtocolError('BAD_ARGUMENT', 'chunk must be a Buffer or Uint8Array');
}

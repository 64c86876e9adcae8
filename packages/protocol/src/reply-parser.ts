/**
 * Reply parsing, for clients and tests (RFC 959 §4.2).
 *
 * @module
 */
import { encodeEscaped } from './byte-escapes.js';
import { ProtocolError } from './errors.js';
import { LineReader } from './line-reader.js';

/** One complete server reply. */
export interface Reply {
  /** The 3-digit reply code. */
  code: number;
  /**
   * The text lines: for the first and last lines the text after `ddd-` /
   * `ddd `; middle lines of a multi-line reply exactly as received
   * (including the padding space a server puts before a line starting with
   * a digit, see {@link formatReply}).
   */
  lines: string[];
  /** `lines` joined with `\n`. */
  text: string;
}

/** Options of {@link ReplyParser}. */
export interface ReplyParserOptions {
  /** Longest accepted reply line in bytes; longer lines are skipped. Default 65536. */
  maxLineLength?: number;
}

const REPLY_LINE = /^([1-6]\d\d)([ -]|$)/;

/**
 * Incremental reply parser: bytes or text in, complete replies out.
 *
 * Chunks may be split anywhere (inside a CRLF, a UTF-8 character, between
 * the lines of a multi-line reply). A multi-line reply (RFC 959 §4.2) starts
 * with `ddd-` and ends at the first line that begins with the same code
 * followed by a space (or by the end of the line). Lines that are not part
 * of a reply (no code, outside a multi-line reply) are skipped.
 *
 * @example
 * ```ts
 * const parser = new ReplyParser();
 * parser.push('211-Features:\r\n MDTM\r\n21'); // []
 * parser.push('1 End\r\n'); // [{ code: 211, lines: ['Features:', ' MDTM', 'End'], text: … }]
 * ```
 */
export class ReplyParser {
  readonly #reader: LineReader;
  #code = 0;
  #lines: string[] | null = null;

  /**
   * Create a parser.
   * @param options - see {@link ReplyParserOptions}.
   */
  constructor(options: ReplyParserOptions = {}) {
    // A reply line holding a bare CR ends there, as it always did: dropping it whole could lose a reply.
    this.#reader = new LineReader({ maxLineLength: options?.maxLineLength ?? 65536, bareCrEndsLine: true });
  }

  /**
   * Feed received data.
   * @param chunk - bytes (decoded as UTF-8, bytes outside it as byte escapes: see `decodeEscaped`) or text.
   * @returns the replies completed by this chunk, in order.
   * @throws ProtocolError `BAD_ARGUMENT` if `chunk` is neither a string nor a `Uint8Array`.
   */
  push(chunk: Buffer | string): Reply[] {
    const data: unknown = chunk;
    let bytes: Buffer;
    if (typeof data === 'string') bytes = encodeEscaped(data);
    else if (data instanceof Uint8Array) bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    else throw new ProtocolError('BAD_ARGUMENT', 'chunk must be a string, Buffer or Uint8Array');
    const replies: Reply[] = [];
    for (const ev of this.#reader.push(bytes)) {
      if (ev.type !== 'line') continue;
      const reply = this.#line(ev.line);
      if (reply !== null) replies.push(reply);
    }
    return replies;
  }

  #line(line: string): Reply | null {
    const m = REPLY_LINE.exec(line);
    if (this.#lines !== null) {
      if (m !== null && Number(m[1]) === this.#code && m[2] !== '-') {
        this.#lines.push(line.slice(4));
        return this.#finish();
      }
      this.#lines.push(line);
      return null;
    }
    if (m === null) return null;
    this.#code = Number(m[1]);
    this.#lines = [line.slice(4)];
    return m[2] === '-' ? null : this.#finish();
  }

  #finish(): Reply {
    const lines = this.#lines as string[];
    this.#lines = null;
    return { code: this.#code, lines, text: lines.join('\n') };
  }
}

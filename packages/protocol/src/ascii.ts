/**
 * TYPE A line-ending conversion for the data connection.
 *
 * RFC 959 §3.1.1.1: in ASCII type, "the <CRLF> sequence should be used where
 * necessary to denote the end of a line of text". Local text uses LF; the
 * network uses CRLF. Both converters keep state across chunks and return a
 * chunk unchanged (no copy) when it has nothing to convert.
 *
 * @module
 */
import { ProtocolError } from './errors.js';

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);
const CR_BUF = Buffer.from([CR]);

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new ProtocolError('BAD_ARGUMENT', 'chunk must be a Buffer or Uint8Array');
}

/**
 * Local → network (sending a file in TYPE A): every LF not already preceded
 * by a CR becomes CRLF; an existing CRLF is kept as is, even when the CR
 * ends one chunk and the LF starts the next. Other bytes, lone CRs
 * included, pass through.
 *
 * @example
 * ```ts
 * const enc = new AsciiEncoder();
 * enc.push(Buffer.from('a\nb\r')); // 'a\r\nb\r'
 * enc.push(Buffer.from('\nc'));    // '\nc' (CRLF split across chunks kept)
 * ```
 */
export class AsciiEncoder {
  #lastWasCR = false;

  /**
   * Convert the next chunk.
   * @param chunk - local bytes.
   * @returns network bytes: `chunk` itself when there is nothing to convert.
   * @throws ProtocolError `BAD_ARGUMENT` if `chunk` is not a `Uint8Array`.
   */
  push(chunk: Buffer): Buffer {
    const buf = toBuffer(chunk);
    const n = buf.length;
    if (n === 0) return buf;
    let lf = buf.indexOf(LF);
    if (lf === -1) {
      this.#lastWasCR = buf[n - 1] === CR;
      return buf;
    }
    // Count the LFs that need a CR.
    let add = 0;
    for (let i = lf; i !== -1; i = buf.indexOf(LF, i + 1)) {
      if (!(i === 0 ? this.#lastWasCR : buf[i - 1] === CR)) add++;
    }
    const lastWasCR = this.#lastWasCR;
    this.#lastWasCR = buf[n - 1] === CR;
    if (add === 0) return buf;
    const out = Buffer.allocUnsafe(n + add);
    let o = 0;
    let from = 0;
    for (; lf !== -1; lf = buf.indexOf(LF, lf + 1)) {
      if (lf === 0 ? lastWasCR : buf[lf - 1] === CR) continue;
      o += buf.copy(out, o, from, lf);
      out[o++] = CR;
      from = lf; // the LF itself is copied with the next segment
    }
    buf.copy(out, o, from, n);
    return out;
  }

  /** Nothing is ever held back; returns an empty buffer (for symmetry with {@link AsciiDecoder.flush}). */
  flush(): Buffer {
    this.#lastWasCR = false;
    return EMPTY;
  }
}

/**
 * Network → local (receiving a file in TYPE A): CRLF becomes LF; a CR not
 * followed by LF is kept. A CR at the end of a chunk is held until the next
 * chunk (or {@link AsciiDecoder.flush}) shows whether an LF follows.
 *
 * @example
 * ```ts
 * const dec = new AsciiDecoder();
 * dec.push(Buffer.from('a\r\nb\r')); // 'a\nb' (the last CR is held)
 * dec.push(Buffer.from('\n'));       // '\n'
 * dec.flush();                       // ''
 * ```
 */
export class AsciiDecoder {
  #pendingCR = false;

  /**
   * Convert the next chunk.
   * @param chunk - network bytes.
   * @returns local bytes: `chunk` itself when there is nothing to convert.
   * @throws ProtocolError `BAD_ARGUMENT` if `chunk` is not a `Uint8Array`.
   */
  push(chunk: Buffer): Buffer {
    const buf = toBuffer(chunk);
    const n = buf.length;
    if (n === 0) return buf;
    const held = this.#pendingCR;
    // A CR held from the previous chunk is dropped before an LF, emitted otherwise.
    const prefix = held && buf[0] !== LF ? 1 : 0;
    let cr = buf.indexOf(CR);
    if (cr === -1) {
      this.#pendingCR = false;
      return prefix === 0 ? buf : Buffer.concat([CR_BUF, buf], n + 1);
    }
    // Count the CRs to drop (before an LF) or to hold (at the end).
    let drop = 0;
    for (let i = cr; i !== -1; i = buf.indexOf(CR, i + 1)) {
      if (i === n - 1 || buf[i + 1] === LF) drop++;
    }
    this.#pendingCR = buf[n - 1] === CR;
    if (drop === 0 && prefix === 0) return buf;
    const out = Buffer.allocUnsafe(n - drop + prefix);
    let o = 0;
    if (prefix === 1) out[o++] = CR;
    let from = 0;
    for (; cr !== -1; cr = buf.indexOf(CR, cr + 1)) {
      if (cr === n - 1 || buf[cr + 1] === LF) {
        o += buf.copy(out, o, from, cr);
        from = cr + 1;
      }
    }
    buf.copy(out, o, from, n);
    return out;
  }

  /**
   * End of data: returns the held CR, if any, and resets the state.
   */
  flush(): Buffer {
    const held = this.#pendingCR;
    this.#pendingCR = false;
    return held ? Buffer.from(CR_BUF) : EMPTY;
  }
}

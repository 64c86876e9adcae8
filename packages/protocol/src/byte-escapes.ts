/**
 * Names that are not UTF-8, carried through JavaScript strings byte for byte.
 *
 * FTP moves names as bytes. RFC 2640 asks for UTF-8, but clients with their own 8-bit charset (Windows code pages,
 * Latin-1, Shift-JIS) still send theirs, and disks hold names written that way. A server that reads such bytes as
 * UTF-8 loses them (every bad byte becomes U+FFFD, so `caf\xe9` and `caf\xe8` are one name), and one that reads
 * them as Latin-1 stores and lists a different name from the one the client sent.
 *
 * So, as Python does for file names (PEP 383, "surrogateescape"): valid UTF-8 is decoded as usual, and each byte
 * that is not part of valid UTF-8 becomes the lone low surrogate U+DC80 … U+DCFF (U+DC00 + the byte). A lone
 * surrogate never comes out of valid UTF-8, so the escape is unambiguous and encoding gives back the very bytes:
 * what a client sends is what it gets listed, and what a disk holds is what a client sees. Valid UTF-8 (nearly
 * every name) is untouched, and costs one check.
 *
 * Storage that keeps names as UTF-8 text cannot hold an escape (encoding it to UTF-8 gives U+FFFD):
 * {@link latin1ForEscapes} turns escapes into the Latin-1 characters of their bytes for it.
 *
 * @module
 */
import { isUtf8 } from 'node:buffer';
import { ProtocolError } from './errors.js';

/** Any character of the escape range (a lone surrogate or, rarely, the second half of a pair). */
const ESCAPE_RANGE = /[\uDC80-\uDCFF]/;
/** An escape: a low surrogate of the range that does not end a surrogate pair. */
const ESCAPE = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/g;

/** Whether `text` holds a byte escape (so that it must be encoded with {@link encodeEscaped}). */
export function hasByteEscapes(text: string): boolean {
  if (typeof text !== 'string') throw new ProtocolError('BAD_ARGUMENT', 'text must be a string');
  if (!ESCAPE_RANGE.test(text)) return false;
  ESCAPE.lastIndex = 0;
  return ESCAPE.test(text);
}

/**
 * Bytes `[start, end)` of `bytes` as text: UTF-8, with each byte that is not part of valid UTF-8 escaped as
 * U+DC00 + the byte (see the module's notes). Never throws.
 */
export function decodeEscaped(bytes: Uint8Array, start = 0, end = bytes?.length): string {
  if (!(bytes instanceof Uint8Array)) throw new ProtocolError('BAD_ARGUMENT', 'bytes must be a Buffer or Uint8Array');
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end > bytes.length || start > end) {
    throw new ProtocolError('BAD_ARGUMENT', 'start and end must be integers with 0 <= start <= end <= bytes.length');
  }
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = buf.toString('utf8', start, end);
  // Only a decoding that replaced something can be invalid; valid UTF-8 may hold U+FFFD itself.
  if (text.indexOf('\uFFFD') === -1 || isUtf8(buf.subarray(start, end))) return text;
  let out = '';
  let run = start; // start of the valid run not yet added to `out`
  let i = start;
  while (i < end) {
    const length = validSequenceLength(buf, i, end);
    if (length > 0) {
      i += length;
      continue;
    }
    if (run < i) out += buf.toString('utf8', run, i);
    out += String.fromCharCode(0xdc00 + buf[i]!);
    i += 1;
    run = i;
  }
  if (run < end) out += buf.toString('utf8', run, end);
  return out;
}

/**
 * The length of the well-formed UTF-8 sequence at `i` (Unicode's table 3-7: no overlong forms, no surrogates,
 * nothing above U+10FFFF), or 0 when the byte there does not begin one.
 */
function validSequenceLength(buf: Uint8Array, i: number, end: number): number {
  const b = buf[i]!;
  if (b < 0x80) return 1;
  let length: number;
  let low = 0x80;
  let high = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) length = 2;
  else if (b >= 0xe0 && b <= 0xef) {
    length = 3;
    if (b === 0xe0) low = 0xa0;
    else if (b === 0xed) high = 0x9f;
  } else if (b >= 0xf0 && b <= 0xf4) {
    length = 4;
    if (b === 0xf0) low = 0x90;
    else if (b === 0xf4) high = 0x8f;
  } else return 0;
  if (i + length > end) return 0;
  const second = buf[i + 1]!;
  if (second < low || second > high) return 0;
  for (let k = 2; k < length; k++) {
    const c = buf[i + k]!;
    if (c < 0x80 || c > 0xbf) return 0;
  }
  return length;
}

/**
 * `text` as bytes: UTF-8, with each byte escape (U+DC80 … U+DCFF alone) written as its byte. The inverse of
 * {@link decodeEscaped}. Other lone surrogates, which no decoding here produces, become U+FFFD as in any UTF-8
 * encoding.
 */
export function encodeEscaped(text: string): Buffer {
  if (!hasByteEscapes(text)) return Buffer.from(text, 'utf8');
  // One buffer: UTF-8's length of the text is an upper bound (an escape counts three bytes there, one here).
  const out = Buffer.allocUnsafe(Buffer.byteLength(text, 'utf8'));
  let length = 0;
  let from = 0;
  ESCAPE.lastIndex = 0;
  for (let m = ESCAPE.exec(text); m !== null; m = ESCAPE.exec(text)) {
    if (m.index > from) length += out.write(text.slice(from, m.index), length, 'utf8');
    out[length++] = text.charCodeAt(m.index) - 0xdc00;
    from = m.index + 1;
  }
  if (from < text.length) length += out.write(text.slice(from), length, 'utf8');
  return out.subarray(0, length);
}

/** The number of bytes {@link encodeEscaped} makes of `text`, without making them. */
export function escapedByteLength(text: string): number {
  if (!hasByteEscapes(text)) return Buffer.byteLength(text, 'utf8');
  ESCAPE.lastIndex = 0;
  let escapes = 0;
  while (ESCAPE.exec(text) !== null) escapes++;
  // Buffer.byteLength counts a lone surrogate as U+FFFD's three bytes.
  return Buffer.byteLength(text, 'utf8') - 2 * escapes;
}

/**
 * `text` with each byte escape turned into the Latin-1 character of its byte (U+DCE9 → `é`), for storage that keeps
 * names as UTF-8 text: a client's 8-bit name is then stored as that name read as Latin-1, and two names that
 * differ in such bytes stay two names. Text without escapes is returned as it is.
 */
export function latin1ForEscapes(text: string): string {
  if (!hasByteEscapes(text)) return text; // (checks that it is a string)
  ESCAPE.lastIndex = 0;
  return text.replace(ESCAPE, (c) => String.fromCharCode(c.charCodeAt(0) - 0xdc00));
}

/**
 * `text` with each byte escape written out as `\xNN` (U+DCE9 → `\xE9`), for a log line: JSON would turn every
 * escape into U+FFFD, and `caf\xE9` and `caf\xE8` would read as one name. Text without escapes is returned as it is.
 */
export function hexForEscapes(text: string): string {
  if (!hasByteEscapes(text)) return text; // (checks that it is a string)
  ESCAPE.lastIndex = 0;
  return text.replace(ESCAPE, (c) => `\\x${(c.charCodeAt(0) - 0xdc00).toString(16).toUpperCase()}`);
}

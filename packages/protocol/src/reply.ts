/**
 * Reply formatting (RFC 959 §4.2) and 257 path quoting (RFC 959 Appendix II).
 *
 * @module
 */
import { badArgument, expectString } from './errors.js';

/**
 * Where a text's lines end: CR, LF, CRLF, and NUL. Clients frame replies differently (ftplib and curl read to LF,
 * FileZilla and WinSCP end a line at CR, LF or NUL, Java's readLine at CR), so each of them is a line break here, and
 * what follows it is a line of its own, padded when it could pass for a reply (see {@link formatReply}).
 */
const LINE_BREAK = /\r\n|\r|\n|\0/;

/**
 * Whether a middle line must be padded: it begins with a digit (RFC 959 §4.2), or with a byte escape, which may be
 * the byte 0xFF, sent as Telnet's IAC IAC, which Telnet readers (netkit's ftp) drop before they read a code.
 */
function needsPadding(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0xdc80 && c <= 0xdcff);
}

/**
 * Format a reply, single- or multi-line, ready to write to the socket.
 *
 * - One line: `"200 text\r\n"`. An empty text gives `"200 \r\n"` (the code,
 *   the space RFC 959 §4.2 requires, and nothing else).
 * - Several lines (an array, or CR/LF inside a string) use the RFC 959 §4.2
 *   multi-line form: `"211-first\r\n"`, the middle lines as given,
 *   `"211 last\r\n"`.
 * - RFC 959 §4.2: "If an intermediary line begins with a 3-digit number, the
 *   Server must pad the front to avoid confusion." A middle line that begins
 *   with a digit gets ONE leading space; other middle lines are sent as they
 *   are, so FEAT lines (RFC 2389 §3.2), which the caller gives with their
 *   mandatory leading space, are not padded twice.
 * - Every CR, LF, CRLF or NUL inside a text string starts a new line, so text
 *   containing a line break (a file name with `\r\n`…) can never forge a
 *   reply line, whichever of them a client ends its lines at: the client
 *   always sees one reply ending at the last line. A middle line beginning
 *   with a byte escape is padded too (0xFF goes out as IAC IAC, which Telnet
 *   readers drop before reading a code).
 *
 * @param code - reply code, an integer 100 … 699.
 * @param text - one string, or the lines of a multi-line reply (an empty array is one empty line).
 * @returns the wire text, ending in CRLF.
 * @throws ProtocolError `BAD_ARGUMENT` if the code or a text is not valid.
 * @example
 * ```ts
 * formatReply(200, 'OK')                       // '200 OK\r\n'
 * formatReply(211, ['Features:', ' MDTM', 'End']) // '211-Features:\r\n MDTM\r\n211 End\r\n'
 * ```
 */
export function formatReply(code: number, text: string | readonly string[]): string {
  checkCode(code);
  let lines: string[];
  if (typeof text === 'string') {
    lines = text.split(LINE_BREAK);
  } else if (Array.isArray(text)) {
    lines = splitTexts(text);
    if (lines.length === 0) lines.push('');
  } else {
    return badArgument('reply text must be a string or an array of strings');
  }
  if (lines.length === 1) return `${code} ${lines[0]}\r\n`;
  const last = lines.length - 1;
  return `${code}-${lines[0]}\r\n${middleLines(lines, 1, last)}${code} ${lines[last]}\r\n`;
}

/**
 * One piece of a multi-line reply, for a reply too long to make in one go (a STAT listing of 100,000 entries):
 * `formatReply(code, [a, ...b, c])` is the concatenation of `formatReplyPiece(code, [a, ...b1], 'first')`, any number
 * of `formatReplyPiece(code, bn, 'middle')` and `formatReplyPiece(code, [...bk, c], 'last')`, with the same rules
 * (line breaks inside a text start new lines; middle lines that begin with a digit are padded).
 *
 * @param code - reply code, an integer 100 … 699.
 * @param lines - the piece's lines; a `first` piece needs one (it opens the reply), a `last` one too (it ends it).
 * @param piece - where the piece goes: `first` (its first line opens the reply), `middle` or `last`.
 * @throws ProtocolError `BAD_ARGUMENT` if the code or a text is not valid, or a `first` or `last` piece has no line.
 */
export function formatReplyPiece(code: number, lines: readonly string[], piece: 'first' | 'middle' | 'last'): string {
  checkCode(code);
  const split = splitTexts(lines);
  if (piece !== 'middle' && split.length === 0) badArgument(`the ${piece} piece of a reply needs a line`);
  const from = piece === 'first' ? 1 : 0;
  const end = piece === 'last' ? split.length - 1 : split.length;
  const head = piece === 'first' ? `${code}-${split[0]}\r\n` : '';
  return piece === 'last' ? `${head}${middleLines(split, from, end)}${code} ${split[end]}\r\n` : `${head}${middleLines(split, from, end)}`;
}

function checkCode(code: number): void {
  if (typeof code !== 'number' || !Number.isInteger(code) || code < 100 || code > 699) {
    badArgument('reply code must be an integer between 100 and 699');
  }
}

/** The lines of `texts`, a line break inside one starting a new line. */
function splitTexts(texts: readonly unknown[]): string[] {
  const lines: string[] = [];
  for (const part of texts) {
    for (const line of expectString(part, 'reply text').split(LINE_BREAK)) lines.push(line);
  }
  return lines;
}

/** Lines [from, end) as middle lines of a multi-line reply: one beginning with a digit is padded (RFC 959 §4.2). */
function middleLines(lines: readonly string[], from: number, end: number): string {
  let out = '';
  for (let i = from; i < end; i++) {
    const line = lines[i] as string;
    out += needsPadding(line.charCodeAt(0)) ? ` ${line}\r\n` : `${line}\r\n`;
  }
  return out;
}

/**
 * Quote a path for a 257 reply (RFC 959 Appendix II): enclose it in double
 * quotes and double every embedded double quote.
 *
 * CR, LF and NUL are left as they are: {@link formatReply} turns them into
 * line breaks, which cannot forge a reply.
 *
 * @param path - the directory path.
 * @throws ProtocolError `BAD_ARGUMENT` if `path` is not a string.
 * @example
 * ```ts
 * quotePath('/my "dir"') // '"/my ""dir"""'
 * ```
 */
export function quotePath(path: string): string {
  return `"${expectString(path, 'path').replaceAll('"', '""')}"`;
}

/**
 * Extract the path from the text of a 257 reply, for clients: the first
 * double-quoted string, with doubled quotes undone (RFC 959 Appendix II).
 * A trailing commentary (`"/dir" created`) is ignored.
 *
 * @param text - the reply text (with or without the `257 ` code).
 * @throws ProtocolError `BAD_ARGUMENT` if there is no complete quoted string.
 * @example
 * ```ts
 * unquotePath('"/my ""dir""" created') // '/my "dir"'
 * ```
 */
export function unquotePath(text: string): string {
  expectString(text, 'reply text');
  const open = text.indexOf('"');
  if (open === -1) badArgument('no quoted path in reply');
  let out = '';
  let from = open + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    if (q === -1) return badArgument('unterminated quoted path in reply');
    out += text.slice(from, q);
    if (text.charCodeAt(q + 1) === 0x22) {
      out += '"';
      from = q + 2;
    } else {
      return out;
    }
  }
}

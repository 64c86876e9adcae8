/**
 * Typed argument codecs: TYPE, MODE, STRU, REST, ALLO, OPTS, SITE,
 * MDTM/MFMT times, HASH algorithms and RANG ranges.
 *
 * @module
 */
import { asciiUpper } from './command.js';
import { badArgument, excerpt, expectString, unsupported } from './errors.js';

/** The representation type selected by TYPE (RFC 959 §3.1.1). */
export interface TypeSpec {
  /** `A` ASCII (non-print form), `I` image, `L` local byte size (8 only). */
  type: 'A' | 'I' | 'L';
  /** Present (and 8) for `L 8`. */
  byteSize?: 8;
}

/** Transfer mode: `S` stream (RFC 959 §3.4.1), `Z` deflate (draft-preston-ftpext-deflate). */
export type TransferMode = 'S' | 'Z';

/** File structure: only `F` (file, no record structure, RFC 959 §3.1.2). */
export type FileStructure = 'F';

/** The arguments of ALLO (RFC 959 §4.1.3). */
export interface AlloArgs {
  /** Bytes to reserve. */
  size: number;
  /** Maximum record or page size, when given as `R n`. */
  record?: number;
}

/** An OPTS command split into its command name and options (RFC 2389 §4). */
export interface OptsArgs {
  /** The command whose options are set, ASCII upper-cased (`MLST`, `UTF8`, `HASH`). */
  name: string;
  /** Everything after the first space following the name, exactly; `''` when none. */
  value: string;
}

/**
 * An octet range selected with RANG (draft-bryan-ftp-range §3) for HASH
 * (draft-bryan-ftpext-hash §3.3).
 */
export interface HashRange {
  /** First octet (0-based). */
  start: number;
  /** Last octet, INCLUSIVE (`RANG 0 49` selects 50 octets). Absent: to the end of the file. */
  end?: number;
}

/** A SITE command split into its sub-command and argument. */
export interface SiteCommand {
  /** The sub-command, ASCII upper-cased (`CHMOD`). */
  verb: string;
  /** Everything after the first space, exactly. */
  arg: string;
}

/** Hash algorithms known to {@link parseHashAlgorithm}, with their IANA "Hash Function Textual Names" (CRC32 is not in that registry). */
export const HASH_ALGORITHMS = ['SHA-1', 'SHA-256', 'SHA-512', 'MD5', 'CRC32'] as const;

/** One of {@link HASH_ALGORITHMS}. */
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];

const DIGITS = /^\d+$/;

function toSafeInteger(digits: string, what: string): number {
  if (!DIGITS.test(digits)) badArgument(`${what} must be a non-negative decimal integer`);
  const v = Number(digits);
  if (v > Number.MAX_SAFE_INTEGER) badArgument(`${what} is too large`);
  return v;
}

/**
 * Parse the argument of TYPE (RFC 959 §4.1.2, case-insensitive):
 * `A`, `A N`, `I`, `L 8`.
 *
 * @param arg - the TYPE argument.
 * @throws ProtocolError `UNSUPPORTED` for well-formed but unsupported types
 *   (`A T`, `A C`, `E …`, `L n` with n ≠ 8); `BAD_ARGUMENT` otherwise.
 */
export function parseType(arg: string): TypeSpec {
  const s = expectString(arg, 'TYPE argument').trim();
  const parts = s === '' ? [] : s.split(/[ \t]+/);
  const code = asciiUpper(parts[0] ?? '');
  switch (code) {
    case 'A':
    case 'E': {
      if (parts.length > 2) badArgument('expected TYPE A|E [N|T|C]');
      const form = asciiUpper(parts[1] ?? 'N');
      if (form !== 'N' && form !== 'T' && form !== 'C') badArgument('format control must be N, T or C');
      if (code === 'E') unsupported('EBCDIC type not supported');
      if (form !== 'N') unsupported('only non-print format control is supported');
      return { type: 'A' };
    }
    case 'I':
      if (parts.length !== 1) badArgument('expected TYPE I');
      return { type: 'I' };
    case 'L': {
      if (parts.length !== 2) badArgument('expected TYPE L <byte size>');
      const size = toSafeInteger(parts[1] as string, 'byte size');
      if (size === 0) badArgument('byte size must be positive');
      if (size !== 8) unsupported('only byte size 8 is supported');
      return { type: 'L', byteSize: 8 };
    }
    default:
      return badArgument(`unknown type: ${excerpt(s)}`);
  }
}

/**
 * Parse the argument of MODE (case-insensitive): `S` (stream, RFC 959
 * §3.4.1) or `Z` (deflate).
 *
 * @param arg - the MODE argument.
 * @throws ProtocolError `UNSUPPORTED` for `B` (block) and `C` (compressed), `BAD_ARGUMENT` otherwise.
 */
export function parseMode(arg: string): TransferMode {
  const m = asciiUpper(expectString(arg, 'MODE argument').trim());
  if (m === 'S' || m === 'Z') return m;
  if (m === 'B' || m === 'C') unsupported(`mode ${m} not supported`);
  return badArgument('mode must be S, B, C or Z');
}

/**
 * Parse the argument of STRU (case-insensitive, RFC 959 §3.1.2): `F`.
 *
 * @param arg - the STRU argument.
 * @throws ProtocolError `UNSUPPORTED` for `R` (record) and `P` (page), `BAD_ARGUMENT` otherwise.
 */
export function parseStru(arg: string): FileStructure {
  const s = asciiUpper(expectString(arg, 'STRU argument').trim());
  if (s === 'F') return 'F';
  if (s === 'R' || s === 'P') unsupported(`structure ${s} not supported`);
  return badArgument('structure must be F, R or P');
}

/**
 * Parse the argument of REST in stream mode (RFC 3659 §5.2:
 * `"REST" SP 1*DIGIT`): a byte offset.
 *
 * @param arg - the REST argument (surrounding spaces are ignored).
 * @returns an integer 0 … `Number.MAX_SAFE_INTEGER`.
 * @throws ProtocolError `BAD_ARGUMENT` if not only digits or too large.
 */
export function parseRestOffset(arg: string): number {
  return toSafeInteger(expectString(arg, 'REST argument').trim(), 'restart offset');
}

/**
 * Parse the argument of ALLO (RFC 959 §4.1.3):
 * `<decimal-integer> [<SP> R <SP> <decimal-integer>]`.
 *
 * @param arg - the ALLO argument.
 * @throws ProtocolError `BAD_ARGUMENT` if malformed.
 */
export function parseAllo(arg: string): AlloArgs {
  const m = /^(\d+)(?:[ \t]+[Rr][ \t]+(\d+))?$/.exec(expectString(arg, 'ALLO argument').trim());
  if (m === null) badArgument('expected ALLO <size> [R <record size>]');
  const size = toSafeInteger(m[1] as string, 'size');
  return m[2] === undefined ? { size } : { size, record: toSafeInteger(m[2], 'record size') };
}

const TIME_VAL = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d+))?$/;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * Parse an RFC 3659 §2.3 time value, `YYYYMMDDHHMMSS[.sss]`, always UTC
 * (MDTM, MFMT, MLSx `modify`/`create`).
 *
 * Ranges are those of RFC 3659 §2.3: year 1000–9999, month 01–12, day valid
 * for the month, hour 00–23, minute 00–59, second 00–60. A leap second
 * (60) is mapped to `:59.999` (a `Date` cannot hold it). The fraction may have
 * any number of digits; it is truncated to milliseconds.
 *
 * @param s - the time value.
 * @throws ProtocolError `BAD_ARGUMENT` if malformed or out of range.
 * @example
 * ```ts
 * parseFtpTime('20240102150405.5').toISOString() // '2024-01-02T15:04:05.500Z'
 * ```
 */
export function parseFtpTime(s: string): Date {
  const m = TIME_VAL.exec(expectString(s, 'time value'));
  if (m === null) badArgument('time must be YYYYMMDDHHMMSS[.sss]');
  const [year, month, day, hour, minute] = m.slice(1, 6).map(Number) as [number, number, number, number, number];
  let second = Number(m[6]);
  let ms = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  if (year < 1000) badArgument('year must be 1000-9999');
  if (month < 1 || month > 12) badArgument('month must be 01-12');
  if (day < 1 || day > daysInMonth(year, month)) badArgument('day out of range for the month');
  if (hour > 23) badArgument('hour must be 00-23');
  if (minute > 59) badArgument('minute must be 00-59');
  if (second > 60) badArgument('second must be 00-60');
  if (second === 60) {
    second = 59;
    ms = 999;
  }
  return new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms));
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * Format a time as an RFC 3659 §2.3 time value in UTC: `YYYYMMDDHHMMSS`,
 * or `YYYYMMDDHHMMSS.sss` with `withMillis`.
 *
 * @param date - a `Date` or milliseconds since the epoch.
 * @param withMillis - append milliseconds (RFC 3659 §2.3 forbids adding
 *   precision that the underlying value does not have; default false).
 * @throws ProtocolError `BAD_ARGUMENT` for an invalid date or a year outside 1000–9999.
 */
export function formatFtpTime(date: Date | number, withMillis = false): string {
  const t = date instanceof Date ? date.getTime() : date;
  if (typeof t !== 'number' || !Number.isFinite(t)) badArgument('invalid date');
  const d = new Date(t);
  const year = d.getUTCFullYear();
  if (!(year >= 1000 && year <= 9999)) badArgument('year must be 1000-9999');
  const base =
    pad(year, 4) +
    pad(d.getUTCMonth() + 1, 2) +
    pad(d.getUTCDate(), 2) +
    pad(d.getUTCHours(), 2) +
    pad(d.getUTCMinutes(), 2) +
    pad(d.getUTCSeconds(), 2);
  return withMillis ? `${base}.${pad(d.getUTCMilliseconds(), 3)}` : base;
}

/**
 * Parse the argument of MFMT (draft-somers-ftp-mfxx §3):
 * `YYYYMMDDHHMMSS[.sss] <SP> pathname`.
 *
 * @param arg - the MFMT argument.
 * @returns the time and the path (kept exactly, spaces included).
 * @throws ProtocolError `BAD_ARGUMENT` if the time is invalid or the path missing.
 */
export function parseMfmt(arg: string): { time: Date; path: string } {
  const s = expectString(arg, 'MFMT argument');
  const sp = s.indexOf(' ');
  if (sp === -1 || sp === s.length - 1) badArgument('expected MFMT <time> <path>');
  return { time: parseFtpTime(s.slice(0, sp)), path: s.slice(sp + 1) };
}

/** The five-argument SITE UTIME: `<path> <atime> <mtime> <ctime> UTC` (ncftp, lftp), the path first. */
const SITE_UTIME_FIVE = /^(.+?) (\d{14}|\d{12}) (\d{14}|\d{12}) (\d{14}|\d{12}) UTC$/i;

/** A SITE UTIME time of minutes only (`YYYYMMDDhhmm`), then the path. */
const SITE_UTIME_MINUTES = /^(\d{12}) (.+)$/s;

/** A SITE UTIME time: `YYYYMMDDhhmmss`, or `YYYYMMDDhhmm` with the seconds 0. */
function siteUtimeTime(digits: string): Date {
  return parseFtpTime(digits.length === 12 ? `${digits}00` : digits);
}

/**
 * Parse the argument of SITE UTIME, which sets a file's modification time where MFMT is unknown to the client
 * (lftp before 4.9.3 and ncftp use it). Two forms are in use:
 * - `YYYYMMDDHHMMSS <path>` (ProFTPD's mod_site_misc, lftp's `use-site-utime2`): as MFMT;
 * - `<path> <atime> <mtime> <ctime> UTC` (ncftp, lftp's `use-site-utime`): the path first, three UTC times.
 *
 * In both, a time may also be given to the minute (`YYYYMMDDHHMM`, seconds 0), as ProFTPD accepts it.
 *
 * @param arg - the argument after `SITE UTIME`.
 * @returns the modification time to set and the path (spaces kept).
 * @throws ProtocolError `BAD_ARGUMENT` if it is neither form, or a time is invalid.
 * @example
 * ```ts
 * parseSiteUtime('a b.txt 20240101000000 20240102000000 20240101000000 UTC') // { time: 2024-01-02, path: 'a b.txt' }
 * parseSiteUtime('20240102000000 a b.txt') // the same
 * parseSiteUtime('202401020000 a b.txt') // the same
 * ```
 */
export function parseSiteUtime(arg: string): { time: Date; path: string } {
  const s = expectString(arg, 'SITE UTIME argument');
  const five = SITE_UTIME_FIVE.exec(s);
  if (five !== null) return { time: siteUtimeTime(five[3] as string), path: five[1] as string };
  const minutes = SITE_UTIME_MINUTES.exec(s);
  if (minutes !== null) return { time: siteUtimeTime(minutes[1] as string), path: minutes[2] as string };
  if (!/^\d{14}(\.\d+)? ./.test(s)) badArgument('expected SITE UTIME <time> <path> or SITE UTIME <path> <atime> <mtime> <ctime> UTC');
  return parseMfmt(s);
}

/**
 * Parse the argument of OPTS (RFC 2389 §4): `command-name [SP command-options]`.
 *
 * @param arg - the OPTS argument.
 * @returns the command name upper-cased, and the options exactly as sent.
 * @throws ProtocolError `BAD_ARGUMENT` if there is no command name.
 * @example
 * ```ts
 * parseOpts('mlst type;size;') // { name: 'MLST', value: 'type;size;' }
 * ```
 */
export function parseOpts(arg: string): OptsArgs {
  const s = expectString(arg, 'OPTS argument').replace(/^[ \t]+/, '');
  const sp = s.indexOf(' ');
  const name = sp === -1 ? s : s.slice(0, sp);
  if (name === '') badArgument('OPTS needs a command name');
  return { name: asciiUpper(name), value: sp === -1 ? '' : s.slice(sp + 1) };
}

/**
 * Parse the argument of SITE: `sub-command [SP argument]`.
 *
 * @param arg - the SITE argument.
 * @returns the sub-command upper-cased, and its argument exactly as sent.
 * @throws ProtocolError `BAD_ARGUMENT` if there is no sub-command.
 */
export function parseSiteCommand(arg: string): SiteCommand {
  const s = expectString(arg, 'SITE argument').replace(/^[ \t]+/, '');
  const sp = s.indexOf(' ');
  const verb = sp === -1 ? s : s.slice(0, sp);
  if (verb === '') badArgument('SITE needs a sub-command');
  return { verb: asciiUpper(verb), arg: sp === -1 ? '' : s.slice(sp + 1) };
}

/**
 * Parse the argument of `SITE CHMOD`: `<octal mode> <SP> pathname`.
 *
 * @param arg - the argument after `CHMOD`.
 * @returns the mode (0 … 0o7777) and the path (kept exactly).
 * @throws ProtocolError `BAD_ARGUMENT` if malformed.
 */
export function parseSiteChmod(arg: string): { mode: number; path: string } {
  const m = /^[ \t]*([0-7]{1,4}) (.+)$/s.exec(expectString(arg, 'CHMOD argument'));
  if (m === null) badArgument('expected CHMOD <octal mode> <path>');
  return { mode: parseInt(m[1] as string, 8), path: m[2] as string };
}

/**
 * Parse the argument of RANG (draft-bryan-ftp-range §3), used to select the
 * part of a file that HASH digests (draft-bryan-ftpext-hash §3.3):
 * `start-point SP end-point`, both octet offsets from the start of the
 * file, the end INCLUSIVE. `start-end` is accepted too (the form of the
 * HASH reply). `RANG 1 0` resets to the whole file and gives `{ start: 0 }`.
 *
 * @param arg - the RANG argument.
 * @throws ProtocolError `BAD_ARGUMENT` if malformed, too large, or if start > end
 *   (other than the `1 0` reset); the draft answers 501 to those.
 */
export function parseHashRange(arg: string): HashRange {
  const m = /^(\d+)(?:[ \t]*-[ \t]*|[ \t]+)(\d+)$/.exec(expectString(arg, 'RANG argument').trim());
  if (m === null) badArgument('expected RANG <start> <end>');
  const start = toSafeInteger(m[1] as string, 'start point');
  const end = toSafeInteger(m[2] as string, 'end point');
  if (start === 1 && end === 0) return { start: 0 };
  if (start > end) badArgument('start point must not be after end point');
  return { start, end };
}

const HASH_NAMES: ReadonlyMap<string, HashAlgorithm> = new Map<string, HashAlgorithm>([
  ['SHA-1', 'SHA-1'],
  ['SHA1', 'SHA-1'],
  ['SHA-256', 'SHA-256'],
  ['SHA256', 'SHA-256'],
  ['SHA-512', 'SHA-512'],
  ['SHA512', 'SHA-512'],
  ['MD5', 'MD5'],
  ['CRC32', 'CRC32'],
  ['CRC-32', 'CRC32'],
]);

/**
 * Parse a hash algorithm name (`OPTS HASH <name>`, draft-bryan-ftpext-hash
 * §3.2), case-insensitive; the dash-less spellings `SHA1`, `SHA256`,
 * `SHA512` and `CRC-32` are accepted too.
 *
 * @param name - the algorithm name.
 * @returns its canonical name.
 * @throws ProtocolError `BAD_ARGUMENT` for an unknown algorithm (the draft answers 501).
 */
export function parseHashAlgorithm(name: string): HashAlgorithm {
  const algo = HASH_NAMES.get(asciiUpper(expectString(name, 'algorithm').trim()));
  if (algo === undefined) badArgument('unknown algorithm');
  return algo;
}

/**
 * The FEAT line for HASH (draft-bryan-ftpext-hash §3.1), the selected
 * algorithm marked with `*`: `HASH SHA-256;SHA-512;SHA-1*;MD5`.
 *
 * @param algorithms - the algorithms offered, in order.
 * @param selected - the currently selected one.
 * @throws ProtocolError `BAD_ARGUMENT` if an algorithm is unknown.
 */
export function formatHashFeat(algorithms: readonly HashAlgorithm[], selected: HashAlgorithm): string {
  if (!Array.isArray(algorithms)) badArgument('algorithms must be an array');
  const list = (algorithms as readonly unknown[]).map((a) => {
    const algo = parseHashAlgorithm(a as string);
    return algo === selected ? `${algo}*` : algo;
  });
  return `HASH ${list.join(';')}`;
}

/**
 * The text of the 213 reply to HASH (draft-bryan-ftpext-hash §3):
 * `<algorithm> <start>-<end> <hex digest> <pathname>`, `end` inclusive.
 *
 * @param algorithm - the algorithm used.
 * @param start - first octet hashed.
 * @param end - last octet hashed (inclusive, ≥ start).
 * @param digest - the digest as lowercase hex (upper case is lowered).
 * @param path - the path as the client gave it.
 * @throws ProtocolError `BAD_ARGUMENT` for an invalid argument.
 */
export function formatHashReplyText(
  algorithm: HashAlgorithm,
  start: number,
  end: number,
  digest: string,
  path: string,
): string {
  const algo = parseHashAlgorithm(algorithm);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    badArgument('range must be integers with 0 <= start <= end');
  }
  const hex = expectString(digest, 'digest').toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex)) badArgument('digest must be hexadecimal');
  return `${algo} ${start}-${end} ${hex} ${expectString(path, 'path')}`;
}

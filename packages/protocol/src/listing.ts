/**
 * LIST and NLST lines.
 *
 * RFC 959 §4.1.3 leaves the LIST format to the server; clients parse the
 * `ls -l` layout of Unix servers, which is what this module writes.
 *
 * @module
 */
import { badArgument, expectString } from './errors.js';

/** One directory entry, as a listing needs it. */
export interface ListEntry {
  /** The entry's name (or path, for LIST of a single file). */
  name: string;
  /** What the entry is. */
  type: 'file' | 'dir' | 'link' | 'other';
  /** Size in bytes. */
  size: number;
  /** Last modification time: a `Date` or milliseconds since the epoch. */
  mtime: Date | number;
  /** Permission bits (`0o755`); the file-type bits (`S_IFMT`) may be included. */
  mode: number;
  /** Hard link count; default 1. */
  nlink?: number;
  /** Owner name; default `ftp`. */
  owner?: string;
  /** Group name; default `ftp`. */
  group?: string;
  /** Target of a symbolic link, shown as `name -> target`. */
  target?: string;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;
/** Files modified in the last 180 days (and not in the future) show a time, others a year, as `ls -l`. */
const RECENT_MS = 180 * 24 * 60 * 60 * 1000;

/** Whether `ls -l` shows a time rather than a year: modified in the last 180 days, and not in the future. */
function isRecent(t: number, now: number): boolean {
  return t <= now && now - t < RECENT_MS;
}

const S_IFMT = 0o170000;
const TYPE_CHARS: ReadonlyMap<number, string> = new Map([
  [0o140000, 's'],
  [0o120000, 'l'],
  [0o100000, '-'],
  [0o060000, 'b'],
  [0o040000, 'd'],
  [0o020000, 'c'],
  [0o010000, 'p'],
]);

/**
 * Make a name safe for one line of a listing: CR and LF would end the line
 * (and on the control connection, the reply), so each is replaced by `?`,
 * as `ls -q` shows non-printable characters. Everything else is kept as is.
 *
 * @param name - a file name.
 * @throws ProtocolError `BAD_ARGUMENT` if `name` is not a string.
 */
export function sanitizeName(name: string): string {
  expectString(name, 'name');
  // Most names have neither: looking costs no allocation, replacing does.
  return name.indexOf('\r') < 0 && name.indexOf('\n') < 0 ? name : name.replace(/[\r\n]/g, '?');
}

/** @internal A non-negative count as decimal digits (no exponent notation), 0 when not a finite number. */
export function countString(n: unknown): string {
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) return '0';
  const t = Math.trunc(n);
  return t <= Number.MAX_SAFE_INTEGER ? String(t) : BigInt(t).toString();
}

/** @internal Milliseconds of a `Date | number`, NaN when not a valid time. */
export function timeOf(t: unknown): number {
  if (t instanceof Date) return t.getTime();
  return typeof t === 'number' ? t : Number.NaN;
}

/** @internal A name-like field (owner, group) as one whitespace-free token. */
function token(value: unknown, fallback: string): string {
  const s = typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '';
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\s\u0000-\u001f\u007f]/g, '_');
  return clean === '' ? fallback : clean;
}

/**
 * The 10-character `ls -l` mode string, e.g. `drwxr-sr-x`: type character,
 * then read/write/execute for owner, group and others, with setuid/setgid
 * shown as `s`/`S` and sticky as `t`/`T`.
 *
 * @param type - entry type; for `other`, the type comes from the `S_IFMT` bits of `mode` (`b c p s`), else `-`.
 * @param mode - permission bits, optionally with type bits.
 */
export function formatMode(type: ListEntry['type'], mode: number): string {
  const m = typeof mode === 'number' && Number.isFinite(mode) ? Math.trunc(mode) : 0;
  let t: string;
  if (type === 'dir') t = 'd';
  else if (type === 'link') t = 'l';
  else if (type === 'file') t = '-';
  else t = TYPE_CHARS.get(m & S_IFMT) ?? '-';
  const x = (bit: number, special: number, set: string, unset: string): string =>
    m & special ? (m & bit ? set : unset) : m & bit ? 'x' : '-';
  return (
    t +
    (m & 0o400 ? 'r' : '-') +
    (m & 0o200 ? 'w' : '-') +
    x(0o100, 0o4000, 's', 'S') +
    (m & 0o040 ? 'r' : '-') +
    (m & 0o020 ? 'w' : '-') +
    x(0o010, 0o2000, 's', 'S') +
    (m & 0o004 ? 'r' : '-') +
    (m & 0o002 ? 'w' : '-') +
    x(0o001, 0o1000, 't', 'T')
  );
}

/**
 * The date column of `ls -l`, in UTC: `Jan 02 15:04` when the time is within
 * the last 180 days and not in the future, `Jan 02  2023` otherwise.
 * An invalid time is shown as the epoch.
 *
 * @param mtime - the time.
 * @param now - the current time (default `Date.now()`).
 */
export function formatListDate(mtime: Date | number, now: Date | number = Date.now()): string {
  let t = timeOf(mtime);
  if (!Number.isFinite(t) || Math.abs(t) > 8.64e15) t = 0;
  let n = timeOf(now);
  if (!Number.isFinite(n)) n = Date.now();
  const d = new Date(t);
  const day = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, '0')}`;
  if (isRecent(t, n)) {
    return `${day} ${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
  }
  return `${day} ${String(d.getUTCFullYear()).padStart(5, ' ')}`;
}

/**
 * One LIST line in `ls -l` style, without CRLF (the server adds it):
 *
 * ```text
 * -rw-r--r--   1 owner    group        1234 Jan 02 15:04 name
 * lrwxrwxrwx   1 ftp      ftp             6 Jan 02  2023 link -> target
 * ```
 *
 * Owner and group default to `ftp` (spaces and control characters in them
 * become `_`); dates are UTC; names keep their characters except CR and LF
 * (see {@link sanitizeName}). A non-finite size is shown as 0.
 *
 * @param entry - the entry.
 * @param now - the current time, for the recent/old date choice (default `Date.now()`).
 * @throws ProtocolError `BAD_ARGUMENT` if `entry` is not an object with a string `name`.
 */
export function formatListLine(entry: ListEntry, now?: Date | number): string {
  if (typeof entry !== 'object' || entry === null || typeof entry.name !== 'string') {
    badArgument('entry must be an object with a string name');
  }
  const nlink = entry.nlink === undefined || entry.nlink === 1 ? '1' : countString(entry.nlink);
  const size = countString(entry.size);
  let name = sanitizeName(entry.name);
  if (entry.type === 'link' && typeof entry.target === 'string' && entry.target !== '') {
    name += ` -> ${sanitizeName(entry.target)}`;
  }
  // The owner and group columns are the same on almost every line (the default `ftp`): computed once.
  const owners = entry.owner === undefined && entry.group === undefined ? DEFAULT_OWNERS : `${token(entry.owner, 'ftp').padEnd(8)} ${token(entry.group, 'ftp').padEnd(8)}`;
  return modeColumn(entry.type, entry.mode) + ' ' + nlink.padStart(3) + ' ' + owners + ' ' + size.padStart(8) + ' ' + listDate(entry.mtime, now) + ' ' + name;
}

const DEFAULT_OWNERS = `${'ftp'.padEnd(8)} ${'ftp'.padEnd(8)}`;

/** The mode strings met so far, by type and mode: a directory holds few distinct ones. */
const MODE_COLUMNS = new Map<number, string>();

function typeKeyOf(type: ListEntry['type']): number | undefined {
  switch (type) {
    case 'file':
      return 0;
    case 'dir':
      return 1;
    case 'link':
      return 2;
    case 'other':
      return 3;
    default:
      return undefined;
  }
}

function modeColumn(type: ListEntry['type'], mode: number): string {
  const typeKey = typeKeyOf(type);
  // A numeric key (no string built per line); anything unusual takes the general path.
  if (typeof mode !== 'number' || typeKey === undefined || !Number.isInteger(mode) || mode < 0 || mode > 0o177777) return formatMode(type, mode);
  const key = typeKey * 0o200000 + mode;
  let text = MODE_COLUMNS.get(key);
  if (text === undefined) {
    text = formatMode(type, mode);
    if (MODE_COLUMNS.size < 1024) MODE_COLUMNS.set(key, text);
  }
  return text;
}

/** The last date column written, by minute and recent/old choice: the entries of a directory often share it. */
let lastDateMinute = Number.NaN;
let lastDateRecent = false;
let lastDateText = '';

function listDate(mtime: Date | number, now: Date | number | undefined): string {
  // Only number times can be compared cheaply; anything else takes the general path.
  // Times a Date cannot hold are shown as the epoch by formatListDate: not cached.
  if (typeof mtime !== 'number' || typeof now !== 'number' || !(Math.abs(mtime) <= 8.64e15) || !Number.isFinite(now)) return formatListDate(mtime, now);
  // The column depends on the minute and on the recent/old choice only (see formatListDate), and the choice on
  // the exact time: it is made for every entry, and the text cached for both. A Date drops a fraction of a
  // millisecond toward zero, so the minute is taken of the time as a Date holds it.
  const recent = isRecent(mtime, now);
  const minute = Math.floor(Math.trunc(mtime) / 60_000);
  if (minute !== lastDateMinute || recent !== lastDateRecent) {
    lastDateText = formatListDate(mtime, now);
    lastDateMinute = minute;
    lastDateRecent = recent;
  }
  return lastDateText;
}

/**
 * One NLST line (RFC 959 §4.1.3: names only), without CRLF: the name with
 * CR and LF replaced (see {@link sanitizeName}).
 *
 * @param name - the name.
 * @throws ProtocolError `BAD_ARGUMENT` if `name` is not a string.
 */
export function formatNlstLine(name: string): string {
  if (typeof name !== 'string') badArgument('name must be a string');
  return sanitizeName(name);
}

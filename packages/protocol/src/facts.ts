/**
 * Machine listings: MLST/MLSD facts (RFC 3659 §7) and their selection with
 * `OPTS MLST` (RFC 3659 §7.9).
 *
 * @module
 */
import { formatFtpTime } from './args.js';
import { badArgument, expectString } from './errors.js';
import type { ListEntry } from './listing.js';
import { countString, sanitizeName, timeOf } from './listing.js';

/**
 * A fact name (RFC 3659 §7.5, plus the `UNIX.` facts common among servers),
 * lower-cased: fact names are case-insensitive (RFC 3659 §7.4).
 */
export type MlsxFact =
  | 'type'
  | 'size'
  | 'modify'
  | 'create'
  | 'perm'
  | 'unique'
  | 'unix.mode'
  | 'unix.owner'
  | 'unix.group'
  | 'unix.uid'
  | 'unix.gid'
  | 'lang'
  | 'media-type'
  | 'charset';

/** Facts this package can produce from a {@link FactEntry}, in FEAT order. */
export const SUPPORTED_FACTS: readonly MlsxFact[] = Object.freeze([
  'type',
  'size',
  'modify',
  'create',
  'perm',
  'unique',
  'unix.mode',
  'unix.owner',
  'unix.group',
  'unix.uid',
  'unix.gid',
] as const);

/**
 * Facts selected until the client sends `OPTS MLST` (RFC 3659 §7.8: the
 * server chooses its defaults, marked with `*` in FEAT).
 *
 * `type`, `size`, `modify` and `perm` are what clients need to mirror a
 * tree; `unique` lets them detect two names for one file; `unix.mode`
 * preserves permissions. `create` is left out because most file systems
 * cannot report it; owner/group and ids cost lookups and are rarely used.
 */
export const DEFAULT_FACTS: readonly MlsxFact[] = Object.freeze([
  'type',
  'size',
  'modify',
  'perm',
  'unique',
  'unix.mode',
] as const);

/** An entry with the extra data MLSx facts can carry. */
export interface FactEntry extends ListEntry {
  /** Creation time (`create` fact). */
  create?: Date | number;
  /**
   * The current user's rights (`perm` fact, RFC 3659 §7.5.5): letters from
   * `a c d e f l m p r w`. When absent, a guess is made from the owner's
   * permission bits of `mode`; a server should set it from the user's real rights.
   */
  perm?: string;
  /** Unique identifier of the underlying object (`unique` fact, RFC 3659 §7.5.2), e.g. `dev-ino` in hex. */
  unique?: string;
  /** Numeric owner id (`unix.uid`). */
  uid?: number;
  /** Numeric group id (`unix.gid`). */
  gid?: number;
  /** Marks the listed directory itself (`type=cdir`) or its parent (`type=pdir`), RFC 3659 §7.5.1. */
  dirRole?: 'cdir' | 'pdir';
}

/** Options of {@link formatFacts}. */
export interface FormatFactsOptions {
  /** Add milliseconds to `modify`/`create` (`YYYYMMDDHHMMSS.sss`). Default false. */
  millis?: boolean;
}

const PERM_LETTERS = /[^acdeflmprw]/g;
// Characters that would break the fact list: the separators ';' and ' ', control characters, and the other Unicode
// spaces (no-break, ideographic, line separator…), which a client splitting on whitespace would also cut at, as
// the LIST owner and group columns already treat them.
// eslint-disable-next-line no-control-regex
const UNSAFE_VALUE = /[\s;\u0000-\u001f\u007f-\u009f]/g;

const S_IFMT = 0o170000;
const OTHER_TYPES: ReadonlyMap<number, string> = new Map([
  [0o140000, 'socket'],
  [0o060000, 'blk'],
  [0o020000, 'chr'],
  [0o010000, 'fifo'],
]);

function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** The fact names this module knows, already lower-case: the common case skips {@link asciiLower}. */
const KNOWN_FACTS: ReadonlySet<string> = new Set<string>([...SUPPORTED_FACTS, 'lang', 'media-type', 'charset']);

function safeValue(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v !== 'string') return undefined;
  // Printable ASCII but `;` is clean (a hex `unique`, a user name): a loop, where a regular expression run per entry
  // cost more than the rest of the line. Anything else is tested, and replaced only if it must be.
  if (isPlainValue(v)) return v;
  UNSAFE_VALUE.lastIndex = 0;
  return UNSAFE_VALUE.test(v) ? v.replace(UNSAFE_VALUE, '_') : v;
}

function isPlainValue(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x3b) return false;
  }
  return true;
}

/** `unix.mode` values met so far, by permission bits (at most 4,096 of them). */
const UNIX_MODES: string[] = [];

function unixMode(entry: FactEntry): string {
  const bits = modeBits(entry) & 0o7777;
  return (UNIX_MODES[bits] ??= `0${bits.toString(8).padStart(3, '0')}`);
}

function safeId(v: unknown): string | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? String(v) : undefined;
}

/** The last minute formatted (`YYYYMMDDHHMM`): the entries of one directory often share it. */
let lastMinute = Number.NaN;
let lastMinuteText = '';
/** `00` … `59`: the seconds of a time value, appended to its minute's cached text. */
const SECONDS: readonly string[] = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));

function timeValue(t: unknown, millis: boolean): string | undefined {
  const ms = timeOf(t);
  // RFC 3659 §2.3 can only express years 1000–9999: a time outside is omitted (also NaN).
  if (!(ms >= MIN_FTP_TIME && ms < MAX_FTP_TIME)) return undefined;
  if (millis) return formatFtpTime(ms, true);
  // The entries of a folder mostly share a minute, not a second: `YYYYMMDDHHMM` is cached, the seconds appended.
  // Of the time as a Date holds it (a fraction of a millisecond dropped toward zero), as formatFtpTime shows it.
  const second = Math.floor(Math.trunc(ms) / 1000);
  const minute = Math.floor(second / 60);
  if (minute !== lastMinute) {
    lastMinuteText = formatFtpTime(minute * 60_000, false).slice(0, 12);
    lastMinute = minute;
  }
  return lastMinuteText + SECONDS[second - minute * 60];
}

/** 1000-01-01T00:00:00Z and 10000-01-01T00:00:00Z: the times RFC 3659 §2.3 can express are in between. */
const MIN_FTP_TIME = Date.UTC(1000, 0, 1);
const MAX_FTP_TIME = Date.UTC(10000, 0, 1);

function modeBits(entry: FactEntry): number {
  return typeof entry.mode === 'number' && Number.isFinite(entry.mode) ? Math.trunc(entry.mode) : 0;
}

function typeValue(entry: FactEntry): string {
  // RFC 3659 §7.5.1: file, cdir, pdir, dir, or OS.name=type. For symbolic
  // links the grammar-conformant `OS.unix=symlink` is used (RFC 3659 erratum
  // 1500; the `OS.unix=slink:target` of the §7.7.4 example does not match the ABNF).
  if (entry.dirRole === 'cdir' || entry.dirRole === 'pdir') return entry.dirRole;
  switch (entry.type) {
    case 'dir':
      return 'dir';
    case 'file':
      return 'file';
    case 'link':
      return 'OS.unix=symlink';
    default:
      return `OS.unix=${OTHER_TYPES.get(modeBits(entry) & S_IFMT) ?? 'unknown'}`;
  }
}

/** Clean `perm` values by what was given: a server passes the same few strings for every entry. */
const PERM_VALUES = new Map<string, string>();

function permValue(entry: FactEntry): string {
  if (typeof entry.perm === 'string') {
    let clean = PERM_VALUES.get(entry.perm);
    if (clean === undefined) {
      clean = asciiLower(entry.perm).replace(PERM_LETTERS, '');
      if (PERM_VALUES.size < 256) PERM_VALUES.set(entry.perm, clean);
    }
    return clean;
  }
  const m = modeBits(entry);
  const isDir = entry.type === 'dir' || entry.dirRole !== undefined;
  let p = '';
  if (isDir) {
    if (m & 0o100) p += 'e';
    if (m & 0o400) p += 'l';
    if (m & 0o200) p += 'cdfmp';
  } else {
    if (m & 0o400) p += 'r';
    if (m & 0o200) p += 'adfw';
  }
  return p;
}

function factValue(entry: FactEntry, fact: string, millis: boolean): string | undefined {
  switch (fact) {
    case 'type':
      return typeValue(entry);
    case 'size':
      // Only for plain files: the size of a directory is not meaningful here (RFC 3659 §7.5.7).
      if (entry.type !== 'file' || entry.dirRole !== undefined) return undefined;
      return typeof entry.size === 'number' && Number.isFinite(entry.size) ? countString(entry.size) : undefined;
    case 'modify':
      return timeValue(entry.mtime, millis);
    case 'create':
      return entry.create === undefined ? undefined : timeValue(entry.create, millis);
    case 'perm':
      return permValue(entry);
    case 'unique': {
      const u = safeValue(entry.unique);
      return u === '' ? undefined : u;
    }
    case 'unix.mode':
      return unixMode(entry);
    case 'unix.owner':
      return safeValue(entry.owner);
    case 'unix.group':
      return safeValue(entry.group);
    case 'unix.uid':
      return safeId(entry.uid);
    case 'unix.gid':
      return safeId(entry.gid);
    default:
      // lang, media-type, charset and unknown names: no data, omitted (RFC 3659 §7.1).
      return undefined;
  }
}

/**
 * One MLSx entry (RFC 3659 §7.2: `[facts] SP pathname`), without CRLF:
 *
 * ```text
 * type=file;size=12;modify=20240102150405;perm=adfrw; name
 * ```
 *
 * Facts are written in the order given, each as `name=value;`; a fact with
 * no value for this entry is omitted (`size` for anything but a file,
 * `create` when unknown, a time outside years 1000–9999…). Values are
 * sanitised (`;`, space and control characters become `_`); the name keeps
 * its characters except CR and LF (see {@link sanitizeName}). For MLST the
 * caller sends this line, prefixed by one space, inside a 250 reply (RFC 3659 §7.3.1).
 *
 * @param entry - the entry.
 * @param facts - the facts to write, in order (usually the client's selection).
 * @param options - see {@link FormatFactsOptions}.
 * @throws ProtocolError `BAD_ARGUMENT` if `entry` has no string `name` or `facts` is not an array.
 */
export function formatFacts(entry: FactEntry, facts: readonly MlsxFact[], options: FormatFactsOptions = {}): string {
  if (typeof entry !== 'object' || entry === null || typeof entry.name !== 'string') {
    badArgument('entry must be an object with a string name');
  }
  if (!Array.isArray(facts)) badArgument('facts must be an array');
  const millis = options?.millis === true;
  const plan = planOf(facts);
  let out = '';
  for (let i = 0; i < plan.names.length; i++) {
    const value = factValue(entry, plan.names[i] as string, millis);
    if (value !== undefined) out += (plan.heads[i] as string) + value + ';';
  }
  return out + ' ' + sanitizeName(entry.name);
}

/** A fact list ready to write: each fact's lower-case name and its `name=` head, non-strings left out. */
interface FactPlan {
  names: string[];
  heads: string[];
}

/**
 * The plan of the fact list met last, and a copy of that list: a server passes the same list (a session's
 * selection) for every entry of a listing, so comparing a few elements spares the per-fact work of every line.
 * A copy, not the array itself: a caller may change its array between two calls.
 */
let lastFacts: unknown[] = [];
let lastPlan: FactPlan = { names: [], heads: [] };

function planOf(facts: readonly MlsxFact[]): FactPlan {
  if (sameFacts(facts)) return lastPlan;
  const plan: FactPlan = { names: [], heads: [] };
  for (let i = 0; i < facts.length; i++) {
    const fact: unknown = facts[i];
    if (typeof fact !== 'string') continue;
    plan.names.push(KNOWN_FACTS.has(fact) ? fact : asciiLower(fact));
    plan.heads.push(fact + '=');
  }
  lastFacts = facts.slice();
  lastPlan = plan;
  return plan;
}

function sameFacts(facts: readonly unknown[]): boolean {
  if (facts.length !== lastFacts.length) return false;
  for (let i = 0; i < facts.length; i++) if (facts[i] !== lastFacts[i]) return false;
  return true;
}

/**
 * The FEAT line for MLST (RFC 3659 §7.8): every supported fact followed by
 * `;`, the selected ones marked with `*`: `MLST type*;size*;modify*;create;…`.
 *
 * @param selected - the facts currently selected.
 * @param supported - the facts offered (default {@link SUPPORTED_FACTS}).
 */
export function formatFeatFacts(selected: readonly MlsxFact[], supported: readonly MlsxFact[] = SUPPORTED_FACTS): string {
  const chosen = new Set<unknown>(Array.isArray(selected) ? selected : []);
  const list = (Array.isArray(supported) ? supported : SUPPORTED_FACTS).filter((f): f is MlsxFact => typeof f === 'string');
  return `MLST ${list.map((f) => `${f}${chosen.has(f) ? '*' : ''};`).join('')}`;
}

/**
 * The facts selected by `OPTS MLST fact;fact;…` (RFC 3659 §7.9): names are
 * case-insensitive, unknown or unsupported ones are ignored, duplicates
 * dropped, an empty list selects none. The argument may include the leading
 * `MLST` (the whole OPTS argument) or not (the value of {@link parseOpts}).
 *
 * @param arg - `type;size;` or `MLST type;size;`.
 * @param supported - the facts that may be selected (default {@link SUPPORTED_FACTS}).
 * @throws ProtocolError `BAD_ARGUMENT` if `arg` is not a string.
 */
export function parseOptsMlst(arg: string, supported: readonly MlsxFact[] = SUPPORTED_FACTS): MlsxFact[] {
  let s = expectString(arg, 'OPTS MLST argument').trim();
  if (/^mlst(?:[ \t]|$)/i.test(s)) s = s.slice(4).trim();
  const allowed = new Set<string>(Array.isArray(supported) ? supported : SUPPORTED_FACTS);
  const out: MlsxFact[] = [];
  for (const part of s.split(';')) {
    const fact = asciiLower(part.trim());
    if (allowed.has(fact) && !out.includes(fact as MlsxFact)) out.push(fact as MlsxFact);
  }
  return out;
}

/**
 * The text of the 200 reply to `OPTS MLST` (RFC 3659 §7.9): `MLST OPTS`
 * followed by the selected facts, each with `;`: `MLST OPTS type;size;`.
 *
 * @param selected - the facts now selected.
 */
export function formatOptsMlstReply(selected: readonly MlsxFact[]): string {
  const list = Array.isArray(selected) ? selected.filter((f): f is MlsxFact => typeof f === 'string') : [];
  return list.length === 0 ? 'MLST OPTS' : `MLST OPTS ${list.map((f) => `${f};`).join('')}`;
}

import type { Stats } from 'node:fs';
import { LSTAT_ROW_FIELDS } from '@ftp/native';
import type { FileStats } from '../spec.js';

/**
 * The `fs.Stats` number fields, in the order a packed row holds them (Node's own order): @ftp/native's rows, whose
 * `lstatRows` fills them, so the two can never disagree. A row is {@link STAT_FIELDS} doubles; a `mode` of NaN marks
 * an entry that vanished before it was looked up.
 */
export const STAT_FIELD_NAMES = LSTAT_ROW_FIELDS;

/** Doubles per packed row. */
export const STAT_FIELDS = STAT_FIELD_NAMES.length;

const MODE = 1;
const S_IFMT = 0o170000;

/**
 * The lstat of `names` (each joined to `prefix`) packed into rows of {@link STAT_FIELDS} doubles.
 *
 * Self-contained on purpose: its source is also run in the listing thread (see `lstat-thread.ts`), so it may
 * use nothing but its parameters and globals. Packing keeps a 10,000-entry listing's live set small (one array
 * instead of 10,000 `fs.Stats` with a boxed number per field), which is what its garbage collections cost.
 */
export function packLstats(lstatSync: (path: string, options: { throwIfNoEntry: false }) => Stats | undefined, prefix: string, names: readonly string[], fields: readonly string[]): Float64Array {
  const width = fields.length;
  const rows = new Float64Array(names.length * width);
  for (let i = 0; i < names.length; i++) {
    const st = lstatSync(prefix + names[i], { throwIfNoEntry: false }) as unknown as Record<string, number> | undefined;
    const at = i * width;
    if (st === undefined) {
      rows[at + 1] = Number.NaN;
      continue;
    }
    for (let f = 0; f < width; f++) rows[at + f] = st[fields[f] as string] as number;
  }
  return rows;
}

/**
 * An `fs.Stats` look-alike over one row of packed lstat results: two fields per entry instead of fifteen, and no
 * boxed number on the heap until a field is read.
 */
export class PackedStats implements FileStats {
  readonly #rows: Float64Array;
  readonly #at: number;

  /** @internal */
  constructor(rows: Float64Array, at: number) {
    this.#rows = rows;
    this.#at = at;
  }

  get dev(): number {
    return this.#rows[this.#at] as number;
  }
  get mode(): number {
    return this.#rows[this.#at + MODE] as number;
  }
  get nlink(): number {
    return this.#rows[this.#at + 2] as number;
  }
  get uid(): number {
    return this.#rows[this.#at + 3] as number;
  }
  get gid(): number {
    return this.#rows[this.#at + 4] as number;
  }
  get rdev(): number {
    return this.#rows[this.#at + 5] as number;
  }
  get blksize(): number {
    return this.#rows[this.#at + 6] as number;
  }
  get ino(): number {
    return this.#rows[this.#at + 7] as number;
  }
  get size(): number {
    return this.#rows[this.#at + 8] as number;
  }
  get blocks(): number {
    return this.#rows[this.#at + 9] as number;
  }
  get atimeMs(): number {
    return this.#rows[this.#at + 10] as number;
  }
  get mtimeMs(): number {
    return this.#rows[this.#at + 11] as number;
  }
  get ctimeMs(): number {
    return this.#rows[this.#at + 12] as number;
  }
  get birthtimeMs(): number {
    return this.#rows[this.#at + 13] as number;
  }
  get atime(): Date {
    return dateOf(this.atimeMs);
  }
  get mtime(): Date {
    return dateOf(this.mtimeMs);
  }
  get ctime(): Date {
    return dateOf(this.ctimeMs);
  }
  get birthtime(): Date {
    return dateOf(this.birthtimeMs);
  }
  /** The fields, as `fs.Stats` shows them (logs, `JSON.stringify`): the class has no own enumerable ones. */
  toJSON(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let f = 0; f < STAT_FIELDS; f++) out[STAT_FIELD_NAMES[f] as string] = this.#rows[this.#at + f] as number;
    return out;
  }
  isFile(): boolean {
    return (this.mode & S_IFMT) === 0o100000;
  }
  isDirectory(): boolean {
    return (this.mode & S_IFMT) === 0o040000;
  }
  isSymbolicLink(): boolean {
    return (this.mode & S_IFMT) === 0o120000;
  }
  isBlockDevice(): boolean {
    return (this.mode & S_IFMT) === 0o060000;
  }
  isCharacterDevice(): boolean {
    return (this.mode & S_IFMT) === 0o020000;
  }
  isFIFO(): boolean {
    return (this.mode & S_IFMT) === 0o010000;
  }
  isSocket(): boolean {
    return (this.mode & S_IFMT) === 0o140000;
  }
}

/** As `fs.Stats` makes its dates: rounded to the millisecond (a `Date` alone would truncate). */
function dateOf(ms: number): Date {
  return new Date(Math.round(ms));
}

/** Whether row `i` of `rows` holds an entry (it did not vanish before its lstat). */
export function rowPresent(rows: Float64Array, i: number): boolean {
  return !Number.isNaN(rows[i * STAT_FIELDS + MODE]);
}

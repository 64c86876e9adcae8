import fs from 'node:fs';
import type { Stats } from 'node:fs';
import { lstatRows } from '@ftp/native';
import { decodeEscaped, encodeEscaped, hasByteEscapes } from '@ftp/protocol';
import type { DirEntry, DirSlices, NameSlices } from '../spec.js';
import type { Sliced } from '../internal/sliced.js';
import { collectSlices } from '../listing.js';
import { hostArg, mayBeReplaced } from '../internal/host-names.js';
import { LstatThread, LstatThreadGone } from '../internal/lstat-thread.js';
import { packLstats, PackedStats, rowPresent, STAT_FIELD_NAMES, STAT_FIELDS } from '../internal/packed-stats.js';

/**
 * `lstat` calls {@link lstatAll} keeps in flight. Large: the thread pool then never idles between two calls (a
 * window of 64 made a 10,000-entry listing twice as slow here), yet bounded, so one big listing delays another
 * session's file operations by a few milliseconds at most.
 */
const LSTAT_WINDOW = 1024;

/**
 * `fs.lstatSync` of a host path that may hold byte escapes (see `host-names.ts`): an entry of a confined folder, its
 * name read from the disk, so canonical by construction (no `hostArg` check needed).
 */
function lstatHost(path: string, options: { throwIfNoEntry: false }): Stats | undefined {
  return fs.lstatSync(hasByteEscapes(path) ? encodeEscaped(path) : path, options);
}

/**
 * The entries of `dir` named `names`, with their lstat, in the order of `names`; entries that vanished meanwhile
 * are left out. Callback `fs.lstat` rather than promises: a tenth of the main-thread cost per entry. `dir` and
 * `names` may hold byte escapes.
 */
export function lstatAll(dir: string, names: string[]): Promise<DirEntry[]> {
  const n = names.length;
  if (n === 0) return Promise.resolve([]);
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  // Decided once for the listing: in a folder without escapes (nearly all) the paths go to fs as they are.
  const raw = hasByteEscapes(prefix) || names.some(hasByteEscapes);
  return new Promise((resolve, reject) => {
    const out: (DirEntry | undefined)[] = new Array(n);
    let next = 0;
    let done = 0;
    let missing = 0;
    let failed = false;
    const start = (): void => {
      const i = next++;
      const name = names[i] as string;
      let path: string | Buffer = prefix + name;
      try {
        if (raw) path = hostArg(path);
      } catch (err) {
        // (Names read from the disk always encode; this runs in an lstat callback, where a throw would be uncaught.)
        failed = true;
        return reject(err);
      }
      fs.lstat(path, (err, stats) => {
        if (failed) return;
        if (err) {
          if (err.code !== 'ENOENT') {
            failed = true;
            return reject(err);
          }
          missing++;
        } else out[i] = { name, stats };
        if (++done === n) return resolve(missing === 0 ? (out as DirEntry[]) : out.filter((e): e is DirEntry => e !== undefined));
        if (next < n) start();
      });
    };
    for (let k = Math.min(LSTAT_WINDOW, n); k > 0; k--) start();
  });
}

/**
 * Entries {@link lstatAllSync} reads and looks up before it lets other work run (~1.5 ms here), and the unit it
 * hands to the listing thread.
 */
const LSTAT_SLICE = 500;

/** A slice's outcome: its names and packed rows, or the error that failed it. */
type SliceResult = { names: string[]; rows: Float64Array; error?: undefined } | { names: string[]; rows?: undefined; error: unknown };

/**
 * Renames and symlinks made through any {@link LocalProvider} of this process. A listing looks its entries up by
 * path after confining the folder once, so a folder swapped for a link to outside the root in the middle (two FTP
 * sessions can do it with SITE SYMLINK, RNFR and RNTO) would have the rest looked up out there. The main thread's
 * slices check the folder is still itself right before they run, and nothing can change between that check and
 * their lookups (a slice is synchronous); the thread's slices run beside other sessions' commands, so one that
 * ran while this count moved is looked up again on the main thread.
 */
let namespaceChanges = 0;

/** Called by {@link LocalProvider} around every rename and symlink (see {@link namespaceChanges}). */
export function noteNamespaceChange(): void {
  namespaceChanges++;
}

/** The folder a listing confined: its path, the prefix of its entries, and what it is (device and inode). */
interface Folder {
  dir: string;
  /** `dir` as `fs` takes it (its bytes when it holds byte escapes). */
  host: string | Buffer;
  prefix: string;
  dev: number;
  ino: number;
  /**
   * The folder's own path holds byte escapes: every entry is looked up through {@link lstatHost}, on the main thread
   * (the listing thread takes plain strings only). A slice with an escaped name is too (see {@link NameRepair}).
   */
  raw: boolean;
  /**
   * The listing is over (ended early, failed or done): a slice still with the listing thread is not looked up again
   * on the main thread if the thread goes (500 synchronous lookups for nobody, while every session waits).
   */
  ended?: boolean;
}

/**
 * Throws unless `folder.dir` is still the folder that was confined: ENOENT when it is gone (removed during the
 * listing), EACCES when something else stands there now (another folder, a link).
 */
function checkFolder(folder: Folder): void {
  const st = fs.lstatSync(folder.host, { throwIfNoEntry: false });
  if (st === undefined) {
    throw Object.assign(new Error(`ENOENT: the folder was removed while it was being listed, scandir '${folder.dir}'`), { code: 'ENOENT', syscall: 'scandir', path: folder.dir });
  }
  if (!st.isDirectory() || st.dev !== folder.dev || st.ino !== folder.ino) throw replaced(folder);
}

function replaced(folder: Folder): Error {
  return Object.assign(new Error(`EACCES: the folder was replaced while it was being listed, scandir '${folder.dir}'`), { code: 'EACCES', syscall: 'scandir', path: folder.dir });
}

/**
 * `error`, or the folder's EACCES when it is @ftp/native's ESTALE: the folder found at the prefix when the batch
 * lookups began was not the one confined (swapped between {@link checkFolder} and the lookups, perhaps and back).
 */
function replacedOr(folder: Folder, error: unknown): unknown {
  return (error as NodeJS.ErrnoException | null)?.code === 'ESTALE' ? replaced(folder) : error;
}

/** Options of {@link lstatAllSync} and {@link lstatSlices}. */
export interface LstatAllSyncOptions {
  /** Let a second thread look up the slices it has room for (see {@link LstatThread}). Default true. */
  thread?: boolean;
  /**
   * Read every name first and look the entries up in name order when the folder has at most this many (see
   * `ListSlicesOptions.sortedUpTo`); past it, the folder is listed in the order it is read.
   */
  sortedUpTo?: number;
}

/**
 * Slices {@link lstatSlices} reads and looks up ahead of the one its consumer waits for: enough to keep the
 * listing thread and the main thread busy, few enough that a listing held up by a slow client holds ~2,000
 * entries, whatever the size of the folder.
 */
const SLICES_AHEAD = 4;

/**
 * {@link lstatAll} with synchronous calls, reading the folder as it goes (`opendir`), a slice at a time with other
 * sessions' work in between: a folder of a million entries never holds the event loop for more than a few
 * milliseconds at a time (a `readdirSync` of it would, for about a second).
 *
 * In a big folder, slices go to the listing thread whenever it has room, so two cores share the lookups (a
 * 10,000-entry folder: ~25 → ~14 ms of `lstat` here). The results come back packed, one array per slice, and
 * the entries' stats read from it ({@link PackedStats}): a listing holds one small object per entry rather than
 * an `fs.Stats` with fifteen fields, which was most of what its garbage collections cost.
 */
export function lstatAllSync(dir: string, options: LstatAllSyncOptions = {}): Promise<DirEntry[]> {
  return collectSlices(lstatSlices(dir, options));
}

/**
 * {@link lstatAllSync} a slice at a time, read as the consumer asks: a listing of a million entries sent to a
 * client holds a few slices, not a million entries (~550 bytes each when gathered). The folder is checked and
 * opened now, in the caller's synchronous stretch after its confinement of `dir`; throws if it cannot be.
 */
export function lstatSlices(dir: string, options: LstatAllSyncOptions = {}): DirSlices {
  // In the same synchronous stretch as the caller's confinement of `dir`: this is the folder that was checked.
  const host = hostArg(dir);
  const { dev, ino } = fs.lstatSync(host);
  const folder: Folder = { dir, host, prefix: dir.endsWith('/') ? dir : `${dir}/`, dev, ino, raw: typeof host !== 'string' };
  const handle = fs.opendirSync(host, { bufferSize: 256 });
  // Unset when not asked to sort: the caller may then gather a small folder to sort it itself.
  const order: Order = { sorted: options.sortedUpTo === undefined ? undefined : false, held: 0 };
  return asListing(readSlices(folder, handle, new NameRepair(folder), options.thread !== false, options.sortedUpTo, order), handle, order);
}

/**
 * The names of {@link lstatSlices}' entries, without their stats (see `FsProvider.listNameSlices`): the same names,
 * in the same order, kept to the same bounds (sorted up to `sortedUpTo`, past it read as they are consumed, a few
 * slices held), with the same {@link NameRepair}, and no lookup of any entry, so no listing thread either. The
 * names are read through the handle opened here, in the caller's synchronous stretch after its confinement of
 * `dir`, and the folder is checked ({@link checkFolder}) once the handle is open: a folder swapped for a link
 * before the open is refused, one swapped after it goes on being read through the handle (no lookups by path
 * follow, which is what {@link namespaceChanges} and the per-slice checks guard in {@link lstatSlices};
 * NameRepair's second read of the folder checks it as it does there).
 */
export function nameSlices(dir: string, options: Pick<LstatAllSyncOptions, 'sortedUpTo'> = {}): NameSlices {
  const host = hostArg(dir);
  const { dev, ino } = fs.lstatSync(host);
  const folder: Folder = { dir, host, prefix: dir.endsWith('/') ? dir : `${dir}/`, dev, ino, raw: typeof host !== 'string' };
  const handle = fs.opendirSync(host, { bufferSize: NAME_SLICE });
  // The folder swapped for a link (or another folder) between the caller's confinement and this open: the handle
  // may be reading somewhere else. As lstatSlices' first lookup would, refuse (EACCES) rather than send its names.
  try {
    checkFolder(folder);
  } catch (err) {
    handle.closeSync();
    throw err;
  }
  const order: Order = { sorted: options.sortedUpTo === undefined ? undefined : false, held: 0 };
  return asListing(readNameSlices(handle, new NameRepair(folder), options.sortedUpTo, order), handle, order);
}

/** The slices of `slices` as `DirSlices` or `NameSlices` (see `spec.ts`), saying what `order` says. */
function asListing<T>(slices: AsyncGenerator<T[], undefined>, handle: fs.Dir, order: Order): Sliced<T> {
  // A generator that never started runs no `finally`: the folder is closed here then.
  let started = false;
  return {
    next() {
      started = true;
      return slices.next();
    },
    async return() {
      if (!started) {
        started = true;
        handle.closeSync();
      }
      return slices.return(undefined);
    },
    get sorted() {
      return order.sorted;
    },
    get held() {
      return order.held;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** Other sessions' work runs between two stretches of a listing. */
const yieldToOthers = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Reads the names of a folder into `read`, a slice at a time with other work in between, as the lookups are. True,
 * with `read` sorted, when the folder has at most `max`; false, with the first `max + 1` in the order read, if not.
 */
async function readSortedNames(handle: fs.Dir, repair: NameRepair, max: number, read: string[]): Promise<boolean> {
  for (;;) {
    const got = readNames(handle, Math.min(LSTAT_SLICE, max + 1 - read.length));
    const fixed = repair.fix(got);
    for (const name of Array.isArray(fixed) ? fixed : await fixed) read.push(name);
    if (read.length > max) return false;
    if (got.length === 0) {
      read.sort();
      return true;
    }
    await yieldToOthers();
  }
}

/** What a listing says of itself as it goes: see `DirSlices.sorted` and `DirSlices.held`. */
interface Order {
  sorted: boolean | undefined;
  held: number;
}

async function* readSlices(folder: Folder, handle: fs.Dir, repair: NameRepair, useThread: boolean, sortedUpTo: number | undefined, order: Order): AsyncGenerator<DirEntry[], undefined> {
  const ahead: Array<SliceResult | Promise<SliceResult>> = [];
  let sliced = 0;
  let more = true;
  // Names read before the lookups start: all of them in name order (the folder is then done with), or the first
  // `sortedUpTo + 1` of a bigger folder, in the order they were read.
  const pending: string[] = [];
  let taken = 0;
  try {
    if (sortedUpTo !== undefined && (await readSortedNames(handle, repair, sortedUpTo, pending))) {
      order.sorted = true;
      more = false;
    }
    order.held = pending.length;
    // Names handed on are let go here (the array itself lives as long as the listing), and no longer counted.
    const takePending = (): string[] => {
      const names = pending.slice(taken, taken + LSTAT_SLICE);
      pending.fill('', taken, (taken += names.length));
      order.held = pending.length - taken;
      return names;
    };
    for (;;) {
      while (ahead.length < SLICES_AHEAD && (more || taken < pending.length)) {
        if (sliced > 0) await yieldToOthers();
        const fromFolder = taken >= pending.length;
        let names = fromFolder ? readNames(handle, LSTAT_SLICE) : takePending();
        if (fromFolder && names.length < LSTAT_SLICE) more = false;
        if (fromFolder) {
          // Not awaited unless a name needs repair: the common case runs on in the same synchronous stretch.
          const fixed = repair.fix(names);
          names = Array.isArray(fixed) ? fixed : await fixed;
        }
        if (names.length === 0) {
          // Every name of the slice was gone (see NameRepair): read on if there is more.
          if (more) continue;
          break;
        }
        const last = taken >= pending.length && !more;
        // A folder of one slice is over before a thread could help.
        const raw = folder.raw || (repair.used && names.some(hasByteEscapes));
        const thread = useThread && !raw && (sliced > 0 || !last) ? LstatThread.available() : null;
        sliced++;
        const slice = lookUp(folder, names, thread, raw);
        // A lookup that failed here fails the listing now, before more of the folder is read.
        if (!(slice instanceof Promise) && slice.rows === undefined) throw slice.error;
        ahead.push(slice);
        if (last) break;
      }
      const next = ahead.shift();
      if (next === undefined) return undefined;
      const slice = await next;
      if (slice.rows === undefined) throw slice.error;
      yield entriesOf(slice.names, slice.rows);
    }
  } finally {
    folder.ended = true;
    handle.closeSync();
  }
}

/**
 * Names {@link nameSlices} reads (and hands on) at a time before it lets other work run, and what its handle reads
 * from the disk at a time: the slices of {@link lstatSlices} (its names are read as {@link readSortedNames} reads
 * them), so that a names-only listing is sent as the other one is. Without lookups a slice costs ~0.15 ms here;
 * slices of 2,000 names, or a handle buffer of 32 to 4,096 entries, measured no different.
 */
const NAME_SLICE = LSTAT_SLICE;

async function* readNameSlices(handle: fs.Dir, repair: NameRepair, sortedUpTo: number | undefined, order: Order): AsyncGenerator<string[], undefined> {
  try {
    // As readSlices: every name in name order when the folder has at most `sortedUpTo`, else the first
    // `sortedUpTo + 1` in the order read, then the rest of the folder as it is read.
    const pending: string[] = [];
    let more = true;
    if (sortedUpTo !== undefined && (await readSortedNames(handle, repair, sortedUpTo, pending))) {
      order.sorted = true;
      more = false;
    }
    for (let taken = 0; taken < pending.length; ) {
      const names = pending.slice(taken, taken + NAME_SLICE);
      pending.fill('', taken, (taken += names.length));
      order.held = pending.length - taken;
      yield names;
    }
    order.held = 0;
    for (let sliced = 0; more; sliced++) {
      if (sliced > 0) await yieldToOthers();
      const got = readNames(handle, NAME_SLICE);
      more = got.length === NAME_SLICE;
      const fixed = repair.fix(got);
      const names = Array.isArray(fixed) ? fixed : await fixed;
      if (names.length > 0) yield names;
    }
    return undefined;
  } finally {
    handle.closeSync();
  }
}

function entriesOf(names: string[], rows: Float64Array): DirEntry[] {
  const out: DirEntry[] = [];
  for (let i = 0; i < names.length; i++) {
    if (rowPresent(rows, i)) out.push({ name: names[i] as string, stats: new PackedStats(rows, i * STAT_FIELDS) });
  }
  return out;
}

function readNames(handle: fs.Dir, max: number): string[] {
  const names: string[] = [];
  while (names.length < max) {
    const entry = handle.readSync();
    if (entry === null) break;
    names.push(entry.name);
  }
  return names;
}

/**
 * Gives the names of a listing that Node read with U+FFFD (bytes that are not UTF-8, which it replaced, or a valid
 * name that holds U+FFFD) as their byte-escaped forms, so that they can be looked up and are listed as the bytes on
 * disk. The listing reads names as strings, which costs one `indexOf` per name; the first such name has the folder
 * read once more as bytes (through a second handle, checked to be the folder confined), keeping only those names.
 * Several names that Node reads alike (`caf\xe9`, `caf\xe8`: both `caf\uFFFD`) are handed out one each, in turn.
 * A name that appeared after that second read cannot be told from the others and is left out, as are entries
 * created while a listing runs anyway.
 */
class NameRepair {
  readonly #folder: Folder;
  /** Escaped names by the string Node reads for them, once the folder has been read as bytes. */
  #byRead: Promise<Map<string, string[]>> | null = null;

  constructor(folder: Folder) {
    this.#folder = folder;
  }

  /** Some name needed repair: the names handed out since may hold escapes. */
  get used(): boolean {
    return this.#byRead !== null;
  }

  /** `names`, each name Node may have replaced bytes of given as its escaped form (dropped if it is gone). */
  fix(names: string[]): Promise<string[]> | string[] {
    let i = 0;
    while (i < names.length && !mayBeReplaced(names[i] as string)) i++;
    if (i === names.length) return names;
    return this.#fixFrom(names, i);
  }

  async #fixFrom(names: string[], from: number): Promise<string[]> {
    const byRead = await (this.#byRead ??= this.#readBytes());
    const out = names.slice(0, from);
    for (let i = from; i < names.length; i++) {
      const name = names[i] as string;
      if (!mayBeReplaced(name)) out.push(name);
      else {
        const escaped = byRead.get(name)?.shift();
        if (escaped !== undefined) out.push(escaped);
      }
    }
    return out;
  }

  async #readBytes(): Promise<Map<string, string[]>> {
    // 'buffer' works (the names come as bytes), though @types/node only lists string encodings for opendir.
    const dir = fs.opendirSync(this.#folder.host, { encoding: 'buffer' as BufferEncoding, bufferSize: 256 });
    const byRead = new Map<string, string[]>();
    try {
      // In the same synchronous stretch as the open: the names read are those of the folder that was confined.
      checkFolder(this.#folder);
      // Read a slice at a time with other work in between, as the listing itself is (a promise per entry of
      // `dir.read()` tripled the time of a 10,000-entry listing).
      for (let more = true; more; ) {
        for (let k = 0; k < LSTAT_SLICE; k++) {
          const entry = dir.readSync();
          if (entry === null) {
            more = false;
            break;
          }
          const bytes = entry.name as unknown as Buffer;
          const read = bytes.toString('utf8');
          if (!mayBeReplaced(read)) continue;
          const same = byRead.get(read);
          if (same === undefined) byRead.set(read, [decodeEscaped(bytes)]);
          else same.push(decodeEscaped(bytes));
        }
        if (more) await yieldToOthers();
      }
    } finally {
      dir.closeSync();
    }
    return byRead;
  }
}

/**
 * Looks up a slice of `folder`: after checking, synchronously, that the folder is still the one confined (see
 * {@link namespaceChanges}), here, or by `thread` when given. A thread's slice is looked up again here if the thread
 * goes away first, or if a rename or symlink happened while it ran. With `raw` (names or folder with byte escapes)
 * through {@link lstatHost}, never by the thread. Never rejects.
 */
function lookUp(folder: Folder, names: string[], thread: LstatThread | null, raw = false): SliceResult | Promise<SliceResult> {
  try {
    checkFolder(folder);
    if (thread === null) {
      // Names in a host encoding other than UTF-8 (raw) are looked up as bytes, by lstatHost; the rest by the
      // native batch where it works (about half the time of fs.lstatSync per entry), else by fs.lstatSync.
      const rows = raw
        ? packLstats(lstatHost, folder.prefix, names, STAT_FIELD_NAMES)
        : (lstatRows(folder.prefix, names, folder) ?? packLstats(fs.lstatSync, folder.prefix, names, STAT_FIELD_NAMES));
      return stillThere(folder, names, rows);
    }
  } catch (error) {
    return { names, error: replacedOr(folder, error) };
  }
  const changes = namespaceChanges;
  return thread.lstat(folder.prefix, names, folder).then(
    (rows) => (namespaceChanges === changes ? stillThere(folder, names, rows) : again(folder, names)),
    (error: unknown) => (error instanceof LstatThreadGone ? again(folder, names) : { names, error: replacedOr(folder, error) }),
  );
}

/** A slice the thread could not answer (or answered too early) looked up on this thread, unless nobody waits for it. */
function again(folder: Folder, names: string[]): SliceResult | Promise<SliceResult> {
  return folder.ended ? { names, error: new Error('the listing has ended') } : lookUp(folder, names, null);
}

/**
 * A slice's rows, if its folder is still the one confined once they are in. {@link namespaceChanges} only counts
 * this process: another process (another ftpd worker, anything else on the host) may swap the folder while a slice
 * is looked up, and the rows are then refused rather than sent.
 */
function stillThere(folder: Folder, names: string[], rows: Float64Array): SliceResult {
  try {
    checkFolder(folder);
    return { names, rows };
  } catch (error) {
    return { names, error };
  }
}

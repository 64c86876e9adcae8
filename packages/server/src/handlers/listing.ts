import { formatFacts, formatListLine, formatNlstLine, type FactEntry, type ListEntry } from '@ftp/protocol';
import {
  basename,
  dirname,
  joinPath,
  listDirectory,
  listDirectorySlices,
  listNameSlices,
  slicesOf,
  splitPath,
  VfsError,
  type DirEntry,
  type DirSlices,
  type FileStats,
  type FsProvider,
  type ListSlicesOptions,
  type NameSlices,
  type Sliced,
} from '@ftp/vfs';
import { globMatcher, isGlob } from '../glob.js';
import { sendLines } from '../data/transfer.js';
import { FtpError, toReply } from '../errors.js';
import type { Permissions } from '../driver.js';
import { spendRestart, type Session } from '../session.js';
import { runDataCommand } from './data-command.js';
import { sortWithTurns, Turns } from '../turns.js';

/** What a listing command was asked for: the path and whether it names a directory's contents or one entry. */
interface Target {
  path: string;
  /** The entries to show, a slice at a time (see {@link namedOrder}); for a file, the file itself. The caller ends them (`return()`). */
  slices: DirSlices;
  isDirectory: boolean;
  /** The entries matched a wildcard in the last segment of the path. */
  glob?: boolean;
}

/**
 * Splits `ls`-style options from the path (`LIST -la /dir`): clients send them though RFC 959 does not
 * define them. They are accepted and otherwise ignored: every entry is always listed.
 */
function listArgument(arg: string): string {
  return parseListArgument(arg).path;
}

/** `ls` options a client may put before the path, and the path. */
interface ListArgument {
  path: string;
  /** -l: long lines (for NLST). */
  long: boolean;
  /** -R: recurse into subdirectories (LIST). */
  recursive: boolean;
  /** -d: a folder's own line, not its entries (LIST). */
  itself: boolean;
}

function parseListArgument(arg: string): ListArgument {
  // Only options and the spaces around them come off: a name may begin with spaces (RFC 959 separates a command
  // from its argument by one space), and `--` ends the options, for a name that begins with a dash.
  let rest = arg.trim() === '' ? '' : arg;
  let flags = '';
  for (;;) {
    const m = /^\s*-(-|[A-Za-z0-9]*)(?:\s+|$)/.exec(rest);
    if (!m) break;
    rest = rest.slice(m[0].length);
    if (m[1] === '-') break;
    flags += m[1];
  }
  // Dotfiles are always listed (-a is implied): mirroring clients must not miss them.
  return { path: rest, long: flags.includes('l'), recursive: flags.includes('R'), itself: flags.includes('d') };
}

/** Lines of a recursive listing handed on at a time (about a slice's worth). */
const RECURSIVE_GROUP = 500;

/** Where a recursive listing stopped short of the whole tree (said in its 226). */
interface RecursiveCut {
  /** Folders below `listMaxDepth` were not listed. */
  depth: boolean;
  /** `listMaxEntries` entries were listed and more were left. */
  entries: boolean;
}

/**
 * Listing lines of a directory tree, `ls -lR` style, at most `listMaxDepth` levels and `listMaxEntries` entries deep;
 * `cut` says afterwards which bound left part of the tree out. Each folder comes as LIST gives it (sorted up to
 * `listSortMax`, a slice at a time past it), and only the paths of the folders still to list are kept: a folder held
 * whole here held ~11 MiB per 100,000 entries for as long as the client did not read. `first` is the root's listing,
 * opened before the 150; its failure fails the transfer, a folder below that cannot be listed is left out.
 */
async function* recursiveLines(s: Session, root: string, first: DirSlices, now: number, cut: RecursiveCut): AsyncGenerator<string> {
  const { listMaxDepth, listMaxEntries } = s.settings;
  let emitted = 0;
  const queue: Array<{ path: string; depth: number }> = [];
  // A walk over storage that answers at once never waits otherwise: see turns.ts.
  const turns = new Turns();
  let level: { path: string; depth: number } | undefined = { path: root, depth: 0 };
  while (level !== undefined) {
    const { path, depth } = level;
    const slices = path === root ? first : await namedOrder(s, (options) => listDirectorySlices(s.vfs, path, options), entryName).catch(() => null);
    if (slices !== null) {
      try {
        if (path !== root) yield '';
        yield `${path}:`;
        for await (const slice of slices) {
          for (const e of await toListEntries(s, path, slice)) {
            if (emitted++ >= listMaxEntries) {
              cut.entries = true;
              return;
            }
            yield formatListLine(e, now);
            if (e.type !== 'dir' || !isOneName(e.name)) continue;
            if (depth + 1 <= listMaxDepth) queue.push({ path: path === '/' ? `/${e.name}` : `${path}/${e.name}`, depth: depth + 1 });
            else cut.depth = true;
          }
          await turns.check();
        }
      } catch (err) {
        // The root's listing failing is the transfer's failure (as for LIST); a folder below is left where it broke.
        if (path === root) throw err;
      } finally {
        if (path !== root) await endSlices(s, slices);
      }
    }
    level = queue.shift();
  }
}

/**
 * Whether a provider's entry name is one name that a path may be built from: a provider's listing (a remote
 * store's, say) may hold `.`, `..` or names with a slash, and a path made of them would lead elsewhere than into the
 * folder (providers are promised normalised paths).
 */
function isOneName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/');
}

async function statOf(s: Session, path: string): Promise<FileStats> {
  const fs = s.vfs;
  return fs.lstat ? fs.lstat(path) : fs.stat(path);
}

/** What a listing's path names: its stats (a dangling link's own), or null for a wildcard that names nothing itself. */
async function statTarget(s: Session, path: string): Promise<FileStats | null> {
  return s.vfs.stat(path).catch(async (err: unknown) => {
    // A dangling symlink still lists as itself.
    const l = s.vfs.lstat ? await s.vfs.lstat(path).catch(() => null) : null;
    if (l) return l;
    if (VfsError.isInstance(err) && err.code === 'ENOENT' && isGlob(basename(path))) return null;
    throw err;
  });
}

/**
 * What a listing's argument names: its path and stats (null for a pattern that names nothing itself), and the
 * argument, in which a pattern followed by a slash is replaced by the folder it matches (see theFolderMatched).
 * `file/` is refused as no folder.
 */
async function listedPath(s: Session, arg: string): Promise<{ arg: string; path: string; st: FileStats | null }> {
  const path = s.resolve(arg);
  const st = await statTarget(s, path);
  if (st === null) return namesFolder(arg) ? listedPath(s, await theFolderMatched(s, arg, path)) : { arg, path, st };
  refuseFileAsFolder(arg, path, st);
  return { arg, path, st };
}

async function resolveTarget(s: Session, given: string, folderItself = false): Promise<Target> {
  const { path, st } = await listedPath(s, given);
  if (st === null) {
    const matches = globMatcher(basename(path));
    const dir = dirname(path);
    const entries = await matching(await listDirectory(s.vfs, dir), matches);
    if (entries.length === 0) throw new FtpError(550, `${path}: No files found.`);
    return { path: dir, slices: slicesOf([entries.sort(byName)]), isDirectory: false, glob: true };
  }
  if (st.isDirectory() && !folderItself) return { path, slices: await namedOrder(s, (options) => listDirectorySlices(s.vfs, path, options), entryName), isDirectory: true };
  return { path, slices: slicesOf([[{ name: basename(path) || '/', stats: await statOf(s, path) }]]), isDirectory: false };
}

/** Names matched at a time: between batches other sessions get the thread (a folder may hold 100,000 names). */
const MATCH_BATCH = 2000;

async function matching(entries: DirEntry[], matches: (name: string) => boolean): Promise<DirEntry[]> {
  const kept: DirEntry[] = [];
  for (let i = 0; i < entries.length; i++) {
    if (i > 0 && i % MATCH_BATCH === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const e = entries[i] as DirEntry;
    if (matches(e.name)) kept.push(e);
  }
  return kept;
}

function byName(a: DirEntry, b: DirEntry): number {
  return compareNames(a.name, b.name);
}

const entryName = (e: DirEntry): string => e.name;
const itself = (name: string): string => name;

/**
 * A folder's entries for LIST and NLST (its names only, for NLST): sorted by name when it has at most `listSortMax`
 * of them, else in the order they are read, a slice at a time, so that a huge folder is never all in hand (see
 * `listSortMax`). `open` opens the listing (`listDirectorySlices` or `listNameSlices` of the folder), `nameOf` names
 * an entry.
 */
async function namedOrder<T>(s: Session, open: (options?: ListSlicesOptions) => Promise<Sliced<T>>, nameOf: (entry: T) => string): Promise<Sliced<T>> {
  // What this listing may hold to sort, out of what all listings may (`listSortBudget`); given back when it ends.
  const budget = s.ctx.listSortBudget;
  const max = budget.take(s.settings.listSortMax);
  // What this listing still has of the budget: less as a provider that says what it holds (`held`) hands names on.
  let kept = max;
  const keep = (held: number | undefined): void => {
    const now = held === undefined ? kept : Math.max(0, Math.min(kept, held));
    budget.give(kept - now);
    kept = now;
  };
  const giveBack = (): void => keep(0);
  try {
    // A provider that can sort before it looks entries up (the local disk) streams a sorted listing as it is read.
    const slices = await open(max > 0 ? { sortedUpTo: max } : undefined);
    const moved = (): void => keep(slices.held);
    const gathered: T[] = [];
    // Storage that answers at once hands over every slice in one go: see turns.ts.
    const turns = new Turns();
    // Past the limit, one more slice is read: it tells a folder that came whole (a provider without listSlices),
    // sorted since it is in hand anyway, from a big one.
    let over = false;
    try {
      for (;;) {
        const got = await slices.next();
        moved();
        if (got.done === true) return givingBack(slicesOf([await sortWithTurns(gathered, (a, b) => compareNames(nameOf(a), nameOf(b)), turns)]), giveBack);
        // Whether the slices come sorted is known once the first one has come. A provider that sorts (`sorted` set)
        // and did not is listing a folder bigger than `max`: it streams, nothing to gather (gathered, a big folder
        // held ~20,000 entries with their stats and lines per listing, for as long as a client did not read it).
        if (slices.sorted !== undefined) return givingBack(withFirst(got.value, slices), giveBack, moved);
        for (const e of got.value) gathered.push(e);
        if (over) return givingBack(withFirst(gathered, slices), giveBack, moved);
        over = gathered.length > max;
        await turns.check();
      }
    } catch (err) {
      await endSlices(s, slices);
      throw err;
    }
  } catch (err) {
    giveBack();
    throw err;
  }
}

/**
 * `slices`, calling `done` once when they end (read to the end, failed, or closed early), and `moved` after each
 * slice they give (for what the listing still holds).
 */
function givingBack<T>(slices: Sliced<T>, done: () => void, moved: () => void = () => {}): Sliced<T> {
  return {
    async next() {
      try {
        const got = await slices.next();
        if (got.done === true) done();
        else moved();
        return got;
      } catch (err) {
        done();
        throw err;
      }
    },
    return() {
      done();
      return slices.return();
    },
    get sorted() {
      return slices.sorted;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** Ends a listing's slices; a provider that fails to is logged, since the client's reply is already decided. */
async function endSlices(s: Session, slices: { return(): Promise<unknown> }): Promise<void> {
  try {
    await slices.return();
  } catch (err) {
    s.log.warn({ err }, 'a listing failed to end');
  }
}

/** `first`, then the rest of `slices`. */
function withFirst<T>(first: T[], slices: Sliced<T>): Sliced<T> {
  let pending: T[] | null = first;
  return {
    next() {
      if (pending === null) return slices.next();
      const value = pending;
      pending = null;
      return Promise.resolve({ done: false, value });
    },
    return() {
      pending = null;
      return slices.return();
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** Lines in groups of `size`, for {@link sendLines}: a recursive listing is sent as it is walked, not held whole. */
async function* inGroups(lines: AsyncIterable<string>, size: number): AsyncGenerator<string[]> {
  let group: string[] = [];
  for await (const line of lines) {
    group.push(line);
    if (group.length >= size) {
      yield group;
      group = [];
    }
  }
  if (group.length > 0) yield group;
}

/** Runs a listing's data command, ending the target's slices however it ends. */
async function sendListing(s: Session, target: { path: string; slices: { return(): Promise<unknown> } }, preliminary: string, groups: AsyncIterable<Iterable<string>>): Promise<void> {
  try {
    await runDataCommand(s, 'listing', target.path, preliminary, (t) => sendLines(t, groups, s.settings.listingBatchSize, s.coding('download')));
  } finally {
    await endSlices(s, target.slices);
  }
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function entryType(st: FileStats): ListEntry['type'] {
  if (st.isSymbolicLink()) return 'link';
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  return 'other';
}

async function toListEntries(s: Session, dir: string, entries: DirEntry[], turns?: Turns): Promise<ListEntry[]> {
  const fs = s.vfs;
  const out: ListEntry[] = new Array(entries.length);
  // Plain entries are converted in one synchronous pass (with `turns`, a whole folder's: a turn now and then); only
  // symlinks wait (for their targets).
  let links: Promise<void>[] | null = null;
  for (let i = 0; i < entries.length; i++) {
    if (turns && (i & 1023) === 1023) await turns.check();
    const { name, stats } = entries[i] as DirEntry;
    const entry: ListEntry = {
      name,
      type: entryType(stats),
      size: stats.size,
      mtime: stats.mtimeMs,
      mode: stats.mode,
      nlink: stats.nlink ?? 1,
    };
    out[i] = entry;
    if (entry.type === 'link' && fs.readlink) {
      const readlink = fs.readlink.bind(fs);
      (links ??= []).push(
        readlink(dir === '/' ? `/${name}` : `${dir}/${name}`).then(
          (target) => {
            if (target !== undefined) entry.target = target;
          },
          () => undefined,
        ),
      );
    }
  }
  if (links) await Promise.all(links);
  return out;
}

/**
 * The `perm` facts of a folder, a file and anything else (a link that cannot be followed, a FIFO, a device) for one
 * set of permissions: on a writable filesystem, then on a read-only one.
 */
type PermFacts = readonly [dir: string, file: string, other: string, readOnlyDir: string, readOnlyFile: string];
const permFactsOf = new WeakMap<Readonly<Permissions>, PermFacts>();

/**
 * The MLSx `perm` fact (RFC 3659 §7.5.5): what this session may do with the entry, from the user's permissions and
 * whether the filesystem is writable. Made once per permissions object, not per entry of a listing.
 */
function permFact(s: Session, st: FileStats): string {
  const p = s.permissions;
  let facts = permFactsOf.get(p);
  if (facts === undefined) {
    const letters = (pairs: ReadonlyArray<readonly [string, boolean]>): string => pairs.map(([letter, on]) => (on ? letter : '')).join('');
    // Folder: c create files (STOR), d RMD, e CWD, f RNFR, l list, m MKD, p delete what is inside (DELE).
    const dir = letters([['c', p.write], ['d', p.rmdir], ['e', true], ['f', p.rename], ['l', true], ['m', p.mkdir], ['p', p.delete]]);
    // File: a APPE, d DELE, f RNFR, r RETR, w STOR over it.
    const file = letters([['a', p.append], ['d', p.delete], ['f', p.rename], ['r', p.read], ['w', p.write]]);
    // Anything else is only ever removed or renamed: transfers take plain files only, and a link listed as a link
    // is one whose target is outside the root or missing (clients such as rclone take `r` as a promise).
    const other = letters([['d', p.delete], ['f', p.rename]]);
    facts = [dir, file, other, 'el', p.read ? 'r' : ''];
    permFactsOf.set(p, facts);
  }
  const ro = s.vfs.readonly === true;
  if (st.isDirectory()) return ro ? facts[3] : facts[0];
  if (!st.isFile()) return ro ? '' : facts[2];
  return ro ? facts[4] : facts[1];
}

/**
 * The MLSx `unique` fact (RFC 3659 §7.5.2): device and inode where the filesystem gives both, so two files of two
 * mounted filesystems with the same inode number differ; the inode alone where it gives no device.
 */
function uniqueFact(st: FileStats): string | undefined {
  const ino = st.ino;
  if (ino === undefined || !(ino > 0)) return undefined;
  const dev = st.dev;
  if (dev === undefined || !(dev > 0)) return ino.toString(16);
  // A folder's entries share one device: its hex is made once, not per entry of a 10,000-entry MLSD.
  if (dev !== lastDev) {
    lastDev = dev;
    lastDevPrefix = `${dev.toString(16)}u`;
  }
  return lastDevPrefix + ino.toString(16);
}
// The device of the last entry and its hex: safe as module state because an entry's fact is made in one synchronous
// call, nothing in between.
let lastDev = -1;
let lastDevPrefix = '';

function toFactEntry(s: Session, name: string, st: FileStats): FactEntry {
  const entry: FactEntry = {
    name,
    type: entryType(st),
    size: st.size,
    mtime: st.mtimeMs,
    mode: st.mode,
    perm: permFact(s, st),
  };
  if (st.birthtimeMs !== undefined && st.birthtimeMs > 0) entry.create = st.birthtimeMs;
  const unique = uniqueFact(st);
  if (unique !== undefined) entry.unique = unique;
  if (st.uid !== undefined) entry.uid = st.uid;
  if (st.gid !== undefined) entry.gid = st.gid;
  return entry;
}

/** LIST: `ls -l` lines over the data connection. */
export async function list(s: Session, arg: string): Promise<void> {
  // A listing is a transfer command: a REST or RANG before it is spent, even when the listing is refused.
  spendRestart(s);
  const options = parseListArgument(arg);
  const target = await resolveTarget(s, options.path, options.itself && s.settings.listOptions);
  const dir = directoryOf(s, target);
  const now = Date.now();
  if (options.recursive && s.settings.listOptions && target.isDirectory) {
    const cut: RecursiveCut = { depth: false, entries: false };
    try {
      return await runDataCommand(s, 'listing', target.path, 'Here comes the directory listing.', async (t) => {
        await sendLines(t, inGroups(recursiveLines(s, target.path, target.slices, now, cut), RECURSIVE_GROUP), s.settings.listingBatchSize, s.coding('download'));
        // A tree listed in part says so (a client mirroring from it would otherwise take it for the whole tree).
        if (cut.entries) return `Transfer complete; listing cut at ${s.settings.listMaxEntries} entries (use LIST per folder for the rest).`;
        if (cut.depth) return `Transfer complete; folders deeper than ${s.settings.listMaxDepth} levels not listed (use LIST per folder for them).`;
        return undefined;
      });
    } finally {
      await endSlices(s, target.slices);
    }
  }
  await sendListing(s, target, 'Here comes the directory listing.', listLines(s, dir, target.slices, now));
}

// The listings' generators are made once, here, not per command: see `batchesOf` in transfer.ts.

/** LIST's lines, a slice at a time. */
async function* listLines(s: Session, dir: string, slices: DirSlices, now: number): AsyncGenerator<string[]> {
  for await (const slice of slices) yield (await toListEntries(s, dir, slice)).map((e) => formatListLine(e, now));
}

/** NLST: names only, one per line. */
export async function nlst(s: Session, arg: string): Promise<void> {
  spendRestart(s);
  // `NLST -l` is how some clients ask for a long listing.
  if (s.settings.listOptions && parseListArgument(arg).long) return list(s, arg);
  // RFC 959 §4.1.3: names relative to the argument as given, so clients can RETR them (mget).
  // A pattern naming a folder (`su*/`) comes back as the folder's own name: the names are prefixed with that.
  const target = await nlstTarget(s, listArgument(arg));
  const raw = target.arg;
  let prefix = '';
  if (target.glob) {
    const slash = raw.lastIndexOf('/');
    prefix = slash >= 0 ? raw.slice(0, slash + 1) : '';
  } else if (target.names !== null) prefix = raw !== '' && raw !== '.' ? (raw.endsWith('/') ? raw : raw + '/') : '';
  await sendListing(s, { path: target.path, slices: target.names ?? slicesOf([]) }, 'Here comes the file list.', nlstLines(target.names, raw, prefix));
}

/**
 * What NLST lists: a folder's names, a pattern's matches, or (`names` null) the file named. Names only, nothing
 * looked up past the path itself: a provider that reads names apart from stats (the local disk) lists a folder
 * without a lookup per entry, and a pattern is matched against names, never against entries looked up first (a
 * pattern followed by a slash looks up its matches alone, to find its folder: see theFolderMatched).
 */
async function nlstTarget(s: Session, given: string): Promise<{ path: string; names: Sliced<string> | null; glob?: boolean; arg: string }> {
  const { arg, path, st } = await listedPath(s, given);
  if (st === null) {
    const dir = dirname(path);
    const names = await matchingNames(s, dir, globMatcher(basename(path)));
    if (names.length === 0) throw new FtpError(550, `${path}: No files found.`);
    return { path: dir, names: slicesOf([names.sort()]), glob: true, arg };
  }
  if (st.isDirectory()) return { path, names: await namedOrder<string>(s, (options) => listNameSlices(s.vfs, path, options), itself), arg };
  return { path, names: null, arg };
}

/**
 * Whether a listing's argument names a folder (`ls name/`, `ls name/.`), not a file nor a pattern's files. (The path
 * it resolves to has lost the slash.)
 */
function namesFolder(arg: string): boolean {
  return arg.length > 1 && /\/\.?$/.test(arg);
}

/** `file/` names a folder, as in any POSIX path (`ls file/`: Not a directory), as RETR, SIZE or DELE refuse it. */
function refuseFileAsFolder(arg: string, path: string, st: FileStats): void {
  if (namesFolder(arg) && !st.isDirectory()) throw new FtpError(550, `${path}: Not a directory.`);
}

/** Names a pattern followed by a slash may look up, at most, to find the folder among them. */
const FOLDER_MATCH_LOOKUPS = 1000;

/**
 * A pattern followed by a slash (`NLST su?/`) names the folder it matches, whose contents are listed, as a shell's
 * `ls su?/` does: the argument with the pattern replaced by that folder's name. Matched against the files beside it,
 * it gave paths that do not exist (`su?/sub`). Several folders matched are refused, named: a listing is of one
 * folder. Names are matched as NLST matches them (no lookup per entry of the folder); only the matches are looked
 * up, at most {@link FOLDER_MATCH_LOOKUPS}.
 */
async function theFolderMatched(s: Session, arg: string, path: string): Promise<string> {
  const dir = dirname(path);
  const names = await matchingNames(s, dir, globMatcher(basename(path)));
  const stem = arg.replace(/(\/+\.?)+$/, '');
  if (names.length > FOLDER_MATCH_LOOKUPS) throw new FtpError(550, `${stem}/: matches ${names.length} names; name the folder.`);
  const folders: string[] = [];
  for (const name of names.sort()) {
    // Looked up past a link (`ls link/` lists the folder it leads to); one leading nowhere, or out of reach, is none.
    if (await s.vfs.stat(joinPath(dir, name)).then((st) => st.isDirectory(), () => false)) folders.push(name);
    if (folders.length > 2) break;
  }
  if (folders.length === 0) throw new FtpError(550, `${stem}/: No folders found.`);
  if (folders.length > 1) throw new FtpError(550, `${stem}/: matches more than one folder (${folders.slice(0, 2).map((n) => `${n}/`).join(', ')}${folders.length > 2 ? ', …' : ''}); name one.`);
  // The argument as the client wrote it, its pattern replaced, so that NLST's names stay relative to it; where its
  // last segment is not the pattern (`su?/x/..`, resolved to `su?`), the folder's path from the root.
  const slash = stem.lastIndexOf('/');
  return stem.slice(slash + 1) === basename(path) ? `${stem.slice(0, slash + 1)}${folders[0]}/` : `${joinPath(dir, folders[0]!)}/`;
}

/** The names of `dir` that `matches` takes, as the folder is read: only they are held. */
async function matchingNames(s: Session, dir: string, matches: (name: string) => boolean): Promise<string[]> {
  const slices: NameSlices = await listNameSlices(s.vfs, dir);
  const kept: string[] = [];
  let seen = 0;
  try {
    for await (const slice of slices) {
      for (const name of slice) {
        // Between batches other sessions get the thread: a provider may give a folder of 100,000 names at once.
        if (++seen % MATCH_BATCH === 0) await new Promise<void>((resolve) => setImmediate(resolve));
        if (matches(name)) kept.push(name);
      }
    }
  } finally {
    await endSlices(s, slices);
  }
  return kept;
}

/** NLST's lines: the names of a folder's (or a pattern's) entries after `prefix`, or `raw` itself for a file (`names` null). */
async function* nlstLines(names: Sliced<string> | null, raw: string, prefix: string): AsyncGenerator<Iterable<string>> {
  if (names === null) {
    yield [formatNlstLine(raw)];
    return;
  }
  for await (const slice of names) yield map(slice, (name) => formatNlstLine(prefix + name));
}

/** MLSD (RFC 3659 §7): machine-readable facts of a directory's entries, a slice at a time as the folder is read. */
export async function mlsd(s: Session, arg: string): Promise<void> {
  spendRestart(s);
  const path = s.resolve(arg);
  const st = await s.vfs.stat(path);
  if (!st.isDirectory()) throw new FtpError(501, `${path}: not a directory.`);
  const slices = await listDirectorySlices(s.vfs, path);
  // The first slice before the 150: a folder that cannot be read is refused rather than failed halfway.
  let first: IteratorResult<DirEntry[]>;
  try {
    first = await slices.next();
  } catch (err) {
    await endSlices(s, slices);
    throw err;
  }
  const target: Target = { path, slices: first.done === true ? slices : withFirst(first.value, slices), isDirectory: true };
  await sendListing(s, target, 'Here comes the directory listing.', mlsdLines(s, path, target.slices));
}

/** MLSD's lines, a slice at a time. */
async function* mlsdLines(s: Session, path: string, slices: DirSlices): AsyncGenerator<Iterable<string>> {
  const facts = s.mlstFacts;
  // Made at the first link: a listing without links pays nothing for it.
  let guard: LoopGuard | undefined;
  for await (const slice of slices) {
    const entries = hasLink(slice) ? await followLinks(s, (guard ??= new LoopGuard(s, path)), slice) : slice;
    yield map(entries, (e) => formatFacts(toFactEntry(s, e.name, e.stats), facts));
  }
}

function hasLink(entries: readonly DirEntry[]): boolean {
  for (const e of entries) if (e.stats.isSymbolicLink()) return true;
  return false;
}

/**
 * MLSx entries of links with the facts of what they lead to (RFC 3659 §7.5.1 lets a server report the object
 * referenced), as RETR, SIZE and MDTM follow them: a link to a file read as `type=OS.unix=symlink` without a size,
 * so rclone found every such download "corrupted" (0 against its size) and lftp's mirror left links out. A link
 * that leads nowhere the session may go (dangling, out of the root) stays a link.
 */
async function followLinks(s: Session, guard: LoopGuard, entries: readonly DirEntry[]): Promise<DirEntry[]> {
  return Promise.all(entries.map(async (e) => (e.stats.isSymbolicLink() ? ((await followedLink(s, guard, e.name)) ?? e) : e)));
}

/**
 * The stats of what the link `name` in the guard's folder leads to, or null when it stays a link: it leads nowhere
 * the session may go, or back to a folder a client descending into it would already have been in (see
 * {@link LoopGuard}), which as a folder mirroring clients would descend into until the path is too long.
 */
async function followedLink(s: Session, guard: LoopGuard, name: string): Promise<DirEntry | null> {
  const followed = await s.vfs.stat(joinPath(guard.dir, name)).catch(() => null);
  if (followed === null || (followed.isDirectory() && (await guard.leadsBack(name, followed)))) return null;
  return { name, stats: followed };
}

/** Links followed, in all, to find where one path really is (Linux's MAXSYMLINKS); past it the path counts as unknown. */
const MAX_LINK_HOPS = 40;

/**
 * Which folders a link in the listed folder `dir` may not be shown as a folder for: the listed folder itself, every
 * folder above it where it really is, and every folder on the path that reached it. Mirroring clients descend into
 * what MLSD calls a folder, and a link back to one of these leads them round for ever. Compared by identity (the
 * `unique` fact: device and inode) of where the link leads, not by path: a folder reached through a link is not
 * where its path says, so `a/l -> ../b/c` with `b/c/m -> ../../b` showed `m` in `a/l` (which is `b/c`) as a folder,
 * then `c` in `a/l/m` (which is `b`), and so on: lftp's mirror went 80 levels down. Worked out at the listing's first
 * link to a folder, once: a handful of calls per level of the path, whatever the folder holds.
 */
class LoopGuard {
  #known: Promise<Guarded> | undefined;

  constructor(
    readonly s: Session,
    readonly dir: string,
  ) {}

  /** Whether the link `name`, which leads to the folder `followed`, leads back to a guarded folder. */
  async leadsBack(name: string, followed: FileStats): Promise<boolean> {
    const known = await (this.#known ??= guarded(this.s.vfs, this.dir));
    const id = uniqueFact(followed);
    if (id !== undefined && known.ids.has(id)) return true;
    if (id !== undefined && known.complete) return false;
    // Storage that gives no identity: where the link really leads, by path. One that cannot be told stays a link.
    const target = await walk(this.s.vfs, known.real, [name]).catch(() => null);
    return target === null || known.paths.has(target);
  }
}

/** The folders a {@link LoopGuard} guards: their real paths, and their identities where the storage gives them. */
interface Guarded {
  /** The listed folder's real path: its links' relative targets start there. */
  real: string;
  paths: Set<string>;
  ids: Set<string>;
  /** Every guarded folder had an identity. */
  complete: boolean;
}

async function guarded(fs: FsProvider, dir: string): Promise<Guarded> {
  // Unresolvable (a link on the way that cannot be read): the path as given, as if it held no link.
  const along = (await realPathsAlong(fs, dir).catch(() => null)) ?? [...ancestorsOf(dir), dir];
  const real = along[along.length - 1] as string;
  const paths = new Set([...along, ...ancestorsOf(real)]);
  const ids = new Set<string>();
  let complete = true;
  await Promise.all(
    [...paths].map(async (p) => {
      const st = await fs.stat(p).catch(() => null);
      const id = st === null ? undefined : uniqueFact(st);
      if (id === undefined) complete = false;
      else ids.add(id);
    }),
  );
  return { real, paths, ids, complete };
}

/** The folders above a normalised path, its parent first, up to `/`. */
function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  for (let p = path; p !== '/'; ) out.push((p = dirname(p)));
  return out;
}

/** Where each folder on the way to `path` really is, links followed: `/`'s, then one per segment, `path`'s last. */
async function realPathsAlong(fs: FsProvider, path: string): Promise<string[]> {
  const out = ['/'];
  const hops = { n: 0 };
  let real = '/';
  for (const name of splitPath(path)) {
    real = await walk(fs, real, [name], hops);
    out.push(real);
  }
  return out;
}

/**
 * The real path reached from the real (link-free) folder `from` through `names`, following links as the kernel
 * does: a relative target from the folder the link really is in, `..` from there too. Without `lstat` and `readlink`
 * the storage shows no links, and the path is taken as it is.
 */
async function walk(fs: FsProvider, from: string, names: string[], hops = { n: 0 }): Promise<string> {
  const { lstat, readlink } = fs;
  let real = from;
  const pending = [...names];
  while (pending.length > 0) {
    const name = pending.shift() as string;
    if (name === '' || name === '.') continue;
    if (name === '..') {
      real = dirname(real);
      continue;
    }
    const next = joinPath(real, name);
    if (!lstat || !readlink || !(await lstat.call(fs, next)).isSymbolicLink()) {
      real = next;
      continue;
    }
    if (++hops.n > MAX_LINK_HOPS) throw new VfsError('ELOOP', undefined, { syscall: 'stat', path: next });
    const target = await readlink.call(fs, next);
    if (target.startsWith('/')) real = '/';
    pending.unshift(...target.split('/'));
  }
  return real;
}

/** MLST (RFC 3659 §7): the facts of one entry, on the control connection (a link's: see {@link followLinks}). */
export async function mlst(s: Session, arg: string): Promise<void> {
  const path = s.resolve(arg.trim() === '' ? '.' : arg);
  const own = await statOf(s, path);
  const st = own.isSymbolicLink() ? ((await followedLink(s, new LoopGuard(s, dirname(path)), basename(path)))?.stats ?? own) : own;
  refuseFileAsFolder(arg.trim(), path, st);
  const entry = toFactEntry(s, path, st);
  // The root is never removed nor renamed (RMD / and RNFR / are refused): `perm` does not offer it (RFC 3659 §7.5.5).
  if (path === '/' && entry.perm !== undefined) entry.perm = entry.perm.replace(/[df]/g, '');
  const line = formatFacts(entry, s.mlstFacts);
  return s.reply(250, [`Listing ${path}`, ` ${line}`, 'End']);
}

/** Lines of a STAT listing formatted and sent at a time. */
const STAT_PIECE = 1000;

/** STAT (RFC 959 §4.1.3): server status, transfer progress, or a listing over the control connection. */
export async function stat(s: Session, arg: string): Promise<void> {
  if (arg.trim() === '' || s.transfer) {
    const lines = [
      'FTP server status:',
      ` Connected from ${s.remoteAddress}`,
      s.authenticated ? ` Logged in as ${s.user}` : ' Not logged in',
      ` TYPE: ${s.transferType === 'A' ? 'ASCII' : 'BINARY'}, STRUcture: File, MODE: ${s.mode === 'Z' ? 'Deflate' : 'Stream'}`,
    ];
    const t = s.transfer;
    if (t) {
      t.countKernelProgress();
      lines.push(` ${t.direction} of ${t.path} in progress: ${t.bytes} bytes in ${((performance.now() - t.startedAt) / 1000).toFixed(1)} s`);
    } else lines.push(' No data connection');
    lines.push('End of status');
    return s.reply(211, lines);
  }
  const target = await resolveTarget(s, listArgument(arg));
  try {
    await sendStatus(s, target.path, listLines(s, directoryOf(s, target), target.slices, Date.now()));
  } finally {
    await endSlices(s, target.slices);
  }
}

/**
 * STAT's listing, sent as LIST's lines come (sorted as LIST sorts them, see `listSortMax`): a piece of the reply
 * every {@link STAT_PIECE} lines, a turn of the event loop between pieces, waiting while the client does not read.
 * Held whole, a 100,000-entry folder cost each STAT of it ~200 MB until its client had read the reply, so a few
 * sessions could exhaust the server's memory. A read that fails before anything is sent is the command's error
 * reply; one that fails later ends the reply, which has begun as 213, saying it was cut short.
 */
async function sendStatus(s: Session, path: string, groups: AsyncGenerator<string[]>): Promise<void> {
  // ABOR stops it (a folder of millions of lines takes a while); the ABOR's own reply follows this one's end.
  const work = s.stoppableWork();
  try {
    const turns = new Turns();
    let pending: string[] = [`Status of ${path}:`];
    let started = false;
    let end = 'End of status';
    try {
      for await (const group of groups) {
        for (const line of group) pending.push(line);
        if (pending.length < STAT_PIECE) continue;
        await s.conn.sendPiece(213, pending, started ? 'middle' : 'first');
        started = true;
        pending = [];
        // A client gone: nothing more to read for it.
        if (s.isClosed) return;
        if (work.signal.aborted) {
          end = 'End of status (cut short: aborted)';
          break;
        }
        await turns.check();
      }
    } catch (err) {
      if (!started) throw err;
      s.log.warn({ err, path }, 'STAT: the listing failed after its reply began');
      end = `End of status (cut short: ${toReply(err, path).text})`;
    }
    if (!started) return await s.reply(213, [...pending, end]);
    return await s.conn.sendPiece(213, [...pending, end], 'last');
  } finally {
    work.done();
  }
}

/** The directory the target's entries live in (for reading their symlinks). */
function directoryOf(s: Session, target: Target): string {
  return target.isDirectory || target.glob ? target.path : s.resolve(`${target.path}/..`);
}

function* map<T, U>(items: Iterable<T>, fn: (item: T) => U): Iterable<U> {
  for (const item of items) yield fn(item);
}

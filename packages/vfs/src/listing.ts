import { toVfsError } from './errors.js';
import { fromGenerator, inHand, mapErrors, namesOf, type Sliced } from './internal/sliced.js';
import { joinPath } from './paths.js';
import type { DirEntry, DirSlices, FileStats, FsProvider, ListSlicesOptions, NameSlices } from './spec.js';

/** How many `lstat` calls {@link listDirectory}'s fallback keeps in flight. */
export const LIST_CONCURRENCY = 64;

/** The name of a `readdir` result item: a string, or a Dirent-like object with a `name`. */
export function direntName(entry: unknown): string | undefined {
  if (typeof entry === 'string') return entry;
  if (typeof entry === 'object' && entry !== null) {
    const name = (entry as { name?: unknown }).name;
    if (typeof name === 'string') return name;
    if (Buffer.isBuffer(name)) return name.toString('utf8');
  }
  if (Buffer.isBuffer(entry)) return entry.toString('utf8');
  return undefined;
}

/**
 * Stats of a path without following a final symlink: `lstat` when the provider has it, else `stat`.
 * Errors are {@link VfsError}s naming `path`.
 */
export async function statEntry(p: FsProvider, path: string): Promise<FileStats> {
  try {
    return typeof p.lstat === 'function' ? await p.lstat(path) : await p.stat(path);
  } catch (err) {
    throw toVfsError(err, path);
  }
}

/**
 * The entries of a directory with their stats. Uses the provider's `list` when present; otherwise `readdir` (names or
 * Dirents) and one {@link statEntry} per entry, at most {@link LIST_CONCURRENCY} at a time, skipping entries that
 * vanish between the two. Symlinks are reported as links (lstat).
 */
export async function listDirectory(p: FsProvider, path: string): Promise<DirEntry[]> {
  try {
    if (typeof p.list === 'function') return await p.list(path);
    const raw = await p.readdir(path);
    const names: string[] = [];
    for (const item of raw) {
      const name = direntName(item);
      if (name !== undefined && name !== '.' && name !== '..') names.push(name);
    }
    const results: (DirEntry | undefined)[] = new Array(names.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < names.length) {
        const i = next++;
        const name = names[i] as string;
        try {
          results[i] = { name, stats: await statEntry(p, joinPath(path, name)) };
        } catch (err) {
          if (toVfsError(err).code !== 'ENOENT') throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(LIST_CONCURRENCY, names.length) }, worker));
    return results.filter((e): e is DirEntry => e !== undefined);
  } catch (err) {
    throw toVfsError(err, path);
  }
}

/**
 * An async generator of slices as {@link DirSlices} (whose `return()` takes no argument). One that throws is
 * finished: later calls give done. A generator queues a `return()` behind a `next()` in flight; here `return()`
 * resolves at once instead (the generator is ended when that slice comes in), so that a listing stopped while a
 * page is read from a slow or hung store does not hold up the session that stopped it.
 */
export function slicesFromGenerator(pages: AsyncGenerator<DirEntry[], undefined>): DirSlices {
  return fromGenerator(pages);
}

/**
 * Slices already in hand: as {@link DirSlices} for entries, as {@link NameSlices} for names (`slicesOf<string>`), or
 * as the {@link Sliced} listing of any other kind.
 */
export function slicesOf<T = DirEntry>(slices: readonly T[][]): Sliced<T> {
  return inHand(slices);
}

/** A listing a slice at a time, whatever its slices hold: what {@link DirSlices} and {@link NameSlices} are. */
export type { Sliced } from './internal/sliced.js';

/** Every entry of `slices`, in order (a listing held whole). A failed slice rejects; the listing has then ended. */
export async function collectSlices(slices: DirSlices): Promise<DirEntry[]> {
  const out: DirEntry[] = [];
  for (;;) {
    const got = await slices.next();
    if (got.done === true) return out;
    for (const entry of got.value) out.push(entry);
  }
}

/** `slices` with the errors of its `next()` as {@link VfsError}s naming `path`. */
export function mapSliceErrors(slices: DirSlices, path: string): DirSlices {
  return mapErrors(slices, path);
}

/**
 * The entries of a directory a slice at a time: the provider's `listSlices` when present, else everything
 * {@link listDirectory} gives as one slice. Resolves once the directory is open; errors are {@link VfsError}s.
 * The caller iterates to the end or calls `return()`.
 */
export async function listDirectorySlices(p: FsProvider, path: string, options?: ListSlicesOptions): Promise<DirSlices> {
  try {
    if (typeof p.listSlices === 'function') return mapSliceErrors(await p.listSlices(path, options), path);
    return slicesOf([await listDirectory(p, path)]);
  } catch (err) {
    throw toVfsError(err, path);
  }
}

/**
 * The names of a directory's entries a slice at a time, without their stats (NLST, a wildcard matched against
 * names): the provider's `listNameSlices` when present; else the names of {@link listDirectorySlices} (so a
 * provider with `listSlices` or `list` keeps its own listing), or of `readdir` as one slice for a provider with
 * neither. Resolves once the directory is open; errors are {@link VfsError}s. The caller iterates to the end or
 * calls `return()`.
 */
export async function listNameSlices(p: FsProvider, path: string, options?: ListSlicesOptions): Promise<NameSlices> {
  try {
    if (typeof p.listNameSlices === 'function') return mapErrors(await p.listNameSlices(path, options), path);
    if (typeof p.listSlices === 'function' || typeof p.list === 'function') return namesOf(await listDirectorySlices(p, path, options));
    const names: string[] = [];
    for (const item of await p.readdir(path)) {
      const name = direntName(item);
      if (name !== undefined && name !== '.' && name !== '..') names.push(name);
    }
    return inHand([names]);
  } catch (err) {
    throw toVfsError(err, path);
  }
}


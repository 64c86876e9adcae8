import { describeCapabilities } from '../capabilities.js';
import { latin1ForEscapes } from '@ftp/protocol';
import { fsError, toVfsError } from '../errors.js';
import { hashFile } from '../hash.js';
import { fromGenerator, type Sliced } from '../internal/sliced.js';
import { collectSlices, listDirectorySlices, listNameSlices } from '../listing.js';
import { basename, dirname, joinPath, normalizePath, relativeTo } from '../paths.js';
import { SPEC_VERSION } from '../spec.js';
import type { DirEntry, DirSlices, FileStats, FsProvider, HashAlgorithm, HashOptions, ListSlicesOptions, NameSlices, ReadStreamOptions, WriteStreamOptions } from '../spec.js';
import { VfsStats } from '../stats.js';
import { openReadStream, openWriteStream } from '../streams.js';

/** Where a path of the tree lives: which provider, and the path inside it. */
interface Route {
  fs: FsProvider;
  path: string;
  /** The mount point it falls under (`/` for the root provider). */
  at: string;
  /** The device its stats get when their provider reports none (see {@link SYNTHETIC_DEV}). */
  dev: number;
  /** Its provider keeps byte escapes (`rawNames`); else names reach it as Latin-1 characters ({@link inFormOf}). */
  raw: boolean;
}

/** `name` as a provider keeps it: byte escapes as they are where it has `rawNames`, else as Latin-1 characters. */
function inFormOf(raw: boolean, name: string): string {
  return raw ? name : latin1ForEscapes(name);
}

/**
 * The first of the device numbers given to the stats of providers that report none (`dev` 0 or absent: memory,
 * SQLite, S3, SQL, Redis…), so that `dev` + `ino`, which the server makes the MLSx `unique` fact of (RFC 3659
 * §7.5.2) and COMB's same-file test, tell apart the files of two such mounts, whose inode numbers overlap (each
 * starts its own at 1). A provider gets 2^32 + its index in the table: the root provider 0, then the mount points in
 * the order given (a provider mounted twice keeps its first index: its files are the same files). Linux device
 * numbers fit in 32 bits (a 12-bit major and a 20-bit minor, as glibc encodes them), so these never equal a real
 * one, whatever disks are mounted; and they are integers exact in a double, and the same for the life of the tree
 * and for every tree built from the same table (a user's sessions see the same values). Providers that report
 * their device (the local disk) keep it.
 */
const SYNTHETIC_DEV = 2 ** 32;

/** Whether `dev` names a device (a real one, or one already given by a mounts wrapper inside this one). */
function usableDev(dev: unknown): boolean {
  return (typeof dev === 'number' && dev !== 0 && dev === dev) || (typeof dev === 'bigint' && dev !== 0n);
}

/**
 * `st` with `dev` as its device when it reports none. Stats are the caller's (a fresh object per call, as
 * `fs.stat` gives), so the field is set in place: one store, no copy, on the path of every listed entry. An object
 * that refuses the store (frozen, or a `dev` getter) is seen through a proxy instead.
 */
function withDev<T extends FileStats>(st: T, dev: number): T {
  if (usableDev((st as { dev?: unknown }).dev)) return st;
  try {
    (st as { dev?: number }).dev = dev;
    if ((st as { dev?: number }).dev === dev) return st;
  } catch {
    // Read-only: seen through a proxy below.
  }
  // The proxy's target inherits from `st` (so `in` and `instanceof` hold) but is not `st`, whose frozen `dev` a
  // proxy of it could not report otherwise.
  return new Proxy(Object.create(st) as T, {
    get(_target, key) {
      if (key === 'dev') return dev;
      const value: unknown = Reflect.get(st, key, st);
      // Methods run on the object itself (a class's private fields are not the proxy's).
      return typeof value === 'function' ? value.bind(st) : value;
    },
  });
}

/**
 * `slices` with each entry's stats given `dev` when they report no device (see {@link withDev}). A class, not an
 * object literal: V8 makes a literal with a getter (`sorted`) a dictionary-mode object, and with one (even a bare
 * pass-through) the GC traces showed every listing's slices surviving the scavenges until a full collection
 * (presumably its accessor pair, allocated old, holding the getter's closure): a 10,000-entry memory listing through
 * a mount took about twice the CPU (3.2 ms against 1.6).
 */
class SlicesWithDev implements DirSlices {
  readonly #slices: DirSlices;
  readonly #dev: number;

  constructor(slices: DirSlices, dev: number) {
    this.#slices = slices;
    this.#dev = dev;
  }

  next(): Promise<IteratorResult<DirEntry[]>> {
    return this.#slices.next().then((got) => {
      if (got.done === true) return got;
      for (const entry of got.value) {
        const st = withDev(entry.stats, this.#dev);
        if (st !== entry.stats) entry.stats = st;
      }
      return got;
    });
  }

  return(): Promise<IteratorResult<DirEntry[]>> {
    return this.#slices.return();
  }

  /** The inner listing's: a provider may know only once its first slice has come. */
  get sorted(): boolean | undefined {
    return this.#slices.sorted;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** What the root provider may say of a folder on the way to a mount point that is listed with the mount points alone. */
const VIRTUAL_OWN_MISSING: ReadonlySet<string> = new Set(['ENOENT', 'EACCES', 'EPERM', 'ENOTDIR']);

/**
 * Several providers under one tree (virtual folders): `mounts(disk, { '/archive': s3, '/reports': sql })` serves
 * `/archive/...` from `s3` and everything else from `disk`. A mount point shows in its parent's listing even when
 * the parent provider has no such folder; folders on the way to a deeper mount point (`/a` of `/a/b`) are
 * virtual, read-only directories.
 *
 * What cannot cross providers fails as a real filesystem would: a rename from one to another with EXDEV, COMB of
 * parts on different providers with EXDEV. Removing, renaming or replacing a mount point (or a virtual folder, or a
 * folder on the way to a mount point) fails with EPERM: it is permanent, where EBUSY would be the server's "450 try
 * again later" and have clients retry it for ever.
 * An optional capability is there when any provider has it; a provider without it falls back where `@ftp/vfs`
 * can (streams through file handles, `list` as readdir + stat, `hash` by streaming) and answers ENOTSUP otherwise.
 * Stats from a provider that reports no device (`dev` 0 or absent) get one of their own per provider (see
 * {@link SYNTHETIC_DEV}), so that two memory or SQL mounts do not show one `unique` for two files.
 * The wrapper never closes the providers (they may be shared).
 */
export function mounts(root: FsProvider, table: Readonly<Record<string, FsProvider>>): FsProvider {
  const devs = new Map<FsProvider, number>([[root, SYNTHETIC_DEV]]);
  const points = Object.entries(table).map(([path, fs]) => {
    const at = normalizePath(path);
    if (at === '/') throw new TypeError('mounts: "/" is the root provider, not a mount point');
    if (!devs.has(fs)) devs.set(fs, SYNTHETIC_DEV + devs.size);
    return { at, fs, dev: devs.get(fs) as number, raw: describeCapabilities(fs).rawNames };
  });
  if (new Set(points.map((m) => m.at)).size !== points.length) throw new TypeError('mounts: a mount point is given twice');
  // Longest first, so /a/b wins over /a.
  points.sort((a, b) => b.at.length - a.at.length);
  const all = [root, ...points.map((m) => m.fs)];
  const caps = all.map(describeCapabilities);

  /** Folders that exist only to lead to a mount point (every proper ancestor of one, but `/`). */
  const virtual = new Set<string>();
  for (const { at } of points) for (let d = dirname(at); d !== '/'; d = dirname(d)) virtual.add(d);
  const isMountPoint = (n: string): boolean => points.some((m) => m.at === n);

  const rootRaw = describeCapabilities(root).rawNames;

  /** Where `v` lives, in the form of names its provider keeps. */
  function route(v: string): Route {
    const n = normalizePath(v);
    for (const m of points) {
      const inner = relativeTo(m.at, n);
      if (inner !== undefined) return { fs: m.fs, path: inFormOf(m.raw, inner), at: m.at, dev: m.dev, raw: m.raw };
    }
    return { fs: root, path: inFormOf(rootRaw, n), at: '/', dev: SYNTHETIC_DEV, raw: rootRaw };
  }

  /** Mount points and virtual folders directly inside `dir` (the names its listing must show). */
  function childrenOf(dir: string): string[] {
    const names = new Set<string>();
    for (const p of [...points.map((m) => m.at), ...virtual]) if (dirname(p) === dir) names.add(basename(p));
    return [...names];
  }

  const virtualStats = (): FileStats => new VfsStats({ kind: 'directory', size: 0, mode: 0o555, mtimeMs: 0 });

  /** Stats of a mount point or virtual folder; null for an ordinary path. */
  async function specialStats(n: string): Promise<FileStats | null> {
    const m = points.find((p) => p.at === n);
    if (m) return withDev(await m.fs.stat('/'), m.dev);
    if (!virtual.has(n)) return null;
    try {
      const st = await root.stat(n);
      if (st.isDirectory()) return withDev(st, SYNTHETIC_DEV);
    } catch {
      // Not in the root provider: a purely virtual folder.
    }
    return virtualStats();
  }

  /** Refuses to remove, rename or replace a mount point or a folder leading to one: EPERM, for good. */
  const guard = (syscall: string, v: string): void => {
    const n = normalizePath(v);
    if (isMountPoint(n) || virtual.has(n)) throw fsError('EPERM', syscall, v);
  };
  const run = async <T>(v: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw toVfsError(err, v);
    }
  };
  const unsupported = (syscall: string, v: string): never => {
    throw fsError('ENOTSUP', syscall, v);
  };

  /**
   * A folder's entries a slice at a time, as its provider reads them, with the mount points and virtual folders
   * inside it (which hide same-named entries of the provider) in a last slice of their own.
   */
  function slices(v: string, options?: ListSlicesOptions): Promise<DirSlices> {
    return withMountPoints(
      v,
      options,
      async (r, o) => new SlicesWithDev(await listDirectorySlices(r.fs, r.path, o), r.dev),
      (e) => e.name,
      (n, extra) => Promise.all(extra.map(async (name) => ({ name, stats: (await specialStats(joinPath(n, name))) ?? virtualStats() }))),
    );
  }

  /** {@link slices} with names only (see `listNameSlices`): mount points and virtual folders come last here too. */
  function nameSlices(v: string, options?: ListSlicesOptions): Promise<NameSlices> {
    return withMountPoints(v, options, (r, o) => listNameSlices(r.fs, r.path, o), (name) => name, async (_n, extra) => extra);
  }

  /**
   * The listing `open` makes of folder `v` on its provider, and after it the mount points and virtual folders inside
   * it (`special` makes their items): those hide same-named items of the provider. Sorted only when nothing is added.
   */
  async function withMountPoints<T>(
    v: string,
    options: ListSlicesOptions | undefined,
    open: (r: Route, options: ListSlicesOptions | undefined) => Promise<Sliced<T>>,
    nameOf: (item: T) => string,
    special: (n: string, extra: string[]) => Promise<T[]>,
  ): Promise<Sliced<T>> {
    const n = normalizePath(v);
    const r = route(n);
    const extra = childrenOf(n);
    let own: Sliced<T> | null = null;
    try {
      own = await open(r, extra.length === 0 ? options : undefined);
    } catch (err) {
      // A purely virtual folder has nothing of its own; one the root provider has but will not list (its user may not
      // read it, or it is a file there) still lists the mount points it leads to, as CWD enters it (checkEnter).
      if (!(virtual.has(n) && VIRTUAL_OWN_MISSING.has(toVfsError(err).code))) throw err;
    }
    if (extra.length === 0 && own) return own;
    return fromGenerator(thenSpecial(own, extra, nameOf, () => special(n, extra)));
  }

  async function* thenSpecial<T>(own: Sliced<T> | null, extra: string[], nameOf: (item: T) => string, special: () => Promise<T[]>): AsyncGenerator<T[], undefined> {
    const shadowed = new Set(extra);
    if (own) {
      try {
        for (;;) {
          const got = await own.next();
          if (got.done === true) break;
          const kept = got.value.filter((item) => !shadowed.has(nameOf(item)));
          if (kept.length > 0) yield kept;
        }
      } finally {
        await own.return();
      }
    }
    yield await special();
    return undefined;
  }

  /** Routes two paths that must live on one provider (rename, COMB). */
  function sameProvider(syscall: string, a: string, b: string): [Route, Route] {
    const ra = route(a);
    const rb = route(b);
    if (ra.fs !== rb.fs || ra.at !== rb.at) throw fsError('EXDEV', syscall, a);
    return [ra, rb];
  }

  const w: { -readonly [K in keyof FsProvider]: FsProvider[K] } = {
    specVersion: SPEC_VERSION,
    stat: (v) =>
      run(v, async () => {
        const special = await specialStats(normalizePath(v));
        if (special) return special;
        const r = route(v);
        return withDev(await r.fs.stat(r.path), r.dev);
      }),
    lstat: (v) =>
      run(v, async () => {
        const special = await specialStats(normalizePath(v));
        if (special) return special;
        const r = route(v);
        return withDev(await (typeof r.fs.lstat === 'function' ? r.fs.lstat(r.path) : r.fs.stat(r.path)), r.dev);
      }),
    readdir: (v) => run(v, async () => (await collectSlices(await slices(v))).map((e) => e.name)),
    list: (v) => run(v, async () => collectSlices(await slices(v))),
    listSlices: (v, options) => run(v, () => slices(v, options)),
    listNameSlices: (v, options) => run(v, () => nameSlices(v, options)),
    mkdir: (v, options) =>
      run(v, async () => {
        const n = normalizePath(v);
        if (isMountPoint(n) || virtual.has(n)) {
          if (options?.recursive) return undefined;
          throw fsError('EEXIST', 'mkdir', v);
        }
        const r = route(n);
        return r.fs.mkdir(r.path, options);
      }),
    rmdir: (v) =>
      run(v, async () => {
        // Also refuses a real folder that holds a mount point: it is an ancestor of one.
        guard('rmdir', v);
        const r = route(v);
        return r.fs.rmdir(r.path);
      }),
    unlink: (v) =>
      run(v, async () => {
        guard('unlink', v);
        const r = route(v);
        return r.fs.unlink(r.path);
      }),
    rename: (from, to) =>
      run(from, async () => {
        guard('rename', from);
        guard('rename', to);
        const [a, b] = sameProvider('rename', from, to);
        return a.fs.rename(a.path, b.path);
      }),
    open: (v, flags, mode) =>
      run(v, async () => {
        const r = route(v);
        return r.fs.open(r.path, flags, mode);
      }),
    createReadStream: (v: string, options?: ReadStreamOptions) => run(v, async () => openReadStream(route(v).fs, route(v).path, options)),
    createWriteStream: (v: string, options?: WriteStreamOptions) =>
      run(v, async () => {
        const n = normalizePath(v);
        // Mount points and virtual folders are directories.
        if (isMountPoint(n) || virtual.has(n)) throw fsError('EISDIR', 'open', v);
        return openWriteStream(route(v).fs, route(v).path, options);
      }),
  };
  w.readonly = caps.every((c) => c.readonly);
  w.atomicUploads = caps.every((c) => c.atomicUploads);
  w.uploadsVisibleWhenComplete = caps.every((c) => c.uploadsVisibleWhenComplete);
  // Each path is routed in the form its provider keeps (see route): the tree as a whole takes byte escapes.
  w.rawNames = true;
  w.supportsSymlinks = caps.every((c) => c.symlink);
  if (w.supportsSymlinks) {
    w.readlink = (v) =>
      run(v, async () => {
        const r = route(v);
        const target = await r.fs.readlink!(r.path);
        // An absolute target is a path of the link's provider: in this tree, it lies under that provider's mount point.
        if (!target.startsWith('/') || r.at === '/') return target;
        // Normalised first: `/a/../..` must not climb above the mount point once prefixed.
        const inner = normalizePath(target);
        return inner === '/' ? r.at : r.at + inner;
      });
    w.symlink = (target, v) =>
      run(v, async () => {
        guard('symlink', v);
        // An absolute target names a path of this tree: it must stay on the link's own provider.
        const r = route(v);
        if (target.startsWith('/')) {
          const t = route(target);
          if (t.fs !== r.fs || t.at !== r.at) throw fsError('EXDEV', 'symlink', v);
          return r.fs.symlink!(t.path, r.path);
        }
        return r.fs.symlink!(inFormOf(r.raw, target), r.path);
      });
  }
  if (caps.some((c) => c.hash)) {
    w.hash = (v: string, algorithm: HashAlgorithm, start?: number, end?: number, options?: HashOptions) =>
      run(v, () => hashFile(route(v).fs, route(v).path, algorithm, start, end, options));
  }
  if (caps.some((c) => c.setTimes)) {
    w.setTimes = (v, mtime) => run(v, async () => (route(v).fs.setTimes ?? unsupported('utime', v)).call(route(v).fs, route(v).path, mtime));
  }
  if (caps.some((c) => c.setCreationTime)) {
    w.setCreationTime = (v, t) => run(v, async () => (route(v).fs.setCreationTime ?? unsupported('utime', v)).call(route(v).fs, route(v).path, t));
  }
  if (caps.some((c) => c.chmod)) {
    w.chmod = (v, mode) => run(v, async () => (route(v).fs.chmod ?? unsupported('chmod', v)).call(route(v).fs, route(v).path, mode));
  }
  if (caps.some((c) => c.availableSpace)) {
    w.availableSpace = (v) => run(v, async () => (route(v).fs.availableSpace ?? unsupported('statfs', v)).call(route(v).fs, route(v).path));
  }
  if (all.some((f) => typeof f.uploadBusy === 'function')) {
    w.uploadBusy = (v, options, hold, known) => run(v, async () => route(v).fs.uploadBusy?.call(route(v).fs, route(v).path, options, hold, known) ?? false);
  }
  if (all.some((f) => typeof f.checkUpload === 'function')) {
    w.checkUpload = (v, options, known) => run(v, async () => route(v).fs.checkUpload?.call(route(v).fs, route(v).path, options, known));
  }
  if (all.some((f) => typeof f.checkEnter === 'function')) {
    w.checkEnter = (v) =>
      run(v, async () => {
        // A folder on the way to a mount point is entered whatever the root provider holds there (nothing, or a folder
        // its user may not search): the mount points below it stay reachable, and are listed in it.
        if (virtual.has(normalizePath(v))) return;
        return route(v).fs.checkEnter?.call(route(v).fs, route(v).path);
      });
  }
  if (all.some((f) => typeof f.releaseUploadHold === 'function')) {
    w.releaseUploadHold = (v, owner) => run(v, async () => route(v).fs.releaseUploadHold?.call(route(v).fs, route(v).path, owner));
  }
  if (caps.some((c) => c.allocate)) {
    w.allocate = (v, size) => run(v, async () => (route(v).fs.allocate ?? unsupported('allocate', v)).call(route(v).fs, route(v).path, size));
  }
  if (caps.some((c) => c.concat)) {
    w.concat = (target, parts) =>
      run(target, async () => {
        const t = route(target);
        const inner = parts.map((part) => sameProvider('concat', target, part)[1].path);
        return (t.fs.concat ?? unsupported('concat', target)).call(t.fs, t.path, inner);
      });
  }
  return w;
}

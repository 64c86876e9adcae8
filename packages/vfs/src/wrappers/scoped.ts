import { describeCapabilities } from '../capabilities.js';
import { fsError, toVfsError } from '../errors.js';
import { mapErrors } from '../internal/sliced.js';
import { mapStreamErrors } from '../internal/stream-errors.js';
import { mapSliceErrors } from '../listing.js';
import { dirname, normalizePath, relativeTo, resolvePath, splitPath } from '../paths.js';
import { SPEC_VERSION } from '../spec.js';
import type { FsProvider, HashAlgorithm, HashOptions, ReadStreamOptions, WriteStreamOptions } from '../spec.js';

const MAX_SYMLINK_HOPS = 40;

/**
 * A view of the sub-tree `root` of a provider, as its own root (a chroot). Every path is normalised
 * ({@link resolvePath}: `..` stops at the view's `/`) and prefixed with `root`.
 *
 * When the inner provider has working symlinks, the view resolves them itself (one `lstat` per path component, and
 * `readlink` per link) and hands the inner provider link-free paths, so no link can lead out of the sub-tree: a link
 * whose target lies outside `root` fails with EACCES. Link targets stay consistent: an absolute target given to
 * `symlink` is a path of the view (stored as the inner path), and `readlink` returns absolute targets inside the
 * sub-tree as paths of the view. A relative target that would climb out of the sub-tree is refused with EACCES.
 *
 * Optional capabilities are present only when the inner provider has them. The view never closes the inner provider
 * (it is usually shared by many views).
 */
export function scoped(p: FsProvider, root: string): FsProvider {
  const base = normalizePath(root);
  const toInner = (v: string): string => {
    const n = normalizePath(v);
    if (base === '/') return n;
    return n === '/' ? base : base + n;
  };
  const caps = describeCapabilities(p);
  const lstat = p.lstat;
  const readlink = p.readlink;
  const resolvesLinks = caps.symlink && typeof lstat === 'function' && typeof readlink === 'function';

  /** The link-free path of the view that `v` leads to (the last component's link followed when `followLast`). */
  async function resolve(v: string, followLast: boolean): Promise<string> {
    const n = normalizePath(v);
    if (!resolvesLinks) return n;
    let queue = splitPath(n);
    let i = 0;
    let cur = '/';
    let hops = 0;
    while (i < queue.length) {
      const next = cur === '/' ? `/${queue[i]}` : `${cur}/${queue[i]}`;
      const last = i === queue.length - 1;
      if (last && !followLast) return next;
      let isLink: boolean;
      try {
        isLink = (await lstat.call(p, toInner(next))).isSymbolicLink();
      } catch (err) {
        const code = toVfsError(err).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
        // The rest does not exist: the operation itself reports it (or creates it).
        return resolvePath(next, queue.slice(i + 1).join('/'));
      }
      if (!isLink) {
        cur = next;
        i++;
        continue;
      }
      if (++hops > MAX_SYMLINK_HOPS) throw fsError('ELOOP', 'resolve', v);
      const target = await readlink.call(p, toInner(next));
      const inner = resolvePath(toInner(cur), target);
      const inView = relativeTo(base, inner);
      if (inView === undefined) throw fsError('EACCES', 'resolve', v);
      queue = [...splitPath(inView), ...queue.slice(i + 1)];
      i = 0;
      cur = '/';
    }
    return cur;
  }

  /**
   * Whether the entry at inner path `from` is a link that, moved to inner path `to`, would lead out of the view. Links
   * made through the view never do (their climbing targets are stored absolute), but one placed by an administrator
   * or an older version with a `..` target may; refused, it cannot be swapped in for a folder while another
   * command of the user's is between its confinement check and its operation (a race open wherever those are not
   * one step: async metadata, several processes, network storage).
   */
  async function linkLeadsOut(from: string, to: string): Promise<boolean> {
    // A view of the whole tree: the inner provider keeps its own root.
    if (!resolvesLinks || base === '/') return false;
    let target: string;
    try {
      if (!(await lstat.call(p, from)).isSymbolicLink()) return false;
      target = await readlink.call(p, from);
    } catch {
      return false; // the rename itself reports a missing source
    }
    return !(await leadsInside(resolvePath(dirname(to), target)));
  }

  /** Whether inner path `inner` lies in the view once every link on the way is followed (a link to a link out too). */
  async function leadsInside(inner: string): Promise<boolean> {
    const view = relativeTo(base, inner);
    if (view === undefined) return false;
    try {
      await resolve(view, true);
      return true;
    } catch (err) {
      const code = toVfsError(err).code;
      if (code === 'EACCES' || code === 'ELOOP') return false;
      throw err;
    }
  }

  const run = async <T>(v: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw toVfsError(err, v);
    }
  };
  const at = async (v: string, followLast: boolean): Promise<string> => toInner(await resolve(v, followLast));
  /**
   * The view's own root may not be removed or renamed (nor replaced by a rename): EPERM, for good, as every provider
   * answers for its root. Passed through, it would remove or move `root` itself in the inner provider (a user's home).
   */
  const notRoot = (v: string, syscall: string): void => {
    if (normalizePath(v) === '/') throw fsError('EPERM', syscall, v);
  };

  const w: { -readonly [K in keyof FsProvider]: FsProvider[K] } = {
    specVersion: SPEC_VERSION,
    stat: (v) => run(v, async () => p.stat(await at(v, true))),
    readdir: (v, ...rest: unknown[]) => run(v, async () => (p.readdir as (path: string, ...rest: unknown[]) => Promise<unknown[]>).call(p, await at(v, true), ...rest)),
    mkdir: (v, options) => run(v, async () => p.mkdir(await at(v, false), options)),
    rmdir: (v) =>
      run(v, async () => {
        notRoot(v, 'rmdir');
        return p.rmdir(await at(v, false));
      }),
    unlink: (v) => run(v, async () => p.unlink(await at(v, false))),
    rename: (from, to) =>
      run(from, async () => {
        notRoot(from, 'rename');
        notRoot(to, 'rename');
        const a = await at(from, false);
        const b = await run(to, () => at(to, false));
        if (await linkLeadsOut(a, b)) throw fsError('EACCES', 'rename', from);
        return p.rename(a, b);
      }),
    open: (v, flags, mode) => run(v, async () => p.open(await at(v, true), flags, mode)),
  };
  if (p.readonly !== undefined) w.readonly = p.readonly;
  if (p.supportsSymlinks !== undefined) w.supportsSymlinks = p.supportsSymlinks;
  if (p.atomicUploads !== undefined) w.atomicUploads = p.atomicUploads;
  if (p.uploadsVisibleWhenComplete !== undefined) w.uploadsVisibleWhenComplete = p.uploadsVisibleWhenComplete;
  if (p.rawNames !== undefined) w.rawNames = p.rawNames;
  if (typeof lstat === 'function') w.lstat = (v) => run(v, async () => lstat.call(p, await at(v, false)));
  if (typeof readlink === 'function') {
    w.readlink = (v) =>
      run(v, async () => {
        const target = await readlink.call(p, await at(v, false));
        return target.startsWith('/') ? (relativeTo(base, normalizePath(target)) ?? target) : target;
      });
  }
  const symlink = p.symlink;
  if (typeof symlink === 'function') {
    w.symlink = (target, v) =>
      run(v, async () => {
        const link = await at(v, false);
        if (typeof target !== 'string') throw fsError('EINVAL', 'symlink', v);
        const absolute = target.startsWith('/');
        const resolved = absolute ? toInner(target) : resolvePath(dirname(link), target);
        if (!(await leadsInside(resolved))) throw fsError('EACCES', 'symlink', v);
        // A climbing target is handed on as the absolute path it leads to: `a/l -> ../x`, once renamed to `/l`,
        // would lead out of the view (see `linkLeadsOut`).
        return symlink.call(p, absolute || target.split('/').includes('..') ? resolved : target, link);
      });
  }
  const { list, hash, availableSpace, setTimes, chmod, allocate, concat, createReadStream, createWriteStream } = p;
  if (typeof list === 'function') w.list = (v) => run(v, async () => list.call(p, await at(v, true)));
  const listSlices = p.listSlices;
  if (typeof listSlices === 'function') w.listSlices = (v, options) => run(v, async () => mapSliceErrors(await listSlices.call(p, await at(v, true), options), v));
  const listNames = p.listNameSlices;
  if (typeof listNames === 'function') w.listNameSlices = (v, options) => run(v, async () => mapErrors(await listNames.call(p, await at(v, true), options), v));
  if (typeof hash === 'function') {
    w.hash = (v: string, algorithm: HashAlgorithm, start?: number, end?: number, options?: HashOptions) =>
      run(v, async () => hash.call(p, await at(v, true), algorithm, start, end, options));
  }
  if (typeof availableSpace === 'function') w.availableSpace = (v) => run(v, async () => availableSpace.call(p, await at(v, true)));
  if (typeof setTimes === 'function') w.setTimes = (v, mtime) => run(v, async () => setTimes.call(p, await at(v, true), mtime));
  const setCreationTime = p.setCreationTime;
  if (typeof setCreationTime === 'function') w.setCreationTime = (v, t) => run(v, async () => setCreationTime.call(p, await at(v, true), t));
  if (typeof chmod === 'function') w.chmod = (v, mode) => run(v, async () => chmod.call(p, await at(v, true), mode));
  if (typeof allocate === 'function') w.allocate = (v, size) => run(v, async () => allocate.call(p, await at(v, true), size));
  if (typeof concat === 'function') {
    w.concat = (target, parts) =>
      run(target, async () => {
        const t = await at(target, true);
        const ps: string[] = [];
        for (const part of parts) ps.push(await run(part, () => at(part, true)));
        return concat.call(p, t, ps);
      });
  }
  if (typeof createReadStream === 'function') {
    w.createReadStream = (v: string, options?: ReadStreamOptions) => run(v, async () => mapStreamErrors(await createReadStream.call(p, await at(v, true), options), v));
  }
  if (typeof createWriteStream === 'function') {
    w.createWriteStream = (v: string, options?: WriteStreamOptions) => run(v, async () => mapStreamErrors(await createWriteStream.call(p, await at(v, true), options), v));
  }
  const uploadBusy = p.uploadBusy;
  if (typeof uploadBusy === 'function') w.uploadBusy = (v, options, hold, known) => run(v, async () => uploadBusy.call(p, await at(v, true), options, hold, known));
  const checkUpload = p.checkUpload;
  if (typeof checkUpload === 'function') w.checkUpload = (v, options, known) => run(v, async () => checkUpload.call(p, await at(v, true), options, known));
  const checkEnter = p.checkEnter;
  if (typeof checkEnter === 'function') w.checkEnter = (v) => run(v, async () => checkEnter.call(p, await at(v, true)));
  const releaseUploadHold = p.releaseUploadHold;
  if (typeof releaseUploadHold === 'function') w.releaseUploadHold = (v, owner) => run(v, async () => releaseUploadHold.call(p, await at(v, true), owner));
  return w;
}

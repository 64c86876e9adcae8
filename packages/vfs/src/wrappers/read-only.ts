import { fsError, toVfsError } from '../errors.js';
import { SPEC_VERSION } from '../spec.js';
import type { FsProvider, ReadStreamOptions } from '../spec.js';
import { parseOpenFlags } from '../stats.js';

function refuse(syscall: string, path: string): Promise<never> {
  return Promise.reject(fsError('EROFS', syscall, path));
}

/**
 * A read-only view of a provider: every mutation (`mkdir`, `rmdir`, `unlink`, `rename`, `symlink`, `open` with a
 * write, create, truncate or append flag, `createWriteStream`, `setTimes`, `chmod`, `allocate`, `concat`) fails
 * with EROFS, and so does `checkUpload` (the server refuses an upload before its 150); reads pass through.
 * `readonly` is true. An optional capability is present only when the inner provider has it (so capability
 * detection still works). The wrapper never closes the inner provider (it is usually shared).
 */
export function readOnly(p: FsProvider): FsProvider {
  const w: {
    -readonly [K in keyof FsProvider]: FsProvider[K];
  } = {
    specVersion: SPEC_VERSION,
    readonly: true,
    stat: (path) => p.stat(path),
    readdir: (path, ...rest: unknown[]) => (p.readdir as (path: string, ...rest: unknown[]) => Promise<unknown[]>).call(p, path, ...rest),
    mkdir: (path) => refuse('mkdir', path),
    rmdir: (path) => refuse('rmdir', path),
    unlink: (path) => refuse('unlink', path),
    rename: (from) => refuse('rename', from),
    open: async (path, flags, mode) => {
      let changes: boolean;
      try {
        const f = parseOpenFlags(flags as string | number | undefined);
        // Not only a write flag: O_CREAT makes a file, O_TRUNC empties one, even opened read-only (numeric flags
        // allow `O_RDONLY | O_CREAT`), and O_APPEND asks for writes this view must never make.
        changes = f.write || f.create || f.truncate || f.append;
      } catch (err) {
        throw toVfsError(err, path);
      }
      if (changes) throw fsError('EROFS', 'open', path);
      return p.open(path, flags, mode);
    },
  };
  if (p.supportsSymlinks !== undefined) w.supportsSymlinks = p.supportsSymlinks;
  if (p.atomicUploads !== undefined) w.atomicUploads = p.atomicUploads;
  if (p.uploadsVisibleWhenComplete !== undefined) w.uploadsVisibleWhenComplete = p.uploadsVisibleWhenComplete;
  if (p.rawNames !== undefined) w.rawNames = p.rawNames;
  if (typeof p.lstat === 'function') w.lstat = (path) => (p.lstat as NonNullable<FsProvider['lstat']>).call(p, path);
  if (typeof p.readlink === 'function') w.readlink = (path) => (p.readlink as NonNullable<FsProvider['readlink']>).call(p, path);
  if (typeof p.symlink === 'function') w.symlink = (_target, path) => refuse('symlink', path);
  if (typeof p.list === 'function') w.list = (path) => (p.list as NonNullable<FsProvider['list']>).call(p, path);
  if (typeof p.listSlices === 'function') w.listSlices = (path, options) => (p.listSlices as NonNullable<FsProvider['listSlices']>).call(p, path, options);
  if (typeof p.listNameSlices === 'function') w.listNameSlices = (path, options) => (p.listNameSlices as NonNullable<FsProvider['listNameSlices']>).call(p, path, options);
  if (typeof p.checkEnter === 'function') w.checkEnter = (path) => (p.checkEnter as NonNullable<FsProvider['checkEnter']>).call(p, path);
  if (typeof p.hash === 'function') w.hash = (...args) => (p.hash as NonNullable<FsProvider['hash']>).apply(p, args);
  if (typeof p.availableSpace === 'function') w.availableSpace = (path) => (p.availableSpace as NonNullable<FsProvider['availableSpace']>).call(p, path);
  if (typeof p.setTimes === 'function') w.setTimes = (path) => refuse('utime', path);
  if (typeof p.setCreationTime === 'function') w.setCreationTime = (path) => refuse('utime', path);
  if (typeof p.chmod === 'function') w.chmod = (path) => refuse('chmod', path);
  if (typeof p.allocate === 'function') w.allocate = (path) => refuse('allocate', path);
  if (typeof p.concat === 'function') w.concat = (target) => refuse('concat', target);
  if (typeof p.createReadStream === 'function') {
    w.createReadStream = (path: string, options?: ReadStreamOptions) => (p.createReadStream as NonNullable<FsProvider['createReadStream']>).call(p, path, options);
  }
  if (typeof p.createWriteStream === 'function') w.createWriteStream = (path) => refuse('open', path);
  // Said before the server's 150: every upload here is refused.
  w.checkUpload = (path) => refuse('open', path);
  return w;
}

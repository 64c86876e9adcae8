/**
 * Opens confined by the kernel: openat2(2) with RESOLVE_BENEATH resolves a path below a folder and refuses, as it
 * walks, anything that would leave it (`..` above it, an absolute symlink, a symlink leading out, a /proc magic
 * link). One walk of the path, against realpath (a walk per component), the open and a check of what was opened.
 */
import { closeSync, constants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { addonFor, addonForReason, loadAddon, type Addon } from './addon.js';

/** Null when {@link openBeneath} can open here; otherwise why not (it then returns null). `FTP_NATIVE_OPEN=0` turns it off. */
export function openBeneathUnavailableReason(): string | null {
  const native = addonFor('FTP_NATIVE_OPEN');
  if (native === null) return addonForReason('FTP_NATIVE_OPEN');
  return openat2Works(native) ? null : 'openat2(2) is not available here (a kernel before 5.6, or refused by a sandbox)';
}

/**
 * Opens `relative` below the folder `root` with `flags` (`fs.constants` O_* bits; O_CLOEXEC is added) and `mode`
 * (with O_CREAT), and returns the descriptor, which the caller owns (close it with `fs.close`). Null when it did
 * not open, whatever the reason: the path leaves `root` or meets an absolute symlink (EXDEV), the file is missing,
 * access is denied, `relative` holds a NUL byte, or {@link openBeneathUnavailableReason} is not null. A caller
 * that needs the reason (or follows absolute links inside `root`) takes its careful path then.
 */
export function openBeneath(root: string, relative: string, flags: number, mode = 0o666): number | null {
  const fd = openBeneathOrErrno(root, relative, flags, mode);
  return fd !== null && fd >= 0 ? fd : null;
}

/**
 * {@link openBeneath} that says why it did not open: the descriptor (>= 0), or the negated errno (`-ENOENT`: the walk
 * stayed below `root` and found a name missing; `-EXDEV`: it would have left `root` or met an absolute symlink…), or
 * null when {@link openBeneathUnavailableReason} is not null.
 */
export function openBeneathOrErrno(root: string, relative: string, flags: number, mode = 0o666): number | null {
  const native = addonFor('FTP_NATIVE_OPEN');
  if (native === null || !openat2Works(native)) return null;
  return native.openBeneath(root, relative, flags, mode);
}

/**
 * open(2)'s O_PATH (a descriptor that only stands for the file: nothing is opened, a FIFO or a device included, and
 * fstat works on it), for {@link openBeneath}; null where the addon is not there. Node's `fs.constants` has none.
 */
export function openPathFlag(): number | null {
  // The addon's constant: FTP_NATIVE_OPEN=0 is openBeneath's to honour (it then opens nothing), not this one's.
  return loadAddon()?.O_PATH ?? null;
}

/** {@link openat2Works}'s answer, once asked. */
let works: boolean | undefined;

/**
 * Whether openat2 works here at all, asked once: a kernel before 5.6 says ENOSYS, some sandboxes' seccomp filters
 * EPERM to every call. Any other answer (an open of "/" refused by an access policy that allows the served folder,
 * say) means the call exists. (EPERM from a real open means something else, an immutable file: it cannot be taken
 * as "unavailable" there.)
 */
function openat2Works(native: Addon): boolean {
  if (works !== undefined) return works;
  const fd = native.openBeneath('/', '.', constants.O_RDONLY | constants.O_DIRECTORY, 0);
  if (fd >= 0) closeSync(fd);
  works = fd !== -osConstants.errno.ENOSYS && fd !== -osConstants.errno.EPERM;
  return works;
}

import type { FsProvider } from './spec.js';

/** What a provider can do beyond the core, as {@link describeCapabilities} detects it. */
export interface Capabilities {
  /** `createReadStream` and `createWriteStream` (else transfers go through file handles). */
  streaming: boolean;
  /** `list`: entries with stats in one call (else `readdir` + one `lstat` per entry). */
  list: boolean;
  /** `setTimes` (MFMT). */
  setTimes: boolean;
  /** `setCreationTime` (MFCT). */
  setCreationTime: boolean;
  /** `chmod` (SITE CHMOD). */
  chmod: boolean;
  /** `hash` (HASH, XSHA…; else `hashFile` streams the file through node:crypto). */
  hash: boolean;
  /** `availableSpace` (AVBL). */
  availableSpace: boolean;
  /** `allocate` (ALLO). */
  allocate: boolean;
  /** `concat` (COMB). */
  concat: boolean;
  /** `uploadBusy`: a busy file's upload is refused before the server's 150. */
  uploadBusy: boolean;
  /** `releaseUploadHold`: an upload that ended unopened gives its hold back at once (else it expires). */
  releaseUploadHold: boolean;
  /** `checkUpload`: an upload the file system would refuse (permissions, a read-only mount) is refused before the 150. */
  checkUpload: boolean;
  /** `checkEnter`: CWD into a folder the server's user may not search is refused (550). */
  checkEnter: boolean;
  /** `symlink` and `readlink` that work (SITE SYMLINK, links in listings). */
  symlink: boolean;
  /** Every mutation fails with EROFS. */
  readonly: boolean;
  /** Concurrent whole-file uploads to one path end as one whole version (see `FsProvider.atomicUploads`). */
  atomicUploads: boolean;
  /** Uploads are invisible until complete; an interrupted one leaves the previous version (`FsProvider.uploadsVisibleWhenComplete`). */
  uploadsVisibleWhenComplete: boolean;
  /** Names may hold byte escapes for bytes that are not UTF-8, kept as those bytes (see `FsProvider.rawNames`). */
  rawNames: boolean;
}

function has(p: object, name: string): boolean {
  return typeof (p as Record<string, unknown>)[name] === 'function';
}

/**
 * Detects the optional capabilities of a provider: a capability is there when its method is. `symlink` also
 * honours `@platformatic/vfs`'s `supportsSymlinks` flag, since every `VirtualProvider` inherits methods that
 * only throw.
 */
export function describeCapabilities(p: FsProvider): Capabilities {
  return {
    streaming: has(p, 'createReadStream') && has(p, 'createWriteStream'),
    list: has(p, 'list'),
    setTimes: has(p, 'setTimes'),
    setCreationTime: has(p, 'setCreationTime'),
    chmod: has(p, 'chmod'),
    hash: has(p, 'hash'),
    availableSpace: has(p, 'availableSpace'),
    allocate: has(p, 'allocate'),
    concat: has(p, 'concat'),
    uploadBusy: has(p, 'uploadBusy'),
    releaseUploadHold: has(p, 'releaseUploadHold'),
    checkUpload: has(p, 'checkUpload'),
    checkEnter: has(p, 'checkEnter'),
    symlink: has(p, 'symlink') && has(p, 'readlink') && p.supportsSymlinks !== false,
    readonly: p.readonly === true,
    atomicUploads: p.atomicUploads === true,
    uploadsVisibleWhenComplete: p.uploadsVisibleWhenComplete === true,
    rawNames: p.rawNames === true,
  };
}

import { normalizePath, vfsError } from '@ftp/vfs';

/** S3's limit on the length of a key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/**
 * Maps the provider's absolute POSIX paths to S3 keys under an optional prefix, and back. A file `/a/b` is the key
 * `<prefix>a/b`; a directory `/a` is the key prefix `<prefix>a/`, and its marker object (an empty directory) is the
 * key `<prefix>a/` itself.
 */
export class KeyMapper {
  /** The normalised prefix: `''` or `'some/prefix/'` (no leading slash, one trailing slash). */
  readonly prefix: string;

  /** @param prefix key prefix of the tree (`users/alice`, `users/alice/`, `/users/alice/` are all the same). */
  constructor(prefix = '') {
    const trimmed = prefix.replace(/^\/+/, '').replace(/\/+$/, '');
    this.prefix = trimmed === '' ? '' : `${trimmed}/`;
  }

  /** The key of a file at `path`. `/` has no file key (it is always a directory). */
  fileKey(path: string): string {
    // S3 keys are literal ('a/../b' is a key of its own), but URLs carrying them may be normalised on the way (an
    // HTTP proxy, a gateway), which could reach outside the prefix: only normalised absolute paths become keys.
    if (!path.startsWith('/') || path.includes('\0') || normalizePath(path) !== path) throw vfsError('EINVAL', undefined, path);
    const key = this.prefix + path.slice(1);
    // A key past S3's limit would be refused by the store with a less helpful InvalidArgument / KeyTooLong.
    if (Buffer.byteLength(key) >= MAX_KEY_BYTES) throw vfsError('ENAMETOOLONG', undefined, path);
    return key;
  }

  /** The key prefix of the directory at `path` (`<prefix>a/`; the prefix itself for `/`), also its marker key. */
  dirKey(path: string): string {
    return path === '/' ? this.prefix : `${this.fileKey(path)}/`;
  }

  /** The path of a key under this mapper's prefix, or undefined for a key outside it. */
  pathOf(key: string): string | undefined {
    if (!key.startsWith(this.prefix)) return undefined;
    const rest = key.slice(this.prefix.length).replace(/\/$/, '');
    return `/${rest}`;
  }
}

/**
 * The entry name that a listed key or common prefix stands for below `dirKey`, or undefined when it is not a name the
 * provider can represent: the directory's own marker, an empty segment (`a//b`, written by another tool), or
 * `.`/`..` (which no normalised path can reach).
 */
export function entryName(dirKey: string, key: string): string | undefined {
  if (!key.startsWith(dirKey)) return undefined;
  const name = key.slice(dirKey.length).replace(/\/$/, '');
  if (name === '' || name.includes('/') || name === '.' || name === '..') return undefined;
  return name;
}

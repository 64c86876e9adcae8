/**
 * Key layout of one filesystem. Every key starts with the hash tag `{prefix}`, so that Redis Cluster puts all keys of
 * one filesystem in one hash slot: the Lua scripts touch many keys at once, and a script may only touch keys of
 * the slot it runs in.
 *
 * ```
 * {p}:seq        string  last inode id handed out (INCR); the root is inode 0. Outlives deleteFilesystem (see
 *                        `idCounter`): an id is never handed out twice under one prefix
 * {p}:i:<ino>    hash    inode: t (f|d|l), s size, m mtime ms, b birth ms, o mode bits, l link target; root has cs
 * {p}:d:<ino>    hash    directory entries: name → inode id
 * {p}:c:<ino>    hash    file content: chunk number → bytes (chunkSize each, the last shorter)
 * {p}:r:<ino>    zset    leases of the file's running readers: reader id → lease expiry (ms, Redis clock); only
 *                        while a download or read-only handle is open
 * {p}:q:<call>   string  a call (mkdir, rmdir, unlink, rename, symlink) that changed the filesystem, for
 *                        REPLAY_WINDOW_MS: the same call sent again after its reply was lost answers OK, unrun
 * ```
 */
export class Keys {
  /** The hash tag with its braces, e.g. `{ftp}`: every key starts with it. */
  readonly tag: string;

  /** @param prefix the filesystem's prefix; must not contain `{` or `}` (they would break the hash tag). */
  constructor(readonly prefix: string) {
    if (prefix === '' || /[{}]/.test(prefix)) throw new TypeError(`invalid key prefix ${JSON.stringify(prefix)}: non-empty, without { or }`);
    this.tag = `{${prefix}}`;
  }

  /** The root inode's key: passed as KEYS[1] of every script so a Cluster client routes it to the right node. */
  get route(): string {
    return this.inode(0);
  }

  /**
   * The inode id counter (INCR). Running servers hold inode ids (downloads, uploads, file handles, lease timers) and
   * act on their keys later, so an id must never name two files: `deleteFilesystem` keeps this key, and a filesystem
   * created again under the prefix goes on counting from it.
   */
  get idCounter(): string {
    return `${this.tag}:seq`;
  }

  /** The hash of inode `ino`'s metadata. */
  inode(ino: number | string): string {
    return `${this.tag}:i:${ino}`;
  }

  /** The hash of directory `ino`'s entries (name → inode id). */
  dir(ino: number | string): string {
    return `${this.tag}:d:${ino}`;
  }

  /** The hash of file `ino`'s content chunks (chunk number → bytes). */
  content(ino: number | string): string {
    return `${this.tag}:c:${ino}`;
  }

  /**
   * The sorted set of leases held by readers of file `ino` (reader id → expiry, ms by the Redis clock): while one is
   * live, a delete or replacement keeps the content for the grace period instead of deleting it at once.
   */
  readers(ino: number | string): string {
    return `${this.tag}:r:${ino}`;
  }

  /**
   * SCAN pattern matching every key of the filesystem, and only those: glob characters of the prefix are escaped,
   * so that a prefix such as `a*` cannot match another filesystem's keys (braces are not special in Redis globs).
   */
  get pattern(): string {
    return this.match('*');
  }

  /** A SCAN pattern for keys of this filesystem: `{prefix}:` (escaped) followed by `glob` as is. */
  match(glob: string): string {
    return `${this.tag.replace(/[*?[\]\\]/g, '\\$&')}:${glob}`;
  }
}

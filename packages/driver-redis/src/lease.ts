import { randomBytes } from 'node:crypto';
import { evalScript } from './client.js';
import type { Internals } from './content.js';
import { RELEASE_LEASE, RENEW_LEASE } from './scripts.js';

/**
 * Length of a reader's lease: 60 s, renewed every 20 s. Long enough that two renewals can fail (a Redis failover, a
 * command timing out at the driver's 30 s `commandTimeout`, a long GC pause) before the lease lapses; short enough
 * that the lease of a process that died stops protecting deleted content within a minute. The renewal is one small
 * script call per 20 s of a download, whatever its speed (a 1 GiB RETR at 200 MiB/s renews none).
 */
export const READER_LEASE_MS = 60_000;

/** This process's part of reader ids: ids must be unique across every server sharing the filesystem. */
const PROCESS_ID = randomBytes(6).toString('base64url');
let readers = 0;

/** A new reader id, unique among every process (members of an inode's lease set, `{p}:r:<ino>`). */
export function newReaderId(): string {
  return `${PROCESS_ID}.${(++readers).toString(36)}`;
}

/**
 * The lease a reader (a download, a read-only file handle) holds on an inode's content, registered by OPEN_READ
 * atomically with resolving the path. While it is live, a delete or replacement of the file keeps the content for
 * the grace period instead of deleting it at once; releasing the last lease of a deleted file deletes its content.
 * Renewed on a timer rather than on chunk reads: a download whose client is slow to take the bytes still reads no
 * chunk for minutes, and must keep its version meanwhile.
 */
export class ReaderLease {
  readonly #fs: Internals;
  readonly #args: readonly (string | number)[];
  readonly #timer: NodeJS.Timeout;
  #renewing = false;
  #released: Promise<void> | undefined;

  /** @param id the reader id OPEN_READ registered the lease under. */
  constructor(fs: Internals, ino: number, id: string) {
    this.#fs = fs;
    this.#args = [fs.keys.tag, ino, id];
    this.#timer = setInterval(() => this.#renew(), Math.max(1, Math.floor(fs.leaseMs / 3)));
    // A lease never keeps the process alive: when it exits, the lease expires by itself.
    this.#timer.unref();
  }

  #renew(): void {
    if (this.#renewing || this.#released !== undefined) return;
    this.#renewing = true;
    evalScript(this.#fs.client, RENEW_LEASE, [this.#fs.keys.route], [...this.#args, this.#fs.leaseMs])
      .then(
        (reply) => {
          // The content is gone (deleted while the lease had lapsed): nothing left to renew for.
          if (Array.isArray(reply) && Number(reply[1]) === 0) clearInterval(this.#timer);
        },
        // Redis unreachable: the next tick tries again, and the lease outlasts two failed renewals.
        () => undefined,
      )
      .finally(() => (this.#renewing = false));
  }

  /**
   * Ends the lease, once (later calls answer the same promise). Never rejects: if Redis cannot be reached, the lease
   * expires by itself and deleted content by its grace period.
   */
  release(): Promise<void> {
    this.#released ??= (async () => {
      clearInterval(this.#timer);
      try {
        await evalScript(this.#fs.client, RELEASE_LEASE, [this.#fs.keys.route], this.#args);
      } catch {
        // See above: expiry cleans up.
      }
    })();
    return this.#released;
  }
}

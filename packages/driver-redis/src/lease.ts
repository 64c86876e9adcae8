import { randomBytes } from 'node:crypto';
import { evalScript } from './client.js';
import type { Internals } from './content.js';
import { RELEASE_LEASE, RENEW_LEASE } from './scripts.js';

/**
 * Length of a reader's lease: 60 s, renewed every quarter of it (15 s). A renewal that fails is tried again at the
 * next tick, and one that hangs (a frozen Redis answers only at the driver's 30 s `commandTimeout`) does not hold
 * back the next one, so two renewals can fail or hang (a failover, a long GC pause) and the third still lands 15 s
 * before the lease lapses; short enough that the lease of a process that died stops protecting deleted content
 * within a minute. The renewal is one small script call per 15 s of a download, whatever its speed (a 1 GiB RETR
 * at 200 MiB/s renews none).
 */
export const READER_LEASE_MS = 60_000;

/** The longest lease accepted: its renewal interval must fit a timer (Node's limit is 2^31 − 1 ms). */
export const MAX_READER_LEASE_MS = 4 * (2 ** 31 - 1);

/** This process's part of reader ids: ids must be unique across every server sharing the filesystem. */
const PROCESS_ID = randomBytes(6).toString('base64url');
let readers = 0;

/** A new reader id, unique among every process (members of an inode's lease set, `{p}:r:<ino>`). */
export function newReaderId(): string {
  return `${PROCESS_ID}.${(++readers).toString(36)}`;
}

/**
 * Releases the lease of a reader that was garbage-collected without having released it: a read-only file handle
 * never closed, a download stream dropped without being ended or destroyed. Its renewal timer would otherwise renew
 * the lease for as long as the process runs (the timer holds the lease, not the reader, so the reader can be
 * collected). Collection comes late or, in a process with little allocation, not at all: `close()` remains the way.
 */
const abandoned = new FinalizationRegistry<ReaderLease>((lease) => void lease.release());

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
  /** Renewals sent and not yet answered: a release waits for them, or one landing after it would revive the lease. */
  readonly #renewals = new Set<Promise<unknown>>();
  #released: Promise<void> | undefined;

  /** @param id the reader id OPEN_READ registered the lease under. */
  constructor(fs: Internals, ino: number, id: string) {
    this.#fs = fs;
    this.#args = [fs.keys.tag, ino, id];
    this.#timer = setInterval(() => this.#renew(), Math.max(1, Math.floor(fs.leaseMs / 4)));
    // A lease never keeps the process alive: when it exits, the lease expires by itself.
    this.#timer.unref();
  }

  #renew(): void {
    if (this.#released !== undefined) return;
    // Each tick sends its own renewal, even while an earlier one hangs: a late answer renews nothing that a later one
    // has not (ZADD sets the member's expiry from the Redis clock at that moment).
    const renewal = evalScript(this.#fs.client, RENEW_LEASE, [this.#fs.keys.route], [...this.#args, this.#fs.leaseMs]).then(
      (reply) => {
        // The content is gone (deleted while the lease had lapsed): nothing left to renew for.
        if (Array.isArray(reply) && Number(reply[1]) === 0) clearInterval(this.#timer);
      },
      // Redis unreachable: the next tick tries again.
      () => undefined,
    );
    this.#renewals.add(renewal);
    void renewal.finally(() => this.#renewals.delete(renewal));
  }

  /**
   * Ties the lease to the object that reads under it: should that object be garbage-collected before it releases the
   * lease, the lease is released then. Answers the lease.
   */
  heldBy(reader: object): this {
    abandoned.register(reader, this, this);
    return this;
  }

  /**
   * Ends the lease, once (later calls answer the same promise). Never rejects: if Redis cannot be reached, the lease
   * expires by itself and deleted content by its grace period.
   */
  release(): Promise<void> {
    this.#released ??= (async () => {
      clearInterval(this.#timer);
      abandoned.unregister(this);
      // A renewal answered after the release would add the member back (with a full lease nobody renews or ends).
      await Promise.all(this.#renewals);
      try {
        await evalScript(this.#fs.client, RELEASE_LEASE, [this.#fs.keys.route], this.#args);
      } catch {
        // See above: expiry cleans up.
      }
    })();
    return this.#released;
  }
}

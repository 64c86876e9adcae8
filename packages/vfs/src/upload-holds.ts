import type { WriteStreamOptions } from './spec.js';
import { countWhileOpen } from './streams.js';

/**
 * How long a file stays held for an announced upload that has not opened it (ms): see `FsProvider.uploadBusy`'s
 * `hold`. The time between the server's 150 and the open is a data connection's (milliseconds); a client that never
 * connects holds the file no longer than this.
 */
export const UPLOAD_HOLD_MS = 3000;

/**
 * Files held for uploads the server has announced (its 150 is on the way) and that have not opened yet, by a
 * provider's own key for a file: what `uploadBusy(path, options, true)` takes and the upload's open gives back.
 * Two uploads of one file announced at the same moment are then not both told 150.
 */
export class UploadHolds<K> {
  // The owner by a weak reference: a hold never keeps a closed session alive.
  readonly #holds = new Map<K, { until: number; owner: WeakRef<object> | undefined }>();

  /**
   * Whether `key` is held now for an upload of another owner than `owner` (any hold when `owner` is undefined); an
   * expired hold is dropped.
   */
  held(key: K, owner?: object): boolean {
    if (this.#holds.size === 0) return false;
    const h = this.#holds.get(key);
    if (h === undefined) return false;
    if (h.until <= performance.now()) {
      this.#holds.delete(key);
      return false;
    }
    return owner === undefined || h.owner?.deref() !== owner;
  }

  /**
   * Holds `key` for {@link UPLOAD_HOLD_MS}, for `owner` (the server passes the session: a hold its upload left,
   * never opened because the transfer failed first, does not refuse its next one).
   */
  hold(key: K, owner?: object): void {
    const now = performance.now();
    // Holds of clients that never connected are dropped now and then, not only when their file is asked about again.
    if (this.#holds.size >= 1024) for (const [k, h] of this.#holds) if (h.until <= now) this.#holds.delete(k);
    this.#holds.set(key, { until: now + UPLOAD_HOLD_MS, owner: owner === undefined ? undefined : new WeakRef(owner) });
  }

  /**
   * What `uploadBusy` asks of the holds: whether `key` is held for another upload than `hold`'s owner; if not, and
   * `hold` is not false, it is held now for this one.
   */
  ask(key: K, hold: boolean | object): boolean {
    const owner = holdOwner(hold);
    if (this.held(key, owner)) return true;
    if (hold !== false) this.hold(key, owner);
    return false;
  }

  /** Whether `key` is held for another upload than `hold`'s owner (as {@link ask} says), taking no hold. */
  heldAgainst(key: K, hold: boolean | object): boolean {
    return this.held(key, holdOwner(hold));
  }

  /** Gives back the hold of `key` when `owner` took it (its upload ended unopened); true when one was given back. */
  releaseOwned(key: K, owner: object): boolean {
    const h = this.#holds.get(key);
    if (h === undefined || h.owner?.deref() !== owner) return false;
    this.#holds.delete(key);
    return true;
  }

  /** The announced upload (or another writer) opens the file: the hold is given back. */
  release(key: K): void {
    if (this.#holds.size > 0) this.#holds.delete(key);
  }

  /** How many holds there are, expired ones included until they are dropped. */
  get size(): number {
    return this.#holds.size;
  }
}

/** The owner of a hold `uploadBusy` was asked to take: `true` holds for no one in particular. */
function holdOwner(hold: boolean | object | undefined): object | undefined {
  return typeof hold === 'object' && hold !== null ? hold : undefined;
}

/**
 * The uploads of one provider whose uploads never refuse each other at their open (they swap whole versions in),
 * running or announced, by the provider's own key for a file: what its `uploadBusy` answers from. Only uploads that
 * continue a file (APPE, REST + STOR) are ever busy there: they commit over the version they started from, so the
 * first of two to end makes the other fail at its end, after its client sent everything.
 */
export class RunningUploads<K> {
  readonly #running = new Map<K, number>();
  readonly #holds = new UploadHolds<K>();

  /** An upload of `key` has opened: running until `stream` closes; it takes the file's hold. */
  opened(key: K, stream: { once(event: 'close', listener: () => void): unknown }): void {
    countWhileOpen(this.#running, key, stream);
    this.#holds.release(key);
  }

  /**
   * Whether an upload with `options` may be busy at all, before the provider looks its file up: not a plain upload
   * (it replaces the file, last one wins), and not while nothing runs or is held and no hold is asked for.
   */
  mayBeBusy(options: WriteStreamOptions, hold: boolean | object): boolean {
    if (options.append !== true && (options.start ?? 0) === 0) return false;
    return hold !== false || this.#running.size > 0 || this.#holds.size > 0;
  }

  /** Whether an upload runs (opened, not closed yet) whose key `test` accepts: a folder's, say, before it is removed. */
  runningWhere(test: (key: K) => boolean): boolean {
    for (const key of this.#running.keys()) if (test(key)) return true;
    return false;
  }

  /** `releaseUploadHold`'s work: `owner`'s hold of `key`, if it still has one, is given back. */
  releaseHold(key: K, owner: object): void {
    this.#holds.releaseOwned(key, owner);
  }

  /** Whether any upload is held (announced, not opened): else `releaseUploadHold` has nothing to look up. */
  get holding(): boolean {
    return this.#holds.size > 0;
  }

  /** `uploadBusy`'s answer for the file `key`: another upload runs or holds it; else, with `hold`, held now. */
  busy(key: K, hold: boolean | object): boolean {
    return this.#running.has(key) || this.#holds.ask(key, hold);
  }
}

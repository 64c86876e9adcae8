/** Gives a slot back; calling it again does nothing. */
export type ReleaseSlot = () => void;

interface Holder {
  running: number;
  waiting: Array<(release: ReleaseSlot) => void>;
}

/**
 * Slots for costly work that clients can ask for at will (password checks, file hashes): at most `total` at once over
 * the server and `perKey` per client (its ban key: its address, or its IPv6 /64), 0 meaning no limit. A freed slot
 * goes to the client that has waited the most turns, not to the oldest request: one address sending a thousand
 * requests makes another wait for at most one of them per address ahead of it, never for the thousand.
 *
 * Why: a scrypt check costs ~100 ms and 32 MiB on libuv's thread pool, which file I/O shares. Unbounded, 200 password
 * guesses from one address held every other login for 40 s and their folder listings for 30 s (the security audit).
 */
export class FairSlots {
  #running = 0;
  readonly #holders = new Map<string, Holder>();
  /** Keys with requests waiting, in the order of their turns (the first has waited longest). */
  readonly #turns = new Set<string>();

  constructor(
    private readonly total: number,
    private readonly perKey: number,
  ) {}

  /**
   * A slot for `key`: the release function at once when one is free and nobody waits (no extra turn of the event
   * loop), else a promise of it. The caller must release it when its work ends, however it ends. When `signal`
   * aborts first, the request leaves the line and the promise rejects with the signal's reason.
   */
  acquire(key: string, signal?: AbortSignal): ReleaseSlot | Promise<ReleaseSlot> {
    signal?.throwIfAborted();
    let holder = this.#holders.get(key);
    if (holder === undefined) {
      holder = { running: 0, waiting: [] };
      this.#holders.set(key, holder);
    }
    if (this.#turns.size === 0 && this.#free(holder)) return this.#grant(key, holder);
    const waiter = holder;
    return new Promise((resolve, reject) => {
      const granted = (release: ReleaseSlot): void => {
        signal?.removeEventListener('abort', leave);
        resolve(release);
      };
      const leave = (): void => {
        const at = waiter.waiting.indexOf(granted);
        if (at !== -1) waiter.waiting.splice(at, 1);
        if (waiter.waiting.length === 0) {
          this.#turns.delete(key);
          if (waiter.running === 0) this.#holders.delete(key);
        }
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', leave, { once: true });
      waiter.waiting.push(granted);
      this.#turns.add(key);
      this.#dispatch();
    });
  }

  /** Slots held now (for tests and metrics). */
  get running(): number {
    return this.#running;
  }

  /** Requests waiting now. */
  get waiting(): number {
    let n = 0;
    for (const key of this.#turns) n += this.#holders.get(key)?.waiting.length ?? 0;
    return n;
  }

  #free(holder: Holder): boolean {
    return (this.total <= 0 || this.#running < this.total) && (this.perKey <= 0 || holder.running < this.perKey);
  }

  #grant(key: string, holder: Holder): ReleaseSlot {
    this.#running++;
    holder.running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#running--;
      holder.running--;
      if (holder.running === 0 && holder.waiting.length === 0) this.#holders.delete(key);
      this.#dispatch();
    };
  }

  /** Hands free slots to waiting keys, a turn each, the key served going to the back of the line. */
  #dispatch(): void {
    let progressed = true;
    while (progressed && this.#turns.size > 0 && (this.total <= 0 || this.#running < this.total)) {
      progressed = false;
      for (const key of this.#turns) {
        const holder = this.#holders.get(key);
        if (holder === undefined || holder.waiting.length === 0) {
          this.#turns.delete(key);
          continue;
        }
        if (!this.#free(holder)) continue;
        const resolve = holder.waiting.shift() as (release: ReleaseSlot) => void;
        this.#turns.delete(key);
        if (holder.waiting.length > 0) this.#turns.add(key);
        resolve(this.#grant(key, holder));
        progressed = true;
        break;
      }
    }
  }
}

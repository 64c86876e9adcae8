import type { BlockList } from 'node:net';
import { subnets } from './data/advertise.js';
import { isIPv6Address } from './ip-address.js';
import type { ServerSettings } from './settings.js';

/**
 * Where failed logins and bans are kept, keyed by client address. Memory by default; a shared store (Redis)
 * lets several server instances ban together. Methods may be sync or async.
 */
export interface BanStore {
  /** Records a failed login of `key` and returns how many it had within the last `windowMs`, this one included. */
  addFailure(key: string, windowMs: number): number | Promise<number>;
  /** Bans `key` until `untilMs` (milliseconds since the epoch). */
  ban(key: string, untilMs: number): void | Promise<void>;
  /** Whether `key` is banned now. */
  isBanned(key: string): boolean | Promise<boolean>;
}

interface AddressRecord {
  failures: number[];
  bannedUntil: number;
}

/** Most addresses the memory store tracks; the oldest are forgotten first, so a scan cannot exhaust memory. */
const MAX_TRACKED = 100_000;

/** The default {@link BanStore}: one process's memory, bounded in size. */
export class MemoryBanStore implements BanStore {
  private readonly records = new Map<string, AddressRecord>();

  addFailure(key: string, windowMs: number): number {
    // The window on the monotonic clock: a wall clock set back would keep old failures counted for that long (a ban
    // for a typo an hour ago), set forward would forget them. Bans themselves are wall-clock times (`ban`'s `untilMs`,
    // shared with other processes through a store).
    const now = performance.now();
    const record = this.records.get(key) ?? { failures: [], bannedUntil: 0 };
    record.failures = record.failures.filter((t) => now - t < windowMs);
    record.failures.push(now);
    this.touch(key, record);
    return record.failures.length;
  }

  ban(key: string, untilMs: number): void {
    const record = this.records.get(key) ?? { failures: [], bannedUntil: 0 };
    record.bannedUntil = Math.max(record.bannedUntil, untilMs);
    this.touch(key, record);
  }

  isBanned(key: string): boolean {
    const record = this.records.get(key);
    if (!record) return false;
    if (record.bannedUntil > Date.now()) return true;
    if (record.failures.length === 0) this.records.delete(key);
    return false;
  }

  private touch(key: string, record: AddressRecord): void {
    this.records.delete(key);
    this.records.set(key, record);
    if (this.records.size > MAX_TRACKED) this.evictOne();
  }

  /** Forgets the oldest address that is not banned now (an active ban is dropped only if nothing else can be). */
  private evictOne(): void {
    const now = Date.now();
    let scanned = 0;
    for (const [key, record] of this.records) {
      if (record.bannedUntil <= now) {
        this.records.delete(key);
        return;
      }
      if (++scanned >= 1000) break;
    }
    const oldest = this.records.keys().next().value;
    if (oldest !== undefined) this.records.delete(oldest);
  }
}

/** What the guard decided after a failed login. */
export interface FailureVerdict {
  /** How long to wait before answering. */
  delayMs: number;
  /** The address is now banned: answer 421 and close. */
  banned: boolean;
}

/**
 * Failed-login policy: a delay that grows with each failure from an address, and a ban after
 * `maxLoginFailures` failures within `loginFailureWindow` (as fail2ban does for sshd, built in).
 */
export class LoginGuard {
  /** `banExempt`: addresses never banned. */
  readonly #exempt: BlockList;

  constructor(
    private readonly store: BanStore,
    private readonly settings: ServerSettings,
  ) {
    this.#exempt = subnets(settings.banExempt);
  }

  /** Whether `address` is in `banExempt` (its failures are counted for the delay, never for a ban). */
  #isExempt(address: string): boolean {
    try {
      return this.#exempt.check(address, isIPv6Address(address) ? 'ipv6' : 'ipv4');
    } catch {
      return false;
    }
  }

  /**
   * Whether `address` is banned now: a plain answer when the store answers at once (the memory store, so that a
   * login takes no extra turns of the event loop), a promise when it answers later. A store that fails or is down
   * answers false: it must not lock everybody out.
   */
  isBanned(address: string): boolean | Promise<boolean> {
    // A shared store may hold a ban another instance made before the address was exempt there.
    if (this.#isExempt(address)) return false;
    let answer: boolean | Promise<boolean>;
    try {
      answer = this.store.isBanned(banKey(address));
    } catch {
      return false;
    }
    if (typeof answer === 'boolean') return answer;
    return Promise.resolve(answer).then(
      // Any truthy answer bans, as before (a store may answer 1, as Redis's EXISTS does).
      (banned) => Boolean(banned),
      () => false,
    );
  }

  async failure(address: string): Promise<FailureVerdict> {
    const s = this.settings;
    let count = 1;
    try {
      count = await this.store.addFailure(banKey(address), s.loginFailureWindow * 1000);
    } catch {
      // Keep the per-attempt delay even when the store is unreachable.
    }
    const banned = s.maxLoginFailures > 0 && count >= s.maxLoginFailures && !this.#isExempt(address);
    if (banned) {
      try {
        await this.store.ban(banKey(address), Date.now() + s.banDuration * 1000);
      } catch {
        // Nothing more to do: the session is closed anyway.
      }
    }
    return { delayMs: Math.min(s.failedLoginDelay * count, s.failedLoginDelay * 10), banned };
  }


}

/**
 * The key failures and bans are kept under: the address, or for IPv6 its /64 (one subscriber's network), so that
 * rotating through addresses of one's own prefix neither escapes a ban nor floods the store.
 */
export function banKey(address: string): string {
  if (!isIPv6Address(address)) return address;
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g || '0', 16).toString(16))
    .join(':')}::/64`;
}

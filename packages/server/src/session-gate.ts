import { banKey } from './login-guard.js';

/** Which limit refuses a session, or `ok`. */
export type SessionGateVerdict = 'ok' | 'max-sessions' | 'max-sessions-per-ip';

/**
 * Counts sessions across several server instances (processes sharing a port with `reusePort`), so that
 * `maxSessions` and `maxSessionsPerIp` hold for all of them together. Each instance still checks its own count
 * first; the gate is asked only for connections that pass it. A gate that fails (throws or rejects) admits the
 * session: a coordinator that is down must not lock every client out.
 */
export interface SessionGate {
  /**
   * Admits one more session from `ip`, or says which limit refuses it. Every admitted session is given back with
   * `leave`. `ip` is the client's address; `maxSessionsPerIp` counts an IPv6 one by its /64 ({@link SessionCounts}
   * does).
   */
  enter(ip: string): SessionGateVerdict | Promise<SessionGateVerdict>;
  /** An admitted session from `ip` has ended. */
  leave(ip: string): void;
}

/**
 * Counts sessions in total and per address against two limits (0: unlimited); the bookkeeping of a {@link SessionGate}.
 * An IPv6 address counts under its /64 (as `maxSessionsPerIp` does, and as bans do: {@link banKey}), since one client
 * may connect from any address of it; an IPv4 address on its own.
 */
export class SessionCounts {
  private total = 0;
  private readonly perIp = new Map<string, number>();

  constructor(
    private readonly maxSessions: number,
    private readonly maxSessionsPerIp: number,
  ) {}

  enter(ip: string): SessionGateVerdict {
    if (this.maxSessions > 0 && this.total >= this.maxSessions) return 'max-sessions';
    const key = banKey(ip);
    const n = this.perIp.get(key) ?? 0;
    if (this.maxSessionsPerIp > 0 && n >= this.maxSessionsPerIp) return 'max-sessions-per-ip';
    this.total++;
    this.perIp.set(key, n + 1);
    return 'ok';
  }

  /** Whether a session of `ip` (its IPv6 /64) is counted here. */
  has(ip: string): boolean {
    return this.perIp.has(banKey(ip));
  }

  /**
   * Gives back up to `count` sessions of `ip` (an address, or a key from {@link byAddress}); returns how many were
   * counted (0 for an address it does not know).
   */
  leave(ip: string, count = 1): number {
    const key = banKey(ip);
    const n = this.perIp.get(key);
    if (n === undefined) return 0;
    const taken = Math.min(n, count);
    this.total -= taken;
    if (n - taken <= 0) this.perIp.delete(key);
    else this.perIp.set(key, n - taken);
    return taken;
  }

  /** Sessions counted now, by address (an IPv6 /64 as `2001:db8:1:2::/64`). */
  byAddress(): IterableIterator<[string, number]> {
    return this.perIp.entries();
  }

  /** Sessions counted now. */
  get size(): number {
    return this.total;
  }
}

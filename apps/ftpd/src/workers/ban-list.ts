/** Most bans kept (as the server's own memory store: a scan of many addresses cannot exhaust memory). */
const MAX_BANS = 100_000;

/**
 * Active bans by key with the time they end, bounded: past {@link MAX_BANS} the expired ones go, then the oldest,
 * down to 90 % so that the scan is paid once per ten thousand bans, not at each one.
 */
export class BanList {
  private readonly bans = new Map<string, number>();

  add(key: string, until: number): void {
    this.bans.delete(key);
    this.bans.set(key, until);
    if (this.bans.size > MAX_BANS) this.shrink();
  }

  /** Whether `key` is banned now (an expired ban is forgotten here). */
  has(key: string): boolean {
    const until = this.bans.get(key);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.bans.delete(key);
    return false;
  }

  /** The bans in force, to hand to a new worker. */
  active(): Array<[string, number]> {
    this.dropExpired();
    return [...this.bans];
  }

  private dropExpired(): void {
    const now = Date.now();
    for (const [key, until] of this.bans) if (until <= now) this.bans.delete(key);
  }

  private shrink(): void {
    this.dropExpired();
    for (const key of this.bans.keys()) {
      if (this.bans.size <= MAX_BANS * 0.9) break;
      this.bans.delete(key);
    }
  }
}

import { lookup } from 'node:dns/promises';
import { isIPv4 } from 'node:net';

/**
 * How long a public host name's address is used before it is looked up again: a dynamic DNS name (a home or office
 * connection behind NAT) follows its changing address within a minute, without a restart.
 */
export const PUBLIC_NAME_TTL_MS = 60_000;

/** How soon a failed lookup is tried again (a name that resolved before answers with its last address meanwhile). */
const RETRY_MS = 5_000;

/**
 * How long a lookup may take: a PASV waits for one only before its name's first answer, and must not wait for a
 * resolver that does not answer (glibc's own timeouts run to tens of seconds).
 */
export const LOOKUP_TIMEOUT_MS = 5_000;

/** Looks a name up to one IPv4 address. */
export type LookupIPv4 = (name: string) => Promise<string>;

const systemLookup: LookupIPv4 = async (name) => (await lookup(name, { family: 4 })).address;

/**
 * Whether `s` is a DNS host name (RFC 1123: dot-separated labels of letters, digits and inner hyphens, at most 253
 * characters, a final dot allowed) that is not an IPv4 address in disguise: a last label of digits only (`10.0.0`),
 * or a hexadecimal number (`0x7f000001`), which resolvers read as addresses.
 */
export function isHostName(s: string): boolean {
  if (s.length === 0 || s.length > 253 || isIPv4(s)) return false;
  const labels = (s.endsWith('.') ? s.slice(0, -1) : s).split('.');
  const last = labels[labels.length - 1]!;
  if (/^\d+$/.test(last) || /^0x[0-9a-f]*$/i.test(last)) return false;
  return labels.every((l) => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l));
}

interface Entry {
  address: string | null;
  /** When the address is to be looked up again (a monotonic clock's ms). */
  due: number;
  pending: Promise<string> | null;
  /** Why the last lookup failed, for a name that has no address yet: answered again until it is due. */
  failure: unknown;
}

/**
 * The IPv4 addresses of the host names PASV advertises (`publicHost` given as a name): looked up when first
 * needed, then again every {@link PUBLIC_NAME_TTL_MS} in the background, so that a PASV waits for DNS only before a
 * name's first answer, and a changed address is in use within a minute whether or not anyone asked meanwhile. A
 * lookup that fails or takes longer than {@link LOOKUP_TIMEOUT_MS} keeps the last address (and is retried soon); a
 * name that never resolved fails the PASV (425) until it does, without a new lookup for every PASV.
 */
export class PublicNames {
  readonly #entries = new Map<string, Entry>();
  #refresh: NodeJS.Timeout | null = null;

  constructor(
    private readonly onFailure: (name: string, err: unknown, lastAddress: string | null) => void = () => {},
    private readonly lookupIPv4: LookupIPv4 = systemLookup,
    private readonly ttlMs = PUBLIC_NAME_TTL_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The address of `name` to advertise now; rejects only when it has never resolved. */
  address(name: string): Promise<string> {
    let entry = this.#entries.get(name);
    if (entry === undefined) {
      entry = { address: null, due: 0, pending: null, failure: null };
      this.#entries.set(name, entry);
      this.#startRefreshing();
    }
    if (entry.address !== null) {
      if (this.now() >= entry.due && entry.pending === null) this.#lookUp(name, entry).catch(() => {});
      return Promise.resolve(entry.address);
    }
    if (entry.pending !== null) return entry.pending;
    if (entry.failure !== null && this.now() < entry.due) return Promise.reject(entry.failure);
    return this.#lookUp(name, entry);
  }

  /** Stops the background lookups (the server is closing). */
  close(): void {
    if (this.#refresh !== null) clearInterval(this.#refresh);
    this.#refresh = null;
  }

  #startRefreshing(): void {
    if (this.#refresh !== null) return;
    this.#refresh = setInterval(() => {
      const now = this.now();
      for (const [name, entry] of this.#entries) if (now >= entry.due && entry.pending === null) this.#lookUp(name, entry).catch(() => {});
    }, Math.min(this.ttlMs, RETRY_MS));
    this.#refresh.unref();
  }

  #lookUp(name: string, entry: Entry): Promise<string> {
    const pending = withTimeout(this.lookupIPv4(name), LOOKUP_TIMEOUT_MS, name)
      .then((address) => {
        if (!isIPv4(address)) throw new Error(`${name} resolved to ${address}, not an IPv4 address`);
        return address;
      })
      .then(
        (address) => {
          entry.address = address;
          entry.failure = null;
          entry.due = this.now() + this.ttlMs;
          return address;
        },
        (err: unknown) => {
          entry.failure = err;
          entry.due = this.now() + RETRY_MS;
          this.onFailure(name, err, entry.address);
          throw err;
        },
      );
    entry.pending = pending;
    const clear = (): void => {
      if (entry.pending === pending) entry.pending = null;
    };
    pending.then(clear, clear);
    return pending;
  }
}

/** `work`, or a rejection once `ms` have passed (the work itself goes on, and its outcome nowhere). */
function withTimeout<T>(work: Promise<T>, ms: number, name: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`looking up ${name} took over ${ms / 1000} s`)), ms);
    timer.unref();
    work.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (err: unknown) => (clearTimeout(timer), reject(err)),
    );
  });
}

import { lookup } from 'node:dns/promises';
import { isIPv4 } from 'node:net';

/**
 * How long a public host name's address is used before it is looked up again: a dynamic DNS name (a home or office
 * connection behind NAT) follows its changing address within a minute, without a restart.
 */
export const PUBLIC_NAME_TTL_MS = 60_000;

/** How soon a failed lookup of a name that resolved before is tried again (its last address is used meanwhile). */
const RETRY_MS = 5_000;

/** Looks a name up to one IPv4 address. */
export type LookupIPv4 = (name: string) => Promise<string>;

const systemLookup: LookupIPv4 = async (name) => (await lookup(name, { family: 4 })).address;

/**
 * Whether `s` is a DNS host name (RFC 1123: dot-separated labels of letters, digits and inner hyphens, at most 253
 * characters) that is not an IPv4 address in disguise (a last label of digits only, as in `10.0.0`).
 */
export function isHostName(s: string): boolean {
  if (s.length === 0 || s.length > 253 || isIPv4(s)) return false;
  const labels = (s.endsWith('.') ? s.slice(0, -1) : s).split('.');
  if (/^\d+$/.test(labels[labels.length - 1]!)) return false;
  return labels.every((l) => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l));
}

interface Entry {
  address: string | null;
  /** When the address is to be looked up again. */
  due: number;
  pending: Promise<string> | null;
}

/**
 * The IPv4 addresses of the host names PASV advertises (`publicHost` given as a name): looked up when first needed,
 * then again every {@link PUBLIC_NAME_TTL_MS}, in the background, the last address answering meanwhile, so a PASV
 * waits for DNS only before a name's first answer. A lookup that fails keeps the last address (and is retried
 * soon); a name that never resolved fails the PASV (425) until it does.
 */
export class PublicNames {
  readonly #entries = new Map<string, Entry>();

  constructor(
    private readonly onFailure: (name: string, err: unknown) => void = () => {},
    private readonly lookupIPv4: LookupIPv4 = systemLookup,
    private readonly ttlMs = PUBLIC_NAME_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** The address of `name` to advertise now; rejects only when it has never resolved. */
  address(name: string): Promise<string> {
    let entry = this.#entries.get(name);
    if (entry === undefined) {
      entry = { address: null, due: 0, pending: null };
      this.#entries.set(name, entry);
    }
    if (entry.address !== null) {
      if (this.now() >= entry.due && entry.pending === null) void this.#lookUp(name, entry).catch(() => {});
      return Promise.resolve(entry.address);
    }
    return entry.pending ?? this.#lookUp(name, entry);
  }

  #lookUp(name: string, entry: Entry): Promise<string> {
    const pending = this.lookupIPv4(name).then(
      (address) => {
        if (!isIPv4(address)) throw new Error(`${name} resolved to ${address}, not an IPv4 address`);
        entry.address = address;
        entry.due = this.now() + this.ttlMs;
        return address;
      },
      (err: unknown) => {
        entry.due = this.now() + RETRY_MS;
        this.onFailure(name, err);
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

import { networkInterfaces } from 'node:os';
import { isIPv6, SocketAddress } from 'node:net';

/**
 * Whether `address` (an address as a socket gives it) is IPv6. One without a colon cannot be: the common IPv4 case
 * skips Node's `isIPv6`, a long regular expression that showed in the login and upload profiles (issue 9).
 */
export function isIPv6Address(address: string): boolean {
  return address.includes(':') && isIPv6(address);
}

/**
 * `address` in the one spelling a socket reports (an IPv6 address compressed and in lower case: `0:0::1` and `::1`
 * are one address); an IPv4 address, or anything that is not an IPv6 address, as it is.
 */
export function canonicalAddress(address: string): string {
  if (!isIPv6Address(address)) return address;
  try {
    return new SocketAddress({ address, family: 'ipv6' }).address;
  } catch {
    return address;
  }
}

/** Normalises `::ffff:1.2.3.4` to `1.2.3.4` so that IPv4 peers compare equal however the socket reports them. */
export function plainAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * Whether `address` (canonical, IPv4 plain) reaches this machine: loopback (127.0.0.0/8, ::1), the unspecified
 * address, or an address of one of its interfaces (read only when asked: the rare case of a PORT naming a port this
 * server listens on on every address).
 */
export function isThisMachine(address: string): boolean {
  if (address === '::1' || address === '::' || address === '0.0.0.0' || address.startsWith('127.')) return true;
  for (const list of Object.values(networkInterfaces())) {
    for (const iface of list ?? []) if (canonicalAddress(iface.address) === address) return true;
  }
  return false;
}

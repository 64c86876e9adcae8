import { isIPv6 } from 'node:net';

/**
 * Whether `address` (an address as a socket gives it) is IPv6. One without a colon cannot be: the common IPv4 case
 * skips Node's `isIPv6`, a long regular expression that showed in the login and upload profiles (issue 9).
 */
export function isIPv6Address(address: string): boolean {
  return address.includes(':') && isIPv6(address);
}

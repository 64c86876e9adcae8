import { isIPv6 } from 'node:net';
import { expect, it } from 'vitest';
import { canonicalAddress, isIPv6Address } from '../src/ip-address.js';

it('tells IPv6 addresses as Node does, IPv4-mapped and zoned ones included', () => {
  const addresses = ['127.0.0.1', '10.1.2.3', '::1', '::', 'fe80::1%eth0', '::ffff:127.0.0.1', '2001:db8::8a2e:370:7334', '', 'not:an:address'];
  for (const a of addresses) expect(isIPv6Address(a), a).toBe(isIPv6(a));
  expect(isIPv6Address('::ffff:127.0.0.1')).toBe(true);
  expect(isIPv6Address('127.0.0.1')).toBe(false);
});

it('spells an IPv6 address as a socket does, and leaves anything else as it is', () => {
  expect(canonicalAddress('0:0:0:0:0:0:0:1')).toBe('::1');
  expect(canonicalAddress('0::1')).toBe('::1');
  expect(canonicalAddress('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
  expect(canonicalAddress('::1')).toBe('::1');
  expect(canonicalAddress('127.0.0.1')).toBe('127.0.0.1');
  expect(canonicalAddress('not:an:address')).toBe('not:an:address');
});

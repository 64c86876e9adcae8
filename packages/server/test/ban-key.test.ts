import { describe, expect, it } from 'vitest';
import { banKey } from '../src/login-guard.js';

describe('banKey', () => {
  it('keeps an IPv4 address as it is and gives an IPv6 address its /64', () => {
    expect(banKey('127.0.0.1')).toBe('127.0.0.1');
    expect(banKey('203.0.113.9')).toBe('203.0.113.9');
    expect(banKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(banKey('2001:db8:1:2::9')).toBe('2001:db8:1:2::/64');
    expect(banKey('2001:0db8::1')).toBe('2001:db8:0:0::/64');
    expect(banKey('::1')).toBe('0:0:0:0::/64');
  });

  it('leaves anything that is not an IP address as it is (a PROXY header or a test may give a name)', () => {
    expect(banKey('localhost')).toBe('localhost');
    expect(banKey('not:an:address')).toBe('not:an:address');
  });
});

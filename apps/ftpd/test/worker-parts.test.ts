import { afterEach, describe, expect, it, vi } from 'vitest';
import { BanList } from '../src/workers/ban-list.js';
import { passiveRangeProblem, passiveSlice, slicePassiveSettings } from '../src/workers/passive-slices.js';

describe('passive port shares of worker processes', () => {
  it('cuts a range into consecutive, disjoint shares that cover it, as even as it allows', () => {
    for (const [min, max, slots] of [
      [30000, 30999, 2],
      [30000, 30999, 3],
      [40000, 40006, 7],
      [5000, 5010, 4],
    ] as const) {
      const shares = Array.from({ length: slots }, (_, i) => passiveSlice([min, max], i, slots));
      expect(shares[0]![0]).toBe(min);
      expect(shares[slots - 1]![1]).toBe(max);
      for (let i = 1; i < slots; i++) expect(shares[i]![0]).toBe(shares[i - 1]![1] + 1);
      const sizes = shares.map(([a, b]) => b - a + 1);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      expect(Math.min(...sizes)).toBeGreaterThanOrEqual(1);
    }
    expect(passiveSlice([30000, 30999], 1, 2)).toEqual([30500, 30999]);
  });

  it('shifts the advertised ports (a NAT mapping) with the share', () => {
    expect(slicePassiveSettings({ passivePortRange: [30000, 30099], passivePortsAdvertised: [31000, 31099] }, 1, 2)).toEqual({
      passivePortRange: [30050, 30099],
      passivePortsAdvertised: [31050, 31099],
    });
    // The server's default range when none is set.
    expect(slicePassiveSettings({}, 0, 2)).toEqual({ passivePortRange: [30000, 30499] });
  });

  it('says when a range has fewer ports than workers', () => {
    expect(passiveRangeProblem([30000, 30000], 2)).toMatch(/1 port\(s\) for 2 workers/);
    expect(passiveRangeProblem([30000, 30001], 2)).toBeNull();
    expect(passiveRangeProblem(undefined, 4)).toBeNull();
  });
});

describe('BanList', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('knows a ban until it ends, then forgets it', () => {
    vi.useFakeTimers();
    const bans = new BanList();
    bans.add('10.0.0.1', Date.now() + 1000);
    expect(bans.has('10.0.0.1')).toBe(true);
    expect(bans.has('10.0.0.2')).toBe(false);
    vi.advanceTimersByTime(1001);
    expect(bans.has('10.0.0.1')).toBe(false);
    expect(bans.active()).toEqual([]);
  });

  it('stays bounded: past 100,000 bans the expired go first, then the oldest', () => {
    const bans = new BanList();
    const now = Date.now();
    bans.add('expired', now - 1);
    for (let i = 0; i < 100_000; i++) bans.add(`a${i}`, now + 60_000);
    const active = bans.active();
    expect(active.length).toBeLessThanOrEqual(100_000);
    expect(active.length).toBeGreaterThanOrEqual(90_000);
    expect(bans.has('expired')).toBe(false);
    expect(bans.has('a99999')).toBe(true);
    expect(bans.has('a0')).toBe(false);
  });
});

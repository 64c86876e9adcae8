import { describe, expect, it } from 'vitest';
import { mergeRounds, roundOrder } from '../src/rounds.js';
import { summarize } from '../src/stats.js';
import type { Row } from '../src/workloads/types.js';

const row = (metric: string, runs: number[], note?: string): Row => ({ workload: 'retr', metric, unit: 'MiB/s', better: 'higher', figure: summarize(runs), ...(note ? { note } : {}) });

describe('roundOrder', () => {
  it('starts each round with the next server, so none is always first or always after the same one', () => {
    const s = ['a', 'b', 'c'];
    expect(roundOrder(s, 0)).toEqual(['a', 'b', 'c']);
    expect(roundOrder(s, 1)).toEqual(['b', 'c', 'a']);
    expect(roundOrder(s, 2)).toEqual(['c', 'a', 'b']);
    expect(roundOrder(s, 3)).toEqual(['a', 'b', 'c']);
    expect(roundOrder([], 1)).toEqual([]);
  });
});

describe('mergeRounds', () => {
  it('gives each metric the figure of all its rounds, as one back-to-back repeat would', () => {
    const merged = mergeRounds([[row('throughput', [900]), row('server CPU', [1.2])], [row('throughput', [1500]), row('server CPU', [0.9])], [row('throughput', [1100]), row('server CPU', [1.0])]]);
    expect(merged.map((r) => r.metric)).toEqual(['throughput', 'server CPU']);
    expect(merged[0]!.figure).toEqual({ median: 1100, min: 900, max: 1500, runs: [900, 1500, 1100] });
    expect(merged[1]!.figure).toMatchObject({ median: 1.0, min: 0.9, max: 1.2 });
    expect(merged[0]!.note).toBeUndefined();
  });

  it('keeps a failed round out of the figure but says so, an identical note once with its count', () => {
    const failed = (): Row[] => [{ ...row('throughput', []), note: '1 failed: timeout' }];
    const merged = mergeRounds([failed(), [row('throughput', [800])], failed()]);
    expect(merged).toHaveLength(1);
    expect(merged[0]!.figure).toMatchObject({ median: 800, runs: [800] });
    expect(merged[0]!.note).toBe('1 failed: timeout (in 2 rounds)');
  });

  it('has no figure when every round failed', () => {
    const merged = mergeRounds([[{ ...row('the whole workload', []), note: 'refused' }], [{ ...row('the whole workload', []), note: 'reset' }]]);
    expect(merged[0]!.figure).toBeNull();
    expect(merged[0]!.note).toBe('refused; reset');
  });
});

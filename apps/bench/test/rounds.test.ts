import { describe, expect, it } from 'vitest';
import { mergeRounds, RoundPlanner } from '../src/rounds.js';
import { summarize } from '../src/stats.js';
import type { Row } from '../src/workloads/types.js';

const row = (metric: string, runs: number[], note?: string): Row => ({ workload: 'retr', metric, unit: 'MiB/s', better: 'higher', figure: summarize(runs), ...(note ? { note } : {}) });

/** The planner's orders for `rounds` rounds of `servers`, and who ran right after whom, in sequence. */
function plan(servers: string[], rounds: number, planner = new RoundPlanner<string>()): { orders: string[][]; pairs: string[] } {
  const orders = Array.from({ length: rounds }, () => planner.next(servers));
  const sequence = orders.flat();
  return { orders, pairs: sequence.slice(1).map((s, i) => `${sequence[i]}>${s}`) };
}

const countOf = (items: string[]): Map<string, number> => {
  const m = new Map<string, number>();
  for (const i of items) m.set(i, (m.get(i) ?? 0) + 1);
  return m;
};

describe('RoundPlanner', () => {
  const five = ['ours', 'vsftpd', 'pure-ftpd', 'pyftpdlib', 'ftp-srv'];

  it('runs every server once a round', () => {
    for (const order of plan(five, 4).orders) expect([...order].sort()).toEqual([...five].sort());
  });

  it('in three rounds of five servers, none comes first twice and none follows the same server twice', () => {
    const { orders, pairs } = plan(five, 3);
    expect(new Set(orders.map((o) => o[0]!)).size).toBe(3);
    expect(Math.max(...countOf(pairs).values())).toBe(1);
  });

  it('no server keeps following the same one (a rotation put ours after ftp-srv in every round but the first)', () => {
    const { pairs } = plan(five, 6);
    expect(countOf(pairs).get('ftp-srv>ours') ?? 0).toBeLessThanOrEqual(2);
    // 29 neighbour pairs over 20 possible ones: none more than twice.
    expect(Math.max(...countOf(pairs).values())).toBeLessThanOrEqual(2);
    expect(Math.max(...countOf(plan(five, 6).orders.map((o) => o[0]!)).values())).toBeLessThanOrEqual(2);
  });

  it('carries on across workloads with different servers: the next workload does not start after the same one again', () => {
    const planner = new RoundPlanner<string>();
    const first = plan(five, 3, planner);
    const next = plan(['ours', 'vsftpd', 'ours (2 workers)', 'pyftpdlib'], 3, planner);
    for (const order of next.orders) expect([...order].sort()).toEqual(['ours', 'ours (2 workers)', 'pyftpdlib', 'vsftpd']);
    const last = first.orders[2]![4]!;
    expect(next.orders[0]![0]).not.toBe(last);
    expect(next.orders[0]![0]).not.toBe(first.orders[0]![0]);
  });

  it('is deterministic and handles one server or none', () => {
    expect(plan(five, 3).orders).toEqual(plan(five, 3).orders);
    expect(plan(['ours'], 2).orders).toEqual([['ours'], ['ours']]);
    expect(new RoundPlanner<string>().next([])).toEqual([]);
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

import { afterEach, describe, expect, it, vi } from 'vitest';
import { sortWithTurns, TURN_MS, Turns } from '../src/turns.js';

afterEach(() => vi.restoreAllMocks());

/** A clock that moves `step` ms each time it is read. */
function steppingClock(step: number): void {
  let now = 0;
  vi.spyOn(performance, 'now').mockImplementation(() => (now += step));
}

describe('Turns', () => {
  it('gives a turn of the event loop only once TURN_MS of work have passed', async () => {
    steppingClock(1);
    const turns = new Turns();
    const answers: boolean[] = [];
    for (let i = 0; i < 2 * TURN_MS + 2; i++) {
      const turn = turns.check();
      answers.push(turn !== undefined);
      if (turn) await turn;
    }
    // Read at 1 (creation), then 2, 3, 4: a turn at 5 (4 ms after 1); after it the clock starts again.
    expect(answers.filter(Boolean).length).toBe(2);
    expect(answers.slice(0, TURN_MS)).toEqual([false, false, false, true]);
  });
});

describe('sortWithTurns', () => {
  it('sorts as Array.prototype.sort does, stably, at every size around its runs', async () => {
    for (const n of [0, 1, 2, 2047, 2048, 2049, 5000, 20_001]) {
      const items = Array.from({ length: n }, (_, i) => ({ key: (i * 7919) % 97, i }));
      const expected = [...items].sort((a, b) => a.key - b.key);
      const got = await sortWithTurns(items, (a, b) => a.key - b.key);
      expect(got).toEqual(expected);
    }
  });

  it('gives the event loop turns while it sorts a big array', async () => {
    steppingClock(0.2);
    let ticks = 0;
    let ticking = true;
    const tick = (): void => {
      ticks++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const items = Array.from({ length: 100_000 }, (_, i) => `name${(i * 7919) % 100_003}`);
    const sorted = await sortWithTurns(items, (a, b) => (a < b ? -1 : a > b ? 1 : 0));
    ticking = false;
    expect(sorted).toEqual([...items].sort());
    // ~1,000,000 comparisons read the clock every 1,024 merged entries: dozens of turns.
    expect(ticks).toBeGreaterThan(10);
  });
});

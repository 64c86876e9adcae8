import { expect, it } from 'vitest';
import { warmUp } from '../src/workloads/listing.js';

/** A list function that takes the given milliseconds in turn, and records how often it ran. */
function timings(ms: number[]): { list: () => Promise<number>; calls: () => number } {
  let i = 0;
  return { list: async () => ms[Math.min(i++, ms.length - 1)]!, calls: () => i };
}

it('warms up while each listing is at least 10 % faster than the one before', async () => {
  const t = timings([157, 88, 73, 44, 33, 34, 30]);
  expect(await warmUp(t.list)).toBe(6);
  expect(t.calls()).toBe(6);
});

it('a server that is already warm (or has no JIT) stops after two listings', async () => {
  const t = timings([35, 34]);
  expect(await warmUp(t.list)).toBe(2);
});

it('never runs more than max listings', async () => {
  const t = timings([1000, 800, 600, 400, 200, 100, 50, 25]);
  expect(await warmUp(t.list, 4)).toBe(4);
  expect(t.calls()).toBe(4);
});

it('stops at the first failed listing (a server without the command)', async () => {
  let calls = 0;
  const n = await warmUp(async () => {
    calls++;
    throw new Error('500 Unknown command.');
  });
  expect(n).toBe(1);
  expect(calls).toBe(1);
});

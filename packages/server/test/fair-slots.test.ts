import { describe, expect, it } from 'vitest';
import { FairSlots, type ReleaseSlot } from '../src/fair-slots.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('FairSlots', () => {
  it('grants at once while slots are free and nobody waits, within the total and per key', async () => {
    const slots = new FairSlots(2, 1);
    const a = slots.acquire('a');
    expect(typeof a).toBe('function');
    const a2 = slots.acquire('a');
    expect(a2).toBeInstanceOf(Promise);
    const b = slots.acquire('b');
    expect(b).toBeInstanceOf(Promise); // someone waits: no jumping the line, even with a slot free
    await tick();
    expect(slots.running).toBe(2); // b got the free one
    expect(slots.waiting).toBe(1);
    (a as ReleaseSlot)();
    const release2 = await a2;
    expect(slots.running).toBe(2);
    release2();
    (await b)();
    expect(slots.running).toBe(0);
    expect(slots.waiting).toBe(0);
  });

  it('serves keys in turns: a key with a thousand requests waiting delays another by one of them', async () => {
    const slots = new FairSlots(1, 0);
    const order: string[] = [];
    const first = slots.acquire('flood') as ReleaseSlot;
    const flood = Array.from({ length: 1000 }, () => (slots.acquire('flood') as Promise<ReleaseSlot>).then((r) => (order.push('flood'), r)));
    const other = (slots.acquire('other') as Promise<ReleaseSlot>).then((r) => (order.push('other'), r));
    first();
    (await flood[0]!)();
    (await other)();
    expect(order).toEqual(['flood', 'other']);
    for (const f of flood.slice(1)) (await f)();
    expect(slots.running).toBe(0);
  });

  it('a release given twice frees one slot; 0 is no limit', async () => {
    const slots = new FairSlots(1, 1);
    const r = slots.acquire('a') as ReleaseSlot;
    const next = slots.acquire('b') as Promise<ReleaseSlot>;
    r();
    r();
    const rb = await next;
    expect(slots.running).toBe(1);
    rb();
    const open = new FairSlots(0, 0);
    const all = Array.from({ length: 50 }, () => open.acquire('x'));
    expect(all.every((x) => typeof x === 'function')).toBe(true);
    expect(open.running).toBe(50);
  });

  it('per key: one key at its limit does not block others, and a freed slot goes to the key that waited first', async () => {
    const slots = new FairSlots(2, 1);
    const order: string[] = [];
    const granted = (name: string, slot: ReleaseSlot | Promise<ReleaseSlot>): Promise<ReleaseSlot> =>
      Promise.resolve(slot).then((release) => (order.push(name), release));
    const a1 = slots.acquire('a') as ReleaseSlot;
    const a2 = granted('a2', slots.acquire('a'));
    const b1 = granted('b1', slots.acquire('b'));
    const c1 = granted('c1', slots.acquire('c'));
    await tick();
    expect(slots.running).toBe(2);
    expect(order).toEqual(['b1']); // a is at its limit: b, behind it, takes the free slot
    a1();
    await tick();
    expect(order).toEqual(['b1', 'a2']); // a waited before c
    (await b1)();
    await tick();
    expect(order).toEqual(['b1', 'a2', 'c1']);
    (await a2)();
    (await c1)();
    expect(slots.running).toBe(0);
  });

  it('a request whose signal aborts leaves the line: it rejects, and the slot goes to the next', async () => {
    const slots = new FairSlots(1, 0);
    const first = slots.acquire('a') as ReleaseSlot;
    const controller = new AbortController();
    const leaving = slots.acquire('b', controller.signal) as Promise<ReleaseSlot>;
    const next = slots.acquire('c') as Promise<ReleaseSlot>;
    expect(slots.waiting).toBe(2);
    controller.abort(new Error('client left'));
    await expect(leaving).rejects.toThrow('client left');
    expect(slots.waiting).toBe(1);
    first();
    (await next)();
    expect(slots.running).toBe(0);
    expect(slots.waiting).toBe(0);
    expect(() => slots.acquire('d', AbortSignal.abort())).toThrow();
  });
});

// trimHeap where it cannot trim: the addon missing, or built against a C library without malloc_trim (musl).
import { beforeEach, expect, test, vi } from 'vitest';

const state: { addon: unknown; reason: string | null } = { addon: null, reason: null };
vi.mock('../src/addon.js', () => ({
  addonFor: () => state.addon,
  addonForReason: () => state.reason,
}));
const { trimHeap, trimHeapUnavailableReason } = await import('../src/heap-trim.js');

beforeEach(() => {
  state.addon = null;
  state.reason = null;
});

test('no addon: null, and the reason is the addon’s', () => {
  state.reason = 'the addon did not load (no such file)';
  expect(trimHeap()).toBeNull();
  expect(trimHeapUnavailableReason()).toBe('the addon did not load (no such file)');
});

test('an addon built on musl: null without calling into it, and the reason names the C library', () => {
  const trim = vi.fn(() => 0);
  state.addon = { HAS_MALLOC_TRIM: false, trimHeap: trim };
  expect(trimHeap()).toBeNull();
  expect(trim).not.toHaveBeenCalled();
  expect(trimHeapUnavailableReason()).toMatch(/not glibc/);
});

test('on glibc: whether pages went back', () => {
  let released = 1;
  state.addon = { HAS_MALLOC_TRIM: true, trimHeap: () => released };
  expect(trimHeapUnavailableReason()).toBeNull();
  expect(trimHeap()).toBe(true);
  released = 0;
  expect(trimHeap()).toBe(false);
});

// trimHeap: the malloc heap's free pages given back (malloc_trim), measured in the process's own resident memory.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect, test } from 'vitest';
import { trimHeap, trimHeapUnavailableReason } from '../src/index.js';

const unavailable = trimHeapUnavailableReason();
if (unavailable !== null && process.env.CI !== 'true') console.warn(`\n*** @ftp/native: SKIPPING the trimHeap tests: ${unavailable}.\n`);

/** Resident anonymous memory of this process (KiB): malloc's heaps and arenas are in it, whatever thread allocated. */
function rssAnonKiB(): number {
  return Number(/RssAnon:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
}

function fullGc(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  setFlagsFromString('--no-expose-gc');
  gc();
  gc();
}

test.skipIf(unavailable !== null && process.env.CI !== 'true')('gives back the pages of freed chunks that sit between live ones, which free() keeps', async () => {
  // 96 MiB in 32 KiB buffers: below glibc's mmap threshold, so they come from a malloc heap, one after another.
  // Every 64th stays alive, so the freed ones are holes between live chunks, never the heap's top (which glibc
  // trims by itself).
  const count = 3072;
  let buffers: (Buffer | null)[] = [];
  for (let i = 0; i < count; i++) buffers.push(Buffer.allocUnsafeSlow(32 * 1024).fill(i & 0xff));
  const kept = buffers.filter((_, i) => i % 64 === 63);
  buffers = [];
  fullGc();
  // V8 may free array buffers' memory on a background thread after the collection.
  await new Promise((r) => setTimeout(r, 300));
  fullGc();
  await new Promise((r) => setTimeout(r, 300));
  const before = rssAnonKiB();
  expect(trimHeap()).toBe(true);
  const after = rssAnonKiB();
  // At least half of the ~94 MiB freed comes back (the rest may have gone already, or be reused meanwhile).
  expect(before - after).toBeGreaterThan(40 * 1024);
  // The live chunks are untouched.
  kept.forEach((b, i) => expect(b![0]).toBe((i * 64 + 63) & 0xff));
});

test.skipIf(unavailable !== null && process.env.CI !== 'true')('answers null, saying why, where it cannot trim; otherwise a boolean', () => {
  const result = trimHeap();
  if (trimHeapUnavailableReason() === null) expect(typeof result).toBe('boolean');
  else expect(result).toBeNull();
});

test('FTP_MALLOC_TRIM=0 turns it off, saying so', () => {
  process.env.FTP_MALLOC_TRIM = '0';
  try {
    expect(trimHeap()).toBeNull();
    expect(trimHeapUnavailableReason()).toBe('turned off by FTP_MALLOC_TRIM=0');
  } finally {
    delete process.env.FTP_MALLOC_TRIM;
  }
});

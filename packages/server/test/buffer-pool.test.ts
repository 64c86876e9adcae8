import { TRANSFER_CHUNK_SIZE } from '@ftp/vfs';
import { expect, it } from 'vitest';
import { BIG_CHUNK_SIZE, FIRST_UPLOAD_SIZE, MAX_BIG_IN_USE, releaseBuffer, takeBuffer, takeFirstUploadBuffer } from '../src/data/buffer-pool.js';

it('big-file buffers are 1 MiB, small ones 256 KiB, and each size is reused only as itself', () => {
  const big = takeBuffer(true);
  const small = takeBuffer();
  expect(big.length).toBe(BIG_CHUNK_SIZE);
  expect(small.length).toBe(TRANSFER_CHUNK_SIZE);
  releaseBuffer(big);
  releaseBuffer(small);
  expect(takeBuffer()).toBe(small);
  expect(takeBuffer(true)).toBe(big);
  releaseBuffer(big);
});

it('past MAX_BIG_IN_USE big buffers out, big requests get small buffers, until big ones come back', () => {
  const bigs = Array.from({ length: MAX_BIG_IN_USE }, () => takeBuffer(true));
  expect(bigs.every((b) => b.length === BIG_CHUNK_SIZE)).toBe(true);
  const over = takeBuffer(true);
  expect(over.length).toBe(TRANSFER_CHUNK_SIZE);
  releaseBuffer(over);
  releaseBuffer(bigs.pop()!);
  const again = takeBuffer(true);
  expect(again.length).toBe(BIG_CHUNK_SIZE);
  for (const b of [again, ...bigs]) releaseBuffer(b);
});

it('first-upload buffers are 64 KiB, reused as themselves, never handed out for a 256 KiB request', () => {
  const first = takeFirstUploadBuffer();
  expect(first.length).toBe(FIRST_UPLOAD_SIZE);
  releaseBuffer(first);
  const chunk = takeBuffer();
  expect(chunk.length).toBe(TRANSFER_CHUNK_SIZE);
  expect(takeFirstUploadBuffer()).toBe(first);
  releaseBuffer(chunk);
  releaseBuffer(first);
});

it('a burst of downloads that had 200 buffers out gets all 200 back next time, none allocated anew', () => {
  const first = Array.from({ length: 200 }, () => takeBuffer());
  for (const b of first) releaseBuffer(b);
  const known = new Set(first);
  const again = Array.from({ length: 200 }, () => takeBuffer());
  expect(again.filter((b) => known.has(b)).length).toBe(200);
  for (const b of again) releaseBuffer(b);
});

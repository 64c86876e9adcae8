import { TRANSFER_CHUNK_SIZE } from '@ftp/vfs';
import { expect, it } from 'vitest';
import { BIG_CHUNK_SIZE, releaseBuffer, takeBuffer } from '../src/data/buffer-pool.js';

it('big-file buffers are 1 MiB, small ones 256 KiB, and each size is reused only as itself', () => {
  const big = takeBuffer(true);
  const small = takeBuffer();
  expect(big.length).toBe(BIG_CHUNK_SIZE);
  expect(small.length).toBe(TRANSFER_CHUNK_SIZE);
  releaseBuffer(big);
  releaseBuffer(small);
  expect(takeBuffer()).toBe(small);
  expect(takeBuffer(true)).toBe(big);
});

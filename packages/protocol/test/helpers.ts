import { expect } from 'vitest';
import { ProtocolError } from '../src/index.js';
import type { ProtocolErrorCode } from '../src/index.js';

/** Assert that `fn` throws a ProtocolError with `code`. */
export function expectProtocolError(fn: () => unknown, code: ProtocolErrorCode): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected a ProtocolError to be thrown').toBeDefined();
  expect(ProtocolError.isInstance(thrown), `expected a ProtocolError, got ${String(thrown)}`).toBe(true);
  expect((thrown as ProtocolError).code).toBe(code);
}

/** Bytes from a string where each char code is one byte (`\xff` is 0xFF). */
export function bytes(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

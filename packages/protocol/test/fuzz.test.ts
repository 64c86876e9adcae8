/**
 * Fuzz-like properties, in the spirit of mqtt-packet's fuzz script: whatever
 * they are fed, the public functions return or throw a ProtocolError —
 * never a TypeError, RangeError or anything else — and never hang.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';
import { ProtocolError } from '../src/index.js';

type AnyFn = (...args: unknown[]) => unknown;

/** Call `fn`; only a ProtocolError may escape. */
function mustNotCrash(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!ProtocolError.isInstance(err)) {
      throw new Error(`threw something else than a ProtocolError: ${String(err)}`, { cause: err });
    }
  }
}

const fns = api as unknown as Record<string, AnyFn>;
const functionNames = Object.keys(api).filter(
  (k) => typeof fns[k] === 'function' && !/^[A-Z]/.test(k), // classes are fuzzed separately
);

// Strings that look almost right, to get past the first checks.
const nearMiss = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.constantFrom('0', '1', '9', ',', '|', ' ', '.', '-', ';', '=', '"', ':', 'A', 'a', 'R', '\r', '\n', '\u0000', 'ÿ', '𝟘', '٣') }),
  fc.constantFrom('|1|1.2.3.4|21|', '|2|::1|21|', '1,2,3,4,5,6', '20240229120000.5', 'L 8', 'A N', 'MLST type;', '1 0', '755 f'),
);
const value = fc.oneof(nearMiss, fc.anything({ withDate: true, withBigInt: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true, withSparseArray: true, withBoxedValues: true }), fc.double(), fc.integer());

describe('every public function only ever throws ProtocolError', () => {
  it('finds the functions to fuzz', () => {
    expect(functionNames.length).toBeGreaterThan(30);
  });

  it.each(functionNames)('%s', (name) => {
    const fn = fns[name] as AnyFn;
    fc.assert(
      fc.property(fc.array(value, { maxLength: Math.max(1, fn.length) + 1 }), (args) => {
        mustNotCrash(() => fn(...args));
      }),
      { numRuns: 300 },
    );
  });

  it('parsers stay fast on huge inputs', () => {
    const huge = [
      '1,'.repeat(300_000),
      '9'.repeat(600_000),
      ' '.repeat(600_000),
      `|1|${'1'.repeat(600_000)}|21|`,
      `(${'|'.repeat(600_000)}`,
      `${'"'.repeat(600_001)}`,
      '1 '.repeat(300_000),
      `20240102150405.${'9'.repeat(600_000)}`,
      'a;'.repeat(300_000),
    ];
    // CPU time, not wall time: a loaded machine (a CI run beside other work) took 5.4 s of wall time once. A
    // quadratic parser would take minutes on these inputs.
    const started = process.cpuUsage();
    for (const name of functionNames) {
      for (const s of huge) mustNotCrash(() => (fns[name] as AnyFn)(s));
    }
    const used = process.cpuUsage(started);
    expect((used.user + used.system) / 1000).toBeLessThan(5000);
  });
});

describe('classes only ever throw ProtocolError', () => {
  it('LineReader', () => {
    fc.assert(
      fc.property(value, fc.array(fc.oneof(value, fc.uint8Array({ maxLength: 64 })), { maxLength: 5 }), (options, chunks) => {
        mustNotCrash(() => {
          const reader = new api.LineReader(options as api.LineReaderOptions);
          for (const c of chunks) mustNotCrash(() => reader.push(c as Buffer));
          expect(reader.bufferedBytes).toBeLessThanOrEqual(4097 + 2 ** 30);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('ReplyParser', () => {
    fc.assert(
      fc.property(value, fc.array(fc.oneof(value, fc.uint8Array({ maxLength: 64 })), { maxLength: 5 }), (options, chunks) => {
        mustNotCrash(() => {
          const parser = new api.ReplyParser(options as api.ReplyParserOptions);
          for (const c of chunks) mustNotCrash(() => parser.push(c as Buffer));
        });
      }),
      { numRuns: 300 },
    );
  });

  it('AsciiEncoder and AsciiDecoder', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(value, fc.uint8Array({ maxLength: 64 })), { maxLength: 5 }), (chunks) => {
        const enc = new api.AsciiEncoder();
        const dec = new api.AsciiDecoder();
        for (const c of chunks) {
          mustNotCrash(() => enc.push(c as Buffer));
          mustNotCrash(() => dec.push(c as Buffer));
        }
        expect(Buffer.isBuffer(dec.flush())).toBe(true);
        expect(Buffer.isBuffer(enc.flush())).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('LineReader never throws on bytes and keeps bufferedBytes ≤ maxLineLength + 1', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.array(fc.uint8Array({ maxLength: 500 }), { maxLength: 10 }), (max, chunks) => {
        const reader = new api.LineReader({ maxLineLength: max });
        for (const c of chunks) {
          reader.push(Buffer.from(c));
          expect(reader.bufferedBytes).toBeLessThanOrEqual(max + 1);
        }
      }),
      { numRuns: 300 },
    );
  });
});

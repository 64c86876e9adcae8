import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeEscaped, encodeEscaped, escapedByteLength, hasByteEscapes, hexForEscapes, latin1ForEscapes } from '../src/index.js';

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('byte escapes (PEP 383)', () => {
  it('leaves valid UTF-8 as it is, U+FFFD included', () => {
    for (const s of ['', 'plain.txt', 'été/日本語 🎉', 'a\ufffdb', '\ufeffbom']) {
      expect(decodeEscaped(Buffer.from(s, 'utf8'))).toBe(s);
      expect(hasByteEscapes(s)).toBe(false);
      expect(encodeEscaped(s).equals(Buffer.from(s, 'utf8'))).toBe(true);
    }
  });

  it('escapes each byte that is not part of valid UTF-8', () => {
    expect(decodeEscaped(bytes('caf\xe9.txt'))).toBe('caf\udce9.txt');
    // overlong, surrogate, above U+10FFFF, truncated, lone continuation
    expect(decodeEscaped(bytes('\xc0\xaf'))).toBe('\udcc0\udcaf');
    expect(decodeEscaped(bytes('\xed\xa0\x80'))).toBe('\udced\udca0\udc80');
    expect(decodeEscaped(bytes('\xf4\x90\x80\x80'))).toBe('\udcf4\udc90\udc80\udc80');
    expect(decodeEscaped(bytes('ab\xe2\x82'))).toBe('ab\udce2\udc82');
    expect(decodeEscaped(bytes('\x80x'))).toBe('\udc80x');
    expect(decodeEscaped(bytes('\xc3\xa9\xe9'))).toBe('é\udce9');
  });

  it('decodes a range of a buffer', () => {
    expect(decodeEscaped(bytes('xx\xe9yy'), 2, 3)).toBe('\udce9');
    expect(decodeEscaped(bytes('xx\xc3\xa9\xe9'), 2, 4)).toBe('é');
  });

  it('encodes escapes back to their bytes, and pairs as characters', () => {
    expect(encodeEscaped('caf\udce9.txt').equals(bytes('caf\xe9.txt'))).toBe(true);
    // U+10080 is the pair D800 DC80: a character, not an escape
    expect(hasByteEscapes('\u{10080}')).toBe(false);
    expect(encodeEscaped('\u{10080}\udc80').equals(Buffer.concat([Buffer.from('\u{10080}', 'utf8'), bytes('\x80')]))).toBe(true);
  });

  it('round-trips any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (raw) => {
        const text = decodeEscaped(raw);
        expect(encodeEscaped(text).equals(Buffer.from(raw))).toBe(true);
        expect(escapedByteLength(text)).toBe(raw.length);
        expect(hasByteEscapes(text)).toBe(!Buffer.from(raw).equals(Buffer.from(Buffer.from(raw).toString('utf8'), 'utf8')) ? true : false);
      }),
      { numRuns: 2000 },
    );
  });

  it('turns escapes into Latin-1 characters for UTF-8-only storage', () => {
    expect(latin1ForEscapes('caf\udce9/\u{10080}')).toBe('café/\u{10080}');
    expect(latin1ForEscapes('plain')).toBe('plain');
  });

  it('writes escapes out as \\xNN for log lines, leaving surrogate pairs and plain text as they are', () => {
    expect(hexForEscapes('caf\udce9/\udc80/\u{10080}')).toBe('caf\\xE9/\\x80/\u{10080}');
    expect(hexForEscapes('plain')).toBe('plain');
  });
});

import { describe, expect, it } from 'vitest';
import { AsciiDecoder, AsciiEncoder } from '../src/index.js';
import { expectProtocolError } from './helpers.js';

function encode(chunks: string[]): string {
  const enc = new AsciiEncoder();
  return chunks.map((c) => enc.push(Buffer.from(c, 'latin1')).toString('latin1')).join('') + enc.flush().toString('latin1');
}

function decode(chunks: string[]): string {
  const dec = new AsciiDecoder();
  return chunks.map((c) => dec.push(Buffer.from(c, 'latin1')).toString('latin1')).join('') + dec.flush().toString('latin1');
}

describe('AsciiEncoder (local → network)', () => {
  it.each([
    ['a\nb\n', 'a\r\nb\r\n'],
    ['\n\n', '\r\n\r\n'],
    ['a\r\nb', 'a\r\nb'],
    ['a\rb', 'a\rb'],
    ['a\r\r\n', 'a\r\r\n'],
    ['no newline', 'no newline'],
    ['', ''],
  ])('%j → %j', (input, expected) => {
    expect(encode([input])).toBe(expected);
  });

  it('keeps a CRLF split across chunks', () => {
    expect(encode(['a\r', '\nb'])).toBe('a\r\nb');
    expect(encode(['a', '\nb'])).toBe('a\r\nb');
    expect(encode(['a\r', '', '\n'])).toBe('a\r\n');
    expect(encode(['a\r', 'x', '\n'])).toBe('a\rx\r\n');
  });

  it('returns the same buffer when there is nothing to convert', () => {
    const enc = new AsciiEncoder();
    const plain = Buffer.from('hello world');
    expect(enc.push(plain)).toBe(plain);
    const crlf = Buffer.from('a\r\nb\r\n');
    expect(enc.push(crlf)).toBe(crlf);
  });

  it('rejects non-buffers', () => {
    expectProtocolError(() => new AsciiEncoder().push('x' as unknown as Buffer), 'BAD_ARGUMENT');
  });
});

describe('AsciiDecoder (network → local)', () => {
  it.each([
    ['a\r\nb\r\n', 'a\nb\n'],
    ['a\rb', 'a\rb'],
    ['a\nb', 'a\nb'],
    ['\r\r\n', '\r\n'],
    ['\r\n\r\n', '\n\n'],
    ['plain', 'plain'],
  ])('%j → %j', (input, expected) => {
    expect(decode([input])).toBe(expected);
  });

  it('holds a CR at the end of a chunk until it knows what follows', () => {
    const dec = new AsciiDecoder();
    expect(dec.push(Buffer.from('a\r')).toString()).toBe('a');
    expect(dec.push(Buffer.from('\nb')).toString()).toBe('\nb');
    expect(dec.push(Buffer.from('c\r')).toString()).toBe('c');
    expect(dec.push(Buffer.from('d')).toString()).toBe('\rd');
    expect(dec.push(Buffer.from('\r')).toString()).toBe('');
    expect(dec.push(Buffer.alloc(0)).toString()).toBe('');
    expect(dec.push(Buffer.from('\r')).toString()).toBe('\r');
    expect(dec.flush().toString()).toBe('\r');
    expect(dec.flush().toString()).toBe('');
  });

  it('returns the same buffer when there is nothing to convert', () => {
    const dec = new AsciiDecoder();
    const plain = Buffer.from('hello\nworld');
    expect(dec.push(plain)).toBe(plain);
  });

  it('rejects non-buffers', () => {
    expectProtocolError(() => new AsciiDecoder().push(1 as unknown as Buffer), 'BAD_ARGUMENT');
  });
});

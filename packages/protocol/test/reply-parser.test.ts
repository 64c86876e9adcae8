import { describe, expect, it } from 'vitest';
import { formatReply, ReplyParser } from '../src/index.js';
import type { Reply } from '../src/index.js';
import { expectProtocolError } from './helpers.js';

const reply = (code: number, lines: string[]): Reply => ({ code, lines, text: lines.join('\n') });

function parseAll(chunks: (string | Buffer)[]): Reply[] {
  const parser = new ReplyParser();
  return chunks.flatMap((c) => parser.push(c));
}

describe('ReplyParser', () => {
  it('parses single-line replies', () => {
    expect(parseAll(['220 ready\r\n331 Password required\r\n'])).toEqual([
      reply(220, ['ready']),
      reply(331, ['Password required']),
    ]);
  });

  it('parses the RFC 959 §4.2 multi-line example', () => {
    const wire = '123-First line\r\nSecond line\r\n  234 A line beginning with numbers\r\n123 The last line\r\n';
    expect(parseAll([wire])).toEqual([
      reply(123, ['First line', 'Second line', '  234 A line beginning with numbers', 'The last line']),
    ]);
  });

  it('does not end a multi-line reply on another code or on "code-"', () => {
    const wire = '211-Status\r\n212 not the end\r\n211-still not\r\n211 End\r\n';
    expect(parseAll([wire])).toEqual([reply(211, ['Status', '212 not the end', '211-still not', 'End'])]);
  });

  it('accepts a last line that is the bare code, and an empty text', () => {
    expect(parseAll(['211-a\r\n211\r\n200\r\n200 \r\n'])).toEqual([reply(211, ['a', '']), reply(200, ['']), reply(200, [''])]);
  });

  it('skips lines that are not replies outside a multi-line reply', () => {
    expect(parseAll(['garbage\r\n99 no\r\n1234 no\r\n226 ok\r\n'])).toEqual([reply(226, ['ok'])]);
  });

  it('handles bare LF and UTF-8', () => {
    expect(parseAll([Buffer.from('257 "/été" created\n')])).toEqual([reply(257, ['"/été" created'])]);
  });

  it('gives the same replies however the stream is split', () => {
    const wire = Buffer.from(
      formatReply(211, ['Features:', ' MDTM', ' UTF8', 'End']) + formatReply(257, '"/日本" ok') + formatReply(226, 'x'),
    );
    const expected = [reply(211, ['Features:', ' MDTM', ' UTF8', 'End']), reply(257, ['"/日本" ok']), reply(226, ['x'])];
    for (let i = 0; i <= wire.length; i++) {
      expect(parseAll([wire.subarray(0, i), wire.subarray(i)]), `split at ${i}`).toEqual(expected);
    }
    expect(parseAll(Array.from(wire, (b) => Buffer.from([b])))).toEqual(expected);
  });

  it('rejects non-data chunks', () => {
    expectProtocolError(() => new ReplyParser().push(12 as unknown as string), 'BAD_ARGUMENT');
  });

  it('keeps bytes that are not UTF-8 as byte escapes, from bytes and from text alike', () => {
    const raw = Buffer.concat([Buffer.from('257 "/d'), Buffer.from([0xe9, 0xff, 0xff]), Buffer.from('" created\r\n')]);
    // 0xFF arrives doubled (Telnet's IAC IAC), as RFC 959 wants it on the control connection
    expect(new ReplyParser().push(raw)).toEqual([{ code: 257, lines: ['"/d\udce9\udcff" created'], text: '"/d\udce9\udcff" created' }]);
    expect(new ReplyParser().push('257 "/d\udce9" created\r\n')[0]?.text).toBe('"/d\udce9" created');
  });
});

describe('ReplyParser and bare CRs', () => {
  it('a reply line holding a bare CR ends there and the reply is not lost', () => {
    const parser = new ReplyParser();
    expect(parser.push('200 ok\rtrailing\r\n')).toEqual([{ code: 200, lines: ['ok'], text: 'ok' }]);
    expect(parser.push('211-a\rb\r\n211 End\r\n')).toEqual([{ code: 211, lines: ['a', 'b', 'End'], text: 'a\nb\nEnd' }]);
  });
});

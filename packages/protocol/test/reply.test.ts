import { describe, expect, it } from 'vitest';
import { formatReply, formatReplyPiece, quotePath, ReplyCode, unquotePath } from '../src/index.js';
import { expectProtocolError } from './helpers.js';

describe('formatReply', () => {
  it('formats a single-line reply (RFC 959 §4.2)', () => {
    expect(formatReply(200, 'Command okay.')).toBe('200 Command okay.\r\n');
    expect(formatReply(ReplyCode.ServiceReady, 'ready')).toBe('220 ready\r\n');
    expect(formatReply(500, ['one'])).toBe('500 one\r\n');
  });

  it('formats an empty text as the code and a space', () => {
    expect(formatReply(200, '')).toBe('200 \r\n');
    expect(formatReply(200, [])).toBe('200 \r\n');
    expect(formatReply(200, [''])).toBe('200 \r\n');
  });

  it('formats a multi-line reply (RFC 959 §4.2 example)', () => {
    expect(formatReply(123, ['First line', 'Second line', '234 A line beginning with numbers', 'The last line'])).toBe(
      '123-First line\r\nSecond line\r\n 234 A line beginning with numbers\r\n123 The last line\r\n',
    );
  });

  it('keeps FEAT lines with their single leading space (RFC 2389 §3.2)', () => {
    expect(formatReply(211, ['Extensions supported:', ' MDTM', ' SIZE', ' MLST type*;size*;', 'End'])).toBe(
      '211-Extensions supported:\r\n MDTM\r\n SIZE\r\n MLST type*;size*;\r\n211 End\r\n',
    );
  });

  it('pads every middle line that begins with a digit, not only with a code', () => {
    expect(formatReply(211, ['a', '1', '211 x', '9abc', 'z'])).toBe('211-a\r\n 1\r\n 211 x\r\n 9abc\r\n211 z\r\n');
  });

  it('does not pad the first and last lines', () => {
    expect(formatReply(211, ['123 first', '456 last'])).toBe('211-123 first\r\n211 456 last\r\n');
  });

  it('splits text on CR, LF and CRLF so that no reply line can be forged', () => {
    expect(formatReply(550, 'No such file: evil\r\n230 Logged in')).toBe('550-No such file: evil\r\n550 230 Logged in\r\n');
    expect(formatReply(550, 'a\r\n230 x\rb\nc')).toBe('550-a\r\n 230 x\r\nb\r\n550 c\r\n');
    expect(formatReply(550, ['x\n226 done', 'end'])).toBe('550-x\r\n 226 done\r\n550 end\r\n');
    // NUL too (FileZilla and WinSCP end a line at it), and a line that begins with the byte 0xFF (IAC IAC on the
    // wire, which Telnet readers drop before the code) is padded.
    expect(formatReply(501, 'Option FOO\x00226 x\x00y not understood.')).toBe('501-Option FOO\r\n 226 x\r\n501 y not understood.\r\n');
    expect(formatReply(550, 'a\n\udcff220 forged\nb')).toBe('550-a\r\n \udcff220 forged\r\n550 b\r\n');
  });

  it('rejects bad codes and texts with ProtocolError', () => {
    for (const code of [99, 700, 200.5, Number.NaN, '200' as unknown as number]) {
      expectProtocolError(() => formatReply(code, 'x'), 'BAD_ARGUMENT');
    }
    expectProtocolError(() => formatReply(200, 5 as unknown as string), 'BAD_ARGUMENT');
    expectProtocolError(() => formatReply(200, ['a', 5] as unknown as string[]), 'BAD_ARGUMENT');
  });
});

describe('quotePath / unquotePath (RFC 959 Appendix II)', () => {
  it('quotes and doubles embedded quotes', () => {
    // RFC 959 Appendix II: MKD foo"bar → 257 "/usr/dm/foo""bar" directory created
    expect(quotePath('/usr/dm/foo"bar')).toBe('"/usr/dm/foo""bar"');
    expect(quotePath('/')).toBe('"/"');
    expect(quotePath('')).toBe('""');
    expect(quotePath('""')).toBe('""""""');
  });

  it('unquotes a 257 reply text, ignoring the commentary', () => {
    expect(unquotePath('"/usr/dm/foo""bar" directory created')).toBe('/usr/dm/foo"bar');
    expect(unquotePath('257 "/home/ftp" is the current directory')).toBe('/home/ftp');
    expect(unquotePath('""')).toBe('');
    expect(unquotePath('"a ""b"" c"')).toBe('a "b" c');
  });

  it('rejects text without a complete quoted path', () => {
    expectProtocolError(() => unquotePath('no quotes'), 'BAD_ARGUMENT');
    expectProtocolError(() => unquotePath('"unterminated'), 'BAD_ARGUMENT');
    expectProtocolError(() => unquotePath('"a""'), 'BAD_ARGUMENT');
    expectProtocolError(() => quotePath(1 as unknown as string), 'BAD_ARGUMENT');
  });
});

describe('formatReplyPiece', () => {
  it('pieces put together are formatReply of all their lines, however the lines are cut', () => {
    const lines = ['Status of /x:', '-rw-r--r-- 1 a b 0 Jan 01 00:00 f', '123 starts with digits', 'two\r\nlines', '', 'caf\udce9', 'End of status'];
    for (let cut1 = 1; cut1 < lines.length; cut1++) {
      for (let cut2 = cut1; cut2 < lines.length; cut2++) {
        const text =
          formatReplyPiece(213, lines.slice(0, cut1), 'first') + formatReplyPiece(213, lines.slice(cut1, cut2), 'middle') + formatReplyPiece(213, lines.slice(cut2), 'last');
        expect(text).toBe(formatReply(213, lines));
      }
    }
  });

  it('refuses a first or last piece without a line, and bad codes', () => {
    expect(formatReplyPiece(213, [], 'middle')).toBe('');
    expectProtocolError(() => formatReplyPiece(213, [], 'first'), 'BAD_ARGUMENT');
    expectProtocolError(() => formatReplyPiece(213, [], 'last'), 'BAD_ARGUMENT');
    expectProtocolError(() => formatReplyPiece(99, ['x'], 'first'), 'BAD_ARGUMENT');
  });
});

import { describe, expect, it } from 'vitest';
import {
  formatEprt,
  formatEpsvReplyText,
  formatHostPort,
  formatPasvReplyText,
  parseEprt,
  parseEpsvArg,
  parseEpsvReply,
  parseHostPort,
  parsePasvReply,
} from '../src/index.js';
import { expectProtocolError } from './helpers.js';

describe('PORT / PASV (RFC 959 §4.1.2)', () => {
  it('parses h1,h2,h3,h4,p1,p2', () => {
    expect(parseHostPort('192,168,1,2,19,137')).toEqual({ host: '192.168.1.2', port: 19 * 256 + 137 });
    expect(parseHostPort('127,0,0,1,0,21')).toEqual({ host: '127.0.0.1', port: 21 });
    expect(parseHostPort('255,255,255,255,255,255')).toEqual({ host: '255.255.255.255', port: 65535 });
  });

  it('tolerates whitespace around the numbers', () => {
    expect(parseHostPort(' 10, 0 ,0,1,4,1 ')).toEqual({ host: '10.0.0.1', port: 1025 });
  });

  it('normalises leading zeros', () => {
    expect(parseHostPort('010,000,0,1,04,001')).toEqual({ host: '10.0.0.1', port: 1025 });
  });

  it.each([
    '',
    '1,2,3,4,5',
    '1,2,3,4,5,6,7',
    '256,0,0,1,4,1',
    '1,2,3,4,256,1',
    '1,2,3,4,0,0',
    '1,2,3,-4,5,6',
    '1,2,3,4,5,6.0',
    '1,2,3,4,5,0x6',
    '1,2,3,4,,6',
    '1 2 3 4 5 6',
    '(1,2,3,4,5,6)',
    '1,2,3,4,5,1000',
    '１,2,3,4,5,6',
  ])('rejects %j', (arg) => {
    expectProtocolError(() => parseHostPort(arg), 'BAD_ARGUMENT');
  });

  it('formats host and port', () => {
    expect(formatHostPort('192.168.1.2', 5001)).toBe('192,168,1,2,19,137');
    expect(formatHostPort('::ffff:10.0.0.1', 65535)).toBe('10,0,0,1,255,255');
    expect(formatHostPort('::FFFF:10.0.0.1', 256)).toBe('10,0,0,1,1,0');
    expect(formatPasvReplyText('127.0.0.1', 1025)).toBe('Entering Passive Mode (127,0,0,1,4,1).');
  });

  it.each([
    ['::1', 21],
    ['example.com', 21],
    ['1.2.3.256', 21],
    ['1.2.3.4', 0],
    ['1.2.3.4', 65536],
    ['1.2.3.4', 21.5],
  ])('refuses to format %s port %d', (host, port) => {
    expectProtocolError(() => formatHostPort(host, port), 'BAD_ARGUMENT');
  });

  it('parses a 227 reply, wherever the numbers are', () => {
    expect(parsePasvReply('227 Entering Passive Mode (192,168,1,2,19,137).')).toEqual({ host: '192.168.1.2', port: 5001 });
    expect(parsePasvReply('Entering Passive Mode 10,0,0,1,4,1')).toEqual({ host: '10.0.0.1', port: 1025 });
    expect(parsePasvReply('227 =127,0,0,1,0,21')).toEqual({ host: '127.0.0.1', port: 21 });
    expect(parsePasvReply('227 ok (10, 0, 0, 1, 4, 1)')).toEqual({ host: '10.0.0.1', port: 1025 });
    expectProtocolError(() => parsePasvReply('227 Entering Passive Mode'), 'BAD_ARGUMENT');
    expectProtocolError(() => parsePasvReply('227 (1,2,3,4,5)'), 'BAD_ARGUMENT');
    expectProtocolError(() => parsePasvReply('227 (1,2,3,4,300,1)'), 'BAD_ARGUMENT');
    expectProtocolError(() => parsePasvReply('227 (1234,2,3,4,5,6)'), 'BAD_ARGUMENT');
  });
});

describe('EPRT (RFC 2428 §2)', () => {
  it('parses the RFC examples', () => {
    expect(parseEprt('|1|132.235.1.2|6275|')).toEqual({ family: 4, host: '132.235.1.2', port: 6275 });
    expect(parseEprt('|2|1080::8:800:200C:417A|5282|')).toEqual({ family: 6, host: '1080::8:800:200C:417A', port: 5282 });
  });

  it('accepts any delimiter in ASCII 33-126', () => {
    expect(parseEprt('!1!10.0.0.1!21!')).toEqual({ family: 4, host: '10.0.0.1', port: 21 });
    expect(parseEprt('~2~::1~1025~')).toEqual({ family: 6, host: '::1', port: 1025 });
    expect(parseEprt(' |1|10.0.0.1|21| ')).toEqual({ family: 4, host: '10.0.0.1', port: 21 });
    // Leading zeros, as PORT takes them in its numbers; the value still counts (65536 written 0065536 is refused).
    expect(parseEprt('|1|10.0.0.1|0005000|')).toEqual({ family: 4, host: '10.0.0.1', port: 5000 });
  });

  it('answers UNSUPPORTED_NETWORK for other network protocols (server replies 522)', () => {
    expectProtocolError(() => parseEprt('|3|1.2.3.4|21|'), 'UNSUPPORTED_NETWORK');
    expectProtocolError(() => parseEprt('|0|1.2.3.4|21|'), 'UNSUPPORTED_NETWORK');
  });

  it.each([
    '',
    '1|1.2.3.4|21|',
    ' 1 1.2.3.4 21 ',
    '|1|1.2.3.4|21',
    '|1|1.2.3.4|21||',
    '|x|1.2.3.4|21|',
    '|1|::1|21|',
    '|2|1.2.3.4|21|',
    '|2|fe80::1%eth0|21|',
    '|1|1.2.3|21|',
    '|1|1.2.3.4|0|',
    '|1|1.2.3.4|65536|',
    '|1|1.2.3.4|0065536|',
    '|1|1.2.3.4|000000|',
    '|1|1.2.3.4|123456|',
    '|1|1.2.3.4|-1|',
    '|1|1.2.3.4||',
    ':2:::1:21:',
    '\u00e91\u00e91.2.3.4\u00e921\u00e9',
  ])('rejects %j', (arg) => {
    expectProtocolError(() => parseEprt(arg), 'BAD_ARGUMENT');
  });

  it('formats', () => {
    expect(formatEprt(4, '132.235.1.2', 6275)).toBe('|1|132.235.1.2|6275|');
    expect(formatEprt(6, '1080::8:800:200C:417A', 5282)).toBe('|2|1080::8:800:200C:417A|5282|');
    expect(formatEprt(4, '::ffff:1.2.3.4', 21)).toBe('|1|1.2.3.4|21|');
    expectProtocolError(() => formatEprt(6, '1.2.3.4', 21), 'BAD_ARGUMENT');
    expectProtocolError(() => formatEprt(5 as 4, '1.2.3.4', 21), 'BAD_ARGUMENT');
  });
});

describe('EPSV (RFC 2428 §3)', () => {
  it('formats and parses the 229 reply', () => {
    expect(formatEpsvReplyText(6446)).toBe('Entering Extended Passive Mode (|||6446|)');
    expect(parseEpsvReply('229 Entering Extended Passive Mode (|||6446|)')).toBe(6446);
    expect(parseEpsvReply('Entering Extended Passive Mode (!!!21!)')).toBe(21);
    expectProtocolError(() => parseEpsvReply('229 (||6446|)'), 'BAD_ARGUMENT');
    expectProtocolError(() => parseEpsvReply('229 (|!|6446|)'), 'BAD_ARGUMENT');
    expectProtocolError(() => parseEpsvReply('229 (|||0|)'), 'BAD_ARGUMENT');
    expectProtocolError(() => parseEpsvReply('229 (|||70000|)'), 'BAD_ARGUMENT');
    expectProtocolError(() => formatEpsvReplyText(0), 'BAD_ARGUMENT');
  });

  it.each([
    ['', { kind: 'any' }],
    ['  ', { kind: 'any' }],
    ['ALL', { kind: 'all' }],
    ['all', { kind: 'all' }],
    [' All ', { kind: 'all' }],
    ['1', { kind: 'family', family: 4 }],
    ['2', { kind: 'family', family: 6 }],
  ])('parses the argument %j', (arg, expected) => {
    expect(parseEpsvArg(arg)).toEqual(expected);
  });

  it('answers UNSUPPORTED_NETWORK for other protocol numbers and BAD_ARGUMENT for garbage', () => {
    expectProtocolError(() => parseEpsvArg('3'), 'UNSUPPORTED_NETWORK');
    expectProtocolError(() => parseEpsvArg('99999999999'), 'UNSUPPORTED_NETWORK');
    expectProtocolError(() => parseEpsvArg('ALLX'), 'BAD_ARGUMENT');
    expectProtocolError(() => parseEpsvArg('|1|'), 'BAD_ARGUMENT');
    expectProtocolError(() => parseEpsvArg('-1'), 'BAD_ARGUMENT');
  });
});

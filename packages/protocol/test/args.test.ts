import { describe, expect, it } from 'vitest';
import {
  formatFtpTime,
  formatHashFeat,
  formatHashReplyText,
  parseAllo,
  parseFtpTime,
  parseHashAlgorithm,
  parseHashRange,
  parseMfmt,
  parseSiteUtime,
  parseMode,
  parseOpts,
  parseRestOffset,
  parseSiteChmod,
  parseSiteCommand,
  parseStru,
  parseType,
} from '../src/index.js';
import { expectProtocolError } from './helpers.js';

describe('parseType (RFC 959 §4.1.2)', () => {
  it.each([
    ['A', { type: 'A' }],
    ['a', { type: 'A' }],
    ['A N', { type: 'A' }],
    ['a n', { type: 'A' }],
    [' A  N ', { type: 'A' }],
    ['I', { type: 'I' }],
    ['i', { type: 'I' }],
    ['L 8', { type: 'L', byteSize: 8 }],
    ['l 8', { type: 'L', byteSize: 8 }],
    ['L 08', { type: 'L', byteSize: 8 }],
  ])('accepts %j', (arg, expected) => {
    expect(parseType(arg)).toEqual(expected);
  });

  it.each(['A T', 'A C', 'E', 'E N', 'e t', 'L 16', 'L 36', 'L 7'])('%j is UNSUPPORTED (504)', (arg) => {
    expectProtocolError(() => parseType(arg), 'UNSUPPORTED');
  });

  it.each(['', 'X', 'AN', 'A X', 'A N N', 'I N', 'L', 'L x', 'L 0', 'L -8', 'L 8 8', 'Image', 'E X'])('%j is BAD_ARGUMENT (501)', (arg) => {
    expectProtocolError(() => parseType(arg), 'BAD_ARGUMENT');
  });
});

describe('parseMode / parseStru', () => {
  it('accepts stream and deflate modes, case-insensitive', () => {
    expect(parseMode('S')).toBe('S');
    expect(parseMode('s')).toBe('S');
    expect(parseMode('z ')).toBe('Z');
  });

  it('answers UNSUPPORTED for block and compressed modes, BAD_ARGUMENT otherwise', () => {
    expectProtocolError(() => parseMode('B'), 'UNSUPPORTED');
    expectProtocolError(() => parseMode('c'), 'UNSUPPORTED');
    expectProtocolError(() => parseMode(''), 'BAD_ARGUMENT');
    expectProtocolError(() => parseMode('X'), 'BAD_ARGUMENT');
    expectProtocolError(() => parseMode('S S'), 'BAD_ARGUMENT');
  });

  it('accepts file structure only', () => {
    expect(parseStru('F')).toBe('F');
    expect(parseStru('f')).toBe('F');
    expectProtocolError(() => parseStru('R'), 'UNSUPPORTED');
    expectProtocolError(() => parseStru('p'), 'UNSUPPORTED');
    expectProtocolError(() => parseStru('Q'), 'BAD_ARGUMENT');
    expectProtocolError(() => parseStru(''), 'BAD_ARGUMENT');
  });
});

describe('parseRestOffset (RFC 3659 §5)', () => {
  it('accepts decimal offsets', () => {
    expect(parseRestOffset('0')).toBe(0);
    expect(parseRestOffset('1024')).toBe(1024);
    expect(parseRestOffset(' 42 ')).toBe(42);
    expect(parseRestOffset('0007')).toBe(7);
    expect(parseRestOffset(String(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
  });

  it.each(['', '-1', '+1', '1.5', '1e3', '0x10', 'abc', '1 2', '9007199254740992', '99999999999999999999999', '１２'])('rejects %j', (arg) => {
    expectProtocolError(() => parseRestOffset(arg), 'BAD_ARGUMENT');
  });
});

describe('parseAllo (RFC 959 §4.1.3)', () => {
  it('parses size and optional record size', () => {
    expect(parseAllo('1000')).toEqual({ size: 1000 });
    expect(parseAllo('1000 R 50')).toEqual({ size: 1000, record: 50 });
    expect(parseAllo(' 1000  r  50 ')).toEqual({ size: 1000, record: 50 });
  });

  it.each(['', 'R 50', '1000 R', '1000 50', '-5', '1000 X 50', '1e3'])('rejects %j', (arg) => {
    expectProtocolError(() => parseAllo(arg), 'BAD_ARGUMENT');
  });
});

describe('parseFtpTime / formatFtpTime (RFC 3659 §2.3)', () => {
  it('parses UTC time values with optional fractions', () => {
    expect(parseFtpTime('20240102150405').toISOString()).toBe('2024-01-02T15:04:05.000Z');
    expect(parseFtpTime('20240102150405.5').toISOString()).toBe('2024-01-02T15:04:05.500Z');
    expect(parseFtpTime('20240102150405.123').toISOString()).toBe('2024-01-02T15:04:05.123Z');
    expect(parseFtpTime('20240102150405.123999999').toISOString()).toBe('2024-01-02T15:04:05.123Z');
    expect(parseFtpTime('19980630235959').toISOString()).toBe('1998-06-30T23:59:59.000Z');
    expect(parseFtpTime('10000101000000').toISOString()).toBe('1000-01-01T00:00:00.000Z');
    expect(parseFtpTime('99991231235959.999').toISOString()).toBe('9999-12-31T23:59:59.999Z');
  });

  it('accepts February 29 in leap years only', () => {
    expect(parseFtpTime('20240229000000').toISOString()).toBe('2024-02-29T00:00:00.000Z');
    expect(parseFtpTime('20000229000000').toISOString()).toBe('2000-02-29T00:00:00.000Z');
    expectProtocolError(() => parseFtpTime('20230229000000'), 'BAD_ARGUMENT');
    expectProtocolError(() => parseFtpTime('19000229000000'), 'BAD_ARGUMENT');
  });

  it('maps a leap second to :59.999', () => {
    expect(parseFtpTime('19981231235960').toISOString()).toBe('1998-12-31T23:59:59.999Z');
  });

  it.each([
    '',
    '2024010215040',
    '202401021504050',
    '20240102150405.',
    '20240102150405.abc',
    '2024-01-02T15:04:05Z',
    '09990101000000',
    '20241301000000',
    '20240001000000',
    '20240100000000',
    '20240132000000',
    '20240431000000',
    '20240102240000',
    '20240102156000',
    '20240102150461',
    ' 20240102150405',
    '20240102150405 ',
    '２０２40102150405',
  ])('rejects %j', (s) => {
    expectProtocolError(() => parseFtpTime(s), 'BAD_ARGUMENT');
  });

  it('formats in UTC, with or without milliseconds', () => {
    const d = new Date(Date.UTC(2024, 0, 2, 15, 4, 5, 67));
    expect(formatFtpTime(d)).toBe('20240102150405');
    expect(formatFtpTime(d, true)).toBe('20240102150405.067');
    expect(formatFtpTime(d.getTime())).toBe('20240102150405');
    expect(formatFtpTime(0)).toBe('19700101000000');
  });

  it('refuses invalid dates and years outside 1000-9999', () => {
    expectProtocolError(() => formatFtpTime(new Date(Number.NaN)), 'BAD_ARGUMENT');
    expectProtocolError(() => formatFtpTime(Number.POSITIVE_INFINITY), 'BAD_ARGUMENT');
    expectProtocolError(() => formatFtpTime(Date.UTC(999, 11, 31)), 'BAD_ARGUMENT');
    expectProtocolError(() => formatFtpTime(Date.UTC(10000, 0, 1)), 'BAD_ARGUMENT');
  });

  it('parses MFMT arguments', () => {
    const { time, path } = parseMfmt('20240102150405 my file.txt');
    expect(time.toISOString()).toBe('2024-01-02T15:04:05.000Z');
    expect(path).toBe('my file.txt');
    expect(parseMfmt('20240102150405.5  spaced').path).toBe(' spaced');
    expectProtocolError(() => parseMfmt('20240102150405'), 'BAD_ARGUMENT');
    expectProtocolError(() => parseMfmt('20240102150405 '), 'BAD_ARGUMENT');
    expectProtocolError(() => parseMfmt('2024 file'), 'BAD_ARGUMENT');
  });

  it('parses both forms of SITE UTIME (ncftp and lftp: path first with three UTC times; ProFTPD: time first)', () => {
    const five = parseSiteUtime('my file.txt 20240101000000 20240102150405 20240103000000 UTC');
    expect(five.path).toBe('my file.txt');
    expect(five.time.toISOString()).toBe('2024-01-02T15:04:05.000Z');
    expect(parseSiteUtime('a 20240101000000 20240102150405 20240103000000 utc').path).toBe('a');
    const two = parseSiteUtime('20240102150405 my file.txt');
    expect(two).toEqual({ time: new Date('2024-01-02T15:04:05.000Z'), path: 'my file.txt' });
    expectProtocolError(() => parseSiteUtime('my file.txt'), 'BAD_ARGUMENT');
    expectProtocolError(() => parseSiteUtime('20240102150405'), 'BAD_ARGUMENT');
    expectProtocolError(() => parseSiteUtime('f 20240101000000 20241302000000 20240103000000 UTC'), 'BAD_ARGUMENT');
    expectProtocolError(() => parseSiteUtime(''), 'BAD_ARGUMENT');
  });

  it('takes a time to the minute (YYYYMMDDHHMM, seconds 0) in both forms, as ProFTPD does', () => {
    expect(parseSiteUtime('202401021504 my file.txt')).toEqual({ time: new Date('2024-01-02T15:04:00.000Z'), path: 'my file.txt' });
    const five = parseSiteUtime('my file.txt 202401010000 202401021504 20240103000000 UTC');
    expect(five).toEqual({ time: new Date('2024-01-02T15:04:00.000Z'), path: 'my file.txt' });
    // A name of digits after a full time is still a name.
    expect(parseSiteUtime('20240102150405 202401021504')).toEqual({ time: new Date('2024-01-02T15:04:05.000Z'), path: '202401021504' });
    expectProtocolError(() => parseSiteUtime('202401021504'), 'BAD_ARGUMENT');
    expectProtocolError(() => parseSiteUtime('2024010215 f'), 'BAD_ARGUMENT');
    expectProtocolError(() => parseSiteUtime('2024010215041 f'), 'BAD_ARGUMENT');
    expectProtocolError(() => parseSiteUtime('202413021504 f'), 'BAD_ARGUMENT');
  });
});

describe('parseOpts (RFC 2389 §4)', () => {
  it('splits the command name and its options', () => {
    expect(parseOpts('UTF8 ON')).toEqual({ name: 'UTF8', value: 'ON' });
    expect(parseOpts('mlst type;size;')).toEqual({ name: 'MLST', value: 'type;size;' });
    expect(parseOpts('HASH')).toEqual({ name: 'HASH', value: '' });
    expect(parseOpts('  hash SHA-256')).toEqual({ name: 'HASH', value: 'SHA-256' });
    expect(parseOpts('X  a b ')).toEqual({ name: 'X', value: ' a b ' });
  });

  it('needs a command name', () => {
    expectProtocolError(() => parseOpts(''), 'BAD_ARGUMENT');
    expectProtocolError(() => parseOpts('   '), 'BAD_ARGUMENT');
  });
});

describe('SITE', () => {
  it('splits a SITE command', () => {
    expect(parseSiteCommand('chmod 755 file')).toEqual({ verb: 'CHMOD', arg: '755 file' });
    expect(parseSiteCommand('HELP')).toEqual({ verb: 'HELP', arg: '' });
    expectProtocolError(() => parseSiteCommand(''), 'BAD_ARGUMENT');
  });

  it('parses SITE CHMOD arguments', () => {
    expect(parseSiteChmod('755 my file')).toEqual({ mode: 0o755, path: 'my file' });
    expect(parseSiteChmod('0644 x')).toEqual({ mode: 0o644, path: 'x' });
    expect(parseSiteChmod('4755  y ')).toEqual({ mode: 0o4755, path: ' y ' });
    for (const bad of ['', '755', '755 ', '888 x', '12345 x', 'rwx x', '-1 x']) {
      expectProtocolError(() => parseSiteChmod(bad), 'BAD_ARGUMENT');
    }
  });
});

describe('HASH (draft-bryan-ftpext-hash) and RANG (draft-bryan-ftp-range)', () => {
  it('parses RANG start end, the end inclusive', () => {
    expect(parseHashRange('0 49')).toEqual({ start: 0, end: 49 });
    expect(parseHashRange('0 0')).toEqual({ start: 0, end: 0 });
    expect(parseHashRange('100 100')).toEqual({ start: 100, end: 100 });
    expect(parseHashRange(' 5   10 ')).toEqual({ start: 5, end: 10 });
    expect(parseHashRange('5-10')).toEqual({ start: 5, end: 10 });
  });

  it('treats RANG 1 0 as a reset to the whole file', () => {
    expect(parseHashRange('1 0')).toEqual({ start: 0 });
  });

  it.each(['', '5', '10 5', '2 1', '-1 5', 'a b', '1 2 3', '1.5 2', '9007199254740992 9007199254740993'])('rejects %j', (arg) => {
    expectProtocolError(() => parseHashRange(arg), 'BAD_ARGUMENT');
  });

  it('parses algorithm names case-insensitively', () => {
    expect(parseHashAlgorithm('SHA-1')).toBe('SHA-1');
    expect(parseHashAlgorithm('sha-256')).toBe('SHA-256');
    expect(parseHashAlgorithm('Sha-512')).toBe('SHA-512');
    expect(parseHashAlgorithm('md5')).toBe('MD5');
    expect(parseHashAlgorithm('crc32')).toBe('CRC32');
    expect(parseHashAlgorithm('SHA256')).toBe('SHA-256');
    expect(parseHashAlgorithm(' sha-1 ')).toBe('SHA-1');
  });

  it.each(['', 'CRC-37', 'SHA-384', 'MD2', 'constructor', '__proto__', 'toString'])('rejects the algorithm %j', (name) => {
    expectProtocolError(() => parseHashAlgorithm(name), 'BAD_ARGUMENT');
  });

  it('formats the FEAT line and the 213 reply text', () => {
    expect(formatHashFeat(['SHA-256', 'SHA-512', 'SHA-1', 'MD5'], 'SHA-1')).toBe('HASH SHA-256;SHA-512;SHA-1*;MD5');
    expect(formatHashReplyText('SHA-256', 0, 49, '169CD22282DA', 'filename.ext')).toBe('SHA-256 0-49 169cd22282da filename.ext');
    expectProtocolError(() => formatHashReplyText('SHA-1', 5, 4, 'ab', 'f'), 'BAD_ARGUMENT');
    expectProtocolError(() => formatHashReplyText('SHA-1', 0, 4, 'xyz', 'f'), 'BAD_ARGUMENT');
  });
});

import { describe, expect, it } from 'vitest';
import { formatListDate, formatListLine, formatMode, formatNlstLine } from '../src/index.js';
import type { ListEntry } from '../src/index.js';
import { expectProtocolError } from './helpers.js';

const NOW = Date.UTC(2024, 2, 1, 12, 0, 0); // 2024-03-01 12:00 UTC
const DAY = 24 * 60 * 60 * 1000;

const file = (over: Partial<ListEntry> = {}): ListEntry => ({
  name: 'name',
  type: 'file',
  size: 1234,
  mtime: Date.UTC(2024, 0, 2, 15, 4),
  mode: 0o644,
  ...over,
});

describe('formatListLine', () => {
  it('formats an ls -l line', () => {
    expect(formatListLine(file({ owner: 'owner', group: 'group' }), NOW)).toBe(
      '-rw-r--r--   1 owner    group        1234 Jan 02 15:04 name',
    );
  });

  it('defaults owner and group to ftp and nlink to 1', () => {
    expect(formatListLine(file(), NOW)).toBe('-rw-r--r--   1 ftp      ftp          1234 Jan 02 15:04 name');
  });

  it('formats directories and symlinks', () => {
    expect(formatListLine(file({ name: 'sub', type: 'dir', size: 4096, mode: 0o40755, nlink: 3 }), NOW)).toBe(
      'drwxr-xr-x   3 ftp      ftp          4096 Jan 02 15:04 sub',
    );
    expect(formatListLine(file({ name: 'ln', type: 'link', size: 6, mode: 0o777, target: '/a b' }), NOW)).toBe(
      'lrwxrwxrwx   1 ftp      ftp             6 Jan 02 15:04 ln -> /a b',
    );
  });

  it('keeps spaces and unicode in names, long owners and big sizes', () => {
    expect(
      formatListLine(file({ name: ' spaced  name ', owner: 'a-very-long-owner', group: 'g', size: 12345678901 }), NOW),
    ).toBe('-rw-r--r--   1 a-very-long-owner g        12345678901 Jan 02 15:04  spaced  name ');
    expect(formatListLine(file({ name: 'été 日本' }), NOW).endsWith(' été 日本')).toBe(true);
  });

  it('replaces CR and LF in names and targets so the line stays one line', () => {
    const line = formatListLine(file({ name: 'evil\r\n-rw-r--r-- 1 x x 1 Jan 01 00:00 fake', type: 'link', target: 't\nx' }), NOW);
    expect(line).not.toMatch(/[\r\n]/);
    expect(line.endsWith(' evil??-rw-r--r-- 1 x x 1 Jan 01 00:00 fake -> t?x')).toBe(true);
  });

  it('sanitises owner and group into single tokens', () => {
    expect(formatListLine(file({ owner: 'John Doe', group: 'a\nb' }), NOW)).toContain(' John_Doe a_b ');
    expect(formatListLine(file({ owner: '', group: '' }), NOW)).toContain(' ftp      ftp ');
  });

  it('tolerates odd numbers', () => {
    expect(formatListLine(file({ size: Number.NaN, nlink: -3 }), NOW)).toBe('-rw-r--r--   0 ftp      ftp             0 Jan 02 15:04 name');
    expect(formatListLine(file({ mtime: Number.NaN }), NOW)).toContain(' Jan 01  1970 ');
    expect(formatListLine(file({ mtime: new Date(Number.NaN) }), NOW)).toContain(' Jan 01  1970 ');
  });

  it('rejects entries without a name', () => {
    expectProtocolError(() => formatListLine(null as unknown as ListEntry), 'BAD_ARGUMENT');
    expectProtocolError(() => formatListLine({ ...file(), name: 5 } as unknown as ListEntry), 'BAD_ARGUMENT');
  });
});

describe('formatListDate', () => {
  it('shows the time for the last 180 days and the year otherwise, in UTC', () => {
    expect(formatListDate(NOW, NOW)).toBe('Mar 01 12:00');
    expect(formatListDate(NOW - 179 * DAY, NOW)).toBe('Sep 04 12:00');
    expect(formatListDate(NOW - 180 * DAY, NOW)).toBe('Sep 03  2023');
    expect(formatListDate(Date.UTC(2023, 11, 31, 23, 59), NOW)).toBe('Dec 31 23:59');
    expect(formatListDate(Date.UTC(1999, 4, 9), NOW)).toBe('May 09  1999');
  });

  it('shows the year for times in the future', () => {
    expect(formatListDate(NOW + 60_000, NOW)).toBe('Mar 01  2024');
    expect(formatListDate(Date.UTC(2030, 6, 4), NOW)).toBe('Jul 04  2030');
  });

  it('accepts Dates and defaults now to the current time', () => {
    expect(formatListDate(new Date(NOW), new Date(NOW))).toBe('Mar 01 12:00');
    expect(formatListDate(Date.now() - 1000)).toMatch(/^[A-Z][a-z]{2} \d\d \d\d:\d\d$/);
  });
});

describe('formatMode', () => {
  it.each([
    ['file', 0o644, '-rw-r--r--'],
    ['file', 0o100755, '-rwxr-xr-x'],
    ['dir', 0o755, 'drwxr-xr-x'],
    ['link', 0o777, 'lrwxrwxrwx'],
    ['file', 0o4755, '-rwsr-xr-x'],
    ['file', 0o4644, '-rwSr--r--'],
    ['dir', 0o2775, 'drwxrwsr-x'],
    ['file', 0o2664, '-rw-rwSr--'],
    ['dir', 0o1777, 'drwxrwxrwt'],
    ['dir', 0o1776, 'drwxrwxrwT'],
    ['file', 0o7777, '-rwsrwsrwt'],
    ['file', 0, '----------'],
    ['other', 0o010644, 'prw-r--r--'],
    ['other', 0o140755, 'srwxr-xr-x'],
    ['other', 0o060660, 'brw-rw----'],
    ['other', 0o020620, 'crw--w----'],
    ['other', 0o600, '-rw-------'],
  ] as const)('%s %o → %s', (type, mode, expected) => {
    expect(formatMode(type, mode)).toBe(expected);
  });
});

describe('formatNlstLine', () => {
  it('gives the name, CR and LF replaced', () => {
    expect(formatNlstLine('a file.txt')).toBe('a file.txt');
    expect(formatNlstLine('a\r\nb')).toBe('a??b');
    expectProtocolError(() => formatNlstLine(undefined as unknown as string), 'BAD_ARGUMENT');
  });
});

describe('formatListLine over many entries (cached columns)', () => {
  it('writes the same date column as formatListDate for every time, around the six-month edge too', () => {
    const now = Date.UTC(2024, 5, 15, 12, 30, 45, 500);
    const edge = now - 180 * 24 * 60 * 60 * 1000;
    const times = [now, now - 1, now + 1, now - 30_000, now + 60_000, edge, edge - 1, edge + 1, edge - 59_999, edge + 59_999, Date.UTC(2020, 0, 1), Date.UTC(2020, 0, 1, 0, 0, 30)];
    for (const mtime of [...times, ...times.reverse()]) {
      const line = formatListLine({ name: 'f', type: 'file', size: 1, mtime, mode: 0o644 }, now);
      expect(line).toContain(` ${formatListDate(mtime, now)} f`);
    }
  });

  it('matches the uncached formatters for random times, nows and modes in any order', () => {
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const types = ['file', 'dir', 'link', 'other'] as const;
    const base = Date.UTC(2024, 5, 15, 12, 30, 45, 500);
    for (let i = 0; i < 5000; i++) {
      const now = base + rnd(3) * 1000;
      const edge = now - 180 * 24 * 60 * 60 * 1000;
      const around = [now, edge, Date.UTC(2001, 0, 1), 0, 8.64e15, -8.64e15][rnd(6)] as number;
      // Fractions of a millisecond too: a Date drops them toward zero, around the epoch as well.
      const mtime = around + (rnd(240_000) - 120_000) + ([0, 0, 0.5, -0.25, 0.9999][rnd(5)] as number);
      const type = types[rnd(4)] as (typeof types)[number];
      const mode = [0o644, 0o755, 0o4755, 0o1777, 0o010644, 0o140600, 0o060660][rnd(7)] as number;
      const line = formatListLine({ name: 'f', type, size: 1, mtime, mode }, now);
      expect(line).toBe(`${formatMode(type, mode)}   1 ftp      ftp             1 ${formatListDate(mtime, now)} f`);
    }
  });

  it('gives an entry the same date column whatever entry came before it (a fraction before the epoch)', () => {
    const now = Date.UTC(2024, 5, 15);
    const a = { name: 'a', type: 'file' as const, size: 1, mtime: -0.1, mode: 0o644 };
    const b = { name: 'b', type: 'file' as const, size: 1, mtime: -30_000, mode: 0o644 };
    const unrelated = { ...a, mtime: Date.UTC(2010, 0, 1) };
    for (const order of [[a, b], [b, a]]) {
      formatListLine(unrelated, now);
      for (const e of order) expect(formatListLine(e, now)).toContain(` ${formatListDate(e.mtime, now)} ${e.name}`);
    }
    expect(formatListLine({ ...a, mtime: 8.64e15 + 1 }, now)).toContain(` ${formatListDate(8.64e15 + 1, now)} a`);
  });

  it('gives types outside the four their own mode column (no shared cache key)', () => {
    const odd = (type: string, mode: number): string => formatListLine({ name: 'x', type: type as 'other', size: 0, mtime: 0, mode }, 0).slice(0, 10);
    expect([odd('toString', 0o755), odd('constructor', 0o140644)]).toEqual([formatMode('toString' as 'other', 0o755), formatMode('constructor' as 'other', 0o140644)]);
  });

  it('keeps mode, owner and group columns apart for each entry', () => {
    const a = formatListLine({ name: 'a', type: 'dir', size: 0, mtime: 0, mode: 0o755 }, 0);
    const b = formatListLine({ name: 'b', type: 'file', size: 0, mtime: 0, mode: 0o755, owner: 'alice', group: 'staff' }, 0);
    expect(a.startsWith('drwxr-xr-x   1 ftp      ftp      ')).toBe(true);
    expect(b.startsWith('-rwxr-xr-x   1 alice    staff    ')).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import {
  DEFAULT_FACTS,
  formatFacts,
  formatFeatFacts,
  formatFtpTime,
  formatOptsMlstReply,
  parseOptsMlst,
  SUPPORTED_FACTS,
} from '../src/index.js';
import type { FactEntry, MlsxFact } from '../src/index.js';
import { expectProtocolError } from './helpers.js';

const MTIME = Date.UTC(2024, 0, 2, 15, 4, 5, 250);
const file = (over: Partial<FactEntry> = {}): FactEntry => ({
  name: 'name',
  type: 'file',
  size: 12,
  mtime: MTIME,
  mode: 0o100644,
  ...over,
});

describe('formatFacts (RFC 3659 §7)', () => {
  it('writes facts in the given order, then a space and the name', () => {
    expect(formatFacts(file({ perm: 'rw' }), ['type', 'size', 'modify', 'perm'])).toBe(
      'type=file;size=12;modify=20240102150405;perm=rw; name',
    );
    expect(formatFacts(file({ perm: 'rw' }), ['perm', 'type'])).toBe('perm=rw;type=file; name');
  });

  it('writes only the space and name when no fact is selected', () => {
    expect(formatFacts(file(), [])).toBe(' name');
  });

  it('uses cdir, pdir, dir, file and OS.unix types', () => {
    expect(formatFacts(file({ type: 'dir' }), ['type'])).toBe('type=dir; name');
    expect(formatFacts(file({ type: 'dir', dirRole: 'cdir', name: '/pub' }), ['type'])).toBe('type=cdir; /pub');
    expect(formatFacts(file({ type: 'dir', dirRole: 'pdir', name: '..' }), ['type'])).toBe('type=pdir; ..');
    expect(formatFacts(file({ type: 'link', target: '/x' }), ['type'])).toBe('type=OS.unix=symlink; name');
    expect(formatFacts(file({ type: 'other', mode: 0o010644 }), ['type'])).toBe('type=OS.unix=fifo; name');
    expect(formatFacts(file({ type: 'other', mode: 0o644 }), ['type'])).toBe('type=OS.unix=unknown; name');
  });

  it('gives size for files only', () => {
    expect(formatFacts(file({ type: 'dir', size: 4096 }), ['type', 'size'])).toBe('type=dir; name');
    expect(formatFacts(file({ type: 'link', size: 4 }), ['size'])).toBe(' name');
    expect(formatFacts(file({ size: 1e15 }), ['size'])).toBe('size=1000000000000000; name');
  });

  it('formats modify and create in UTC, milliseconds on request', () => {
    const entry = file({ create: new Date(Date.UTC(2020, 11, 31, 23, 59, 59)) });
    expect(formatFacts(entry, ['modify', 'create'])).toBe('modify=20240102150405;create=20201231235959; name');
    expect(formatFacts(entry, ['modify'], { millis: true })).toBe('modify=20240102150405.250; name');
    expect(formatFacts(file(), ['create'])).toBe(' name');
    expect(formatFacts(file({ mtime: Number.NaN }), ['type', 'modify'])).toBe('type=file; name');
    expect(formatFacts(file({ mtime: Date.UTC(200, 0, 1) }), ['modify'])).toBe(' name');
  });

  it('keeps only valid perm letters, and guesses perm from the mode when absent', () => {
    expect(formatFacts(file({ perm: 'RW x;z a' }), ['perm'])).toBe('perm=rwa; name');
    expect(formatFacts(file({ perm: '' }), ['perm'])).toBe('perm=; name');
    expect(formatFacts(file({ mode: 0o644 }), ['perm'])).toBe('perm=radfw; name');
    expect(formatFacts(file({ mode: 0o444 }), ['perm'])).toBe('perm=r; name');
    expect(formatFacts(file({ type: 'dir', mode: 0o755 }), ['perm'])).toBe('perm=elcdfmp; name');
    expect(formatFacts(file({ type: 'dir', mode: 0o500 }), ['perm'])).toBe('perm=el; name');
  });

  it('formats unique, unix.mode, owner, group and ids, sanitising values', () => {
    const entry = file({ unique: 'fd01g1234', owner: 'john doe', group: 'staff;x', uid: 1000, gid: 50, mode: 0o104755 });
    expect(formatFacts(entry, ['unique', 'unix.mode', 'unix.owner', 'unix.group', 'unix.uid', 'unix.gid'])).toBe(
      'unique=fd01g1234;unix.mode=04755;unix.owner=john_doe;unix.group=staff_x;unix.uid=1000;unix.gid=50; name',
    );
    // Other Unicode spaces too: a client splitting the line on whitespace would cut there (found by the property test).
    for (const space of ['\u00a0', '\u1680', '\u2000', '\u2028', '\u202f', '\u3000', '\ufeff']) {
      expect(formatFacts(file({ group: `a${space}b` }), ['unix.group'])).toBe('unix.group=a_b; name');
    }
    expect(formatFacts(file({ owner: 'zoë' }), ['unix.owner'])).toBe('unix.owner=zoë; name');
    expect(formatFacts(file({ mode: 0o7 }), ['unix.mode'])).toBe('unix.mode=0007; name');
    expect(formatFacts(file({ uid: -1, gid: 1.5, unique: '' }), ['unix.uid', 'unix.gid', 'unique'])).toBe(' name');
  });

  it('omits facts it has no data for and tolerates case in fact names', () => {
    expect(formatFacts(file(), ['lang', 'media-type', 'charset', 'unix.owner'])).toBe(' name');
    expect(formatFacts(file(), ['Type' as MlsxFact])).toBe('Type=file; name');
  });

  it('replaces CR and LF in the name', () => {
    expect(formatFacts(file({ name: 'a\r\nb' }), ['type'])).toBe('type=file; a??b');
  });

  it('rejects bad arguments', () => {
    expectProtocolError(() => formatFacts(null as unknown as FactEntry, ['type']), 'BAD_ARGUMENT');
    expectProtocolError(() => formatFacts(file(), 'type' as unknown as MlsxFact[]), 'BAD_ARGUMENT');
  });
});

describe('FEAT and OPTS MLST (RFC 3659 §7.8, §7.9)', () => {
  it('lists supported facts with the selected ones starred', () => {
    expect(formatFeatFacts(['type', 'size'])).toBe(
      'MLST type*;size*;modify;create;perm;unique;unix.mode;unix.owner;unix.group;unix.uid;unix.gid;',
    );
    expect(formatFeatFacts(DEFAULT_FACTS, ['type', 'size', 'modify'])).toBe('MLST type*;size*;modify*;');
    expect(formatFeatFacts([])).toBe(`MLST ${SUPPORTED_FACTS.map((f) => `${f};`).join('')}`);
  });

  it('has sensible defaults', () => {
    expect(DEFAULT_FACTS).toEqual(['type', 'size', 'modify', 'perm', 'unique', 'unix.mode']);
    for (const f of DEFAULT_FACTS) expect(SUPPORTED_FACTS).toContain(f);
  });

  it('parses OPTS MLST selections', () => {
    expect(parseOptsMlst('type;size;')).toEqual(['type', 'size']);
    expect(parseOptsMlst('MLST Type;SIZE;modify;')).toEqual(['type', 'size', 'modify']);
    expect(parseOptsMlst('mlst size;type')).toEqual(['size', 'type']);
    expect(parseOptsMlst('type;bogus;lang;UNIX.mode;type;')).toEqual(['type', 'unix.mode']);
    expect(parseOptsMlst('')).toEqual([]);
    expect(parseOptsMlst('MLST')).toEqual([]);
    expect(parseOptsMlst('mlst ')).toEqual([]);
    expect(parseOptsMlst('type;perm;', ['type'])).toEqual(['type']);
    expectProtocolError(() => parseOptsMlst(undefined as unknown as string), 'BAD_ARGUMENT');
  });

  it('formats the OPTS MLST reply', () => {
    expect(formatOptsMlstReply(['type', 'size'])).toBe('MLST OPTS type;size;');
    expect(formatOptsMlstReply([])).toBe('MLST OPTS');
  });
});

describe('formatFacts over many entries (cached times)', () => {
  it('writes each entry its own modify time, also when consecutive entries differ by milliseconds only', () => {
    const t = Date.UTC(2024, 0, 2, 3, 4, 5);
    const times = [t, t + 999, t + 1000, t - 1, t, Date.UTC(999, 11, 31), Date.UTC(1000, 0, 1), Date.UTC(9999, 11, 31, 23, 59, 59, 999), Date.UTC(10000, 0, 1)];
    const want = ['20240102030405', '20240102030405', '20240102030406', '20240102030404', '20240102030405', undefined, '10000101000000', '99991231235959', undefined];
    times.forEach((mtime, i) => {
      const line = formatFacts({ name: 'f', type: 'file', size: 1, mtime, mode: 0o644 }, ['modify', 'MODIFY' as never]);
      expect(line).toBe(want[i] === undefined ? ' f' : `modify=${want[i]};MODIFY=${want[i]}; f`);
    });
  });

  it('matches formatFtpTime for random times across minutes, hours and the years before 1970, in any order', () => {
    let seed = 11;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const bases = [Date.UTC(2024, 0, 2, 3, 59, 30), Date.UTC(1969, 11, 31, 23, 59, 30), Date.UTC(1000, 0, 1, 0, 1, 0), 0];
    for (let i = 0; i < 5000; i++) {
      const mtime = (bases[rnd(4)] as number) + rnd(180_000) - 60_000 + ([0, 0, 0.5, -0.25][rnd(4)] as number);
      const perm = ['adfrw', 'ADFRW', 'cdeflmp', 'r;x'][rnd(4)] as string;
      const line = formatFacts({ name: 'f', type: 'file', size: 1, mtime, mode: 0o644, perm }, ['modify', 'perm']);
      if (mtime < Date.UTC(1000, 0, 1)) expect(line).toBe(`perm=${perm.toLowerCase().replace(/[^acdeflmprw]/g, '')}; f`);
      else expect(line).toBe(`modify=${formatFtpTime(mtime)};perm=${perm.toLowerCase().replace(/[^acdeflmprw]/g, '')}; f`);
    }
  });

  it('shows a time a fraction of a millisecond before the epoch as formatFtpTime does', () => {
    for (const mtime of [-0.5, -1000.5, -59_999.9, 0.5]) {
      expect(formatFacts({ name: 'f', type: 'file', size: 1, mtime, mode: 0o644 }, ['modify'])).toBe(`modify=${formatFtpTime(mtime)}; f`);
    }
  });
});

describe('formatFacts with a fact list that changes between calls', () => {
  it('writes the list as it is at each call, also when the same array was changed in place', () => {
    const entry = { name: 'a.txt', type: 'file' as const, size: 12, mtime: Date.UTC(2024, 0, 2, 15, 4, 5), mode: 0o100640 };
    const facts: MlsxFact[] = ['type'];
    expect(formatFacts(entry, facts)).toBe('type=file; a.txt');
    facts.push('size');
    expect(formatFacts(entry, facts)).toBe('type=file;size=12; a.txt');
    facts[0] = 'unix.mode';
    expect(formatFacts(entry, facts)).toBe('unix.mode=0640;size=12; a.txt');
    facts.length = 0;
    expect(formatFacts(entry, facts)).toBe(' a.txt');
    expect(formatFacts({ ...entry, mode: 0o100755 }, ['unix.mode'])).toBe('unix.mode=0755; a.txt');
  });
});

import { describe, expect, it } from 'vitest';
import { parseCommand } from '../src/index.js';

describe('parseCommand', () => {
  it.each([
    ['USER anonymous', 'USER', 'anonymous'],
    ['retr file.txt', 'RETR', 'file.txt'],
    ['NOOP', 'NOOP', ''],
    ['noop', 'NOOP', ''],
    ['PWD ', 'PWD', ''],
    ['STOR  my file.txt ', 'STOR', ' my file.txt '],
    ['CWD dir with  two  spaces', 'CWD', 'dir with  two  spaces'],
    ['   LIST -la', 'LIST', '-la'],
    ['\tSYST', 'SYST', ''],
    ['', '', ''],
    ['   ', '', ''],
    ['Mkd été', 'MKD', 'été'],
    ['xcwd /a', 'XCWD', '/a'],
    ['opts UTF8 ON', 'OPTS', 'UTF8 ON'],
    ['PASS  secret with spaces  ', 'PASS', ' secret with spaces  '],
    ['ST\u00d6R x', 'ST\u00d6R', 'x'],
  ])('%j → %s %j', (line, verb, arg) => {
    expect(parseCommand(line)).toEqual({ verb, arg });
  });

  it('upper-cases ASCII only (no Unicode case mapping)', () => {
    // "ß".toUpperCase() is "SS" and "ı" (dotless i) upper-cases to "I": neither may happen.
    expect(parseCommand('straße x').verb).toBe('STRAßE');
    expect(parseCommand('lıst').verb).toBe('LıST');
  });

  it('never throws, even on non-strings', () => {
    expect(parseCommand(undefined as unknown as string)).toEqual({ verb: '', arg: '' });
    expect(parseCommand(42 as unknown as string)).toEqual({ verb: '', arg: '' });
  });
});

describe('parseCommand verb case', () => {
  it('upper-cases ASCII letters only, whatever mix a verb comes in, and leaves other letters as they are', () => {
    expect(parseCommand('retr a').verb).toBe('RETR');
    expect(parseCommand('RETR a').verb).toBe('RETR');
    expect(parseCommand('ReTr a').verb).toBe('RETR');
    expect(parseCommand('X-a1b').verb).toBe('X-A1B');
    // Unicode case mapping would turn ß into SS, ı into I and ﬀ into FF: none of them is an FTP verb's letter.
    expect(parseCommand('ßıﬀé a').verb).toBe('ßıﬀé');
    expect(parseCommand('aßb a').verb).toBe('AßB');
    expect(parseCommand('`{@[ a').verb).toBe('`{@[');
  });
});

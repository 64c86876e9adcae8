import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineReader } from '../src/index.js';
import type { LineEvent } from '../src/index.js';
import { bytes, expectProtocolError } from './helpers.js';

const line = (l: string): LineEvent => ({ type: 'line', line: l });
const overflow = (length: number): LineEvent => ({ type: 'overflow', length });
const bareCr = (length: number): LineEvent => ({ type: 'bare-cr', length });

interface Fixture {
  name: string;
  input: Buffer;
  expected: LineEvent[];
  max?: number;
}

// Bytes are written as latin1 strings: '\xff' is one byte 0xFF (Telnet IAC).
const fixtures: Fixture[] = [
  { name: 'one CRLF line', input: bytes('USER bob\r\n'), expected: [line('USER bob')] },
  { name: 'bare LF', input: bytes('NOOP\n'), expected: [line('NOOP')] },
  {
    name: 'pipelined commands',
    input: bytes('USER a\r\nPASS b\r\nSYST\nPWD\r\n'),
    expected: [line('USER a'), line('PASS b'), line('SYST'), line('PWD')],
  },
  { name: 'empty lines', input: bytes('\r\n\n\r\n'), expected: [line(''), line(''), line('')] },
  { name: 'a CR followed by neither LF nor NUL makes the whole line malformed (RFC 854)', input: bytes('A\rB\r\r\nNOOP\r\n'), expected: [bareCr(2), line('NOOP')] },
  {
    name: 'a bare CR does not split one line into two commands',
    input: bytes('SIZE x\rDELE y\r\nSIZE x\rDELE y\nPWD\r\n'),
    expected: [bareCr(12), bareCr(12), line('PWD')],
  },
  {
    name: 'a line that is ABOR so far ends at its CR (urgent-data ABOR, then a command)',
    input: bytes('ABOR\rNOOP\r\n abor \rPWD\r\n'),
    expected: [line('ABOR'), line('NOOP'), line(' abor '), line('PWD')],
  },
  { name: 'a longer line than ABOR is malformed', input: bytes('ABORT\rNOOP\r\n'), expected: [bareCr(9)] },
  {
    name: 'IAC IP after a held CR ends an ABOR line; any other line is malformed up to its end',
    input: bytes('NOOP\r\xff\xf4\xff\xf2ABOR\r\nPWD\r\xff\xf4\nX\r\nABOR\r\xff\xf4\xf2ABOR\r\n'),
    expected: [bareCr(8), line('PWD'), line('X'), line('ABOR'), line('ABOR')],
  },
  { name: 'a CR, IAC IP and a second command: one malformed line', input: bytes('SIZE x\r\xff\xf4DELE y\r\nPWD\r\n'), expected: [bareCr(12), line('PWD')] },
  { name: 'a CR and IAC IP at the end of the input: the held CR ends the line once released', input: bytes('PWD\r\xff\xf4'), expected: [line('PWD')] },
  { name: 'only spaces and tabs may pad an ABOR that ends at a bare CR', input: bytes('\tabor \rNOOP\r\nABOR\xa0\rDELE y\r\n'), expected: [line('\tabor '), line('NOOP'), bareCr(11)] },
  {
    name: 'ABOR whose LF was taken out of the stream as TCP urgent data (ftplib.abort)',
    input: bytes('ABOR\r'),
    expected: [line('ABOR')],
  },
  { name: 'CR, Telnet command, LF is still one line end', input: bytes('PWD\r\xff\xf1\nSYST\r\n'), expected: [line('PWD'), line('SYST')] },
  { name: 'no terminator: nothing yet', input: bytes('NOOP'), expected: [] },
  { name: 'NUL is kept', input: bytes('A\x00B\r\n'), expected: [line('A\u0000B')] },
  {
    name: 'CR NUL is a CR inside the line (RFC 854, RFC 2640 §3.1): lftp names a file a<CR>b so',
    input: bytes('STOR a\r\x00b\r\nDELE a\r\x00\r\x00\r\n'),
    expected: [line('STOR a\rb'), line('DELE a\r\r')],
  },
  { name: 'Telnet commands between CR and NUL are transparent', input: bytes('RETR a\r\xff\xf1\x00b\r\n'), expected: [line('RETR a\rb')] },
  { name: 'CR then an escaped 0xFF: a bare CR', input: bytes('A\r\xff\xffB\r\n'), expected: [bareCr(3)] },
  { name: 'a bare CR, then CR NUL in the same line', input: bytes('NOOP\rSTOR x\r\x00\r\n'), expected: [bareCr(11)] },
  {
    name: 'IAC IP IAC DM before ABOR (RFC 959 §4.1.3)',
    input: bytes('\xff\xf4\xff\xf2ABOR\r\n'),
    expected: [line('ABOR')],
  },
  {
    name: 'IAC IP IAC with the urgent DM lost',
    input: bytes('\xff\xf4\xffABOR\r\n'),
    expected: [line('ABOR')],
  },
  {
    name: 'IAC IP then the bare DM left when the IAC of IAC DM was taken as TCP urgent data (netkit ftp)',
    input: bytes('\xff\xf4\xf2ABOR\r\n'),
    expected: [line('ABOR')],
  },
  {
    name: 'IAC IP, other Telnet commands (AO, NOP, WILL x), then the bare DM',
    input: bytes('\xff\xf4\xff\xf5\xff\xf1\xff\xfb\x01\xf2ABOR\r\n'),
    expected: [line('ABOR')],
  },
  {
    name: 'a bare DM after IAC IP is dropped after a held CR too',
    input: bytes('NOOP\r\xff\xf4\xf2ABOR\r\nABOR\r\xff\xf4\xf2NOOP\r\n'),
    expected: [bareCr(8), line('ABOR'), line('NOOP')],
  },
  {
    name: 'a UTF-8 name with the lead byte 0xF2 (U+9F600) keeps its bytes',
    input: bytes('STOR \xf2\x9f\x98\x80.txt\r\nCWD \xf2\x9f\x98\x80\r\n'),
    expected: [line('STOR \u{9f600}.txt'), line('CWD \u{9f600}')],
  },
  {
    name: '0xF2 is data when it is not the first data byte after IAC IP, or comes after a whole IAC DM',
    input: bytes('\xff\xf4ABOR\r\n\xf2\x9f\x98\x80\r\n\xff\xf4\xff\xf2\xf2\x9f\x98\x80\r\n\xff\xf1\xf2\x9f\x98\x80\r\n'),
    expected: [line('ABOR'), line('\u{9f600}'), line('\u{9f600}'), line('\u{9f600}')],
  },
  {
    name: 'only one DM byte is dropped after IAC IP',
    input: bytes('\xff\xf4\xf2\xf2\x9f\x98\x80\r\n'),
    expected: [line('\u{9f600}')],
  },
  {
    name: 'IAC IAC is a data byte 0xFF (not UTF-8 alone: its byte escape)',
    input: bytes('A\xff\xffB\r\n'),
    expected: [line('A\udcffB')],
  },
  {
    name: 'a 0xFF not doubled inside a line is data (curl, ftplib); at a line start it is a Synch remnant',
    input: bytes('MKD a\xffb\r\n\xffABOR\r\nCWD \xff\xff\xffz\r\n\xff\xf4\xffSTAT\r\n'),
    expected: [line('MKD a\udcffb'), line('ABOR'), line('CWD \udcff\udcffz'), line('STAT')],
  },
  {
    name: 'IAC WILL/WONT/DO/DONT <option> are removed',
    input: bytes('\xff\xfb\x01US\xff\xfc\x03ER\xff\xfd\xff x\xff\xfe\x0a\r\n'),
    expected: [line('USER x')],
  },
  {
    name: 'two-byte commands (NOP, AYT, GA, EC, EL, AO, BRK, SE) are removed',
    input: bytes('N\xff\xf1O\xff\xf6O\xff\xf9P\xff\xf7\xff\xf8\xff\xf5\xff\xf3\xff\xf0\r\n'),
    expected: [line('NOOP')],
  },
  {
    name: 'sub-negotiation IAC SB … IAC SE is removed whole, even with IAC IAC inside',
    input: bytes('PW\xff\xfa\x18\x01\xff\xff\x02\xff\xf0D\r\n'),
    expected: [line('PWD')],
  },
  {
    // FTP negotiates no options: a sub-negotiation never left open swallowed every later command until the idle
    // timeout (QUIT and ABOR included).
    name: 'a sub-negotiation without IAC SE ends at the line end, which ends the line',
    input: bytes('NOOP \xff\xfa\x18junk\r\nQUIT\r\nPW\xff\xfa\xff\nD\r\n'),
    expected: [line('NOOP '), line('QUIT'), line('PW'), line('D')],
  },
  {
    name: 'a Telnet command between CR and LF',
    input: bytes('NOOP\r\xff\xf1\n'),
    expected: [line('NOOP')],
  },
  {
    name: 'UTF-8 names (RFC 2640)',
    input: Buffer.from('CWD été/日本語 🎉\r\n', 'utf8'),
    expected: [line('CWD été/日本語 🎉')],
  },
  { name: 'bytes that are not UTF-8 become byte escapes, one per byte', input: bytes('A\xc3(\xe2\x82\r\n'), expected: [line('A\udcc3(\udce2\udc82')] },
  { name: 'valid UTF-8 in a line that is not stays UTF-8', input: bytes('\xc3\xa9\xe9\xf0\x9f\x8e\x89\xed\xa0\x80\r\n'), expected: [line('é\udce9🎉\udced\udca0\udc80')] },
  {
    name: 'two 8-bit names stay two names (not both U+FFFD)',
    input: bytes('STOR caf\xe9.txt\r\nSTOR caf\xe8.txt\r\n'),
    expected: [line('STOR caf\udce9.txt'), line('STOR caf\udce8.txt')],
  },
  { name: 'valid UTF-8 that holds U+FFFD keeps it', input: Buffer.from('CWD a\ufffdb\r\n', 'utf8'), expected: [line('CWD a\ufffdb')] },
  { name: 'line of exactly maxLineLength', input: bytes('12345678\r\n'), expected: [line('12345678')], max: 8 },
  { name: 'line of exactly maxLineLength, bare LF', input: bytes('12345678\n'), expected: [line('12345678')], max: 8 },
  {
    name: 'over-long line reported once, next line normal',
    input: bytes('123456789\r\nOK\r\n'),
    expected: [overflow(9), line('OK')],
    max: 8,
  },
  {
    name: 'very long line, CR counted out of its length',
    input: bytes(`${'x'.repeat(40)}\r\nNOOP\r\n`),
    expected: [overflow(40), line('NOOP')],
    max: 8,
  },
  {
    name: 'Telnet sequences inside an over-long line are not counted',
    input: bytes(`${'x'.repeat(10)}\xff\xf1${'y'.repeat(10)}\xff\xff\r\nA\r\n`),
    expected: [overflow(21), line('A')],
    max: 8,
  },
  {
    name: 'bare CRs inside an over-long line: reported as over-long',
    input: bytes('1234\r5678\r90\nX\n123456789\r\nY\r'),
    expected: [overflow(10), line('X'), overflow(9), line('Y')],
    max: 8,
  },
  {
    name: 'a partial line after complete ones',
    input: bytes('A\r\nB\r\nC'),
    expected: [line('A'), line('B')],
  },
];

/**
 * Run `chunks` through a fresh reader, collecting all events; a CR still held at the end is released, as the server
 * does once no more bytes come (the urgent-data ABOR).
 */
function run(chunks: Buffer[], max?: number): LineEvent[] {
  const reader = new LineReader(max === undefined ? {} : { maxLineLength: max });
  const out: LineEvent[] = [];
  for (const c of chunks) {
    out.push(...reader.push(c));
    expect(reader.bufferedBytes).toBeLessThanOrEqual((max ?? 4096) + 1);
  }
  out.push(...reader.release());
  expect(reader.holding).toBe(false);
  return out;
}

describe('LineReader fixtures', () => {
  describe.each(fixtures)('$name', ({ input, expected, max }) => {
    it('in one chunk', () => {
      expect(run([input], max)).toEqual(expected);
    });

    it('split into two chunks at every byte offset', () => {
      for (let i = 0; i <= input.length; i++) {
        expect(run([input.subarray(0, i), input.subarray(i)], max), `split at ${i}`).toEqual(expected);
      }
    });

    it('split into three chunks at every pair of offsets', () => {
      for (let i = 0; i <= input.length; i++) {
        for (let j = i; j <= input.length; j++) {
          const chunks = [input.subarray(0, i), input.subarray(i, j), input.subarray(j)];
          expect(run(chunks, max), `split at ${i}, ${j}`).toEqual(expected);
        }
      }
    });

    it('byte by byte', () => {
      const chunks = Array.from(input, (b) => Buffer.from([b]));
      expect(run(chunks, max)).toEqual(expected);
    });
  });
});

/**
 * Straightforward reference model: strip Telnet from the whole stream
 * byte by byte, then split on CR, LF or CRLF, CR NUL being a CR inside a line. The real
 * reader must agree with it for any input and any chunking.
 */
/** Where an IAC IP stood in the Telnet-free stream of {@link reference}. */
const IP_MARK = -1;

function reference(input: Uint8Array, max: number): LineEvent[] {
  const data: number[] = [];
  let state = 'data';
  // After IAC IP until a data byte or IAC DM: a DM byte (0xF2) as the next data byte is the remnant of a Synch.
  let afterIP = false;
  for (let i = 0; i < input.length; i++) {
    const b = input[i] as number;
    if (state === 'data') {
      if (b === 0xff) state = 'iac';
      else if (afterIP) {
        afterIP = false;
        if (b !== 0xf2) data.push(b);
      } else data.push(b);
    } else if (state === 'iac') {
      if (b === 0xff) {
        data.push(0xff);
        afterIP = false;
        state = 'data';
      } else if (b >= 0xfb) state = 'option';
      else if (b === 0xfa) state = 'sb';
      else if (b >= 0xf0) {
        if (b === 0xf4) {
          afterIP = true;
          data.push(IP_MARK);
        } else if (b === 0xf2) afterIP = false;
        state = 'data';
      } else {
        // Not a command: a Synch's remnant at a line's start or after IAC IP (dropped), else a 0xFF a client did
        // not double (data).
        const last = data.filter((d) => d !== IP_MARK).at(-1);
        const lineStart = last === undefined || last === 0x0a || last === 0x0d;
        if (!afterIP && !lineStart) data.push(0xff);
        state = 'data';
        i--; // re-read as data
      }
    } else if (state === 'option') state = 'data';
    else if (state === 'sb') {
      // A line end ends a sub-negotiation and is read as data.
      if (b === 0xff) state = 'sb-iac';
      else if (b === 0x0d || b === 0x0a) {
        state = 'data';
        i--;
      }
    } else if (b === 0x0d || b === 0x0a) {
      state = 'data';
      i--;
    } else state = b === 0xf0 ? 'data' : 'sb';
  }
  // Split on LF, CRLF, or a CR the input ends with; an LF right after a CR belongs to that CR; CR NUL is a CR in the
  // line; CR and any other byte make the line malformed (no split), unless the line is ABOR so far (then the CR ends
  // it, at once when an IAC IP follows).
  const out: LineEvent[] = [];
  let current: number[] = [];
  let bad = false;
  const end = (): void => {
    const raw = Buffer.from(current);
    out.push(raw.length > max ? overflow(raw.length) : bad ? bareCr(raw.length) : line(escapedModel(raw)));
    current = [];
    bad = false;
  };
  for (let i = 0; i < data.length; i++) {
    const b = data[i] as number;
    if (b === IP_MARK) continue;
    if (b === 0x0a) {
      end();
      continue;
    }
    if (b !== 0x0d) {
      current.push(b);
      continue;
    }
    let j = i + 1;
    let interrupted = false;
    for (; data[j] === IP_MARK; j++) interrupted = true;
    const next = data[j];
    const isAbort = !bad && current.length <= max && /^[ \t]*ABOR[ \t]*$/i.test(Buffer.from(current).toString('latin1'));
    if (interrupted && isAbort) {
      end();
      if (next === 0x0a) i = j;
    } else if (next === 0x0a) {
      end();
      i = j;
    } else if (next === undefined) {
      end();
    } else if (next === 0x00) {
      current.push(b);
      i = j;
    } else if (isAbort) {
      end();
    } else {
      bad = true;
    }
  }
  return out;
}

/** Split `input` at the given (sorted, deduplicated) offsets. */
function splitAt(input: Uint8Array, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    chunks.push(Buffer.from(input.subarray(prev, p)));
    prev = p;
  }
  chunks.push(Buffer.from(input.subarray(prev)));
  return chunks;
}

// Bytes that matter to the reader, plus a few ordinary ones.
const interestingByte = fc.constantFrom(0xff, 0xff, 0xf4, 0xf2, 0xf0, 0xf1, 0xfa, 0xfb, 0xfe, 0x0d, 0x0a, 0x0a, 0x41, 0x42, 0x00, 0xc3, 0xa9);

describe('LineReader properties', () => {
  it('agrees with the reference model for any bytes, chunking and limit', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.array(interestingByte, { maxLength: 200 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.integer({ min: 1, max: 12 }),
        (random, interesting, cuts, max) => {
          const input = Buffer.concat([Buffer.from(random), Buffer.from(interesting)]);
          const expected = reference(input, max);
          expect(run(splitAt(input, cuts), max)).toEqual(expected);
          // Interleave the other way round too.
          const other = Buffer.concat([Buffer.from(interesting), Buffer.from(random)]);
          expect(run(splitAt(other, cuts), max)).toEqual(reference(other, max));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('never throws and keeps bufferedBytes ≤ maxLineLength + 1 on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), fc.integer({ min: 1, max: 64 }), (chunks, max) => {
        const reader = new LineReader({ maxLineLength: max });
        for (const c of chunks) {
          const events = reader.push(Buffer.from(c));
          expect(reader.bufferedBytes).toBeLessThanOrEqual(max + 1);
          for (const ev of events) {
            if (ev.type === 'line') expect(Buffer.byteLength(ev.line)).toBeLessThanOrEqual(max * 3);
            else if (ev.type === 'bare-cr') expect(ev.length).toBeLessThanOrEqual(max);
            else expect(ev.length).toBeGreaterThan(max);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('LineReader limits and state', () => {
  it('holds at most maxLineLength + 1 bytes while an endless line streams in', () => {
    const reader = new LineReader({ maxLineLength: 100 });
    const chunk = Buffer.alloc(65536, 0x41);
    for (let i = 0; i < 64; i++) {
      expect(reader.push(chunk)).toEqual([]);
      expect(reader.bufferedBytes).toBeLessThanOrEqual(101);
    }
    expect(reader.push(bytes('\r\nNOOP\r\n'))).toEqual([overflow(64 * 65536), line('NOOP')]);
    expect(reader.bufferedBytes).toBe(0);
  });

  it('defaults to 4096 bytes', () => {
    const reader = new LineReader();
    expect(reader.push(bytes(`${'a'.repeat(4096)}\r\n`))).toEqual([line('a'.repeat(4096))]);
    expect(reader.push(bytes(`${'a'.repeat(4097)}\r\n`))).toEqual([overflow(4097)]);
  });

  it('counts bytes, not characters', () => {
    const reader = new LineReader({ maxLineLength: 4 });
    expect(reader.push(Buffer.from('éé\r\n'))).toEqual([line('éé')]);
    expect(reader.push(Buffer.from('ééé\r\n'))).toEqual([overflow(6)]);
  });

  it('reports bufferedBytes for a partial line and resets', () => {
    const reader = new LineReader();
    reader.push(bytes('\xff\xf4US'));
    expect(reader.bufferedBytes).toBe(2);
    reader.push(bytes('ER\xff'));
    reader.reset();
    expect(reader.bufferedBytes).toBe(0);
    // The IAC pending before reset is forgotten: 'A' is data again.
    expect(reader.push(bytes('ABOR\r\n'))).toEqual([line('ABOR')]);
  });

  it('drops the bare DM after IAC IP across chunk boundaries, and reset() forgets the IAC IP', () => {
    const reader = new LineReader();
    expect(reader.push(bytes('\xff\xf4'))).toEqual([]);
    expect(reader.push(bytes('\xf2ABOR\r\n'))).toEqual([line('ABOR')]);
    expect(reader.push(bytes('\xff'))).toEqual([]);
    expect(reader.push(bytes('\xf4'))).toEqual([]);
    expect(reader.push(bytes('\xf2'))).toEqual([]);
    expect(reader.bufferedBytes).toBe(0);
    expect(reader.push(bytes('ABOR\r\n'))).toEqual([line('ABOR')]);
    reader.push(bytes('\xff\xf4'));
    reader.reset();
    expect(reader.push(bytes('\xf2\x9f\x98\x80\r\n'))).toEqual([line('\u{9f600}')]);
  });

  it('reset() ends the discarding of an over-long line', () => {
    const reader = new LineReader({ maxLineLength: 4 });
    reader.push(bytes('toolongline'));
    reader.reset();
    expect(reader.push(bytes('PWD\r\n'))).toEqual([line('PWD')]);
  });

  it('holds a CR that ends a chunk until the next byte says what it is, or until released', () => {
    const reader = new LineReader();
    expect(reader.push(bytes('STOR a\r'))).toEqual([]);
    expect(reader.holding).toBe(true);
    expect(reader.push(bytes('\x00b\r\n'))).toEqual([line('STOR a\rb')]);
    expect(reader.holding).toBe(false);
    // The urgent-data ABOR: nothing follows the CR until the reply, so the caller releases it.
    expect(reader.push(bytes('ABOR\r'))).toEqual([]);
    expect(reader.release()).toEqual([line('ABOR')]);
    expect(reader.release()).toEqual([]);
    // An LF arriving after all is still that line's end, not an empty line.
    expect(reader.push(bytes('\nNOOP\r\n'))).toEqual([line('NOOP')]);
    reader.push(bytes('X\r'));
    reader.reset();
    expect(reader.holding).toBe(false);
  });

  it('accepts a plain Uint8Array', () => {
    const reader = new LineReader();
    expect(reader.push(new Uint8Array([0x50, 0x57, 0x44, 0x0d, 0x0a]) as Buffer)).toEqual([line('PWD')]);
  });

  it('rejects bad options and bad chunks with ProtocolError', () => {
    for (const maxLineLength of [0, -1, 1.5, Number.NaN, 2 ** 31, '10' as unknown as number]) {
      expectProtocolError(() => new LineReader({ maxLineLength }), 'BAD_ARGUMENT');
    }
    const reader = new LineReader();
    expectProtocolError(() => reader.push('NOOP\r\n' as unknown as Buffer), 'BAD_ARGUMENT');
    expectProtocolError(() => reader.push(null as unknown as Buffer), 'BAD_ARGUMENT');
  });

  it('stays linear on a chunk full of Telnet sequences', () => {
    const reader = new LineReader();
    const nops = Buffer.alloc(2 * 500_000);
    for (let i = 0; i < nops.length; i += 2) {
      nops[i] = 0xff;
      nops[i + 1] = 0xf1;
    }
    const started = performance.now();
    expect(reader.push(Buffer.concat([nops, bytes('NOOP\r\n')]))).toEqual([line('NOOP')]);
    // Quadratic scanning would take minutes here; linear takes milliseconds.
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('decodes many pipelined lines from one chunk', () => {
    const reader = new LineReader();
    const n = 10_000;
    const events = reader.push(Buffer.from('NOOP\r\n'.repeat(n)));
    expect(events).toHaveLength(n);
    expect(events.every((e) => e.type === 'line' && e.line === 'NOOP')).toBe(true);
  });
});

/**
 * Reference decoding (PEP 383's surrogateescape) by another route than the reader's: at each byte, the shortest
 * slice that a strict decoder takes as one character, else the byte's escape.
 */
function escapedModel(raw: Buffer): string {
  const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let out = '';
  for (let i = 0; i < raw.length; ) {
    let taken = 0;
    for (let n = 1; n <= 4 && i + n <= raw.length && taken === 0; n++) {
      try {
        out += strict.decode(raw.subarray(i, i + n));
        taken = n;
      } catch {
        // not one whole character yet
      }
    }
    if (taken === 0) {
      out += String.fromCharCode(0xdc00 + raw[i]!);
      taken = 1;
    }
    i += taken;
  }
  return out;
}

describe('LineReader with bareCrEndsLine (for replies)', () => {
  it('ends a line at any CR, as LF and CRLF do, and keeps CR NUL inside it', () => {
    const reader = new LineReader({ bareCrEndsLine: true });
    expect(reader.push(bytes('200 ok\rjunk\r\n220 a\r\x00b\r\n'))).toEqual([line('200 ok'), line('junk'), line('220 a\rb')]);
    expect(reader.push(bytes('331 x\r'))).toEqual([]);
    expect(reader.push(bytes('y\r\n'))).toEqual([line('331 x'), line('y')]);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AsciiDecoder,
  AsciiEncoder,
  formatEprt,
  formatEpsvReplyText,
  formatFacts,
  formatFtpTime,
  formatHostPort,
  formatListLine,
  formatOptsMlstReply,
  formatPasvReplyText,
  formatReply,
  LineReader,
  parseCommand,
  parseEprt,
  parseEpsvReply,
  parseFtpTime,
  parseHashRange,
  parseHostPort,
  parseOptsMlst,
  parsePasvReply,
  parseRestOffset,
  quotePath,
  ReplyParser,
  sanitizeName,
  SUPPORTED_FACTS,
  unquotePath,
} from '../src/index.js';
import type { FactEntry, ListEntry } from '../src/index.js';

const RUNS = { numRuns: 300 };
const port = fc.integer({ min: 1, max: 65535 });
/** Text that survives UTF-8 (no lone surrogates), with many digits, spaces and line breaks. */
const wireText = fc
  .array(
    fc.oneof(
      fc.string({ unit: 'binary', maxLength: 8 }),
      fc.constantFrom('\r\n', '\n', '\r', '123 ', '211-', '211 ', '0', ' ', '"', '\u0000', 'ÿ', '日本'),
    ),
    { maxLength: 12 },
  )
  .map((parts) => parts.join(''))
  .filter((s) => Buffer.from(s, 'utf8').toString('utf8') === s);

/** Split `buf` into chunks at the given offsets. */
function chunked(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

describe('round trips', () => {
  it('formatHostPort → parseHostPort', () => {
    fc.assert(
      fc.property(fc.ipV4(), port, (host, p) => {
        expect(parseHostPort(formatHostPort(host, p))).toEqual({ host, port: p });
        expect(parsePasvReply(`227 ${formatPasvReplyText(host, p)}`)).toEqual({ host, port: p });
      }),
      RUNS,
    );
  });

  it('parseHostPort → formatHostPort', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 }), (n) => {
        fc.pre((n[4] as number) * 256 + (n[5] as number) > 0);
        const arg = n.join(',');
        const { host, port: p } = parseHostPort(arg);
        expect(formatHostPort(host, p)).toBe(arg);
      }),
      RUNS,
    );
  });

  it('formatEprt → parseEprt', () => {
    const address = fc.oneof(
      fc.ipV4().map((host) => ({ family: 4 as const, host })),
      fc.ipV6().map((host) => ({ family: 6 as const, host })),
    );
    fc.assert(
      fc.property(address, port, ({ family, host }, p) => {
        expect(parseEprt(formatEprt(family, host, p))).toEqual({ family, host, port: p });
      }),
      RUNS,
    );
  });

  it('parseEprt with any delimiter in ASCII 33-126', () => {
    fc.assert(
      fc.property(fc.ipV6(), port, fc.integer({ min: 33, max: 126 }), (host, p, code) => {
        const d = String.fromCharCode(code);
        fc.pre(!host.includes(d) && !`2${p}`.includes(d));
        expect(parseEprt(`${d}2${d}${host}${d}${p}${d}`)).toEqual({ family: 6, host, port: p });
      }),
      RUNS,
    );
  });

  it('formatEpsvReplyText → parseEpsvReply', () => {
    fc.assert(
      fc.property(port, (p) => {
        expect(parseEpsvReply(`229 ${formatEpsvReplyText(p)}`)).toBe(p);
      }),
      RUNS,
    );
  });

  it('formatFtpTime → parseFtpTime', () => {
    const date = fc.date({ min: new Date('1000-01-01T00:00:00.000Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true });
    fc.assert(
      fc.property(date, (d) => {
        expect(parseFtpTime(formatFtpTime(d, true)).getTime()).toBe(d.getTime());
        expect(parseFtpTime(formatFtpTime(d)).getTime()).toBe(d.getTime() - d.getUTCMilliseconds());
      }),
      RUNS,
    );
  });

  it('parseFtpTime → formatFtpTime', () => {
    const pad = (n: number, w: number) => String(n).padStart(w, '0');
    const parts = fc.record({
      y: fc.integer({ min: 1000, max: 9999 }),
      mo: fc.integer({ min: 1, max: 12 }),
      d: fc.integer({ min: 1, max: 28 }),
      h: fc.integer({ min: 0, max: 23 }),
      mi: fc.integer({ min: 0, max: 59 }),
      s: fc.integer({ min: 0, max: 59 }),
      ms: fc.integer({ min: 0, max: 999 }),
    });
    fc.assert(
      fc.property(parts, ({ y, mo, d, h, mi, s, ms }) => {
        const text = `${pad(y, 4)}${pad(mo, 2)}${pad(d, 2)}${pad(h, 2)}${pad(mi, 2)}${pad(s, 2)}`;
        expect(formatFtpTime(parseFtpTime(text))).toBe(text);
        expect(formatFtpTime(parseFtpTime(`${text}.${pad(ms, 3)}`), true)).toBe(`${text}.${pad(ms, 3)}`);
      }),
      RUNS,
    );
  });

  it('formatReply → ReplyParser: one reply, same code, lines as documented, however split', () => {
    const text = fc.oneof(wireText, fc.array(wireText, { maxLength: 5 }));
    fc.assert(
      fc.property(fc.integer({ min: 100, max: 599 }), text, fc.array(fc.nat(), { maxLength: 6 }), (code, t, cuts) => {
        const wire = formatReply(code, t);
        // Expected lines: every CR/LF/CRLF/NUL splits; middle lines starting with a digit or a byte escape get one space.
        const lines = (typeof t === 'string' ? [t] : t.length === 0 ? [''] : t).flatMap((s) => s.split(/\r\n|\r|\n|\0/));
        const expected = lines.map((l, i) => (i > 0 && i < lines.length - 1 && /^[\d\udc80-\udcff]/.test(l) ? ` ${l}` : l));
        const parser = new ReplyParser();
        const replies = chunked(Buffer.from(wire, 'utf8'), cuts).flatMap((c) => parser.push(c));
        expect(replies).toEqual([{ code, lines: expected, text: expected.join('\n') }]);
      }),
      RUNS,
    );
  });

  it('quotePath → unquotePath', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.constantFrom('', ' created', ' is current directory "x"'), (path, tail) => {
        expect(unquotePath(quotePath(path) + tail)).toBe(path);
        expect(unquotePath(`257 ${quotePath(path)}${tail}`)).toBe(path);
      }),
      RUNS,
    );
  });

  it('AsciiEncoder → AsciiDecoder gives back any CR-free data, however split', () => {
    const data = fc.array(fc.oneof(fc.constant(0x0a), fc.integer({ min: 0, max: 255 }).filter((b) => b !== 0x0d)), { maxLength: 300 });
    fc.assert(
      fc.property(data, fc.array(fc.nat(), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 8 }), (bytes, cuts1, cuts2) => {
        const input = Buffer.from(bytes);
        const enc = new AsciiEncoder();
        const network = Buffer.concat([...chunked(input, cuts1).map((c) => enc.push(c)), enc.flush()]);
        expect(network.toString('latin1')).toBe(input.toString('latin1').replace(/\n/g, '\r\n'));
        const dec = new AsciiDecoder();
        const local = Buffer.concat([...chunked(network, cuts2).map((c) => dec.push(c)), dec.flush()]);
        expect(local.equals(input)).toBe(true);
      }),
      RUNS,
    );
  });

  it('AsciiEncoder and AsciiDecoder match their one-shot definitions on any bytes, however split', () => {
    const data = fc.array(fc.oneof(fc.constantFrom(0x0a, 0x0d), fc.integer({ min: 0, max: 255 })), { maxLength: 300 });
    fc.assert(
      fc.property(data, fc.array(fc.nat(), { maxLength: 8 }), (bytes, cuts) => {
        const input = Buffer.from(bytes);
        const s = input.toString('latin1');
        const enc = new AsciiEncoder();
        const encoded = Buffer.concat(chunked(input, cuts).map((c) => enc.push(c))).toString('latin1');
        expect(encoded).toBe(s.replace(/(?<!\r)\n/g, '\r\n'));
        const dec = new AsciiDecoder();
        const decoded = Buffer.concat([...chunked(input, cuts).map((c) => dec.push(c)), dec.flush()]).toString('latin1');
        expect(decoded).toBe(s.replace(/\r\n/g, '\n'));
      }),
      RUNS,
    );
  });

  it('parseCommand keeps the argument exactly', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z]{1,6}$/), fc.string({ unit: 'binary' }), (verb, arg) => {
        expect(parseCommand(`${verb} ${arg}`)).toEqual({ verb: verb.toUpperCase(), arg });
      }),
      RUNS,
    );
  });

  it('LineReader gives back CRLF-framed commands, however split', () => {
    const command = wireText.map((s) => s.replace(/[\r\n]/g, ''));
    fc.assert(
      fc.property(fc.array(command, { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 10 }), (commands, cuts) => {
        const wire = Buffer.from(commands.map((c) => `${c}\r\n`).join(''), 'utf8');
        const reader = new LineReader({ maxLineLength: 1 << 16 });
        const lines = chunked(wire, cuts).flatMap((c) => reader.push(c));
        expect(lines).toEqual(commands.map((line) => ({ type: 'line', line })));
      }),
      RUNS,
    );
  });

  it('REST, RANG and OPTS MLST values round-trip', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.maxSafeNat(), fc.subarray([...SUPPORTED_FACTS]), (a, b, facts) => {
        expect(parseRestOffset(String(a))).toBe(a);
        const [start, end] = a <= b ? [a, b] : [b, a];
        fc.pre(!(start === 1 && end === 0));
        expect(parseHashRange(`${start} ${end}`)).toEqual({ start, end });
        const reply = formatOptsMlstReply(facts);
        expect(parseOptsMlst(reply.replace(/^MLST OPTS ?/, ''))).toEqual(facts);
      }),
      RUNS,
    );
  });
});

describe('listing invariants', () => {
  const entry = fc.record({
    name: fc.string({ unit: 'binary' }),
    type: fc.constantFrom('file', 'dir', 'link', 'other'),
    size: fc.oneof(fc.maxSafeNat(), fc.double()),
    mtime: fc.oneof(fc.integer({ min: -8.64e15, max: 8.64e15 }), fc.date(), fc.double()),
    mode: fc.oneof(fc.integer({ min: 0, max: 0o177777 }), fc.double()),
    nlink: fc.option(fc.nat(), { nil: undefined }),
    owner: fc.option(fc.string({ unit: 'binary' }), { nil: undefined }),
    group: fc.option(fc.string({ unit: 'binary' }), { nil: undefined }),
    target: fc.option(fc.string({ unit: 'binary' }), { nil: undefined }),
    perm: fc.option(fc.string(), { nil: undefined }),
    unique: fc.option(fc.string({ unit: 'binary' }), { nil: undefined }),
    uid: fc.option(fc.integer(), { nil: undefined }),
    gid: fc.option(fc.integer(), { nil: undefined }),
    create: fc.option(fc.date(), { nil: undefined }),
    dirRole: fc.option(fc.constantFrom('cdir' as const, 'pdir' as const), { nil: undefined }),
  });

  it('a LIST line is one line with 9 columns before the name', () => {
    fc.assert(
      fc.property(entry, fc.integer({ min: 0, max: 4e12 }), (e, now) => {
        const line = formatListLine(e as ListEntry, now);
        expect(line).not.toMatch(/[\r\n]/);
        expect(line).toMatch(/^[-dlbcps][-r][-w][-xsS][-r][-w][-xsS][-r][-w][-xtT] +\d+ \S+ +\S+ +\d+ [A-Z][a-z]{2} \d\d (\d\d:\d\d| *-?\d+) /);
        expect(line.includes(` ${sanitizeName(e.name)}`)).toBe(true);
      }),
      RUNS,
    );
  });

  it('an MLSx entry is facts without separators in values, a space and the name', () => {
    fc.assert(
      fc.property(entry, fc.subarray([...SUPPORTED_FACTS]), fc.boolean(), (e, facts, millis) => {
        const line = formatFacts(e as FactEntry, facts, { millis });
        expect(line).not.toMatch(/[\r\n]/);
        const space = line.indexOf(' ');
        expect(line.slice(0, space)).toMatch(/^(?:[a-z.]+=[^;\s\u0000-\u001f]*;)*$/);
        expect(line.slice(space + 1)).toBe(sanitizeName(e.name));
      }),
      RUNS,
    );
  });
});

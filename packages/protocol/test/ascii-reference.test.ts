import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AsciiDecoder, AsciiEncoder } from '../src/index.js';

/** The encoder, byte by byte: an LF not right after a CR (in this chunk or the last one) gets one. */
function referenceEncode(chunks: Buffer[]): Buffer {
  const out: number[] = [];
  let prev = -1;
  for (const c of chunks) {
    for (const b of c) {
      if (b === 0x0a && prev !== 0x0d) out.push(0x0d);
      out.push(b);
      prev = b;
    }
  }
  return Buffer.from(out);
}

/** The decoder, byte by byte: a CR is held until the next byte; dropped before an LF, kept otherwise. */
function referenceDecode(chunks: Buffer[]): Buffer {
  const out: number[] = [];
  let held = false;
  for (const c of chunks) {
    for (const b of c) {
      if (held && b !== 0x0a) out.push(0x0d);
      held = b === 0x0d;
      if (!held) out.push(b);
    }
  }
  if (held) out.push(0x0d);
  return Buffer.from(out);
}

/**
 * Data with many CRs and LFs: lines of any length from 0 to ~600 bytes (so both the short-line and the
 * long-line paths run, in one chunk too), any filler (text, or random bytes that may hold CR/LF themselves),
 * ended by LF, CRLF, CR or CRCRLF.
 */
const line = fc.tuple(
  fc.oneof(
    fc.integer({ min: 0, max: 12 }),
    fc.integer({ min: 0, max: 80 }),
    { arbitrary: fc.integer({ min: 200, max: 600 }), weight: 2 },
  ),
  fc.boolean(),
  fc.constantFrom('\n', '\n', '\r\n', '\r', '\r\r\n', '\n\r', ''),
  fc.integer({ min: 0, max: 0xffff }),
);
const data = fc.array(line, { maxLength: 30 }).map((lines) => {
  const parts: Buffer[] = [];
  for (const [len, binary, end, seed] of lines) {
    const fill = Buffer.alloc(len);
    let s = seed;
    for (let i = 0; i < len; i++) {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      fill[i] = binary ? s >>> 16 & 0xff : 0x61 + (s >>> 16) % 26;
    }
    parts.push(fill, Buffer.from(end, 'latin1'));
  }
  return Buffer.concat(parts);
});

/**
 * Random cut points, and each chunk copied to a random offset of a fresh buffer (the word loop depends
 * on a chunk's byteOffset).
 */
function chunked(buf: Buffer, cuts: number[], shifts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const [k, p] of [...points, buf.length].entries()) {
    const shift = shifts[k % Math.max(1, shifts.length)] ?? 0;
    const piece = Buffer.alloc(p - prev + shift);
    buf.copy(piece, shift, prev, p);
    out.push(piece.subarray(shift));
    prev = p;
  }
  return out;
}

const cutsArb = fc.array(fc.nat(), { maxLength: 12 });
const shiftsArb = fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 4 });

describe('AsciiEncoder and AsciiDecoder against byte-by-byte references', () => {
  it('encode: same bytes as the reference, however split; a chunk with nothing to convert comes back as is', () => {
    fc.assert(
      fc.property(data, cutsArb, shiftsArb, (input, cuts, shifts) => {
        const chunks = chunked(input, cuts, shifts);
        const enc = new AsciiEncoder();
        const outs = chunks.map((c) => {
          const before = Buffer.from(c);
          const o = enc.push(c);
          expect(c.equals(before)).toBe(true); // the input is not touched
          return { c, o };
        });
        for (const { c, o } of outs) expect(o === c).toBe(o.equals(c));
        // All outputs are read only now: one chunk's output must survive the later pushes.
        const got = Buffer.concat([...outs.map(({ o }) => o), enc.flush()]);
        expect(got.toString('latin1')).toBe(referenceEncode(chunks).toString('latin1'));
      }),
      { numRuns: 500 },
    );
  });

  it('decode: same bytes as the reference, however split, with flush', () => {
    fc.assert(
      fc.property(data, cutsArb, shiftsArb, (input, cuts, shifts) => {
        const chunks = chunked(input, cuts, shifts);
        const dec = new AsciiDecoder();
        const outs = chunks.map((c) => dec.push(c));
        const got = Buffer.concat([...outs, dec.flush()]);
        expect(got.toString('latin1')).toBe(referenceDecode(chunks).toString('latin1'));
      }),
      { numRuns: 500 },
    );
  });

  it('decode(encode(x)) gives back x when x has no CR, over big chunks', () => {
    fc.assert(
      fc.property(data, cutsArb, cutsArb, (raw, cuts1, cuts2) => {
        const input = Buffer.from(raw.toString('latin1').replaceAll('\r', 'x'), 'latin1');
        const enc = new AsciiEncoder();
        const network = Buffer.concat(chunked(input, cuts1, []).map((c) => enc.push(c)));
        const dec = new AsciiDecoder();
        const local = Buffer.concat([...chunked(network, cuts2, [1, 2, 3]).map((c) => dec.push(c)), dec.flush()]);
        expect(local.equals(input)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('converts 64 KiB chunks of short and long lines like the reference', () => {
    for (const lineLength of [10, 75, 300, 4096]) {
      const text = Buffer.from(`${'y'.repeat(lineLength - 1)}\n`.repeat(Math.ceil((3 * 65536) / lineLength)), 'latin1');
      const chunks = chunked(text, [65536, 131072 + 1], [0, 1, 3]);
      const enc = new AsciiEncoder();
      const network = Buffer.concat(chunks.map((c) => enc.push(c)));
      expect(network.equals(referenceEncode(chunks))).toBe(true);
      const dec = new AsciiDecoder();
      const back = chunked(network, [65536 - 1, 131072], [2]);
      expect(Buffer.concat([...back.map((c) => dec.push(c)), dec.flush()]).equals(referenceDecode(back))).toBe(true);
    }
  });
});

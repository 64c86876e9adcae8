import { describe, expect, it } from 'vitest';
import { TlsRecordFramer } from '../src/tls-records.js';

/** A TLS record header and body: content type, TLS 1.2 version, 16-bit length. */
function record(type: number, body: number): Buffer {
  const b = Buffer.alloc(5 + body, 0xaa);
  b[0] = type;
  b[1] = 3;
  b[2] = 3;
  b.writeUInt16BE(body, 3);
  return b;
}

describe('TlsRecordFramer', () => {
  const stream = Buffer.concat([record(21, 26), record(23, 300), Buffer.from('PWD\r\n')]);
  const recordBytes = stream.length - 5;

  it.each(Array.from({ length: stream.length + 1 }, (_, i) => i))('finds clear text after records, split at byte %i', (split) => {
    const framer = new TlsRecordFramer();
    const first = stream.subarray(0, split);
    const second = stream.subarray(split);
    const n1 = framer.records(first);
    expect(framer.clearText).toBe(split > recordBytes);
    const n2 = framer.clearText ? 0 : framer.records(second);
    expect(n1 + n2).toBe(recordBytes);
    expect(framer.clearText).toBe(true);
  });

  it('says clear text at once for a stream that holds no record', () => {
    const framer = new TlsRecordFramer();
    expect(framer.records(Buffer.from('NOOP\r\n'))).toBe(0);
    expect(framer.clearText).toBe(true);
    expect(framer.records(record(21, 2))).toBe(0);
  });
});

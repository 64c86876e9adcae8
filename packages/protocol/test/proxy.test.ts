import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseProxyHeader, ProtocolError } from '../src/index.js';

const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A v2 header as HAProxy writes it: PROXY command, TCP over IPv4 or IPv6, optional TLVs. */
function v2(family: 4 | 6, src: number[], dst: number[], sport: number, dport: number, tlv = Buffer.alloc(0)): Buffer {
  const addr = Buffer.from([...src, ...dst]);
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sport, 0);
  ports.writeUInt16BE(dport, 2);
  const body = Buffer.concat([addr, ports, tlv]);
  const head = Buffer.from([0x21, family === 4 ? 0x11 : 0x21, 0, 0]);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([SIG, head, body]);
}

function everyPrefixIsIncomplete(header: Buffer): void {
  for (let i = 0; i < header.length; i++) expect(parseProxyHeader(header.subarray(0, i))).toBeNull();
}

describe('parseProxyHeader', () => {
  it('reads a v1 header and says where the data starts, at every split', () => {
    const header = Buffer.from('PROXY TCP4 192.0.2.10 198.51.100.1 56324 21\r\n');
    const withData = Buffer.concat([header, Buffer.from('USER x\r\n')]);
    everyPrefixIsIncomplete(header);
    expect(parseProxyHeader(withData)).toEqual({
      version: 1,
      source: { address: '192.0.2.10', port: 56324 },
      destination: { address: '198.51.100.1', port: 21 },
      length: header.length,
    });
    expect(parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 4000 21\r\n'))?.source).toEqual({ address: '2001:db8::1', port: 4000 });
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN whatever\r\n'))).toMatchObject({ source: null, destination: null });
  });

  it('gives v1 IPv6 addresses in one spelling, as v2 does (one client must not count as several, or escape a ban)', () => {
    const source = (address: string): string | undefined =>
      parseProxyHeader(Buffer.from(`PROXY TCP6 ${address} ::1 4000 21\r\n`))?.source?.address;
    expect(source('2001:db8:1:2:0:0:0:1')).toBe('2001:db8:1:2::1');
    expect(source('2001:DB8:1:2:0000::01')).toBe('2001:db8:1:2::1');
    expect(source('0:0:0:0:0:ffff:198.51.100.9')).toBe('::ffff:198.51.100.9');
    expect(source('::FFFF:C633:6409')).toBe('::ffff:198.51.100.9');
    expect(source('64:ff9b::192.0.2.33')).toBe('64:ff9b::c000:221');
    expect(source('0:0:0:0:0:0:0:0')).toBe('::');
    for (const bad of ['1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1::2::3', ':1::2', '1:2:3:4:5:6:7::8', '12345::1', '::1.2.3', '1.2.3.4', ':::']) {
      expect(() => parseProxyHeader(Buffer.from(`PROXY TCP6 ${bad} ::1 4000 21\r\n`)), bad).toThrow(ProtocolError);
    }
  });

  it('reads v2 headers (IPv4, IPv6 with TLVs, LOCAL), at every split', () => {
    const h4 = v2(4, [203, 0, 113, 7], [10, 0, 0, 1], 40000, 21);
    everyPrefixIsIncomplete(h4);
    expect(parseProxyHeader(Buffer.concat([h4, Buffer.from('rest')]))).toEqual({
      version: 2,
      source: { address: '203.0.113.7', port: 40000 },
      destination: { address: '10.0.0.1', port: 21 },
      length: h4.length,
    });
    const src6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const dst6 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1];
    const h6 = v2(6, src6, dst6, 1, 2, Buffer.from([0x01, 0x00, 0x02, 0x68, 0x32]));
    expect(parseProxyHeader(h6)).toMatchObject({ source: { address: '2001:db8::1', port: 1 }, destination: { address: '::ffff:127.0.0.1', port: 2 }, length: h6.length });
    const local = Buffer.concat([SIG, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
    expect(parseProxyHeader(local)).toEqual({ version: 2, source: null, destination: null, length: 16 });
  });

  it('refuses what is not a header: clear-text commands, bad addresses, UDP, long lines', () => {
    for (const bad of [
      'USER anonymous\r\n',
      'PROXY TCP4 999.0.0.1 1.2.3.4 1 2\r\n',
      'PROXY TCP4 1.2.3.4 1.2.3.4 1 99999\r\n',
      'PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n',
      'PROXY TCP4 1.2.3.4\r\n',
      `PROXY ${'x'.repeat(120)}`,
    ]) {
      expect(() => parseProxyHeader(Buffer.from(bad)), bad).toThrow(ProtocolError);
    }
    const udp = v2(4, [1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
    udp[13] = 0x12;
    expect(() => parseProxyHeader(udp)).toThrow(/TCP/);
    const v3 = v2(4, [1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
    v3[12] = 0x31;
    expect(() => parseProxyHeader(v3)).toThrow(/version/);
  });

  it('round-trips any v1 and v2 IPv4 header and never throws anything but a ProtocolError', () => {
    const octets = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 });
    const port = fc.integer({ min: 0, max: 65535 });
    fc.assert(
      fc.property(octets, octets, port, port, (s, d, sp, dp) => {
        const text = `PROXY TCP4 ${s.join('.')} ${d.join('.')} ${sp} ${dp}\r\n`;
        const one = parseProxyHeader(Buffer.from(text));
        const two = parseProxyHeader(v2(4, s, d, sp, dp));
        for (const h of [one, two]) {
          expect(h?.source).toEqual({ address: s.join('.'), port: sp });
          expect(h?.destination).toEqual({ address: d.join('.'), port: dp });
        }
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          parseProxyHeader(bytes);
        } catch (err) {
          expect(ProtocolError.isInstance(err)).toBe(true);
        }
      }),
    );
  });
});

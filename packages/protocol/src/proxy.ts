/**
 * The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): the header a load balancer puts before a
 * connection's first byte to say which client it carries. Pure: bytes in, addresses out.
 *
 * @module
 */
import { ProtocolError } from './errors.js';

/** One end of the proxied connection. */
export interface ProxyEndpoint {
  address: string;
  port: number;
}

/** What a complete header says. */
export interface ProxyHeader {
  /** 1 (text) or 2 (binary). */
  version: 1 | 2;
  /** The client and the address it connected to; null for LOCAL (v2) and UNKNOWN (v1): the proxy's own connection. */
  source: ProxyEndpoint | null;
  destination: ProxyEndpoint | null;
  /** Bytes the header took: the connection's own data starts there. */
  length: number;
}

/** Longest v1 header (spec §2.1: 107 bytes with CRLF). */
const V1_MAX = 107;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ');
/** The largest v2 header we accept (addresses plus TLVs); the spec allows 64 KiB, real proxies send far less. */
const V2_MAX = 16 + 2048;

const bad = (message: string): ProtocolError => new ProtocolError('BAD_ARGUMENT', `PROXY protocol: ${message}`);

/**
 * Reads a PROXY protocol header at the start of `buf`. Returns null while more bytes are needed, the header once
 * complete, and throws a {@link ProtocolError} for anything that is not a valid header (a connection that should
 * have one and does not must be closed: it did not come through the proxy).
 */
export function parseProxyHeader(bytes: Uint8Array): ProxyHeader | null {
  if (!(bytes instanceof Uint8Array)) throw new ProtocolError('BAD_ARGUMENT', 'PROXY protocol: expected bytes');
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length === 0) return null;
  if (buf[0] === 0x0d) return parseV2(buf);
  if (buf[0] === 0x50) return parseV1(buf);
  throw bad('no header');
}

function startsWith(buf: Buffer, prefix: Buffer): boolean | null {
  const n = Math.min(buf.length, prefix.length);
  if (!buf.subarray(0, n).equals(prefix.subarray(0, n))) return false;
  return n === prefix.length ? true : null;
}

function parseV1(buf: Buffer): ProxyHeader | null {
  const prefix = startsWith(buf, V1_PREFIX);
  if (prefix === false) throw bad('no header');
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end < 0) {
    if (buf.length >= V1_MAX) throw bad('v1 header too long');
    return null;
  }
  if (end + 2 > V1_MAX) throw bad('v1 header too long');
  const parts = buf.toString('latin1', 0, end).split(' ');
  const length = end + 2;
  if (parts[1] === 'UNKNOWN') return { version: 1, source: null, destination: null, length };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) throw bad('malformed v1 header');
  const family = parts[1] === 'TCP4' ? 4 : 6;
  return {
    version: 1,
    source: { address: checkAddress(parts[2]!, family), port: checkPort(parts[4]!) },
    destination: { address: checkAddress(parts[3]!, family), port: checkPort(parts[5]!) },
    length,
  };
}

function parseV2(buf: Buffer): ProxyHeader | null {
  const sig = startsWith(buf, V2_SIGNATURE);
  if (sig === false) throw bad('no header');
  if (buf.length < 16) return null;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) throw bad(`unsupported version ${verCmd >> 4}`);
  const command = verCmd & 0x0f;
  if (command > 1) throw bad(`unknown command ${command}`);
  const famProto = buf[13]!;
  const bodyLength = buf.readUInt16BE(14);
  if (16 + bodyLength > V2_MAX) throw bad('v2 header too long');
  const length = 16 + bodyLength;
  if (buf.length < length) return null;
  // LOCAL (health checks of the proxy itself) and UNSPEC families carry no client address.
  if (command === 0 || famProto >> 4 === 0) return { version: 2, source: null, destination: null, length };
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  if (transport !== 1) throw bad('only TCP (STREAM) connections can carry FTP');
  const body = buf.subarray(16, length);
  if (family === 1) {
    if (body.length < 12) throw bad('short IPv4 addresses');
    return {
      version: 2,
      source: { address: ipv4(body, 0), port: body.readUInt16BE(8) },
      destination: { address: ipv4(body, 4), port: body.readUInt16BE(10) },
      length,
    };
  }
  if (family === 2) {
    if (body.length < 36) throw bad('short IPv6 addresses');
    return {
      version: 2,
      source: { address: ipv6(body, 0), port: body.readUInt16BE(32) },
      destination: { address: ipv6(body, 16), port: body.readUInt16BE(34) },
      length,
    };
  }
  throw bad(`address family ${family} is not TCP over IP`);
}

function ipv4(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

function ipv6(b: Buffer, at: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(at + i * 2).toString(16));
  // IPv4-mapped addresses as Node reports them, so they compare equal to a direct connection's.
  if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') return `::ffff:${b[at + 12]}.${b[at + 13]}.${b[at + 14]}.${b[at + 15]}`;
  return compress(groups);
}

/** RFC 5952 text form: the longest run of zero groups (two or more) becomes `::`. */
function compress(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * A v1 address, in the one spelling v2 gives the same address: a proxy may write `2001:db8::1` as
 * `2001:DB8:0:0:0:0:0:1`, or an IPv4 client as `0:0:0:0:0:ffff:198.51.100.9`, and whatever the server keys on the
 * address (session limits, bans) must see one client as one.
 */
function checkAddress(text: string, family: 4 | 6): string {
  if (family === 4 && IPV4.test(text)) return text;
  const bytes = family === 6 ? ipv6Bytes(text) : null;
  if (bytes) return ipv6(bytes, 0);
  throw bad(`bad IPv${family} address`);
}

/** The 16 bytes of an IPv6 address in text form (RFC 4291 §2.2, with an IPv4 tail or not), or null. */
function ipv6Bytes(text: string): Buffer | null {
  if (!/^[0-9a-fA-F:.]{2,45}$/.test(text)) return null;
  let hex = text;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    if (lastColon < 0 || !IPV4.test(tail)) return null;
    const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number);
    hex = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = hex.split('::');
  if (halves.length > 2) return null;
  const split = (side: string): string[] | null => {
    if (side === '') return [];
    const groups = side.split(':');
    return groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g)) ? groups : null;
  };
  const left = split(halves[0]!);
  const right = halves.length === 2 ? split(halves[1]!) : [];
  if (!left || !right) return null;
  const zeros = 8 - left.length - right.length;
  if (halves.length === 2 ? zeros < 1 : zeros !== 0) return null;
  const groups = [...left, ...Array<string>(zeros).fill('0'), ...right];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function checkPort(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw bad('bad port');
  return Number(text);
}

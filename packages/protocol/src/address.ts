/**
 * Data-connection address codecs: PORT/PASV (RFC 959 §4.1.2) and
 * EPRT/EPSV (RFC 2428).
 *
 * @module
 */
import { isIPv4, isIPv6 } from 'node:net';
import { asciiUpper } from './command.js';
import { badArgument, excerpt, expectString, unsupportedNetwork } from './errors.js';

/** An IPv4 host and a TCP port. */
export interface HostPort {
  /** Dotted IPv4 address, e.g. `192.168.1.2`. */
  host: string;
  /** TCP port, 1 … 65535. */
  port: number;
}

/** An EPRT address: network protocol (RFC 2428 §2: 1 = IPv4, 2 = IPv6), host and port. */
export interface ExtendedAddress {
  /** 4 for IPv4 (net-prt 1), 6 for IPv6 (net-prt 2). */
  family: 4 | 6;
  /** The address, as given (validated for its family). */
  host: string;
  /** TCP port, 1 … 65535. */
  port: number;
}

/** The argument of EPSV (RFC 2428 §3): none, `ALL`, or a network protocol. */
export type EpsvArg = { kind: 'any' } | { kind: 'all' } | { kind: 'family'; family: 4 | 6 };

const BYTE = /^\d{1,3}$/;
/** A port's decimal digits: at most five significant ones, leading zeros allowed (as PORT's numbers take them). */
const PORT_DIGITS = /^0*\d{1,5}$/;

function checkPort(port: unknown): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    badArgument('port must be an integer between 1 and 65535');
  }
  return port;
}

function parseByte(s: string): number {
  const t = s.trim();
  if (!BYTE.test(t)) badArgument('host-port numbers must be decimal integers 0-255');
  const v = Number(t);
  if (v > 255) badArgument('host-port numbers must be decimal integers 0-255');
  return v;
}

/** Unwrap an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) and check it is dotted IPv4. */
function toIPv4(host: unknown): string {
  const h = expectString(host, 'host');
  const v4 = /^::ffff:/i.test(h) ? h.slice(7) : h;
  if (!isIPv4(v4)) badArgument(`not an IPv4 address: ${excerpt(h)}`);
  return v4;
}

/**
 * Parse the argument of PORT, `h1,h2,h3,h4,p1,p2` (RFC 959 §4.1.2): six
 * decimal numbers 0–255, the host `h1.h2.h3.h4` and the port `p1*256+p2`.
 * Whitespace around the numbers is tolerated.
 *
 * @param arg - the PORT argument.
 * @throws ProtocolError `BAD_ARGUMENT` if malformed or if the port is 0.
 * @example
 * ```ts
 * parseHostPort('192,168,1,2,19,137') // { host: '192.168.1.2', port: 5001 }
 * ```
 */
export function parseHostPort(arg: string): HostPort {
  const parts = expectString(arg, 'PORT argument').split(',');
  if (parts.length !== 6) badArgument('expected h1,h2,h3,h4,p1,p2');
  const n = parts.map(parseByte);
  const port = (n[4] as number) * 256 + (n[5] as number);
  if (port === 0) badArgument('port must be between 1 and 65535');
  return { host: `${n[0]}.${n[1]}.${n[2]}.${n[3]}`, port };
}

/**
 * Format a host and port as `h1,h2,h3,h4,p1,p2` (RFC 959 §4.1.2), for PORT
 * and the 227 reply.
 *
 * @param host - dotted IPv4, or IPv4-mapped IPv6 (`::ffff:1.2.3.4`, unwrapped).
 * @param port - 1 … 65535.
 * @throws ProtocolError `BAD_ARGUMENT` for another kind of host or a bad port.
 */
export function formatHostPort(host: string, port: number): string {
  const v4 = toIPv4(host);
  const p = checkPort(port);
  return `${v4.replaceAll('.', ',')},${p >> 8},${p & 0xff}`;
}

/**
 * The text of the 227 reply to PASV (RFC 959 §4.2.2):
 * `Entering Passive Mode (h1,h2,h3,h4,p1,p2).`
 *
 * @param host - dotted IPv4, or IPv4-mapped IPv6.
 * @param port - 1 … 65535.
 * @throws ProtocolError `BAD_ARGUMENT` for another kind of host or a bad port.
 */
export function formatPasvReplyText(host: string, port: number): string {
  return `Entering Passive Mode (${formatHostPort(host, port)}).`;
}

const PASV_NUMBERS = /(?<!\d)(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})(?!\d)/;

/**
 * Parse the text of a 227 reply, for clients: the six comma-separated
 * numbers are found anywhere in the text (RFC 1123 §4.1.2.6 notes that
 * servers vary the wording around them).
 *
 * @param text - the reply text (with or without the code).
 * @throws ProtocolError `BAD_ARGUMENT` if no valid six numbers are found.
 */
export function parsePasvReply(text: string): HostPort {
  const m = PASV_NUMBERS.exec(expectString(text, 'reply text'));
  if (m === null) badArgument('no h1,h2,h3,h4,p1,p2 in reply');
  return parseHostPort(m.slice(1, 7).join(','));
}

/**
 * Parse the argument of EPRT (RFC 2428 §2): `<d><net-prt><d><net-addr><d><tcp-port><d>`,
 * e.g. `|1|132.235.1.2|6275|` or `|2|1080::8:800:200C:417A|5282|`. The
 * delimiter is the first character, any of ASCII 33–126.
 *
 * @param arg - the EPRT argument (surrounding spaces are ignored).
 * @throws ProtocolError `UNSUPPORTED_NETWORK` for a net-prt other than 1 or 2
 *   (a server replies 522); `BAD_ARGUMENT` for anything malformed, an address
 *   not valid for its family (IPv6 zone ids are refused), or a bad port.
 */
export function parseEprt(arg: string): ExtendedAddress {
  const s = expectString(arg, 'EPRT argument').trim();
  const d = s.charCodeAt(0);
  if (!(d >= 33 && d <= 126)) badArgument('EPRT delimiter must be an ASCII character 33-126');
  const parts = s.split(s.charAt(0));
  if (parts.length !== 5 || parts[0] !== '' || parts[4] !== '') {
    badArgument('expected EPRT <d><net-prt><d><net-addr><d><tcp-port><d>');
  }
  const prt = parts[1] as string;
  const addr = parts[2] as string;
  const portText = parts[3] as string;
  if (!/^\d+$/.test(prt)) badArgument('EPRT net-prt must be a number');
  let family: 4 | 6;
  if (prt === '1') family = 4;
  else if (prt === '2') family = 6;
  else return unsupportedNetwork();
  if (family === 4 ? !isIPv4(addr) : addr.includes('%') || !isIPv6(addr)) {
    badArgument(`invalid IPv${family} address: ${excerpt(addr)}`);
  }
  if (!PORT_DIGITS.test(portText)) badArgument('EPRT port must be a decimal number');
  return { family, host: addr, port: checkPort(Number(portText)) };
}

/**
 * Format an EPRT argument (RFC 2428 §2) with `|` as delimiter:
 * `|1|132.235.1.2|6275|`.
 *
 * @param family - 4 or 6.
 * @param host - an address of that family (an IPv4-mapped IPv6 address is unwrapped for family 4).
 * @param port - 1 … 65535.
 * @throws ProtocolError `BAD_ARGUMENT` if the family, host or port is invalid.
 */
export function formatEprt(family: 4 | 6, host: string, port: number): string {
  let h: string;
  if (family === 4) h = toIPv4(host);
  else if (family === 6) {
    h = expectString(host, 'host');
    if (h.includes('%') || !isIPv6(h)) badArgument(`not an IPv6 address: ${excerpt(h)}`);
  } else return badArgument('family must be 4 or 6');
  return `|${family === 4 ? 1 : 2}|${h}|${checkPort(port)}|`;
}

/**
 * The text of the 229 reply to EPSV (RFC 2428 §3):
 * `Entering Extended Passive Mode (|||6446|)`.
 *
 * @param port - 1 … 65535.
 * @throws ProtocolError `BAD_ARGUMENT` for a bad port.
 */
export function formatEpsvReplyText(port: number): string {
  return `Entering Extended Passive Mode (|||${checkPort(port)}|)`;
}

/**
 * Parse the text of a 229 reply, for clients: finds `(<d><d><d><port><d>)`
 * anywhere in the text (RFC 2428 §3), the delimiter being any ASCII 33–126.
 *
 * @param text - the reply text (with or without the code).
 * @returns the port.
 * @throws ProtocolError `BAD_ARGUMENT` if not found or the port is invalid.
 */
export function parseEpsvReply(text: string): number {
  const m = /\(([\x21-\x7e])\1\1(\d{1,5})\1\)/.exec(expectString(text, 'reply text'));
  if (m === null) badArgument('no (|||port|) in reply');
  return checkPort(Number(m[2]));
}

/**
 * Parse the argument of EPSV (RFC 2428 §3): none (`any`), `ALL`
 * (case-insensitive), `1` (IPv4) or `2` (IPv6).
 *
 * @param arg - the EPSV argument (surrounding spaces are ignored).
 * @throws ProtocolError `UNSUPPORTED_NETWORK` for another protocol number (a
 *   server replies 522); `BAD_ARGUMENT` for anything else.
 */
export function parseEpsvArg(arg: string): EpsvArg {
  const s = expectString(arg, 'EPSV argument').trim();
  if (s === '') return { kind: 'any' };
  if (asciiUpper(s) === 'ALL') return { kind: 'all' };
  if (s === '1') return { kind: 'family', family: 4 };
  if (s === '2') return { kind: 'family', family: 6 };
  if (/^\d+$/.test(s)) unsupportedNetwork();
  return badArgument('EPSV argument must be empty, ALL, 1 or 2');
}

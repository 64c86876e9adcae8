import type { Duplex } from 'node:stream';

/** The TLS 1.2 protocol version, as a ClientHello names it. */
export const TLS12 = 0x0303;

/** A ClientHello bigger than this (or spread over several records) is not looked into. */
const MAX_HELLO = 16 * 1024 + 5;

/**
 * The TLS versions a client offers, read from its ClientHello (RFC 8446 §4.1.2, §4.2.1: `supported_versions`, or
 * the legacy version without it) before the handshake begins, and put back for the handshake to read. Null when the
 * stream does not start with a ClientHello in one record, or ends, or nothing complete comes within `timeoutMs`.
 */
export function offeredTlsVersions(stream: Duplex, timeoutMs: number): Promise<number[] | null> {
  // Gone or ended already: its 'close' or 'end' will not come again (the handshake after this says it is gone).
  if (stream.destroyed || stream.readableEnded) return Promise.resolve(null);
  return new Promise((resolve) => {
    let held: Buffer | null = null;
    let settled = false;
    const finish = (versions: number[] | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.off('error', onEnd);
      if (held !== null && !stream.readableEnded && !stream.destroyed) stream.unshift(held);
      resolve(versions);
    };
    const onReadable = (): void => {
      for (let chunk: Buffer | null; (chunk = stream.read() as Buffer | null) !== null; ) held = held === null ? chunk : Buffer.concat([held, chunk]);
      if (held === null) return;
      // A guess about the client, from bytes anyone can send: whatever they hold, never a throw from this handler
      // (an event handler's exception ends the process), only no guess.
      let versions: number[] | null | 'incomplete';
      try {
        versions = helloVersions(held);
      } catch {
        versions = null;
      }
      if (versions !== 'incomplete') finish(versions);
      else if (held.length > MAX_HELLO) finish(null);
    };
    const onEnd = (): void => finish(null);
    const timer = setTimeout(onEnd, timeoutMs);
    stream.on('readable', onReadable);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
    stream.once('error', onEnd);
    onReadable();
  });
}

/** The versions a ClientHello at the start of `buf` offers; 'incomplete' until its record is whole; null if none. */
export function helloVersions(buf: Buffer): number[] | null | 'incomplete' {
  if (buf.length < 5) return buf.length > 0 && buf[0] !== 22 ? null : 'incomplete';
  // A handshake record holding a ClientHello.
  if (buf[0] !== 22) return null;
  const end = 5 + buf.readUInt16BE(3);
  if (buf.length < end) return 'incomplete';
  // A handshake header and the legacy version at least (a record that ends sooner is no ClientHello to look into:
  // reading past it threw, from a socket's 'readable' handler, and took the process down).
  if (end < 11 || buf[5] !== 1) return null;
  // Only a ClientHello the record holds whole.
  if (9 + buf.readUIntBE(6, 3) > end) return null;
  let at = 9;
  const legacy = buf.readUInt16BE(at);
  at += 2 + 32;
  const skip = (lengthBytes: 1 | 2): boolean => {
    if (at + lengthBytes > end) return false;
    at += lengthBytes + (lengthBytes === 1 ? buf[at]! : buf.readUInt16BE(at));
    return at <= end;
  };
  // Session id, cipher suites, compression methods.
  if (!skip(1) || !skip(2) || !skip(1)) return null;
  if (at === end) return [legacy];
  if (at + 2 > end) return null;
  const extensionsEnd = Math.min(end, at + 2 + buf.readUInt16BE(at));
  at += 2;
  while (at + 4 <= extensionsEnd) {
    const type = buf.readUInt16BE(at);
    const length = buf.readUInt16BE(at + 2);
    at += 4;
    if (at + length > extensionsEnd) return null;
    if (type === 0x002b) {
      const versions: number[] = [];
      for (let i = at + 1; i + 1 < at + 1 + buf[at]! && i + 1 < at + length; i += 2) versions.push(buf.readUInt16BE(i));
      return versions;
    }
    at += length;
  }
  return [legacy];
}

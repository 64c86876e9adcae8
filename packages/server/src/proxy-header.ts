import type { Socket } from 'node:net';
import { parseProxyHeader, type ProxyHeader } from '@ftp/protocol';
import { canonicalAddress, plainAddress } from './ip-address.js';

/**
 * Reads the PROXY protocol header (v1 or v2) a load balancer sends before a connection's own bytes, and puts
 * back whatever followed it, so the session (or TLS) reads the connection as if it had come directly. Rejects
 * when no valid header arrives within `timeoutMs` or the bytes are not one.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    const finish = (err: Error | null, header?: ProxyHeader): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('end', onClose);
      if (err) return reject(err);
      socket.pause();
      const rest = buffered.subarray(header!.length);
      if (rest.length > 0) socket.unshift(rest);
      resolve(withCanonicalSource(header!));
    };
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      try {
        const header = parseProxyHeader(buffered);
        if (header) finish(null, header);
      } catch (err) {
        finish(err as Error);
      }
    };
    const onClose = (): void => finish(new Error('connection closed before its PROXY header'));
    const timer = setTimeout(() => finish(new Error('no PROXY header in time')), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
    // The socket is half-open: a FIN alone does not close it.
    socket.once('end', onClose);
  });
}

/**
 * The header with its client address as a direct connection's would be: the proxy may spell one address several
 * ways (`2001:db8::1`, `2001:DB8:0:0:0:0:0:1`, `::ffff:198.51.100.9` for 198.51.100.9), and session limits, bans and
 * the data connection's peer check must see one client as one.
 */
function withCanonicalSource(header: ProxyHeader): ProxyHeader {
  if (!header.source) return header;
  return { ...header, source: { ...header.source, address: plainAddress(canonicalAddress(header.source.address)) } };
}

import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { createSecureContext, TLSSocket, type SecureContext, type SecureVersion } from 'node:tls';
import type { FtpDriver, SessionInfo } from './driver.js';
import { FtpError } from './errors.js';
import type { ServerSettings } from './settings.js';

const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;

/**
 * Builds a TLS context for each TLS control connection from what the driver returns (so a certificate replaced at
 * run time is picked up by the next AUTH TLS). Each context has its own session-ticket keys, and the session's
 * data connections use the same context: a data connection can then only resume a TLS session of that very
 * control connection, never one a third party opened on the same server.
 */
export class TlsContexts {
  constructor(
    private readonly driver: FtpDriver,
    private readonly settings: ServerSettings,
  ) {}

  /** Whether the driver can provide TLS at all (decides the FEAT lines). */
  get available(): boolean {
    return typeof this.driver.tlsOptions === 'function';
  }

  /** A context for a new TLS control connection (and its data connections), or null when the driver has none. */
  async context(session: SessionInfo): Promise<SecureContext | null> {
    const options = await this.driver.tlsOptions?.(session);
    if (!options) return null;
    return createSecureContext({
      ...options,
      // The stricter of the server's minimum and the driver's: a driver cannot lower the floor by accident.
      minVersion: stricter(this.settings.tlsMinVersion, options.minVersion),
      ticketKeys: randomBytes(48),
    });
  }
}

/**
 * Runs the server side of a TLS handshake over an accepted (or connected) socket and resolves once it is done.
 * The server is the TLS server on every connection, data connections included (RFC 4217 §4).
 */
function stricter(floor: SecureVersion, asked: SecureVersion | undefined): SecureVersion {
  if (!asked) return floor;
  return TLS_VERSIONS.indexOf(asked) > TLS_VERSIONS.indexOf(floor) ? asked : floor;
}

export function startTls(socket: Socket | Duplex, context: SecureContext, timeoutMs: number): Promise<TLSSocket> {
  if (socket.destroyed) return Promise.reject(new FtpError(421, 'Connection closed before the TLS handshake.'));
  return new Promise((resolve, reject) => {
    const tlsSocket = new TLSSocket(socket, { isServer: true, secureContext: context, requestCert: false });
    let settled = false;
    const timer = setTimeout(() => fail(new FtpError(421, 'TLS handshake timed out.')), timeoutMs);
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      tlsSocket.destroy();
      socket.destroy();
      reject(FtpError.isInstance(err) ? err : new FtpError(421, `TLS handshake failed: ${(err as Error)?.message ?? err}`));
    };
    const closed = (): void => fail(new FtpError(421, 'Connection closed during the TLS handshake.'));
    tlsSocket.once('error', fail);
    tlsSocket.once('close', closed);
    // A half-open socket (the server's sockets are) ends without closing: a FIN before the handshake is the end.
    tlsSocket.once('end', closed);
    // Over a relay (CCC) the TLS socket may not see the connection go: watch the carrier too.
    socket.once('close', closed);
    socket.once('end', closed);
    tlsSocket.once('secure', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      tlsSocket.removeListener('error', fail);
      tlsSocket.removeListener('end', closed);
      socket.removeListener('close', closed);
      socket.removeListener('end', closed);
      tlsSocket.on('error', () => {});
      resolve(tlsSocket);
    });
  });
}

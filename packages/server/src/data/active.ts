import { connect, type Socket } from 'node:net';
import { FtpError } from '../errors.js';

/**
 * Opens an active-mode data connection (PORT/EPRT) to the client, from the control connection's local address
 * (so that the client's firewall sees the server it talks to). Fails with 425 on refusal or after `timeoutMs`.
 */
export function connectActive(host: string, port: number, localAddress: string | undefined, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, localAddress, noDelay: true, allowHalfOpen: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new FtpError(425, "Can't open data connection: connect timed out."));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new FtpError(425, `Can't open data connection: ${(err as NodeJS.ErrnoException).code ?? err.message}.`));
    });
  });
}

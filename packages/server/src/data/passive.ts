import { createServer, type Server, type Socket } from 'node:net';
import { FtpError } from '../errors.js';

/**
 * Hands out passive ports round-robin from a fixed range, shared by every session of a server. A fixed range
 * below the kernel's ephemeral range avoids colliding with outgoing connections and TIME_WAIT sockets.
 */
export class PassivePortPool {
  private cursor: number;
  constructor(
    readonly min: number,
    readonly max: number,
  ) {
    this.cursor = min + Math.floor(Math.random() * (max - min + 1));
  }

  get size(): number {
    return this.max - this.min + 1;
  }

  next(): number {
    const port = this.cursor;
    this.cursor = port >= this.max ? this.min : port + 1;
    return port;
  }
}

/** Normalises `::ffff:1.2.3.4` to `1.2.3.4` so that IPv4 peers compare equal however the socket reports them. */
export function plainAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export interface PassiveOptions {
  /** Local address to listen on: the control connection's local address. */
  host: string;
  pool: PassivePortPool;
  /** Only connections from this address are accepted; null accepts any. */
  expectedPeer: string | null;
  /** Called for a connection that was refused because it came from another address. */
  onForeignPeer?: (address: string) => void;
}

/**
 * A passive data listener: listens on one port of the pool and keeps the first connection from the expected
 * peer until a transfer takes it. Connections from other addresses are dropped without touching the transfer.
 */
export class PassiveListener {
  private socket: Socket | null = null;
  private waiter: ((s: Socket) => void) | null = null;
  private closed = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly options: PassiveOptions,
  ) {
    server.on('connection', (s) => this.onConnection(s));
  }

  /** Opens a listener on the next free port of the pool, or fails with 425 when the whole range is busy. */
  static async open(options: PassiveOptions): Promise<PassiveListener> {
    const { pool } = options;
    for (let attempt = 0; attempt < pool.size; attempt++) {
      const port = pool.next();
      // allowHalfOpen: a client's early FIN must not end our side silently and pass for a complete download.
      const server = createServer({ noDelay: true, allowHalfOpen: true });
      const ok = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen({ port, host: options.host, backlog: 8, exclusive: true }, () => resolve(true));
      });
      if (ok) {
        server.removeAllListeners('error');
        server.on('error', () => {});
        return new PassiveListener(server, port, options);
      }
      server.close();
    }
    throw new FtpError(425, 'No passive port available, try again later.');
  }

  private onConnection(s: Socket): void {
    const peer = plainAddress(s.remoteAddress);
    if (this.closed || this.socket || (this.options.expectedPeer !== null && peer !== this.options.expectedPeer)) {
      if (!this.closed && !this.socket && this.options.expectedPeer !== null) this.options.onForeignPeer?.(peer);
      s.destroy();
      return;
    }
    s.on('error', () => {});
    this.socket = s;
    // One data connection per listener: stop listening to free the port for other sessions.
    this.server.close();
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(s);
    }
  }

  /** The data connection: at once if it already arrived, else when it does, or 425 after `timeoutMs`. */
  accept(timeoutMs: number): Promise<Socket> {
    if (this.socket) return Promise.resolve(this.socket);
    if (this.closed) return Promise.reject(new FtpError(425, "Can't open data connection."));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        this.close();
        reject(new FtpError(425, "Can't open data connection: the client did not connect in time."));
      }, timeoutMs);
      this.waiter = (s) => {
        clearTimeout(timer);
        resolve(s);
      };
      this.abortWait = () => {
        clearTimeout(timer);
        this.waiter = null;
        reject(new FtpError(425, 'Data connection closed.'));
      };
    });
  }

  private abortWait: (() => void) | null = null;

  /** Stops listening and drops any connection that no transfer took. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
    if (this.waiter) this.abortWait?.();
    this.abortWait = null;
  }

  /** Releases the listener; a socket already handed to a transfer is the transfer's to close. */
  dispose(keepSocket: boolean): void {
    this.close();
    if (!keepSocket && this.socket) this.socket.destroy();
    this.socket = null;
  }
}

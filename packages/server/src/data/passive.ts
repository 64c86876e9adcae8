import { createServer, type Server, type Socket } from 'node:net';
import { FtpError, TOO_MANY_FILES } from '../errors.js';
import { plainAddress } from '../ip-address.js';
import { readProxyHeader } from '../proxy-header.js';


/** What a session asks of the pool for one PASV/EPSV. */
export interface ReserveOptions {
  /** Local address to listen on: the control connection's local address. */
  host: string;
  /** Only a connection from this address is taken; null takes any (and then the port is not shared). */
  expectedPeer: string | null;
  /** A port not to reuse while others are open (the one this session just gave back unused). */
  avoidPort?: number | undefined;
  /**
   * Told of a data connection that arrived before a transfer asked for it; returns how to stop watching it, called
   * when a transfer takes it or the reservation ends (see early-tls.ts).
   */
  early?: ((socket: Socket) => (() => void) | undefined) | undefined;
}

/** Data connections start with a PROXY protocol header, awaited this long. */
export interface ProxyOptions {
  timeoutMs: number;
}

/** Told of a connection to a passive port from an address no session there waits for (it is closed at once). */
export type ForeignPeerHook = (address: string, port: number) => void;

/** Any peer: the key of a reservation made with `expectedPeer: null`. */
const ANY = '*';

/**
 * One listening port of the range and the sessions waiting on it, at most one per client address. Connections
 * are told apart by their source address, so one port serves many clients at once (a small firewall range is
 * enough for many users) while a client never shares a port with itself.
 * @internal Exported for tests.
 */
export class PortListener {
  readonly waiting = new Map<string, PassiveReservation>();
  private idleTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    readonly server: Server,
    readonly host: string,
    readonly port: number,
    private readonly onIdle: () => void,
    private readonly lingerMs: number,
    private readonly proxy: ProxyOptions | null,
    private readonly onForeignPeer: ForeignPeerHook | undefined,
  ) {
    server.on('connection', (s) => {
      s.on('error', () => {});
      // Reset by its peer before it came here (no address left to read): nobody's data connection any more, and no
      // stranger's either (it was logged as one, with an empty address).
      if (s.remoteAddress === undefined) return void s.destroy();
      if (!this.proxy) return this.route(s, plainAddress(s.remoteAddress));
      // Through a load balancer: the client's address is in the PROXY header, read before routing.
      readProxyHeader(s, this.proxy.timeoutMs)
        .then((h) => this.route(s, plainAddress(h.source?.address ?? s.remoteAddress)))
        .catch(() => s.destroy());
    });
  }

  /** Whether a session with this expectation may wait here too. */
  accepts(expectedPeer: string | null): boolean {
    if (this.waiting.has(ANY)) return false;
    return expectedPeer === null ? this.waiting.size === 0 : !this.waiting.has(expectedPeer);
  }

  add(r: PassiveReservation): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.waiting.set(r.key, r);
  }

  remove(r: PassiveReservation): void {
    if (this.waiting.get(r.key) !== r) return;
    this.waiting.delete(r.key);
    // Kept open a little: the next PASV of a busy session reuses the port without a listen() per transfer.
    if (this.waiting.size === 0 && !this.closed) {
      this.idleTimer = setTimeout(this.onIdle, this.lingerMs);
      this.idleTimer.unref();
    }
  }

  private route(s: Socket, peer: string): void {
    if (this.closed) return void s.destroy();
    const r = this.waiting.get(peer) ?? this.waiting.get(ANY);
    if (!r) {
      // Once per connection, not per session waiting here: a connect needs no login, and many sessions share a port.
      this.onForeignPeer?.(peer, this.port);
      s.destroy();
      return;
    }
    this.remove(r);
    r.deliver(s);
  }

  close(): void {
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.server.close();
    for (const r of [...this.waiting.values()]) r.close();
  }
}

/**
 * The passive ports of a server: listeners on a fixed range, opened when first needed, shared by all sessions
 * (told apart by client address) and closed after a linger without use. A fixed range below the kernel's
 * ephemeral range avoids colliding with outgoing connections and TIME_WAIT sockets; reusing open listeners saves
 * a listen() and a close() per transfer.
 */
export class PassivePorts {
  private cursor: number;
  private readonly listeners = new Map<string, PortListener>();
  private closed = false;

  constructor(
    readonly min: number,
    readonly max: number,
    private readonly lingerMs = 10_000,
    private readonly proxy: ProxyOptions | null = null,
    private readonly onForeignPeer?: ForeignPeerHook,
  ) {
    this.cursor = min + Math.floor(Math.random() * (max - min + 1));
  }

  get size(): number {
    return this.max - this.min + 1;
  }

  /** Listening ports now open (for tests and metrics). */
  get openCount(): number {
    return this.listeners.size;
  }

  /** Whether a listener of the range is open on `host`:`port`. */
  listensOn(host: string, port: number): boolean {
    return this.listeners.has(`${host}|${port}`);
  }

  private nextPort(): number {
    const port = this.cursor;
    this.cursor = port >= this.max ? this.min : port + 1;
    return port;
  }

  /**
   * A port this session's client may connect to, or 425 when every port of the range is taken for it. A port
   * already listening that can take this client is used first: a session doing one transfer after another then
   * costs no listen() per transfer (opening one took a third of a small file's transfer time here).
   */
  async reserve(options: ReserveOptions): Promise<PassiveReservation> {
    if (this.closed) throw new FtpError(425, 'Server is shutting down.');
    for (const listener of this.listeners.values()) {
      if (listener.port === options.avoidPort || listener.host !== options.host || !listener.accepts(options.expectedPeer)) continue;
      const r = new PassiveReservation(listener, options);
      listener.add(r);
      return r;
    }
    for (let attempt = 0; attempt < this.size; attempt++) {
      const port = this.nextPort();
      const key = `${options.host}|${port}`;
      let listener = this.listeners.get(key);
      if (listener && (port === options.avoidPort || !listener.accepts(options.expectedPeer))) continue;
      listener ??= (await this.open(options.host, port, key)) ?? undefined;
      // Another session may have taken the slot while the listener opened.
      if (!listener || !listener.accepts(options.expectedPeer)) continue;
      const r = new PassiveReservation(listener, options);
      listener.add(r);
      return r;
    }
    // Only the avoided port is left: better it than a 425.
    if (options.avoidPort !== undefined) return this.reserve({ ...options, avoidPort: undefined });
    throw new FtpError(425, 'No passive port available, try again later.');
  }

  private async open(host: string, port: number, key: string): Promise<PortListener | null> {
    // allowHalfOpen: a client's early FIN must not end our side silently and pass for a complete download.
    const server = createServer({ noDelay: true, allowHalfOpen: true });
    const failure = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      server.once('error', (err: NodeJS.ErrnoException) => resolve(err));
      server.listen({ port, host, backlog: 128, exclusive: true }, () => resolve(null));
    });
    if (failure !== null || this.closed) {
      server.close();
      // Out of descriptors, every other port of the range would fail alike: said at once, not after trying them all.
      if (failure?.code === 'EMFILE' || failure?.code === 'ENFILE') throw new FtpError(425, TOO_MANY_FILES, { cause: failure });
      return null;
    }
    server.removeAllListeners('error');
    server.on('error', () => {});
    const existing = this.listeners.get(key);
    if (existing) {
      // Opened twice at once by two sessions: keep the first.
      server.close();
      return existing;
    }
    const listener = new PortListener(
      server,
      host,
      port,
      () => {
        if (this.listeners.get(key) === listener && listener.waiting.size === 0) {
          this.listeners.delete(key);
          listener.close();
        }
      },
      this.lingerMs,
      this.proxy,
      this.onForeignPeer,
    );
    this.listeners.set(key, listener);
    return listener;
  }

  /** Closes every listener (server shutdown). */
  closeAll(): void {
    this.closed = true;
    for (const l of this.listeners.values()) l.close();
    this.listeners.clear();
  }
}

/**
 * One session's claim on a passive port: the first connection from its client is kept until a transfer takes
 * it. Connections from other addresses never reach it.
 */
export class PassiveReservation {
  readonly key: string;
  private socket: Socket | null = null;
  private waiter: ((s: Socket) => void) | null = null;
  private abortWait: (() => void) | null = null;
  private closed = false;
  /** Stops watching a connection that arrived before its transfer (see {@link ReserveOptions.early}). */
  private stopEarly: (() => void) | null = null;

  constructor(
    private readonly listener: PortListener,
    private readonly options: ReserveOptions,
  ) {
    this.key = options.expectedPeer ?? ANY;
  }

  get port(): number {
    return this.listener.port;
  }

  /** @internal the port listener hands over the data connection. */
  deliver(s: Socket): void {
    if (this.closed) return void s.destroy();
    this.socket = s;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(s);
    } else this.stopEarly = this.options.early?.(s) ?? null;
  }

  private stopWatching(): void {
    this.stopEarly?.();
    this.stopEarly = null;
  }

  /** The data connection: at once if it already arrived, else when it does, or 425 after `timeoutMs`. */
  accept(timeoutMs: number): Promise<Socket> {
    if (this.socket) {
      this.stopWatching();
      return Promise.resolve(this.socket);
    }
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

  /** Gives the port back and drops a waiting accept. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopWatching();
    this.listener.remove(this);
    if (this.waiter) this.abortWait?.();
    this.abortWait = null;
  }

  /** Releases the reservation; a socket already handed to a transfer is the transfer's to close. */
  dispose(keepSocket: boolean): void {
    this.close();
    if (!keepSocket && this.socket) this.socket.destroy();
    this.socket = null;
  }
}

import { errorMonitor, EventEmitter } from 'node:events';
import { createServer, type AddressInfo, type BlockList, type Server, type Socket } from 'node:net';
import { pino, type Logger } from 'pino';
import { Advertiser, subnets } from './data/advertise.js';
import { foreignPeerLog } from './data/foreign-peer-log.js';
import { PassivePorts } from './data/passive.js';
import type { FtpDriver } from './driver.js';
import type { TransferEvent } from './handlers/data-command.js';
import type { ChangeEvent } from './change-log.js';
import { isIPv6Address, isThisMachine, plainAddress } from './ip-address.js';
import { FairSlots } from './fair-slots.js';
import { LoginGuard, MemoryBanStore, type BanStore } from './login-guard.js';
import { readProxyHeader } from './proxy-header.js';
import { SessionCounts, type SessionGate, type SessionGateVerdict } from './session-gate.js';
import { clock, Session, type AnonymousAccess, type SessionContext } from './session.js';
import { isPublicHost, resolveSettings, type ServerSettings } from './settings.js';
import { ListingSortBudget } from './listing-sort-budget.js';
import { TlsContexts } from './tls.js';

/** Options of {@link FtpServer}. */
export interface FtpServerOptions {
  /** Users and storage. */
  driver: FtpDriver;
  /** Overrides of {@link DEFAULT_SETTINGS}. */
  settings?: Partial<ServerSettings>;
  /** A pino logger; the server logs through one child per session. Default: silent. */
  logger?: Logger;
  /** Where failed logins and bans are kept. Default: this process's memory. */
  banStore?: BanStore;
  /** Anonymous access (users `anonymous` by default), read-only over its own filesystem. Default: none. */
  anonymous?: AnonymousAccess;
  /**
   * Counts sessions with other server instances (worker processes sharing the port), so that `maxSessions` and
   * `maxSessionsPerIp` hold for all of them together. Default: none (this server's own count).
   */
  sessionGate?: SessionGate;
}

/** Options of one listener ({@link FtpServer.listen}). */
export interface ListenOptions {
  /** The address PASV advertises to clients of this listener (when no `publicHosts` network matches first). */
  publicHost?: string;
  /**
   * Every connection starts with a PROXY protocol header (v1 or v2) from a load balancer, which names the real
   * client for limits, bans, logs and the passive address check. Connections without one are closed; so are
   * connections from outside `proxyProtocolFrom` when that is set.
   */
  proxyProtocol?: boolean;
  /**
   * Share the port with other processes that listen on it the same way (`SO_REUSEPORT`: Linux, FreeBSD): the
   * kernel spreads new connections between them. For worker processes of one server; the port then does not
   * fail with EADDRINUSE when another such process holds it.
   */
  reusePort?: boolean;
}

/** How one listener's connections reach the server (`handle()` callers give the first two). */
type Listener = ListenOptions & {
  implicitTls?: boolean;
  /** The address the listener is bound to, when it is one address (not a wildcard): every connection's local address. */
  localAddress?: string;
};

/** How long a connection on a PROXY listener may take to send its header. */
const PROXY_HEADER_TIMEOUT_MS = 5000;

/** Events of {@link FtpServer}. */
export interface FtpServerEvents {
  'session:open': [{ session: number; remoteAddress: string }];
  'session:close': [{ session: number; remoteAddress: string; user: string | undefined }];
  login: [{ session: number; user: string; remoteAddress: string }];
  'login:failed': [{ session: number; user: string; remoteAddress: string }];
  'transfer:start': [{ session: number; user: string | undefined; direction: TransferEvent['direction']; path: string }];
  transfer: [TransferEvent];
  /** A command changed storage: deleted, renamed, made or removed a folder, set a mode or a time, linked, combined. */
  change: [ChangeEvent];
  /** A 4xx or 5xx reply was sent (for metrics of errors by code). */
  'reply:error': [{ session: number; code: number }];
  /** An address was banned after too many failed logins. */
  ban: [{ remoteAddress: string }];
  /** A connection was refused before its session began (421). */
  'session:refused': [{ remoteAddress: string; reason: 'banned' | 'max-sessions' | 'max-sessions-per-ip' | 'shutting-down' }];
  error: [Error];
}

/**
 * An FTP server: give it a driver, then `listen()`, or hand it connections yourself with `handle()`.
 *
 * @example
 * ```ts
 * const server = new FtpServer({ driver: { authenticate: () => ({ fs: new MemoryProvider() }) } });
 * await server.listen(2121, '127.0.0.1');
 * ```
 */
export class FtpServer extends EventEmitter<FtpServerEvents> {
  readonly settings: ServerSettings;
  private readonly logger: Logger;
  private readonly sessions = new Set<Session>();
  /** This server's own sessions by address (an IPv6 /64 as one), for `maxSessionsPerIp`; the total is `sessions`. */
  private readonly perIp: SessionCounts;
  /** Sessions the shared {@link SessionGate} admitted, to be given back when they end. */
  private readonly gated = new Set<Session>();
  /** The load balancers allowed to send PROXY headers; null: any (the listener is firewalled). */
  private readonly proxies: BlockList | null;
  private readonly ctx: SessionContext;
  /** Every listening socket, plain and implicit TLS; `listen` may be called once per address. */
  private readonly sockets: Array<{ server: Server; implicitTls: boolean }> = [];
  private nextId = 1;
  private closing = false;
  /** One timer for every session's idle limit (see {@link sweepIdle}), running while there are sessions. */
  private idleSweep: NodeJS.Timeout | null = null;

  constructor(readonly options: FtpServerOptions) {
    super();
    if (!options?.driver || typeof options.driver.authenticate !== 'function') {
      throw new TypeError('FtpServer needs a driver with an authenticate(session, user, password) method');
    }
    this.settings = resolveSettings(options.settings);
    this.perIp = new SessionCounts(0, this.settings.maxSessionsPerIp);
    this.proxies = this.settings.proxyProtocolFrom ? subnets(this.settings.proxyProtocolFrom) : null;
    this.logger = options.logger ?? pino({ level: 'silent' });
    const [min, max] = this.settings.passivePortRange;
    this.ctx = {
      settings: this.settings,
      driver: options.driver,
      logger: this.logger,
      portPool: new PassivePorts(
        min,
        max,
        undefined,
        this.settings.passiveProxyProtocol ? { timeoutMs: PROXY_HEADER_TIMEOUT_MS } : null,
        foreignPeerLog(this.logger, undefined, undefined, (address) => this.perIp.has(address)),
      ),
      ownsEndpoint: (host, port) => this.ownsEndpoint(host, port),
      advertiser: new Advertiser(this.settings, (name, err, last) =>
        this.logger.warn({ err, name, address: last }, last === null ? 'public host name lookup failed; PASV answers 425 until it resolves' : 'public host name lookup failed; PASV uses its last address'),
      ),
      tls: new TlsContexts(options.driver, this.settings),
      listSortBudget: new ListingSortBudget(this.settings.listSortBudget),
      lingering: new Set(),
      guard: new LoginGuard(options.banStore ?? new MemoryBanStore(), this.settings),
      loginTurns: new FairSlots(0, this.settings.maxConcurrentLoginsPerIp),
      loginSlots: new FairSlots(this.settings.maxConcurrentLogins, 0),
      hashSlots: new FairSlots(this.settings.maxConcurrentHashes, this.settings.maxConcurrentHashesPerIp),
      anonymous: options.anonymous,
      emit: (event, payload) => this.notify(event as keyof FtpServerEvents, payload as never),
      onSessionClosed: (session) => this.forget(session),
      stopping: () => this.closing,
      listens: (event) => this.listenerCount(event) > 0,
    };
  }

  /**
   * Listens for control connections. Resolves with the bound address (port 0 picks a free one). May be called
   * again for more addresses (IPv4 and IPv6, several interfaces): all share the sessions, limits and bans.
   */
  async listen(port = 21, host = '0.0.0.0', options: ListenOptions = {}): Promise<AddressInfo> {
    return this.listenOn(port, host, { ...options });
  }

  /**
   * Listens for implicit FTPS (RFC 4217 calls it deprecated; port 990 by convention): every connection starts
   * with a TLS handshake, using the driver's `tlsOptions`.
   */
  async listenImplicitTls(port = 990, host = '0.0.0.0', options: ListenOptions = {}): Promise<AddressInfo> {
    if (!this.ctx.tls.available) throw new Error('implicit TLS needs a driver with tlsOptions()');
    return this.listenOn(port, host, { ...options, implicitTls: true });
  }

  private async listenOn(port: number, host: string, listener: Listener): Promise<AddressInfo> {
    if (listener.publicHost !== undefined) {
      if (!isPublicHost(listener.publicHost)) throw new RangeError(`publicHost must be an IPv4 address or a DNS name (PASV has no IPv6), got ${listener.publicHost}`);
      this.ctx.advertiser.prepare(listener.publicHost);
    }
    const address = await this.bind(
      // allowHalfOpen: a client that sends its last commands and then its FIN (a script piping into a socket)
      // still gets their replies, and a transfer it started still finishes; the session ends the connection
      // once the commands already read are served.
      createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.handle(socket, listener)),
      port,
      host,
      listener.implicitTls === true,
      listener.reusePort === true,
    );
    // Every connection to a listener bound to one address has that address: its sessions need not ask their
    // sockets (a system call, and an address object Node keeps on every socket: ~90 bytes of an idle session).
    if (address.address !== '0.0.0.0' && address.address !== '::') listener.localAddress = plainAddress(address.address);
    return address;
  }

  private bind(server: Server, port: number, host: string, implicitTls: boolean, reusePort: boolean): Promise<AddressInfo> {
    if (this.closing) return Promise.reject(new Error('the server is closed'));
    const what = implicitTls ? 'listening for implicit TLS' : 'listening';
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      // A deep backlog: bursts of hundreds of clients must queue, not be refused.
      // exclusive: in a cluster worker, bind this process's own socket instead of sharing the primary's.
      server.listen({ port, host, backlog: 511, ...(reusePort ? { reusePort: true, exclusive: true } : {}) }, () => {
        server.off('error', reject);
        // An accept error (EMFILE...) must not crash a server nobody subscribed to 'error' on.
        server.on('error', (err) => {
          this.logger.error({ err }, 'listener error');
          this.notify('error', err);
        });
        this.sockets.push({ server, implicitTls });
        const address = server.address() as AddressInfo;
        this.logger.info({ address: address.address, port: address.port }, what);
        resolve(address);
      });
    });
  }

  /** The first plain listener's bound address, once listening. */
  get address(): AddressInfo | null {
    const first = this.sockets.find((l) => !l.implicitTls);
    return (first?.server.address() as AddressInfo | null) ?? null;
  }

  /** Passive data ports listening now (opened on demand, shared by sessions, closed after a linger). */
  get passivePortsOpen(): number {
    return this.ctx.portPool.openCount;
  }

  /** Sessions currently open. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /**
   * Serves one control connection accepted elsewhere (a TCP socket; with `implicitTls` the TLS handshake is
   * done here).
   */
  handle(socket: Socket, options: ListenOptions & { implicitTls?: boolean } = {}): void {
    socket.on('error', ignore);
    if (!options.proxyProtocol) return this.start(socket, options, undefined);
    // Behind a load balancer: the real client is in the PROXY header, and only the proxy may send one.
    const from = plainAddress(socket.remoteAddress);
    if (this.proxies && !this.proxies.check(from, isIPv6Address(from) ? 'ipv6' : 'ipv4')) {
      this.logger.warn({ remote: from }, 'PROXY listener: connection from an untrusted address closed');
      return void socket.destroy();
    }
    readProxyHeader(socket, PROXY_HEADER_TIMEOUT_MS)
      .then(
        (header) => this.start(socket, options, header.source ?? undefined),
        (err: Error) => {
          this.logger.warn({ remote: from, err: err.message }, 'PROXY listener: no valid PROXY header, connection closed');
          socket.destroy();
        },
      )
      // Nothing about one connection may become an unhandled rejection (it would end the process).
      .catch((err: unknown) => {
        this.logger.error({ err }, 'PROXY listener: session start failed');
        socket.destroy();
      });
  }

  private start(socket: Socket, options: Listener, client: { address: string; port: number } | undefined): void {
    const ip = plainAddress(client?.address ?? socket.remoteAddress);
    const { maxSessions } = this.settings;
    const refused = (reason: FtpServerEvents['session:refused'][0]['reason'], text: string): void => {
      this.notify('session:refused', { remoteAddress: ip, reason });
      refuse(socket, text, options.implicitTls);
    };
    if (this.closing) return refused('shutting-down', 'Server is shutting down.');
    if (maxSessions > 0 && this.sessions.size >= maxSessions) return refused('max-sessions', 'Too many connections, try again later.');
    // Counted as bans are (SessionCounts): an IPv6 client has a whole /64 to connect from.
    if (this.perIp.enter(ip) !== 'ok') return refused('max-sessions-per-ip', 'Too many connections from your address.');
    const session = new Session(this.nextId++, socket, this.ctx, {
      implicitTls: options.implicitTls === true,
      publicHost: options.publicHost,
      client,
      localAddress: options.localAddress,
    });
    // The control connection handles errors now: two 'error' listeners would cost every socket a listener array.
    socket.off('error', ignore);
    this.sessions.add(session);
    this.watchIdle();
    this.notify('session:open', { session: session.id, remoteAddress: ip });
    session.logAt('info')?.info({ port: session.remotePort }, 'connected');
    const begin = (banned: boolean, verdict: SessionGateVerdict): void => {
      // A slow (shared) ban store or gate: the client may have left meanwhile.
      if (session.isClosed) return;
      if (verdict !== 'ok') {
        this.notify('session:refused', { remoteAddress: ip, reason: verdict });
        if (!options.implicitTls) void session.reply(421, verdict === 'max-sessions' ? 'Too many connections, try again later.' : 'Too many connections from your address.');
        session.close();
        return;
      }
      if (!banned) return void session.run();
      session.log.info('banned address refused');
      this.notify('session:refused', { remoteAddress: ip, reason: 'banned' });
      if (!options.implicitTls) void session.reply(421, 'Too many failed logins from your address; try again later.');
      session.close();
    };
    const gate = this.options.sessionGate;
    const banned = this.ctx.guard.isBanned(ip);
    if (!gate) {
      if (typeof banned === 'boolean') return begin(banned, 'ok');
      return void banned.then((b) => begin(b, 'ok'));
    }
    void Promise.all([banned, this.admit(gate, session, ip)]).then(([b, verdict]) => begin(b, verdict));
  }

  /**
   * Whether a connection to `host`:`port` would reach this server: one of its control listeners (bound to that
   * address, or to every address of this machine) or an open passive port on that address.
   */
  private ownsEndpoint(host: string, port: number): boolean {
    for (const { server } of this.sockets) {
      const bound = server.address() as AddressInfo | null;
      if (bound === null || bound.port !== port) continue;
      const wildcard = bound.address === '0.0.0.0' || bound.address === '::';
      if (wildcard ? isThisMachine(host) : plainAddress(bound.address) === host) return true;
    }
    return this.ctx.portPool.listensOn(host, port);
  }

  /**
   * Tells the listeners of `event`, each on its own: one that throws (or whose promise rejects) is logged and the
   * others still hear it. Events are notifications: a bug in a listener must not end the process, cut a session,
   * answer a command twice or skip the counting of a failed login.
   */
  private notify<K extends keyof FtpServerEvents>(event: K, ...args: FtpServerEvents[K]): void {
    // `events.errorMonitor` listeners hear an 'error' first, as `emit` has them.
    if (event === 'error') this.callEach('error', this.rawListeners(errorMonitor as never), args);
    if (this.listenerCount(event) === 0) return;
    this.callEach(event, this.rawListeners(event), args);
  }

  private callEach(event: string, listeners: readonly unknown[], args: unknown[]): void {
    // rawListeners: a once() listener is called through its wrapper, which removes it.
    for (const listener of listeners as Array<(...a: unknown[]) => unknown>) {
      try {
        const returned = listener.apply(this, args);
        if (returned instanceof Promise) returned.catch((err: unknown) => this.listenerFailed(event, err));
      } catch (err) {
        this.listenerFailed(event, err);
      }
    }
  }

  private listenerFailed(event: string, err: unknown): void {
    this.logger.error({ err, event }, 'an event listener failed; the server carries on');
  }

  /** Asks the shared gate to count the session; an admitted session that has already ended is given back at once. */
  private async admit(gate: SessionGate, session: Session, ip: string): Promise<SessionGateVerdict> {
    let verdict: SessionGateVerdict;
    try {
      verdict = await gate.enter(ip);
    } catch (err) {
      session.log.warn({ err }, 'session gate failed; session admitted');
      return 'ok';
    }
    if (verdict !== 'ok') return verdict;
    if (session.isClosed) gate.leave(ip);
    else this.gated.add(session);
    return 'ok';
  }

  /**
   * Starts the idle sweep: every session's silence is checked by one interval timer (a quarter of the shortest
   * limit, at most a second apart) rather than by a timer per session, which an idle session would hold.
   */
  private watchIdle(): void {
    if (this.idleSweep) return;
    const limits = [this.settings.idleTimeout, this.settings.loginTimeout].filter((t) => t > 0);
    if (limits.length === 0) return;
    const periodMs = Math.max(10, Math.min(1000, (Math.min(...limits) * 1000) / 4));
    this.idleSweep = setInterval(() => this.sweepIdle(), periodMs);
    this.idleSweep.unref();
  }

  private sweepIdle(): void {
    const now = clock();
    for (const session of this.sessions) session.checkIdle(now);
    if (this.sessions.size === 0 && this.idleSweep) {
      clearInterval(this.idleSweep);
      this.idleSweep = null;
    }
  }

  private forget(session: Session): void {
    if (!this.sessions.delete(session)) return;
    if (this.gated.delete(session)) this.options.sessionGate?.leave(session.remoteAddress);
    this.perIp.leave(session.remoteAddress);
    try {
      this.options.driver.onDisconnect?.(session);
    } catch (err) {
      session.log.warn({ err }, 'onDisconnect failed');
    }
    this.notify('session:close', { session: session.id, remoteAddress: session.remoteAddress, user: session.user });
    session.logAt('info')?.info('disconnected');
  }

  /**
   * Stops accepting connections and ends every session: sessions waiting for a command at once, those running one
   * (a transfer, a listing, a driver call) once it ends, within `graceMs`; no new command starts meanwhile (421,
   * QUIT excepted). Then every client left gets 421 and is disconnected.
   */
  async close(graceMs = 0): Promise<void> {
    this.closing = true;
    const listening = this.sockets.splice(0).map((l) => l.server);
    const closed = Promise.all(listening.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))));
    const deadline = performance.now() + graceMs;
    for (;;) {
      let running = 0;
      for (const session of [...this.sessions]) if (!session.endIfIdle()) running++;
      if (running === 0 || graceMs <= 0 || performance.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const session of [...this.sessions]) {
      session.sayShuttingDown();
      session.close();
    }
    this.ctx.portPool.closeAll();
    // Finished downloads whose clients have not closed them: closed now (the kernel still delivers what it holds).
    for (const socket of this.ctx.lingering) socket.destroy();
    this.ctx.lingering.clear();
    this.ctx.advertiser.close();
    if (this.idleSweep) clearInterval(this.idleSweep);
    this.idleSweep = null;
    await closed;
  }
}

function ignore(): void {}

function refuse(socket: Socket, text: string, implicitTls = false): void {
  // Before an implicit TLS handshake a clear-text reply would only confuse the client: just close.
  if (implicitTls) return void socket.destroy();
  socket.end(`421 ${text}\r\n`);
  setTimeout(() => socket.destroy(), 1000).unref();
}

import type { Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { escapedByteLength, hasByteEscapes, hexForEscapes, latin1ForEscapes, parseCommand } from '@ftp/protocol';
import { describeCapabilities, resolvePath, type FsProvider } from '@ftp/vfs';
import { COMMANDS } from './commands.js';
import { ControlConnection, MAX_DROPPED_COMMANDS, type ControlEvent, type ControlOwner } from './control-connection.js';
import type { FtpDriver, Permissions, SessionInfo } from './driver.js';
import { FtpError, isServerFault, isSystemRefusal, toReply } from './errors.js';
import type { Advertiser } from './data/advertise.js';
import type { PassivePorts } from './data/passive.js';
import { plainAddress } from './ip-address.js';
import type { Coding } from './data/transfer.js';
import { RateLimiter } from './data/throttle.js';
import type { FairSlots } from './fair-slots.js';
import type { LoginGuard } from './login-guard.js';
import { SessionStateHolder, type DataSetup } from './session-state.js';
import type { ServerSettings } from './settings.js';
import { SocketPipe } from './socket-pipe.js';
import type { ListingSortBudget } from './listing-sort-budget.js';
import type { TlsContexts } from './tls.js';

export { ALL_PERMISSIONS, NO_LIMITS, type DataSetup } from './session-state.js';

/** Anonymous access: read-only, inside its own filesystem. */
export interface AnonymousAccess {
  /** The anonymous users' filesystem (served read-only whatever it is). */
  fs: FsProvider;
  /** Names that log in anonymously. Default `['anonymous']`. */
  users?: readonly string[];
}

/** How a control connection reached the server. */
export interface SessionOrigin {
  /** Implicit FTPS: the TLS handshake comes first. */
  implicitTls?: boolean;
  /** The listener's own public host (PASV). */
  publicHost?: string | undefined;
  /** The real client, from a PROXY protocol header, when a load balancer is in between. */
  client?: { address: string; port: number } | undefined;
  /** The connection's local address when the listener knows it (bound to one address); else the socket is asked. */
  localAddress?: string | undefined;
}

/** What a session needs from its server. */
export interface SessionContext {
  readonly settings: ServerSettings;
  readonly driver: FtpDriver;
  readonly logger: Logger;
  readonly portPool: PassivePorts;
  readonly advertiser: Advertiser;
  readonly tls: TlsContexts;
  /** The names listings may hold at once to sort them (`listSortBudget`). */
  readonly listSortBudget: ListingSortBudget;
  /**
   * Finished data connections waiting for their client to close them (see data-command.ts' `release`): ended when
   * the server closes, so that none holds the process after its sessions are gone.
   */
  readonly lingering: Set<Socket>;
  readonly guard: LoginGuard;
  /** Logins in progress per address, each through its failed-login delay (`maxConcurrentLoginsPerIp`). */
  readonly loginTurns: FairSlots;
  /** Password checks at once over the server (`maxConcurrentLogins`). */
  readonly loginSlots: FairSlots;
  /** File hashes at once (`maxConcurrentHashes`, `maxConcurrentHashesPerIp`). */
  readonly hashSlots: FairSlots;
  readonly anonymous: AnonymousAccess | undefined;
  /** Whether a connection to `host`:`port` would reach this server now (a control listener, an open passive port). */
  ownsEndpoint(host: string, port: number): boolean;
  emit(event: string, payload: unknown): void;
  onSessionClosed(session: Session): void;
  /** The server is stopping ({@link FtpServer.close}): what runs may finish in its grace, nothing new starts. */
  stopping(): boolean;
  /** Whether anyone listens to the server's `event`. */
  listens(event: string): boolean;
}

/**
 * One control connection: its state, and the loop that runs its commands one at a time, in order.
 * ABOR and STAT are the exceptions (RFC 959 §4.1.3): they are served while a transfer runs.
 *
 * An idle session is what a server holds most of, so a session keeps only what every logged-in session needs
 * in its own fields; what commands such as TYPE, PROT or PASV change lives in a {@link SessionState} shared
 * with every other session until the first change (the accessors below read it and copy it on write).
 */
export class Session extends SessionStateHolder implements SessionInfo, ControlOwner {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly conn: ControlConnection;
  /** The session's logger, made at first use: an idle session, or one whose server logs nothing, has none. */
  private logger: Logger | null = null;
  /** The user {@link log} names (its `user` binding): set by USER, kept after a failed PASS. */
  private logUser: unknown = undefined;

  user: string | undefined;
  fs: FsProvider | null = null;
  home = '/';
  cwd = '/';
  /** USER commands on this connection (bounded, so one connection cannot try names forever). */
  userCommands = 0;
  /** AUTHENTICATED, CLOSED, SERVING: one bit each. */
  private flags = 0;
  /** When the client last sent a command, in ms of {@link clock}; the server's idle sweep compares it with the limit. */
  private lastActivity = clock();

  constructor(
    readonly id: number,
    readonly socket: Socket,
    readonly ctx: SessionContext,
    origin: SessionOrigin = {},
  ) {
    super(ctx.settings);
    if (origin.implicitTls === true) this.implicitTls = true;
    if (origin.publicHost !== undefined) this.listenerPublicHost = origin.publicHost;
    this.remoteAddress = plainAddress(origin.client?.address ?? socket.remoteAddress);
    this.remotePort = origin.client?.port ?? socket.remotePort ?? 0;
    this.localAddress = origin.localAddress ?? plainAddress(socket.localAddress);
    socket.setNoDelay(true);
    this.conn = new ControlConnection(socket, ctx.settings, this);
    // Implicit FTPS: not one byte may be read as clear text before the handshake.
    if (this.implicitTls) this.conn.prepareUpgrade();
  }

  override get settings(): ServerSettings {
    return this.ctx.settings;
  }

  /**
   * The session's logger (pino child: session id, remote address, and the user once known), made when first
   * used and dropped again when the session goes idle, so an idle session holds no logger. While the server's
   * logger is silent the session makes none and uses the server's, which logs nothing.
   */
  get log(): Logger {
    if (this.logger) return this.logger;
    const server = this.ctx.logger;
    if (!server.isLevelEnabled('fatal')) return server;
    // One child with every binding rather than a child of a base logger: pino's output is the same, and no
    // logger becomes a prototype (V8 gives each prototype its own map and bookkeeping).
    const own = { session: this.id, remote: this.remoteAddress };
    this.logger = server.child(this.logUser === undefined && !this.logConnection ? own : { ...own, ...this.logContext });
    return this.logger;
  }

  /**
   * The session's logger when `level` is enabled, else null: the lines every session logs (connected, logged in,
   * transfer, disconnected) then cost neither a child logger nor its bindings when the level is off.
   */
  logAt(level: 'info' | 'debug'): Logger | null {
    return this.ctx.logger.isLevelEnabled(level) ? this.log : null;
  }

  /**
   * The session's logger without the user's bindings (session id and remote address only). Not kept: it is
   * {@link log} until a user is known, and made at each use after that (nothing in the server uses it).
   */
  get baseLog(): Logger {
    if (this.logUser === undefined && !this.logConnection) return this.log;
    const server = this.ctx.logger;
    return server.isLevelEnabled('fatal') ? server.child({ session: this.id, remote: this.remoteAddress }) : server;
  }

  /** Sets what {@link log} adds to the session's own bindings (`{ user }`, `{ tls: true }`…); made at first use. */
  setLogBindings(bindings: Record<string, unknown> | null): void {
    // The user is kept apart: every logged-in session has one, the rest (tls, ccc) only some.
    const { user, ...connection } = bindings ?? {};
    this.logUser = user;
    this.logConnection = Object.keys(connection).length > 0 ? connection : null;
    this.logger = null;
  }

  /** The bindings {@link log} adds now. */
  get logContext(): Readonly<Record<string, unknown>> {
    const connection = this.logConnection;
    if (this.logUser === undefined) return connection ?? {};
    return { user: this.logUser, ...connection };
  }

  /** Whether the user is logged in. */
  get authenticated(): boolean {
    return (this.flags & AUTHENTICATED) !== 0;
  }
  set authenticated(value: boolean) {
    this.flags = value ? this.flags | AUTHENTICATED : this.flags & ~AUTHENTICATED;
  }
  private get closed(): boolean {
    return (this.flags & CLOSED) !== 0;
  }
  /** Commands are being served; false while the session waits for the next one (and holds nothing for it). */
  private get serving(): boolean {
    return (this.flags & SERVING) !== 0;
  }
  private set serving(value: boolean) {
    this.flags = value ? this.flags | SERVING : this.flags & ~SERVING;
  }

  /**
   * This session's bandwidth limit for a direction (settings), or null when the settings set none: made at the
   * first limited transfer, not for every connection (an unlimited limiter would only keep the state from being
   * shared again).
   */
  private sessionLimit(direction: 'download' | 'upload'): RateLimiter | null {
    const { downloadRate, uploadRate } = this.settings;
    if (downloadRate <= 0 && uploadRate <= 0) return null;
    this.limits ??= { download: new RateLimiter(downloadRate), upload: new RateLimiter(uploadRate) };
    return this.limits[direction];
  }

  /**
   * Greets the client, then serves its commands as they come. Between commands nothing waits on the session's
   * behalf (no pending promise, no timer): the control connection wakes it ({@link wake}) when a command arrives,
   * and the server's idle sweep ({@link checkIdle}) ends it when none does.
   */
  async run(): Promise<void> {
    this.flags |= STARTED;
    try {
      if (this.implicitTls && !(await this.startImplicitTls())) return this.close();
      let banner: string | readonly string[] | void = undefined;
      try {
        banner = await this.ctx.driver.onConnect?.(this);
      } catch (err) {
        // Only an FtpError is meant for the client: any other error's text may name hosts, ports or paths behind
        // the driver (`connect ECONNREFUSED 10.0.0.5:6379`) to someone who has not even logged in.
        const deliberate = FtpError.isInstance(err) && err.message !== '';
        this.log[deliberate ? 'info' : 'warn']({ err }, 'connection refused by driver');
        await this.reply(421, deliberate ? err.message : 'Service not available.');
        return this.close();
      }
      await this.reply(220, banner ?? this.settings.banner);
    } catch (err) {
      this.log.error({ err }, 'session failed');
      return this.close();
    }
    this.touch();
    void this.serve();
  }

  /** Serves the commands already read, in order, one at a time; returns when there are none left. */
  private async serve(): Promise<void> {
    if (this.serving || this.closed) return;
    this.serving = true;
    try {
      for (;;) {
        const event = this.conn.next();
        if (event === undefined) {
          // None yet: the control connection calls wake() when one comes. Until then the session is idle, and
          // keeps no logger (a child logger and its bindings string cost more than making one again), nor a
          // state of its own that differs from the defaults no more (after PASV and a transfer, say).
          this.logger = null;
          this.shareDefaults();
          return;
        }
        if (event === null || this.closed) break;
        await this.handle(event);
        if (this.closed) break;
        // Before login, commands do not put the deadline off (NOOP every 30 s held a slot for ever): the login
        // must be done within loginTimeout of the greeting (or of REIN, made while logged in).
        if (this.authenticated) this.touch();
      }
    } catch (err) {
      this.log.error({ err }, 'session failed');
    } finally {
      this.serving = false;
    }
    this.close();
  }

  /**
   * @internal The server is stopping: a session waiting for its next command ends now (421); one running a command
   * is left to finish it (its next one is refused). Whether the session is gone.
   */
  endIfIdle(): boolean {
    if (this.closed) return true;
    // Worth waiting for: a logged-in client's command whose replies it reads. Not a login (PASS waiting for a check
    // slot would run its check, and log in, only to be cut), nor a client that reads no replies (it would hold the
    // stop for the whole grace).
    if (this.serving && this.authenticated && !(this.conn.backlogged && !this.transfer)) return false;
    this.sayShuttingDown();
    this.close();
    return true;
  }

  /** @internal 421 before the session is closed for a shutdown, unless a TLS handshake holds the socket. */
  sayShuttingDown(): void {
    // Clear text inside a TLS handshake (implicit FTPS before it, AUTH TLS after its 234) is garbage to the client.
    if (this.conn.upgrading) return;
    // A transfer cut at the end of the grace: its own final reply first (RFC 959: 426 for a data connection closed
    // mid-transfer), so that a client waiting for it is not left to take the 421 as the transfer's outcome. Not for
    // an upload that arrived whole and is being stored: it is stored all the same, nothing of it was aborted.
    if (this.transfer !== null && !this.transfer.storageCommitting()) void this.reply(426, 'Connection closed; transfer aborted: the server is shutting down.');
    void this.reply(421, 'Server shutting down.');
  }

  /** Whether `verb` is an ABOR or STAT reaching the running transfer or stoppable work (a HASH) of this session. */
  private stopsRunningWork(verb: string): boolean {
    if (verb === 'ABOR') return this.transfer !== null || stoppable.has(this);
    return verb === 'STAT' && this.transfer !== null;
  }

  /** @internal ControlOwner: a command arrived (or the client left) while the session waited. */
  wake(): void {
    // Later, not now: the connection is still splitting its chunk, and a command such as AUTH TLS must see the
    // lines after it only once it has had the chance to discard them.
    queueMicrotask(() => void this.serve());
  }

  /** @internal ControlOwner: the client will send no more; before {@link run}, nothing would serve what it sent. */
  inputEnded(): void {
    if ((this.flags & STARTED) === 0) this.close();
  }

  /** @internal ControlOwner: the control connection's socket is gone. */
  connectionClosed(): void {
    this.close();
  }

  /**
   * @internal ControlOwner: the control connection failed. Said in the log, or the session's end has no reason
   * there: a client that wrote clear text into its TLS connection (Perl's Net::FTP sends ABOR's Telnet bytes so)
   * only showed as "disconnected".
   */
  connectionFailed(err: Error): void {
    this.logAt('info')?.info({ error: err.message, code: (err as NodeJS.ErrnoException).code }, 'control connection failed');
  }

  private async startImplicitTls(): Promise<boolean> {
    const context = await this.ctx.tls.context(this).catch((err: unknown) => {
      this.log.error({ err }, 'TLS options unavailable');
      return null;
    });
    if (!context) return false;
    try {
      this.conn.prepareUpgrade();
      await this.secureControl(context);
      // Implicit FTPS protects data connections too unless the client says PROT C.
      this.prot = 'P';
      return true;
    } catch (err) {
      this.log.info({ err: (err as Error).message }, 'implicit TLS handshake failed');
      return false;
    }
  }

  /**
   * Runs the TLS handshake on the control connection (after AUTH TLS, or at once for implicit FTPS) and goes on
   * over TLS. The caller has stopped reading clear text (`prepareUpgrade`).
   */
  async secureControl(context: SecureContext): Promise<void> {
    const raw = this.conn.socket;
    const carrier = this.settings.allowCcc ? new SocketPipe(raw) : raw;
    const watch = this.closeWatch();
    let secure: TLSSocket;
    try {
      secure = await this.ctx.tls.handshake(raw, context, this.settings.tlsHandshakeTimeout * 1000, 'control', carrier, watch.signal);
    } finally {
      watch.done();
    }
    this.controlPipe = carrier instanceof SocketPipe ? carrier : null;

    this.conn.upgrade(secure);
    this.secure = true;
    // AUTH TLS again after CCC: the context of the earlier TLS is done with (no data connection can use it any
    // more), and data connections must again resume the new control session, which they can now.
    if (this.tlsContext && this.tlsContext !== context) this.ctx.tls.release(this.tlsContext);
    this.tlsContext = context;
    this.clearedControl = false;
    this.setLogBindings({ ...this.logContext, tls: true });
  }

  /**
   * CCC: ends TLS on the control connection (close_notify in whichever order the client expects) and
   * goes on in clear text. Data connection protection is unchanged (RFC 4217 §6).
   */
  async clearControl(): Promise<void> {
    const pipe = this.controlPipe;
    if (!pipe) throw new FtpError(534, 'CCC is not allowed by policy.');
    const tls = this.conn.socket;
    // The TLS socket is about to end while the connection lives on: its close must not end the session.
    this.conn.prepareUpgrade({ watchClose: false });
    // Once the client reads the 200 it may send its close_notify and its next command in one segment: from
    // here only whole TLS records go to the TLS layer, the first clear-text byte waits for the command reader.
    pipe.beginClearing();
    // A client that does not read could otherwise hold the hand-back (and its socket) for ever.
    const flushed = await this.conn.sendFlushed(200, 'CCC ok: the control connection continues in clear text.', this.settings.tlsHandshakeTimeout * 1000);
    // The session may have been closed meanwhile (shutdown, idle timeout): its socket must not be taken up again.
    if (this.closed) return void pipe.raw.destroy();
    if (!flushed) {
      this.log.info('CCC reply not read in time; connection closed');
      this.close();
      return;
    }
    const { socket, framer } = await pipe.clearTls(tls as TLSSocket, CCC_GRACE_MS);
    if (this.closed) return void socket.destroy();
    this.controlPipe = null;
    this.conn.upgrade(socket, { tlsRecords: framer });
    this.secure = false;
    this.clearedControl = true;
    this.setLogBindings({ ...(this.user ? { user: this.user } : {}), ccc: true });
  }

  /** How the next transfer codes its bytes: TYPE, MODE and the bandwidth limits for its direction. */
  coding(direction: 'download' | 'upload'): Coding {
    const limiters: RateLimiter[] = [];
    const own = this.sessionLimit(direction);
    // The session's own limit comes from settings and never changes: one at 0 needs no throttle stage.
    if (own && own.rate > 0) limiters.push(own);
    const user = this.userLimits[direction];
    if (user) limiters.push(user);
    return { ascii: this.transferType === 'A', deflateLevel: this.mode === 'Z' ? this.deflateLevel : null, limiters };
  }

  /** Sends a reply on the control connection. */
  reply(code: number, text: string | readonly string[]): Promise<void> | void {
    // Only failures are counted (metrics of errors by code): a success costs nothing more.
    if (code >= 400) this.ctx.emit('reply:error', { session: this.id, code });
    return this.conn.send(code, text);
  }

  /**
   * Resolves a client path argument against the working directory (never above the user's root). Bytes of the
   * name that are not UTF-8 arrive as byte escapes (`@ftp/protocol`); storage that keeps names as UTF-8 text
   * (without `rawNames`) gets them as the Latin-1 characters of those bytes instead.
   */
  resolve(arg: string): string {
    const path = this.forStorage(resolvePath(this.cwd, arg));
    const { maxPathDepth, maxPathLength } = this.settings;
    if (maxPathLength > 0 && path.length > maxPathLength / 3 && escapedByteLength(path) > maxPathLength) {
      throw new FtpError(553, `Path too long: at most ${maxPathLength} bytes.`);
    }
    if (maxPathDepth > 0 && path.length > maxPathDepth && depthOf(path) > maxPathDepth) {
      throw new FtpError(553, `Path too deep: at most ${maxPathDepth} folders.`);
    }
    return path;
  }

  /**
   * As {@link resolve}, for a command that names a file (RETR, STOR, APPE, STOU, DELE, SIZE, MDTM, HASH): a trailing
   * slash names a folder, as in any POSIX path (`open("f/")` is ENOTDIR), so `name/` is refused with `refusal` rather
   * than taken for `name` (a STOR of `new/` made a file `new`).
   */
  resolveFile(arg: string, refusal: 550 | 553 = 550): string {
    const path = this.resolve(arg);
    if (arg.endsWith('/') && path !== '/') throw new FtpError(refusal, `${arg}: a trailing slash names a folder, not a file.`);
    return path;
  }

  /**
   * The path of an object a command is about to create or name anew (MKD, RNTO, COMB's target, SITE SYMLINK): as
   * {@link resolve}, and refused by {@link refuseUnlistableName}. (STOR, APPE and STOU check in `store` only a file
   * that does not exist yet: one already stored keeps its name.)
   */
  resolveNew(arg: string): string {
    const path = this.resolve(arg);
    refuseUnlistableName(path);
    return path;
  }

  /** `name` as the user's storage can keep it: byte escapes as Latin-1 characters where it has no `rawNames`. */
  forStorage(name: string): string {
    return hasByteEscapes(name) && this.fs !== null && !describeCapabilities(this.fs).rawNames ? latin1ForEscapes(name) : name;
  }

  /** The user's filesystem; only reachable after login, which the command table guarantees. */
  get vfs(): FsProvider {
    if (!this.fs) throw new FtpError(530, 'Please login with USER and PASS.');
    return this.fs;
  }

  /** Replaces the data connection setup, releasing the previous one. */
  setDataSetup(setup: DataSetup | null): void {
    if (this.dataSetup?.kind === 'passive') this.dataSetup.listener.dispose(false);
    this.dataSetup = setup;
  }

  /**
   * @internal ControlOwner: ABOR and STAT while a transfer runs are served at once, out of order: one ABOR and one
   * STAT at a time, and STAT only while the client reads its replies. A client sending thousands of STATs during a
   * transfer without reading would otherwise have every reply buffered (the control connection keeps being read
   * during a transfer, so that ABOR is heard): the rest wait in the command queue, bounded like any pipelined
   * commands. ABOR never waits for a STAT. NOOP during a transfer is answered at once too (see
   * {@link noopDuringTransfer}).
   */
  intercept(event: ControlEvent): boolean {
    if (event.type !== 'line' || (!this.transfer && !stoppable.has(this))) return false;
    const { verb } = parseCommand(event.line);
    if (verb === 'NOOP') return this.noopDuringTransfer(event);
    const spec = COMMANDS[verb];
    if (!spec?.duringTransfer) return false;
    // During a stoppable command (a HASH) only ABOR: a STAT answered first would come before the command's reply.
    if (!this.transfer && verb !== 'ABOR') return false;
    const flag = verb === 'ABOR' ? ABOR_INTERCEPTED : STAT_INTERCEPTED;
    if ((this.flags & flag) !== 0 || (flag === STAT_INTERCEPTED && this.conn.backlogged)) return false;
    this.flags |= flag;
    const done = (): void => {
      this.flags &= ~flag;
    };
    this.handle(event).then(done, (err: unknown) => {
      done();
      this.log.error({ err }, 'session failed');
      this.close();
    });
    return true;
  }

  /**
   * NOOP while a transfer runs is answered at once, as pure-ftpd and FileZilla Server do: clients send it as a
   * keepalive during long transfers (Apache Commons Net's `setControlKeepAliveTimeout`: one a second) and wait a moment
   * for each reply, so queued until the transfer's end every one held the client's copy loop up, and past the command
   * queue's bound the session ended with 421 after a transfer that had succeeded. Only with nothing queued before it
   * and no ABOR under way (it must not overtake a command's replies: an ABOR's 426 and 226 come first), while the
   * client reads its replies (else it waits in the queue, bounded like any pipelined command), and not while the
   * server stops (queued, it waits for the transfer the shutdown's grace lets finish; served now, it would end it).
   */
  private noopDuringTransfer(event: ControlEvent): boolean {
    const t = this.transfer;
    if (t === null || t.reason !== null || (this.flags & ABOR_INTERCEPTED) !== 0) return false;
    if (this.conn.hasQueued || this.conn.backlogged || this.ctx.stopping()) return false;
    this.handle(event).catch((err: unknown) => {
      this.log.error({ err }, 'session failed');
      this.close();
    });
    return true;
  }

  private async handle(event: ControlEvent): Promise<void> {
    // RFC 959 §4.1.3: RNTO must come right after a successful RNFR. Anything else (a line too long or discarded, an
    // unknown verb, another RNFR, refused or not) forgets the source first, so that no later RNTO renames a file an
    // earlier RNFR named.
    if (event.type !== 'line') this.renameFrom = null;
    if (event.type === 'overflow') {
      // Once a session at warning level, then at debug: the client decides how many it sends (before login too),
      // and a line per long line let anyone fill the log (2,000 lines of 4 KB: 2,000 warnings).
      if (overflowWarned.has(this)) this.logAt('debug')?.debug({ length: event.length }, 'command line too long');
      else {
        overflowWarned.add(this);
        this.log.warn({ length: event.length }, 'command line too long (further ones of this session at debug level)');
      }
      await this.reply(500, 'Command line too long.');
      return;
    }
    if (event.type === 'bare-cr') {
      // RFC 854 allows a CR only before LF or NUL. Run as two commands, `SIZE x<CR>DELE y` would do what a proxy or
      // an application framing by CRLF took for one SIZE: the line is refused whole.
      this.logAt('debug')?.debug({ length: event.length }, 'command line with a bare CR');
      await this.reply(500, 'Syntax error: a CR not followed by LF in the command line; nothing was run.');
      return;
    }
    if (event.type === 'dropped') {
      this.log.warn({ count: event.count }, 'too many pipelined commands');
      if (event.count > MAX_DROPPED_COMMANDS) {
        await this.reply(421, 'Too many commands sent ahead; closing.');
        this.close();
        return;
      }
      for (let i = 0; i < event.count && !this.closed; i++) await this.reply(500, 'Too many commands sent ahead; command discarded.');
      return;
    }
    const { verb, arg } = parseCommand(event.line);
    if (verb === '') return;
    // The server is stopping: a running transfer may finish (ABOR and STAT still reach it), a new command may not
    // start one, nor log in (RFC 959: 421 may answer any command when the service must shut down).
    if (this.ctx.stopping() && verb !== 'QUIT' && !this.stopsRunningWork(verb)) {
      this.logAt('debug')?.debug({ cmd: verb }, 'command refused: the server is stopping');
      this.sayShuttingDown();
      this.close();
      return;
    }
    if (this.authenticated) this.touch(); // RFC 959 has no empty command; blank lines are ignored as most servers do.
    // Whatever separates PASS from the password (a tab…), the line is masked. The level is asked of the server's
    // logger: asking the session's would make a child logger for every session just to learn that debug is off.
    if (this.ctx.logger.isLevelEnabled('debug')) this.log.debug({ cmd: loggedCommand(event.line) }, 'command');
    if (verb !== 'RNTO') this.renameFrom = null;
    const spec = COMMANDS[verb];
    if (!spec) {
      await this.reply(500, `${printable(verb)} not understood.`);
      return;
    }
    if (!spec.handler || this.settings.disabledCommands.includes(verb)) {
      await this.reply(502, `${verb} not implemented.`);
      return;
    }
    if (!spec.preAuth && !this.authenticated) {
      await this.reply(530, 'Please login with USER and PASS.');
      return;
    }
    if (spec.arg === 'required' && arg.length === 0) {
      await this.reply(501, `${verb} needs an argument.`);
      return;
    }
    if (spec.arg === 'none' && arg.trim().length > 0) {
      await this.reply(501, `${verb} takes no argument.`);
      return;
    }
    try {
      await spec.handler(this, arg);
    } catch (err) {
      const reply = toReply(err);
      if (reply.code === 550 && spec.refusal) reply.code = spec.refusal;
      if (isServerFault(err)) this.log.error({ err, cmd: verb }, 'command failed');
      // A read-only remount, a full disk, descriptors running out: the operator's to know.
      else if (isSystemRefusal(err)) this.log.warn({ err: (err as Error)?.message, cmd: verb }, 'command refused by the system');
      else this.log.debug({ err: (err as Error)?.message, cmd: verb }, 'command refused');
      await this.reply(reply.code, reply.text);
    }
  }

  /** Seconds allowed now: `loginTimeout` to log in (from the greeting or REIN), `idleTimeout` of silence after. */
  private get idleLimit(): number {
    const { idleTimeout, loginTimeout } = this.settings;
    return !this.authenticated && loginTimeout > 0 ? loginTimeout : idleTimeout;
  }

  /** The client was active: the idle limit counts from now. */
  private touch(): void {
    this.lastActivity = clock();
  }

  /**
   * @internal The server's idle sweep (`now` from {@link clock}): 421 and close once the client has been silent past the limit, unless a
   * transfer is moving bytes (which counts as activity), or, once logged in, a HASH is still reading its file: the
   * client waits for its reply (ABOR stops it, and so does the client leaving). Silence counts again from the reply.
   * Any other command is cut as vsftpd's idle alarm cuts it (a driver call that never returns, replies a client does
   * not read), and so is a HASH whose client reads no replies. Before login the deadline stands whatever runs.
   */
  checkIdle(now: number): void {
    if (this.closed) return;
    const limitMs = this.idleLimit * 1000;
    if (limitMs <= 0 || now - this.lastActivity < limitMs) return;
    if (this.transfer && this.transfer.idleMs < limitMs) return;
    if (this.authenticated && !this.transfer && stoppable.has(this) && !this.conn.backlogged) return;
    this.log.info('idle timeout');
    void this.reply(421, 'Timeout: closing control connection.');
    this.close();
  }

  /**
   * @internal Work of the running command that ABOR and the session's end stop (a HASH reading a whole file): its
   * signal, and `done` to call when the work ends, however it ends. ABOR is heard during it as during a transfer.
   */
  stoppableWork(): { signal: AbortSignal; done: () => void } {
    let finished!: () => void;
    const work: StoppableWork = { controller: new AbortController(), finished: new Promise<void>((r) => (finished = r)) };
    if (this.closed) work.controller.abort();
    stoppable.set(this, work);
    // An ABOR the client sent right behind this command (read with it, queued) is for this work.
    this.conn.offerQueued();
    return {
      signal: work.controller.signal,
      done: () => {
        if (stoppable.get(this) === work) stoppable.delete(this);
        finished();
      },
    };
  }

  /**
   * @internal A signal aborted when the session closes, for a wait that must end with it (a PASS waiting for its
   * turn); `done` when the wait is over, so a logged-in session keeps nothing of it.
   */
  closeWatch(): { signal: AbortSignal; done: () => void } {
    const controller = new AbortController();
    if (this.closed) controller.abort();
    else closeWatches.set(this, controller);
    return {
      signal: controller.signal,
      done: () => {
        if (closeWatches.get(this) === controller) closeWatches.delete(this);
      },
    };
  }

  /**
   * @internal ABOR: stops the running command's stoppable work; resolves once the command has called `done` (after
   * its own reply), or null when there is none.
   */
  stopWork(): Promise<void> | null {
    const work = stoppable.get(this);
    if (work === undefined) return null;
    work.controller.abort();
    return work.finished;
  }

  /** Ends the session: stops any transfer, frees the data port, closes the control connection. */
  close(): void {
    if (this.closed) return;
    this.flags |= CLOSED;
    stoppable.get(this)?.controller.abort();
    closeWatches.get(this)?.abort();
    closeWatches.delete(this);
    this.transfer?.stop('connection');
    this.setDataSetup(null);
    this.conn.close();
    // During CCC's hand-back, ending the TLS layer leaves the TCP connection open (it is to go on in clear text):
    // nothing else would ever close it.
    this.controlPipe?.abandonIfClearing();
    // No data connection of this session can start any more: its TLS context may serve another session once the
    // connections that began a handshake with it have closed (see TlsContexts.handshake).
    if (this.tlsContext) this.ctx.tls.release(this.tlsContext);
    this.ctx.onSessionClosed(this);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

// Session.flags.
/**
 * The stoppable work of sessions running one (a HASH), outside the session object: an idle session then carries no
 * field for it.
 */
const stoppable = new WeakMap<Session, StoppableWork>();

/** The close watch of sessions waiting on one (see {@link Session.closeWatch}), outside the session object. */
const closeWatches = new WeakMap<Session, AbortController>();

interface StoppableWork {
  controller: AbortController;
  /** Resolved when the command is done with it. */
  finished: Promise<void>;
}

const AUTHENTICATED = 1;
const CLOSED = 2;
const SERVING = 4;
/** A STAT is being answered out of order, during a transfer. */
const STAT_INTERCEPTED = 8;
/** An ABOR is being answered out of order, during a transfer. */
const ABOR_INTERCEPTED = 16;
/** {@link Session.run} has begun: the client's commands will be served. */
const STARTED = 32;

/**
 * How long after the CCC reply the server waits for the client's close_notify before sending its own: long
 * enough that ours never arrives with the 200 (lftp fails then), short enough for clients that wait for ours.
 */
const CCC_GRACE_MS = 250;

/**
 * Milliseconds since the process started, on the monotonic clock: the idle clock. Not the wall clock, which an NTP
 * step or an operator moves: set forward two hours it ended every session as idle, set back an hour it let idle
 * and unauthenticated sessions stay an hour more. A small integer V8 keeps in the session's field itself for 24 days
 * of uptime, where a double costs every session a 16-byte heap number (past 24 days it still counts right).
 * `Math.floor` is what makes it one.
 */
export function clock(): number {
  return Math.floor(performance.now());
}

/**
 * The RANG range, taken by the transfer command at hand (RETR, HASH, an upload or a listing) before anything can
 * refuse it: a range serves the next transfer command only (draft-bryan-ftp-range §4.3), whether that succeeds or
 * not, never a later one the client meant in full.
 */
export function takeRange(s: Session): { start: number; end: number } | null {
  const range = s.range;
  if (range !== null) s.range = null;
  return range;
}

/**
 * Refuses a new name holding a CR or LF. Listings cannot show such a name (RFC 3659 §2.2 has it converted or left
 * out; LIST lines and MLSD entries end at a line break, so they show `?`), so the file could not be found again.
 * 550, which STOR, STOU and RNTO say as 553 (the command table's `refusal`).
 */
export function refuseUnlistableName(path: string): void {
  const name = path.slice(path.lastIndexOf('/') + 1);
  if (name.includes('\r') || name.includes('\n')) throw new FtpError(550, 'File name not allowed: it holds a line break.');
}

/** Whether a RANG can be served: the octets of the file as stored go out as they are only in TYPE I and MODE S. */
export function rangesSendable(s: Session): boolean {
  return s.transferType === 'I' && s.mode === 'S';
}

/**
 * A transfer command without a restart point (a listing) spends both REST and RANG, done or refused: a marker
 * meant for it (RFC 959 §4.1.3: REST is "followed immediately by" its transfer) must not cut a later download short.
 */
export function spendRestart(s: Session): void {
  s.range = null;
  s.restOffset = 0;
}

/** Refuses an operation the user may not do (550, and nothing is touched). */
export function requirePermission(s: Session, what: keyof Permissions): void {
  if (!s.permissions[what]) throw new FtpError(550, 'Permission denied.');
}

/** Sessions that have logged a warning for a line too long (a set, so that other sessions carry no field for it). */
const overflowWarned = new WeakSet<Session>();

/**
 * A word the client sent, as a reply may quote it: its first 32 characters, anything but printable ASCII as `?` (no
 * terminal escapes, no bytes a client's reply parser could trip on).
 */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.slice(0, 32).replace(/[^\x20-\x7e]/g, '?');
}

/** Components of a normalized absolute path (`/` is 0, `/a/b` is 2). */
function depthOf(path: string): number {
  let depth = 0;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 47 && i + 1 < path.length) depth++;
  return depth;
}

/** A command line as logged: the arguments of PASS and ACCT (RFC 959: an account's password, often) never are. */
function loggedCommand(line: string): string {
  // A prefix, not a word: a line such as `PASSsecret` (a client's typo) is masked too.
  const secret = /^\s*(pass|acct)/i.exec(line);
  // Bytes that are not UTF-8 as `\xNN`, as the path of the same command is logged (JSON would make them U+FFFD).
  return secret ? `${secret[1]!.toUpperCase()} ****` : hexForEscapes(line);
}

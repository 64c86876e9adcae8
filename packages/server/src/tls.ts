import type { EventEmitter } from 'node:events';
import type { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { constants, randomBytes } from 'node:crypto';
import { createSecureContext, TLSSocket, type SecureContext, type SecureVersion } from 'node:tls';
import type { FtpDriver, SessionInfo } from './driver.js';
import { FtpError } from './errors.js';
import type { ServerSettings } from './settings.js';
import { TlsSessionIds } from './tls-session-ids.js';
import { offeredTlsVersions, TLS12 } from './client-hello.js';

/** Seconds a TLS session may be resumed (`sessionTimeout`), unless the driver's options say otherwise: OpenSSL's most. */
const SESSION_LIFETIME_S = 0x7fffffff;

const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;

/**
 * Cipher suites offered when the driver's options name none: TLS 1.3's three, and for TLS 1.2 only ephemeral key
 * exchange (forward secrecy) with AEAD ciphers, as Mozilla's "intermediate" profile. Node's own default ends in
 * `HIGH`, which lets a TLS 1.2 client settle on RSA key exchange and CBC (`AES128-SHA`): a stolen key would then
 * decrypt recorded sessions. Every FTPS client of the last decade (FileZilla, WinSCP, lftp, curl) has ECDHE-GCM;
 * the DHE suites (with OpenSSL's well-known parameters, `dhparam: 'auto'`) are for the few that do not.
 */
export const DEFAULT_TLS_CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
].join(':');

/**
 * Free contexts kept per set of TLS options for the next TLS control connections. A context costs 25–37 KiB of
 * OpenSSL memory that V8 counts as ~1 KiB, so one made per login and dropped waited for a full collection that
 * seldom came: 6,000 TLS logins one after the other grew the server from 71 to 291 MB (3,000 with a collection forced
 * every second: 115 MB, level). 32 cover logins one after another and a burst's tail.
 */
const FREE_CONTEXTS = 32;

/** The OpenSSL side of a `SecureContext` (what `tls.Server.setTicketKeys` calls): present in every supported Node. */
interface NativeContext {
  setTicketKeys(keys: Buffer): void;
}

function nativeOf(context: SecureContext): NativeContext | null {
  const native = (context as { context?: Partial<NativeContext> }).context;
  return typeof native?.setTicketKeys === 'function' ? (native as NativeContext) : null;
}

/**
 * Gives each TLS control connection a TLS context built from what the driver returns (so a certificate replaced at
 * run time is picked up by the next AUTH TLS). Each context has its own session-ticket keys while its session
 * lasts, and the session's data connections use the same context: a data connection can then only resume a TLS
 * session of that very control connection, never one a third party opened on the same server. When the session
 * ends its context gets new ticket keys, so nothing issued under it can be resumed any more, and serves the next
 * session with the same options (Node keeps no server-side session cache for such sockets: tickets are the only
 * way to resume).
 */
export class TlsContexts {
  /** Free contexts, by the driver's options object (a new object, after a certificate reload, starts afresh). */
  readonly #free = new WeakMap<object, SecureContext[]>();
  /** The options each reusable context was built from; absent for a context that cannot be reused. */
  readonly #optionsOf = new WeakMap<SecureContext, object>();
  /** Connections (control and data) that began a TLS handshake with a context and have not closed yet. */
  readonly #uses = new WeakMap<SecureContext, number>();
  /** Contexts whose session has ended but which a connection still uses: reused once the last one closes. */
  readonly #ending = new WeakSet<SecureContext>();
  /** Each context's TLS 1.2 sessions, for resumption by session ID (absent while none was asked for). */
  readonly #sessionIds = new WeakMap<SecureContext, TlsSessionIds>();
  /** What each context was built with: its upload companion is built the same way (see {@link handshake}). */
  readonly #builtWith = new WeakMap<SecureContext, Parameters<typeof createSecureContext>[0]>();
  /** The TLS version the control connection of each context's current session settled on. */
  readonly #controlVersion = new WeakMap<SecureContext, string>();
  /** Each context's companion for upload data connections, at most TLS 1.2 (see {@link handshake}). */
  readonly #uploadContexts = new WeakMap<SecureContext, SecureContext>();

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
    const reused = this.#free.get(options)?.pop();
    if (reused) return reused;
    const built = {
      ...options,
      ciphers: options.ciphers ?? DEFAULT_TLS_CIPHERS,
      // Without parameters OpenSSL leaves DHE out: clients with no ECDHE-GCM (old Windows Schannel, Java 7) need it.
      dhparam: options.dhparam ?? 'auto',
      // The stricter of the server's minimum and the driver's: a driver cannot lower the floor by accident.
      minVersion: stricter(this.settings.tlsMinVersion, options.minVersion),
      // No renegotiation (TLS 1.2): each is a full handshake of server CPU at the client's will; Node's own limit
      // (3 in 10 minutes) reports through an error event and leaves the connection up. OpenSSL refuses them outright.
      secureOptions: (options.secureOptions ?? 0) | constants.SSL_OP_NO_RENEGOTIATION,
      ticketKeys: randomBytes(48),
      // OpenSSL's default (2 hours from the control connection's handshake; resuming does not extend it) would refuse
      // every data connection of a longer session that must resume (`tlsSessionReuse`): 522 in the middle of a long
      // sync. The keys live only as long as the FTP session (see release), so a long lifetime exposes nothing; vsftpd
      // does the same. TLS 1.3 tickets are still capped at 7 days by the protocol.
      sessionTimeout: options.sessionTimeout ?? SESSION_LIFETIME_S,
    };
    const context = createSecureContext(built);
    this.#builtWith.set(context, built);
    if (nativeOf(context)) this.#optionsOf.set(context, options);
    return context;
  }

  /**
   * Runs the server side of a TLS handshake with `context` over `carrier` (the connection `socket`, or a relay over
   * it; see {@link startTls}); `role` says whether it is the control connection's (whose TLS 1.2 sessions are kept
   * for its data connections to resume by ID) or a data connection's (which resumes them and adds none); an
   * `upload`'s data connection may get a companion context capped at TLS 1.2 (see {@link #uploadContext}). Until
   * `socket` closes, the context is not reused: a handshake still running when its session ends (a client holding
   * back its last data connection's messages) would otherwise be answered with tickets under the next session's keys.
   */
  handshake(socket: Socket, context: SecureContext, timeoutMs: number, role: 'control' | 'data' | 'upload', carrier: Duplex = socket, signal?: AbortSignal): Promise<TLSSocket> {
    this.#use(context, socket);
    if (role === 'control') {
      const secured = startTls(carrier, context, timeoutMs, this.#sessionIdsOf(context)?.control, signal);
      secured.then((tls) => this.#controlVersion.set(context, tls.getProtocol() ?? ''), () => undefined);
      return secured;
    }
    const companion = role === 'upload' ? this.#uploadContext(context) : null;
    if (companion) {
      // A client that offers no TLS 1.2 (one set to TLS 1.3 only) keeps the session's TLS 1.3: refused by the
      // companion, it could not upload at all.
      return offeredTlsVersions(carrier, timeoutMs).then((versions) =>
        versions !== null && !versions.includes(TLS12) ? startTls(carrier, context, timeoutMs, this.#sessionIdsOf(context)?.data) : startTls(carrier, companion, timeoutMs),
      );
    }
    return startTls(carrier, context, timeoutMs, this.#sessionIdsOf(context)?.data);
  }

  /**
   * The context for an upload's data connection when its control connection is on TLS 1.3: the same settings,
   * capped at TLS 1.2. A TLS 1.3 server sends its session tickets after the handshake, and a client that only
   * writes to an upload's data connection never reads them (rclone and other Go clients, basic-ftp's empty files,
   * lftp after CCC). Closing a socket with unread bytes makes the client's kernel reset the connection instead of
   * ending it, and the reset throws away what the server has not read yet, the end of the upload: 426 and a
   * truncated file (OpenSSL's one-way-connection problem; the fix servers in C use, sending no tickets, is not
   * reachable from Node). A TLS 1.2 handshake sends its ticket before it completes, then nothing.
   *
   * Null (the control context is used) when the control connection is not on TLS 1.3, when the data connection must
   * resume the control connection's session (`tlsSessionReuse`: a TLS 1.3 session cannot be resumed under 1.2), or
   * when TLS 1.2 is not allowed (`tlsMinVersion`, the driver's `minVersion` or `SSL_OP_NO_TLSv1_2`). A client that
   * offers no TLS 1.2 gets the control context too (see {@link handshake}). The cost: an upload's data connection is
   * a full TLS 1.2 handshake, never a resumption of the control session (downloads still resume).
   */
  #uploadContext(context: SecureContext): SecureContext | null {
    if (this.settings.tlsSessionReuse || this.#controlVersion.get(context) !== 'TLSv1.3') return null;
    const existing = this.#uploadContexts.get(context);
    if (existing) return existing;
    const built = this.#builtWith.get(context);
    if (!built || built.minVersion === 'TLSv1.3' || ((built.secureOptions ?? 0) & constants.SSL_OP_NO_TLSv1_2) !== 0) return null;
    let companion: SecureContext;
    try {
      companion = createSecureContext({ ...built, maxVersion: 'TLSv1.2', ticketKeys: randomBytes(48) });
    } catch {
      return null;
    }
    this.#uploadContexts.set(context, companion);
    return companion;
  }

  /** The context's store of TLS 1.2 sessions; none when TLS 1.2 is not allowed (TLS 1.3 resumes by ticket only). */
  #sessionIdsOf(context: SecureContext): TlsSessionIds | undefined {
    if (this.settings.tlsMinVersion !== 'TLSv1.2') return undefined;
    let ids = this.#sessionIds.get(context);
    if (!ids) this.#sessionIds.set(context, (ids = new TlsSessionIds()));
    return ids;
  }

  #use(context: SecureContext, socket: Socket): void {
    if (socket.destroyed) return;
    this.#uses.set(context, (this.#uses.get(context) ?? 0) + 1);
    socket.once('close', () => {
      const left = (this.#uses.get(context) ?? 1) - 1;
      this.#uses.set(context, left);
      if (left === 0 && this.#ending.has(context)) {
        this.#ending.delete(context);
        this.#recycle(context);
      }
    });
  }

  /**
   * The session that used `context` has ended. Once no connection that began a handshake with it is open (see
   * {@link handshake}), the context gets new ticket keys and forgets its stored sessions (nothing issued under it
   * can be resumed from then on) and goes back to serve the next session with the same options.
   */
  release(context: SecureContext): void {
    if ((this.#uses.get(context) ?? 0) > 0) {
      this.#ending.add(context);
      return;
    }
    this.#recycle(context);
  }

  #recycle(context: SecureContext): void {
    const options = this.#optionsOf.get(context);
    // Released twice, it is kept once (the list holds at most FREE_CONTEXTS).
    if (!options || this.#free.get(options)?.includes(context)) return;
    this.#sessionIds.get(context)?.clear();
    this.#controlVersion.delete(context);
    // Its upload companion's tickets die with the session too; one whose keys cannot be replaced is built anew.
    const companion = this.#uploadContexts.get(context);
    try {
      if (companion) nativeOf(companion)!.setTicketKeys(randomBytes(48));
    } catch {
      this.#uploadContexts.delete(context);
    }
    try {
      nativeOf(context)?.setTicketKeys(randomBytes(48));
    } catch {
      // Keys that cannot be replaced: the context is not reused.
      this.#optionsOf.delete(context);
      return;
    }
    let free = this.#free.get(options);
    if (!free) this.#free.set(options, (free = []));
    if (free.length >= FREE_CONTEXTS) return;
    free.push(context);
  }
}

/** The stricter of two minimum TLS versions. */
function stricter(floor: SecureVersion, asked: SecureVersion | undefined): SecureVersion {
  if (!asked) return floor;
  return TLS_VERSIONS.indexOf(asked) > TLS_VERSIONS.indexOf(floor) ? asked : floor;
}

/**
 * Runs the server side of a TLS handshake over an accepted (or connected) socket and resolves once it is done.
 * The server is the TLS server on every connection, data connections included (RFC 4217 §4). `sessionIds`, when
 * given, stores and resumes TLS 1.2 sessions by ID (one side of a {@link TlsSessionIds}).
 */
export function startTls(socket: Socket | Duplex, context: SecureContext, timeoutMs: number, sessionIds?: EventEmitter, signal?: AbortSignal): Promise<TLSSocket> {
  if (socket.destroyed) return Promise.reject(new FtpError(421, 'Connection closed before the TLS handshake.'));
  if (signal?.aborted) return Promise.reject(new FtpError(421, 'Session closed before the TLS handshake.'));
  return new Promise((resolve, reject) => {
    // Node looks for stored sessions on the socket's `server` (its newSession/resumeSession events), which needs
    // nothing else of a server from a socket it did not accept itself.
    const server = sessionIds as unknown as Server | undefined;
    const tlsSocket = new TLSSocket(socket, { isServer: true, secureContext: context, requestCert: false, ...(server ? { server } : {}) });
    let settled = false;
    const timer = setTimeout(() => fail(new FtpError(421, 'TLS handshake timed out.')), timeoutMs);
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', aborted);
      tlsSocket.destroy();
      socket.destroy();
      reject(FtpError.isInstance(err) ? err : new FtpError(421, `TLS handshake failed: ${handshakeFailure(err)}.`));
    };
    const closed = (): void => fail(new FtpError(421, 'Connection closed during the TLS handshake.'));
    // The session ended meanwhile (a shutdown, say): a handshake under way owns the socket, whose own end or
    // destroy leaves the connection open until the handshake times out.
    const aborted = (): void => fail(new FtpError(421, 'Session closed during the TLS handshake.'));
    signal?.addEventListener('abort', aborted, { once: true });
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
      signal?.removeEventListener('abort', aborted);
      tlsSocket.removeListener('error', fail);
      tlsSocket.removeListener('end', closed);
      socket.removeListener('close', closed);
      socket.removeListener('end', closed);
      tlsSocket.on('error', () => {});
      // A TLSSocket made by hand (not accepted by a tls.Server) never has its "control released": a TLS failure after
      // the handshake (bytes that are not TLS records, a bad MAC, a renegotiation flood) is then only told as this
      // internal event, never as 'error', and the socket stays open, unable to read: a control connection sat dead
      // until the idle timeout, a transfer until the stall timeout. Ended at once, with the error for the log.
      tlsSocket.on('_tlsError', (err: Error) => tlsSocket.destroy(err));
      resolve(tlsSocket);
    });
  });
}

/**
 * What went wrong in a handshake, for a reply: OpenSSL's reason ("wrong version number", "http request"), not its
 * whole error line, which spans lines and names the library's source files.
 */
function handshakeFailure(err: unknown): string {
  const reason = (err as { reason?: unknown } | null)?.reason;
  if (typeof reason === 'string' && reason !== '') return reason;
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n', 1)[0]!.trim() || 'unknown error';
}

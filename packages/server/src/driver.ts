import type { SecureContextOptions } from 'node:tls';
import type { FsProvider } from '@ftp/vfs';
import type { RateLimiter } from './data/throttle.js';
import type { TlsRequirement } from './settings.js';

/** What the server tells a driver about a session. Read-only: the session owns it. */
export interface SessionInfo {
  /** Unique per server, increasing. */
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  /** The user name once USER was given. */
  readonly user: string | undefined;
  /** Whether the user is logged in. */
  readonly authenticated: boolean;
  /** Whether the control connection is protected by TLS (AUTH TLS or implicit FTPS). */
  readonly secure: boolean;
  /** The virtual host the client asked for with HOST (RFC 7151), if any. */
  readonly host: string | undefined;
}

/** What a logged-in user may do. Everything is allowed unless a field says `false`. */
export interface Permissions {
  /** RETR (downloads). Listings, SIZE and MDTM stay allowed. */
  read: boolean;
  /** STOR and STOU: create files and overwrite them. */
  write: boolean;
  /** APPE and REST+STOR: add to existing files. */
  append: boolean;
  /** DELE. */
  delete: boolean;
  /** RNFR/RNTO. */
  rename: boolean;
  /** MKD. */
  mkdir: boolean;
  /** RMD. */
  rmdir: boolean;
  /** SITE commands and MFMT (changing metadata). */
  site: boolean;
}

/** What a successful login gives the session: the user's filesystem and where they start. */
export interface LoginResult {
  /** The user's filesystem; paths the session sends it are absolute within it. */
  fs: FsProvider;
  /** Starting directory inside `fs`. Default `/`. */
  home?: string;
  /** What the user may do; omitted fields are allowed. Denied operations get 550 and touch nothing. */
  permissions?: Partial<Permissions>;
  /** Raises the server's `tlsRequired` for this user (it can never lower it). */
  tlsRequired?: TlsRequirement;
  /**
   * Per-user bandwidth: limiters shared by all of the user's sessions (create one per user and keep it to change
   * its `rate` while transfers run). They apply on top of the server's per-session `downloadRate`/`uploadRate`.
   */
  rateLimits?: { download?: RateLimiter; upload?: RateLimiter };
}

/**
 * The driver: how an application plugs users and storage into the server (as ftpserverlib's MainDriver).
 * Only `authenticate` is required.
 */
export interface FtpDriver {
  /**
   * Called when a client connects; returns the greeting (one or more lines) or nothing for the default banner.
   * Throwing refuses the client with 421. The reply's text is the message of an `FtpError` thrown on purpose
   * (its code is not used); any other error is logged and the client sees only `Service not available.`, since its
   * message may tell internals (hosts, ports, paths) to a client that has not logged in.
   */
  onConnect?(session: SessionInfo): string | readonly string[] | void | Promise<string | readonly string[] | void>;
  /**
   * Checks a user's credentials. Returns the user's filesystem on success; `null` (or a thrown error) is a
   * failed login, answered 530 without saying whether the user exists. Anything else (`undefined`, `true`, an
   * object without an `fs`) is a failed login too, logged as the driver's error. An answer still pending when the
   * session ends (the client left, or `loginTimeout` closed it) is not waited for: give calls to other services
   * their own timeout all the same.
   */
  authenticate(session: SessionInfo, user: string, password: string): LoginResult | null | Promise<LoginResult | null>;
  /**
   * HOST (RFC 7151): whether this server answers for `hostname`. The name is then `session.host`, so
   * `authenticate` can pick the virtual host's users and storage. Without this method any name is accepted.
   */
  virtualHost?(session: SessionInfo, hostname: string): boolean | Promise<boolean>;
  /** Called once when a session ends, logged in or not. */
  onDisconnect?(session: SessionInfo): void;
  /**
   * The TLS certificate and key (and any other `tls.createSecureContext` options), asked each time a session
   * starts TLS, so certificates can be replaced without a restart: return the same object while nothing
   * changed (a new object builds a new context). Without it, AUTH TLS and implicit FTPS are unavailable. Without
   * `ciphers`, only forward-secret AEAD suites are offered (`DEFAULT_TLS_CIPHERS`).
   */
  tlsOptions?(session: SessionInfo): SecureContextOptions | null | undefined | Promise<SecureContextOptions | null | undefined>;
}

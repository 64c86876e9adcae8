import { isIPv4 } from 'node:net';
import { subnet, subnets } from './data/advertise.js';
import { isHostName } from './data/public-names.js';

/**
 * Server settings: what an operator tunes. Every limit is on by default and documented next to its option
 * (as ws does), and contradictory options are rejected when the server is constructed.
 */
export interface ServerSettings {
  /**
   * Address to advertise in PASV replies, for servers behind NAT: an IPv4 address, or a DNS name (a dynamic DNS
   * name, say) looked up to its IPv4 address at start and again every minute, the last answer used meanwhile.
   * Default: the control connection's local address.
   */
  publicHost?: string;
  /**
   * Addresses to advertise by client network, first match first, before `publicHost`: e.g.
   * `[{ network: '10.0.0.0/8', host: '10.0.0.5' }]` gives LAN clients the LAN address and others the public one.
   */
  publicHosts?: ReadonlyArray<{ network: string; host: string }>;
  /**
   * Ports to advertise when a NAT or container maps them (Docker's `-p 31000-31099:30000-30099`): port p of
   * `passivePortRange` is advertised as `passivePortsAdvertised[0] + p - passivePortRange[0]`. Same size as the range.
   */
  passivePortsAdvertised?: readonly [number, number];
  /**
   * Passive data connections come through a load balancer that starts each with a PROXY protocol header (as the
   * control connections of a `proxyProtocol` listener do): the header's client is then the one checked by
   * `passiveIpCheck`. Default false.
   */
  passiveProxyProtocol: boolean;
  /** Networks allowed to send PROXY headers (e.g. `['10.0.0.0/24']`); others are closed. Default: any. */
  proxyProtocolFrom?: readonly string[];
  /** Inclusive range of ports for passive data connections. Default `[30000, 30999]`: below Linux's ephemeral range. */
  passivePortRange: readonly [number, number];
  /** Accept PORT/EPRT. Default true. */
  activeMode: boolean;
  /** Refuse PORT/EPRT to an address other than the client's (FTP bounce, RFC 2577). Default true. */
  activeModeBounceCheck: boolean;
  /** Lowest port PORT/EPRT may name (RFC 2577 §3: refuse privileged ports). Default 1024. */
  activeModeMinPort: number;
  /** A passive data connection must come from the control connection's IP: `strict` (default) or `off`. */
  passiveIpCheck: 'strict' | 'off';
  /**
   * Seconds a logged-in or anonymous control connection may stay silent (421 then close). Default 900; 0 disables.
   * A HASH still reading its file is not silence (the limit counts from its reply); any other command is cut.
   */
  idleTimeout: number;
  /**
   * Seconds a connection has to log in, from the greeting (or from REIN), whatever it sends meanwhile: then 421 and
   * close (ProFTPD's TimeoutLogin). NOOPs do not put it off, so connections that never log in cannot hold session
   * slots for ever. Default 60; 0 uses `idleTimeout` (then a deadline to log in too).
   */
  loginTimeout: number;
  /** Seconds to wait for a data connection to be made (passive accept or active connect), then 425. Default 30. */
  dataConnectTimeout: number;
  /** Seconds a transfer may move no byte before it is cut with 426. Default 300; 0 disables. */
  dataStallTimeout: number;
  /** Longest accepted command line in bytes (excluding CRLF); longer ones get 500. Default 4096. */
  maxLineLength: number;
  /** Commands a client may send ahead without reading replies before the server stops reading its socket. Default 32. */
  maxPipelinedCommands: number;
  /** Most concurrent sessions (421 at connect past it). Default 1000; 0 means unlimited. */
  maxSessions: number;
  /**
   * Most concurrent sessions from one IP address. An IPv6 client is counted by its /64, as bans are: one subscriber
   * has the whole prefix to connect from. Default 0 (unlimited).
   */
  maxSessionsPerIp: number;
  /**
   * Transfer type a session starts with, until the client sends TYPE. Default `A`, as RFC 959 §3.1.1.1 says: lftp,
   * ncftp and Windows' ftp send no `TYPE A` before an ASCII transfer because it is the default, so a server starting
   * in binary stored their text with CRLF line ends. Clients that move binary files send `TYPE I` first.
   */
  defaultTransferType: 'A' | 'I';
  /**
   * Offer MODE Z (deflate on the data connection, draft-preston-ftpext-deflate). Default false: lftp (4.9, Debian's)
   * turns MODE Z on by itself whenever FEAT offers it, and its inflater loses the end of data that deflates better
   * than about 6:1, as a big folder's listing does: `ls` and `mirror` of a 30,000-entry folder silently showed or
   * copied 18,978–28,855 of them. Few other clients use MODE Z; turn it on where yours do.
   */
  modeZ: boolean;
  /** zlib level MODE Z starts with (OPTS MODE Z LEVEL changes it per session). Default 6. */
  deflateLevel: number;
  /** Bytes per second each session may download; 0 (default) is unlimited. Per-user limits come from the driver. */
  downloadRate: number;
  /** Bytes per second each session may upload; 0 (default) is unlimited. */
  uploadRate: number;
  /** Honour `ls` options in LIST/NLST (`-R`, `-l`); false ignores them (they are still stripped from the path). Default true. */
  listOptions: boolean;
  /** Deepest level `LIST -R` descends to. Default 8. */
  listMaxDepth: number;
  /** Most entries one `LIST -R` returns. Default 100000. */
  listMaxEntries: number;
  /**
   * Most entries LIST and NLST sort by name. A bigger folder is listed in the order it is read, a slice at a time
   * (with a provider that lists in slices, such as local disk), so that listing it holds a few hundred entries
   * instead of all of them (~550 bytes each): a million-entry folder would otherwise cost ~550 MB per listing.
   * Clients sort listings themselves. 0 never sorts. Default 20000.
   */
  listSortMax: number;
  /**
   * Most names held at once for sorting, across every listing of the server (see `listSortMax`, ~220 bytes a
   * name). A listing that would go past it sorts fewer (a folder bigger than that comes in the order it is read), so
   * clients that start listings of big folders and never read them cannot hold more than this between them.
   * Default 200000.
   */
  listSortBudget: number;
  /**
   * Most folders deep a path may go (`/a/b/c` is 3), and most bytes (UTF-8) it may have; past either a command gets
   * 553. A local disk checks every component of a path on every command (confinement), and the kernel walks the path
   * again for each check: a 2,000-deep path took ~135 ms per command here, on the thread every session shares.
   * 0 turns a limit off. Defaults 128 and 4096 (Linux's PATH_MAX).
   */
  maxPathDepth: number;
  maxPathLength: number;
  /**
   * What happens to the partial file of an interrupted STOR: `keep` (default, as most servers) or `discard` (for
   * atomic pipelines; APPE and REST uploads are always kept). On storage that shows an upload only once complete
   * (S3, SQL, Redis, SQLite), `keep` stores what arrived in place of the previous version, as a disk written in place
   * does: a client resuming from SIZE would otherwise append its file's tail to the previous version; `discard` keeps
   * the previous version.
   */
  partialUploads: 'keep' | 'discard';
  /**
   * Commands to switch off (e.g. `['MLSD', 'MLST', 'STAT', 'SYST', 'COMB', 'HASH']`, ftpserverlib's Disable*
   * switches in one list): they get 502 and leave FEAT and HELP. Default none.
   */
  disabledCommands: readonly string[];
  /** Serve SITE commands (CHMOD, SYMLINK, HELP). Default true; false answers every SITE with 502. */
  siteCommands: boolean;
  /** Greeting sent with 220 when the driver gives none. */
  banner: string;
  /** Milliseconds to wait before answering a failed login (slows guessing). Default 1000. */
  failedLoginDelay: number;
  /** Listing lines per write to the data socket. Larger batches cost memory, smaller ones syscalls. Default 256. */
  listingBatchSize: number;
  /**
   * What must be protected by TLS: `none` (default), `control` (login refused before AUTH TLS), or `all`
   * (also every data connection: transfers under PROT C refused with 521). A driver may raise it per user.
   */
  tlsRequired: TlsRequirement;
  /**
   * A PROT P data connection must resume the control connection's TLS session (vsftpd's `require_ssl_reuse`), else
   * 522: proof that it comes from the same client, not from someone at the client's address racing to the port (a
   * third party at another address is refused by `passiveIpCheck` whatever this says). Default false: many clients
   * cannot meet it — Python's ftplib never resumes (Apache Commons Net is known not to either), and curl (7.88,
   * OpenSSL), PHP's `ftp_ssl_connect` (8.2) and Ruby's Net::FTP (3.1) under TLS 1.3 resume the first data connection
   * of a session but not the second, which then fails. Turn on where every client resumes every time (lftp and
   * basic-ftp do; FileZilla is known to).
   */
  tlsSessionReuse: boolean;
  /**
   * Allow CCC (RFC 4217 §6): after login the control connection goes back to clear text, for firewalls that must
   * read PORT/PASV replies; data protection is kept, but data connections can no longer be required to resume
   * the (ended) control TLS session. Refused while `tlsRequired` is not `none`. Default false.
   */
  allowCcc: boolean;
  /**
   * A TLS upload whose data connection ends without the client's close_notify counts as interrupted (426), as
   * vsftpd's `strict_ssl_read_eof`: a FIN alone can be forged or come from a broken connection. Default false,
   * since some clients never send it. Such uploads are relayed through a JavaScript pipe, which costs throughput.
   */
  tlsUploadRequiresCloseNotify: boolean;
  /**
   * Uploads in binary stream mode (clear or PROT P) to storage that allows it (`UploadStream.releasesChunks`, as
   * the local disk does) are read straight into the server's shared transfer buffers, about half the CPU per GiB.
   * Node offers that only for sockets it connects itself, so it is done through fields of the accepted socket
   * that Node does not document (checked at run time; without them, ordinary reads). Default true; false reads a
   * fresh buffer per socket read, as Node does by default.
   */
  reuseUploadBuffers: boolean;
  /**
   * Downloads in binary stream mode without a rate limit, over a plain (not TLS) data connection, from storage that
   * hands over the file's descriptor (the local disk), are sent by the kernel (sendfile(2), Linux, through
   * @ftp/native's addon, built when the package installs): no copy through buffers, about half the CPU per GiB.
   * Where the addon is missing they go through buffers, as with false. Default true.
   */
  sendfile: boolean;
  /**
   * The mirror of `sendfile` for uploads: past their first MiB, binary stream-mode uploads without a rate limit,
   * over a plain data connection, to storage that lends the file's descriptor (the local disk without a quota), go
   * from the socket into the file on @ftp/native's threads (Linux, with the addon built): the event loop no longer
   * touches their bytes, about half the CPU per GiB. Where the addon is missing they go through buffers, as with
   * false. Default true.
   */
  kernelReceive: boolean;
  /** Oldest TLS version accepted. Default `TLSv1.2`. */
  tlsMinVersion: 'TLSv1.2' | 'TLSv1.3';
  /** Seconds the TLS handshake of AUTH TLS or an implicit connection may take. Default 10. */
  tlsHandshakeTimeout: number;
  /** Failed logins from one address, within `loginFailureWindow`, after which the address is banned. Default 10; 0 never bans. */
  maxLoginFailures: number;
  /** Seconds over which failed logins are counted. Default 600. */
  loginFailureWindow: number;
  /** Seconds a banned address gets 421 at connect. Default 900. */
  banDuration: number;
  /**
   * Addresses and networks (`10.0.0.0/8`, `::1`) whose failed logins never earn a ban; the growing delay and
   * `maxLoginAttemptsPerSession` still apply. Default loopback, `['127.0.0.0/8', '::1']`, as fail2ban's `ignoreip`: a
   * client on the server's own machine (a script, a test suite, a proxy without the PROXY protocol, through which
   * every client looks local) must not lock everybody out. `[]` bans every address.
   */
  banExempt: readonly string[];
  /** Failed logins on one connection before it is closed with 421. Default 3 (as vsftpd's max_login_fails). */
  maxLoginAttemptsPerSession: number;
  /**
   * `maxConcurrentLogins`: password checks (the driver's `authenticate`) running at once over the server; a scrypt
   * check costs ~100 ms and 32 MiB on libuv's thread pool (4 threads by default), which file I/O shares.
   * `maxConcurrentLoginsPerIp`: logins in progress per client address (its IPv6 /64), each holding its turn through
   * its failed-login delay, and looking at the ban once it has it, so guesses sent in parallel are neither faster
   * nor more numerous than `maxLoginFailures`. Checks waiting for a server slot take turns by address, one each:
   * a flood of guesses from one address delays another address by one check per address ahead of it, never by the
   * flood, and a delay holds up only its own address. 0 is no limit. Defaults 2 and 1.
   */
  maxConcurrentLogins: number;
  maxConcurrentLoginsPerIp: number;
  /**
   * File hashes (HASH, XCRC, XMD5, XSHA1, XSHA256, XSHA512) computed at once over the server, and per client address;
   * 0 is no limit. Each reads its whole file (or range); others wait their turn, a turn per address. A hash stops
   * when its client disconnects, sends ABOR, or the server closes. Defaults 2 and 1.
   */
  maxConcurrentHashes: number;
  maxConcurrentHashesPerIp: number;
}

/** Which connections must be protected by TLS. */
export type TlsRequirement = 'none' | 'control' | 'all';

/** The defaults of {@link ServerSettings}. */
export const DEFAULT_SETTINGS: Readonly<ServerSettings> = Object.freeze({
  passivePortRange: [30000, 30999] as const,
  passiveProxyProtocol: false,
  activeMode: true,
  activeModeBounceCheck: true,
  activeModeMinPort: 1024,
  passiveIpCheck: 'strict',
  idleTimeout: 900,
  loginTimeout: 60,
  dataConnectTimeout: 30,
  dataStallTimeout: 300,
  maxLineLength: 4096,
  maxPipelinedCommands: 32,
  maxSessions: 1000,
  maxSessionsPerIp: 0,
  defaultTransferType: 'A',
  modeZ: false,
  deflateLevel: 6,
  downloadRate: 0,
  uploadRate: 0,
  listOptions: true,
  listMaxDepth: 8,
  listMaxEntries: 100000,
  listSortMax: 20000,
  listSortBudget: 200000,
  maxPathDepth: 128,
  maxPathLength: 4096,
  partialUploads: 'keep',
  disabledCommands: [],
  siteCommands: true,
  banner: 'FTP server ready.',
  failedLoginDelay: 1000,
  listingBatchSize: 256,
  tlsRequired: 'none',
  tlsSessionReuse: false,
  allowCcc: false,
  tlsUploadRequiresCloseNotify: false,
  reuseUploadBuffers: true,
  sendfile: true,
  kernelReceive: true,
  tlsMinVersion: 'TLSv1.2',
  tlsHandshakeTimeout: 10,
  maxLoginFailures: 10,
  loginFailureWindow: 600,
  banDuration: 900,
  banExempt: ['127.0.0.0/8', '::1'],
  maxLoginAttemptsPerSession: 3,
  maxConcurrentLogins: 2,
  maxConcurrentLoginsPerIp: 1,
  maxConcurrentHashes: 2,
  maxConcurrentHashesPerIp: 1,
});

/** Merges user settings over the defaults and rejects contradictory or out-of-range values. */
export function resolveSettings(input: Partial<ServerSettings> = {}): ServerSettings {
  const s: ServerSettings = { ...DEFAULT_SETTINGS, ...stripUndefined(input) };
  const [min, max] = s.passivePortRange;
  if (!isPort(min) || !isPort(max) || min > max) {
    throw new RangeError(`passivePortRange must be two ports [min, max] with 1 <= min <= max <= 65535, got [${min}, ${max}]`);
  }
  if (s.publicHost !== undefined && !isPublicHost(s.publicHost)) throw new RangeError(`publicHost must be an IPv4 address or a DNS name (PASV has no IPv6), got ${s.publicHost}`);
  for (const { network, host } of s.publicHosts ?? []) {
    subnet(network);
    if (!isPublicHost(host)) throw new RangeError(`publicHosts: host must be an IPv4 address or a DNS name, got ${host}`);
  }
  if (s.proxyProtocolFrom) subnets(s.proxyProtocolFrom);
  if (!Array.isArray(s.banExempt)) throw new RangeError('banExempt must be a list of addresses or networks');
  subnets(s.banExempt);
  if (s.passivePortsAdvertised) {
    const [a, b] = s.passivePortsAdvertised;
    if (!isPort(a) || !isPort(b) || b - a !== max - min) {
      throw new RangeError(`passivePortsAdvertised must be two ports spanning as many ports as passivePortRange (${max - min + 1}), got [${a}, ${b}]`);
    }
  }
  for (const key of [
    'idleTimeout',
    'loginTimeout',
    'dataConnectTimeout',
    'dataStallTimeout',
    'failedLoginDelay',
    'maxSessions',
    'maxSessionsPerIp',
    'maxLoginFailures',
    'loginFailureWindow',
    'banDuration',
    'maxLoginAttemptsPerSession',
    'maxConcurrentLogins',
    'maxConcurrentLoginsPerIp',
    'maxConcurrentHashes',
    'maxConcurrentHashesPerIp',
    'downloadRate',
    'uploadRate',
    'listMaxDepth',
    'listMaxEntries',
    'listSortMax',
    'listSortBudget',
    'maxPathDepth',
    'maxPathLength',
  ] as const) {
    if (!Number.isFinite(s[key]) || s[key] < 0) throw new RangeError(`${key} must be a non-negative number, got ${s[key]}`);
  }
  if (s.dataConnectTimeout === 0) throw new RangeError('dataConnectTimeout must be > 0: a data listener must not wait forever');
  if (!Number.isInteger(s.maxLineLength) || s.maxLineLength < 512) throw new RangeError('maxLineLength must be an integer >= 512 (RFC 959 paths need room)');
  if (!Number.isInteger(s.maxPipelinedCommands) || s.maxPipelinedCommands < 1) throw new RangeError('maxPipelinedCommands must be >= 1');
  if (!Number.isInteger(s.activeModeMinPort) || s.activeModeMinPort < 1 || s.activeModeMinPort > 65535) throw new RangeError('activeModeMinPort must be a port');
  if (s.listingBatchSize < 1) throw new RangeError('listingBatchSize must be >= 1');
  if (s.defaultTransferType !== 'A' && s.defaultTransferType !== 'I') throw new RangeError("defaultTransferType must be 'A' or 'I'");
  if (s.passiveIpCheck !== 'strict' && s.passiveIpCheck !== 'off') throw new RangeError("passiveIpCheck must be 'strict' or 'off'");
  if (!['none', 'control', 'all'].includes(s.tlsRequired)) throw new RangeError("tlsRequired must be 'none', 'control' or 'all'");
  if (s.tlsMinVersion !== 'TLSv1.2' && s.tlsMinVersion !== 'TLSv1.3') throw new RangeError("tlsMinVersion must be 'TLSv1.2' or 'TLSv1.3'");
  if (!(s.tlsHandshakeTimeout > 0)) throw new RangeError('tlsHandshakeTimeout must be > 0');
  if (s.partialUploads !== 'keep' && s.partialUploads !== 'discard') throw new RangeError("partialUploads must be 'keep' or 'discard'");
  if (!Array.isArray(s.disabledCommands)) throw new RangeError('disabledCommands must be a list of command names');
  for (const verb of ['USER', 'PASS', 'QUIT']) {
    if (s.disabledCommands.some((d) => d.toUpperCase() === verb)) throw new RangeError(`${verb} cannot be disabled`);
  }
  s.disabledCommands = s.disabledCommands.map((d) => d.toUpperCase());
  if (!Number.isInteger(s.deflateLevel) || s.deflateLevel < 0 || s.deflateLevel > 9) throw new RangeError('deflateLevel must be an integer 0-9');
  if (s.maxLoginFailures > 0 && !(s.loginFailureWindow > 0)) throw new RangeError('loginFailureWindow must be > 0 when maxLoginFailures bans');
  return s;
}

function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** What PASV can advertise: an IPv4 address, or a DNS name looked up to one (see `publicHost`). */
export function isPublicHost(host: string): boolean {
  return isIPv4(host) || isHostName(host);
}

import type { SecureContext } from 'node:tls';
import { DEFAULT_FACTS, type HashAlgorithm, type MlsxFact } from '@ftp/protocol';
import type { PassiveReservation } from './data/passive.js';
import type { RateLimiter } from './data/throttle.js';
import type { Transfer } from './data/transfer.js';
import type { Permissions } from './driver.js';
import type { ServerSettings, TlsRequirement } from './settings.js';
import type { SocketPipe } from './socket-pipe.js';

/** Where the next transfer's data connection comes from. */
export type DataSetup = { kind: 'passive'; listener: PassiveReservation } | { kind: 'active'; host: string; port: number };

/** No per-user limits: one shared object, not one per session. */
export const NO_LIMITS: Readonly<{ download?: RateLimiter; upload?: RateLimiter }> = Object.freeze({});

/** The permissions of a user the driver said nothing about: everything. */
export const ALL_PERMISSIONS: Readonly<Permissions> = Object.freeze({
  read: true,
  write: true,
  append: true,
  delete: true,
  rename: true,
  mkdir: true,
  rmdir: true,
  site: true,
});

/**
 * What a session's commands may change beyond the login: TYPE, MODE, PROT, the data setup, the running transfer…
 * Most sessions never change most of it, and an idle session none of it, so the sessions of a server share one
 * frozen copy holding the defaults ({@link defaultState}) and a session gets its own at its first change
 * ({@link SessionState.copy}). Measured by heap snapshots of 1,000 idle sessions (issue 9): a session held
 * 392 bytes with these fields its own, 160 without.
 */
export class SessionState {
  /** TYPE: ASCII (line endings converted) or image. */
  transferType: 'A' | 'I';
  /** REST: where the next RETR/STOR starts. */
  restOffset = 0;
  /** RNFR: the path the next RNTO renames. */
  renameFrom: string | null = null;
  /** EPSV ALL was given: PORT, EPRT and PASV are refused from then on (RFC 2428 §4). */
  epsvAll = false;
  /** OPTS MLST: the facts MLSD and MLST show. */
  mlstFacts: readonly MlsxFact[] = DEFAULT_FACTS;
  dataSetup: DataSetup | null = null;
  transfer: Transfer | null = null;
  /** CLNT: the client's name for itself. */
  clientName: string | undefined = undefined;
  /** The control connection is protected by TLS. */
  secure = false;
  /** The TLS context of the control connection: data connections resume its sessions. */
  tlsContext: SecureContext | null = null;
  /** PBSZ was given (RFC 4217 §8: required before PROT). */
  pbsz = false;
  /** Data channel protection (RFC 2228 PROT): clear or private. */
  prot: 'C' | 'P' = 'C';
  /** What must be protected for this session: the server's setting, raised by the user's. */
  tlsRequired: TlsRequirement;
  /** What the logged-in user may do. */
  permissions: Readonly<Permissions> = ALL_PERMISSIONS;
  /** The user logged in anonymously. */
  anonymous = false;
  /** MODE: stream, or stream through deflate. */
  mode: 'S' | 'Z' = 'S';
  /** zlib level for MODE Z (OPTS MODE Z LEVEL). */
  deflateLevel: number;
  /** This session's bandwidth limits (settings), made at the first transfer. */
  limits: { download: RateLimiter; upload: RateLimiter } | null = null;
  /** The user's bandwidth limits (driver). */
  userLimits: Readonly<{ download?: RateLimiter; upload?: RateLimiter }> = NO_LIMITS;
  /** The digest HASH computes (OPTS HASH). */
  hashAlgorithm: HashAlgorithm = 'SHA-256';
  /** RANG: an inclusive byte range for the next HASH or RETR. */
  range: { start: number; end: number } | null = null;
  /** HOST (RFC 7151): the virtual host asked for. */
  host: string | undefined = undefined;
  /** CCC was used: the control connection's TLS session is over, so data connections cannot resume it. */
  clearedControl = false;
  /** The relay under the control connection's TLS when CCC is allowed (so TLS can be taken off again). */
  controlPipe: SocketPipe | null = null;
  /** Log bindings of the connection beyond the user's (`tls`, `ccc`). */
  logConnection: Readonly<Record<string, unknown>> | null = null;
  /** Failed logins on this connection. */
  loginFailures = 0;
  /** Implicit FTPS: the connection began with a TLS handshake. */
  implicitTls = false;
  /** The public host of the listener the client came through, if it has its own. */
  listenerPublicHost: string | undefined = undefined;

  constructor(settings: ServerSettings) {
    this.transferType = settings.defaultTransferType;
    this.tlsRequired = settings.tlsRequired;
    this.deflateLevel = settings.deflateLevel;
  }

  /** A session's own, changeable copy (same shape as the defaults, so reads stay monomorphic). */
  copy(settings: ServerSettings): SessionState {
    return Object.assign(new SessionState(settings), this);
  }
}

/** The two shared states of a server's settings: its defaults in each transfer type. */
interface SharedStates {
  A: Readonly<SessionState>;
  I: Readonly<SessionState>;
}

const sharedStates = new WeakMap<ServerSettings, SharedStates>();

/**
 * A frozen state holding the defaults in transfer type `type`: one per settings and type, shared by every session
 * whose state holds nothing else. Two, because clients switch type at login (most send `TYPE I`, the default being
 * ASCII): an idle session in either type needs no copy of its own. Made again if the settings they come from were
 * changed since (a session then starts as it did when it read them).
 */
export function sharedState(settings: ServerSettings, type: 'A' | 'I'): Readonly<SessionState> {
  let states = sharedStates.get(settings);
  if (states === undefined || states.A.tlsRequired !== settings.tlsRequired || states.A.deflateLevel !== settings.deflateLevel) {
    const make = (transferType: 'A' | 'I'): Readonly<SessionState> => Object.freeze(Object.assign(new SessionState(settings), { transferType }));
    states = { A: make('A'), I: make('I') };
    sharedStates.set(settings, states);
  }
  return states[type];
}

/** The state every session of a server starts with (see {@link sharedState}). */
export function defaultState(settings: ServerSettings): Readonly<SessionState> {
  return sharedState(settings, settings.defaultTransferType);
}

/** Whether a session's own state holds the same as `shared` in every field (the session may then share it). */
export function holdsSameAs(state: Readonly<SessionState>, shared: Readonly<SessionState>): boolean {
  for (const key in shared) {
    if (state[key as keyof SessionState] !== shared[key as keyof SessionState]) return false;
  }
  return true;
}

/**
 * What REIN keeps (see {@link SessionStateHolder.resetParameters}): the control connection's TLS (RFC 4217 has no
 * way to take it back but CCC) and its protection level, its log bindings, its count of failed logins (a REIN must
 * not reset a brute-force limit), the client's CLNT and HOST names, its bandwidth meters, and a transfer still ending.
 */
const CONNECTION_FIELDS = [
  'secure',
  'tlsContext',
  'pbsz',
  'prot',
  'clearedControl',
  'controlPipe',
  'logConnection',
  'loginFailures',
  'implicitTls',
  'listenerPublicHost',
  'clientName',
  'host',
  'limits',
  'transfer',
] as const satisfies readonly (keyof SessionState)[];

function keepField<K extends keyof SessionState>(to: SessionState, from: Readonly<SessionState>, key: K): void {
  to[key] = from[key];
}

/**
 * A session's view of its {@link SessionState}: each field reads the state and writes to the session's own copy,
 * made at the first change. The session extends this, so handlers use `s.transferType` and friends as fields.
 */
export abstract class SessionStateHolder {
  /** The server's shared defaults until a command changes something, then this session's own copy. */
  protected state: Readonly<SessionState>;

  constructor(settings: ServerSettings) {
    this.state = defaultState(settings);
  }

  /** The settings the defaults come from. */
  abstract get settings(): ServerSettings;

  get transferType(): 'A' | 'I' {
    return this.state.transferType;
  }
  set transferType(value: 'A' | 'I') {
    this.change('transferType', value);
  }
  get restOffset(): number {
    return this.state.restOffset;
  }
  set restOffset(value: number) {
    this.change('restOffset', value);
  }
  get renameFrom(): string | null {
    return this.state.renameFrom;
  }
  set renameFrom(value: string | null) {
    this.change('renameFrom', value);
  }
  get epsvAll(): boolean {
    return this.state.epsvAll;
  }
  set epsvAll(value: boolean) {
    this.change('epsvAll', value);
  }
  get mlstFacts(): readonly MlsxFact[] {
    return this.state.mlstFacts;
  }
  set mlstFacts(value: readonly MlsxFact[]) {
    this.change('mlstFacts', value);
  }
  get dataSetup(): DataSetup | null {
    return this.state.dataSetup;
  }
  set dataSetup(value: DataSetup | null) {
    this.change('dataSetup', value);
  }
  get transfer(): Transfer | null {
    return this.state.transfer;
  }
  set transfer(value: Transfer | null) {
    this.change('transfer', value);
  }
  get clientName(): string | undefined {
    return this.state.clientName;
  }
  set clientName(value: string | undefined) {
    this.change('clientName', value);
  }
  /** The control connection is protected by TLS. */
  get secure(): boolean {
    return this.state.secure;
  }
  set secure(value: boolean) {
    this.change('secure', value);
  }
  get tlsContext(): SecureContext | null {
    return this.state.tlsContext;
  }
  set tlsContext(value: SecureContext | null) {
    this.change('tlsContext', value);
  }
  get pbsz(): boolean {
    return this.state.pbsz;
  }
  set pbsz(value: boolean) {
    this.change('pbsz', value);
  }
  get prot(): 'C' | 'P' {
    return this.state.prot;
  }
  set prot(value: 'C' | 'P') {
    this.change('prot', value);
  }
  get tlsRequired(): TlsRequirement {
    return this.state.tlsRequired;
  }
  set tlsRequired(value: TlsRequirement) {
    this.change('tlsRequired', value);
  }
  get permissions(): Readonly<Permissions> {
    return this.state.permissions;
  }
  set permissions(value: Readonly<Permissions>) {
    this.change('permissions', value);
  }
  get anonymous(): boolean {
    return this.state.anonymous;
  }
  set anonymous(value: boolean) {
    this.change('anonymous', value);
  }
  get mode(): 'S' | 'Z' {
    return this.state.mode;
  }
  set mode(value: 'S' | 'Z') {
    this.change('mode', value);
  }
  get deflateLevel(): number {
    return this.state.deflateLevel;
  }
  set deflateLevel(value: number) {
    this.change('deflateLevel', value);
  }
  get userLimits(): Readonly<{ download?: RateLimiter; upload?: RateLimiter }> {
    return this.state.userLimits;
  }
  set userLimits(value: Readonly<{ download?: RateLimiter; upload?: RateLimiter }>) {
    this.change('userLimits', value);
  }
  get hashAlgorithm(): HashAlgorithm {
    return this.state.hashAlgorithm;
  }
  set hashAlgorithm(value: HashAlgorithm) {
    this.change('hashAlgorithm', value);
  }
  get range(): { start: number; end: number } | null {
    return this.state.range;
  }
  set range(value: { start: number; end: number } | null) {
    this.change('range', value);
  }
  /** HOST (RFC 7151): the virtual host asked for. */
  get host(): string | undefined {
    return this.state.host;
  }
  set host(value: string | undefined) {
    this.change('host', value);
  }
  get clearedControl(): boolean {
    return this.state.clearedControl;
  }
  set clearedControl(value: boolean) {
    this.change('clearedControl', value);
  }
  get loginFailures(): number {
    return this.state.loginFailures;
  }
  set loginFailures(value: number) {
    this.change('loginFailures', value);
  }
  get listenerPublicHost(): string | undefined {
    return this.state.listenerPublicHost;
  }
  set listenerPublicHost(value: string | undefined) {
    this.change('listenerPublicHost', value);
  }
  protected get limits(): { download: RateLimiter; upload: RateLimiter } | null {
    return this.state.limits;
  }
  protected set limits(value: { download: RateLimiter; upload: RateLimiter } | null) {
    this.change('limits', value);
  }
  protected get logConnection(): Readonly<Record<string, unknown>> | null {
    return this.state.logConnection;
  }
  protected set logConnection(value: Readonly<Record<string, unknown>> | null) {
    this.change('logConnection', value);
  }
  protected get controlPipe(): SocketPipe | null {
    return this.state.controlPipe;
  }
  protected set controlPipe(value: SocketPipe | null) {
    this.change('controlPipe', value);
  }
  protected get implicitTls(): boolean {
    return this.state.implicitTls;
  }
  protected set implicitTls(value: boolean) {
    this.change('implicitTls', value);
  }

  /**
   * @internal REIN (RFC 959 §4.1.1: "all parameters are reset to the default settings"): the state goes back to the
   * server's defaults, keeping what belongs to the connection itself ({@link CONNECTION_FIELDS}). A data setup is
   * released by the caller first (its listener must be closed, not dropped).
   */
  resetParameters(): void {
    const next = defaultState(this.settings).copy(this.settings);
    for (const key of CONNECTION_FIELDS) keepField(next, this.state, key);
    this.state = next;
    this.shareDefaults();
  }

  /** Goes back to a shared state when the session's own state holds nothing else (call it when idle). */
  protected shareDefaults(): void {
    const shared = sharedState(this.settings, this.state.transferType);
    if (this.state !== shared && holdsSameAs(this.state, shared)) this.state = shared;
  }

  /**
   * Sets one field of the state. A shared state is first copied, unless the value is already there, or only the
   * transfer type changes: the shared state of the other type is taken then.
   */
  private change<K extends keyof SessionState>(key: K, value: SessionState[K]): void {
    let state = this.state as SessionState;
    if (Object.isFrozen(state)) {
      if (state[key] === value) return;
      if (key === 'transferType') {
        const other = sharedState(this.settings, value as 'A' | 'I');
        // Only the other state of the same pair: settings changed since this session started must not reach it.
        if (other.tlsRequired === state.tlsRequired && other.deflateLevel === state.deflateLevel) {
          this.state = other;
          return;
        }
      }
      this.state = state = state.copy(this.settings);
    }
    state[key] = value;
  }
}

import type { Session } from './session.js';
import * as auth from './handlers/auth.js';
import * as dataChannel from './handlers/data-channel.js';
import * as dirs from './handlers/dirs.js';
import * as ext from './handlers/extensions.js';
import * as files from './handlers/files.js';
import * as info from './handlers/info.js';
import * as listing from './handlers/listing.js';
import * as params from './handlers/parameters.js';
import * as security from './handlers/security.js';
import * as site from './handlers/site.js';
import * as transfer from './handlers/transfer.js';

/** A command handler: replies through the session, or throws an error that `toReply` turns into one. */
export type Handler = (session: Session, arg: string) => Promise<void> | void;

/** One row of the command table. */
export interface CommandSpec {
  /** Allowed before login. */
  preAuth?: boolean;
  /** Whether an argument is required, optional or refused (501). */
  arg: 'required' | 'optional' | 'none';
  /** Served while a transfer runs, out of band (RFC 959 §4.1.3: ABOR, STAT). */
  duringTransfer?: boolean;
  /**
   * Whether this session is served the command at all: false where it would answer 502 whatever it is sent (the
   * storage lacks the capability, the server has no TLS). HELP lists, and FEAT offers, only commands served.
   */
  served?: (session: Session) => boolean;
  /**
   * The line this command adds to FEAT (RFC 2389), if any; a function when it depends on the session: a feature the
   * user may never use (MFMT without the `site` permission, COMB on a read-only view) is not offered.
   */
  feat?: string | ((session: Session) => string | undefined);
  /** One-line syntax for HELP. */
  help: string;
  /** Absent for commands we know but do not implement: they get 502. */
  handler?: Handler;
  /**
   * The code of a refusal where RFC 959 §5.4 lists no 550 for the command: STOR, STOU and RNTO may only say 553
   * ("file name not allowed"), as vsftpd and pure-ftpd do for uploads; STAT only 450, as proftpd answers it for a
   * missing path. Replaces 550 in the reply to a refused command. LIST and NLST, which RFC 959 gives 450 too, keep
   * 550: lftp (4.9) sends a listing refused with a 4xx again every 2 s, up to its 1,000 retries (`ls missing` would
   * hang for half an hour), and curl takes a LIST refused with 450 for an empty listing and exits 0.
   */
  refusal?: 553 | 450;
}

/** PORT and EPRT are served where active mode is on (`activeMode`); elsewhere they are 502, and FEAT offers no EPRT. */
const activeServed = (s: Session): boolean => s.settings.activeMode;

/** The TLS commands are served where the driver gives TLS material. */
const tlsServed = (s: Session): boolean => s.ctx.tls.available;

/**
 * The map of the protocol: every verb the server knows. Aliases (XPWD...) are rows of their own (RFC 775).
 * FEAT and HELP are built from this table, so what is advertised is what is served.
 */
export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  // Access control (RFC 959 §4.1.1)
  USER: { preAuth: true, arg: 'required', help: 'USER <name>', handler: auth.user },
  PASS: { preAuth: true, arg: 'optional', help: 'PASS <password>', handler: auth.pass },
  ACCT: { preAuth: true, arg: 'required', help: 'ACCT <account>', handler: auth.acct },
  REIN: { preAuth: true, arg: 'none', help: 'REIN', handler: auth.rein },
  QUIT: { preAuth: true, arg: 'optional', help: 'QUIT', handler: auth.quit },
  // Informational
  SYST: { preAuth: true, arg: 'none', help: 'SYST', handler: info.syst },
  FEAT: { preAuth: true, arg: 'none', help: 'FEAT', handler: info.feat },
  OPTS: { preAuth: true, arg: 'required', help: 'OPTS <option> [<value>]', handler: info.opts },
  HELP: { preAuth: true, arg: 'optional', help: 'HELP [<command>]', handler: info.help },
  // An argument is ignored: RFC 959 §5.4 lists only 200 and 500 for NOOP (no 501), and keep-alives must not fail.
  NOOP: { preAuth: true, arg: 'optional', help: 'NOOP', handler: info.noop },
  STAT: { arg: 'optional', duringTransfer: true, help: 'STAT [<path>]', handler: listing.stat, refusal: 450 },
  CLNT: { preAuth: true, arg: 'optional', help: 'CLNT <client name>', handler: info.clnt },
  HOST: { preAuth: true, arg: 'required', feat: 'HOST', help: 'HOST <domain>', handler: info.host },
  LANG: { preAuth: true, arg: 'optional', feat: 'LANG EN*', help: 'LANG [EN]', handler: ext.lang },
  // Security (RFC 2228, RFC 4217)
  AUTH: { preAuth: true, arg: 'required', served: tlsServed, feat: 'AUTH TLS', help: 'AUTH TLS', handler: security.auth },
  PBSZ: { preAuth: true, arg: 'required', served: tlsServed, feat: 'PBSZ', help: 'PBSZ 0', handler: security.pbsz },
  PROT: { preAuth: true, arg: 'required', served: tlsServed, feat: 'PROT', help: 'PROT <C|P>', handler: security.prot },
  CCC: { arg: 'none', help: 'CCC', handler: security.ccc },
  // RFC 2228's other mechanisms (GSSAPI, Kerberos): known, not implemented (502, not 500's "not understood").
  ADAT: { preAuth: true, arg: 'required', help: 'ADAT <base64 data>' },
  MIC: { preAuth: true, arg: 'required', help: 'MIC <base64 data>' },
  CONF: { preAuth: true, arg: 'required', help: 'CONF <base64 data>' },
  ENC: { preAuth: true, arg: 'required', help: 'ENC <base64 data>' },
  // Navigation
  PWD: { arg: 'none', help: 'PWD', handler: dirs.pwd },
  XPWD: { arg: 'none', help: 'XPWD', handler: dirs.pwd },
  CWD: { arg: 'optional', help: 'CWD [<path>]', handler: dirs.cwd },
  XCWD: { arg: 'optional', help: 'XCWD [<path>]', handler: dirs.cwd },
  CDUP: { arg: 'none', help: 'CDUP', handler: dirs.cdup },
  XCUP: { arg: 'none', help: 'XCUP', handler: dirs.cdup },
  MKD: { arg: 'required', help: 'MKD <path>', handler: dirs.mkd },
  XMKD: { arg: 'required', help: 'XMKD <path>', handler: dirs.mkd },
  RMD: { arg: 'required', help: 'RMD <path>', handler: dirs.rmd },
  XRMD: { arg: 'required', help: 'XRMD <path>', handler: dirs.rmd },
  SMNT: { arg: 'required', help: 'SMNT <path>' },
  // Files
  DELE: { arg: 'required', help: 'DELE <path>', handler: files.dele },
  RNFR: { arg: 'required', help: 'RNFR <path>', handler: files.rnfr },
  RNTO: { arg: 'required', help: 'RNTO <path>', handler: files.rnto, refusal: 553 },
  SIZE: { arg: 'required', feat: 'SIZE', help: 'SIZE <path>', handler: files.size },
  MDTM: { arg: 'required', feat: 'MDTM', help: 'MDTM <path>', handler: files.mdtm },
  MFMT: { arg: 'required', served: (s) => ext.capability(s, 'setTimes'), feat: (s) => (ext.mayChange(s, 'site') ? 'MFMT' : undefined), help: 'MFMT <time> <path>', handler: ext.mfmt },
  MFCT: { arg: 'required', served: (s) => ext.capability(s, 'setCreationTime'), feat: (s) => (ext.mayChange(s, 'site') ? 'MFCT' : undefined), help: 'MFCT <time> <path>', handler: ext.mfct },
  // Digests (draft-bryan-ftpext-hash) and their older one-algorithm forms
  HASH: { arg: 'required', feat: ext.hashFeatLine, help: 'HASH <path>', handler: ext.hash },
  RANG: { arg: 'required', feat: 'RANG STREAM', help: 'RANG <start> <end>', handler: ext.rang },
  XCRC: { arg: 'required', help: 'XCRC <path> [<start> [<end>]]', handler: ext.legacyHash('CRC32') },
  XMD5: { arg: 'required', help: 'XMD5 <path> [<start> [<end>]]', handler: ext.legacyHash('MD5') },
  XSHA1: { arg: 'required', help: 'XSHA1 <path> [<start> [<end>]]', handler: ext.legacyHash('SHA-1') },
  XSHA256: { arg: 'required', help: 'XSHA256 <path> [<start> [<end>]]', handler: ext.legacyHash('SHA-256') },
  XSHA512: { arg: 'required', help: 'XSHA512 <path> [<start> [<end>]]', handler: ext.legacyHash('SHA-512') },
  // Storage
  AVBL: { arg: 'optional', served: (s) => ext.capability(s, 'availableSpace'), feat: 'AVBL', help: 'AVBL [<path>]', handler: ext.avbl },
  COMB: { arg: 'required', feat: (s) => (ext.mayChange(s, 'write') && ext.mayChange(s, 'delete') ? 'COMB' : undefined), help: 'COMB <target> <part> [<part> ...]', handler: ext.comb },
  SITE: { arg: 'required', help: 'SITE <command> [<arguments>]', handler: site.site },
  // Listings (RFC 959, RFC 3659 §7)
  LIST: { arg: 'optional', help: 'LIST [<path>]', handler: listing.list },
  NLST: { arg: 'optional', help: 'NLST [<path>]', handler: listing.nlst },
  MLSD: { arg: 'optional', help: 'MLSD [<path>]', handler: listing.mlsd },
  MLST: { arg: 'optional', feat: info.mlstFeatLine, help: 'MLST [<path>]', handler: listing.mlst },
  // Transfer parameters
  TYPE: { arg: 'required', help: 'TYPE <A|I|L 8>', handler: params.type },
  MODE: { arg: 'required', feat: (s) => (s.settings.modeZ ? 'MODE Z' : undefined), help: 'MODE <S|Z>', handler: params.mode },
  STRU: { arg: 'required', help: 'STRU <F>', handler: params.stru },
  REST: { arg: 'required', feat: 'REST STREAM', help: 'REST <offset>', handler: params.rest },
  ALLO: { arg: 'required', help: 'ALLO <size>', handler: params.allo },
  PASV: { arg: 'none', feat: 'PASV', help: 'PASV', handler: dataChannel.pasv },
  EPSV: { arg: 'optional', feat: 'EPSV', help: 'EPSV [<1|2|ALL>]', handler: dataChannel.epsv },
  PORT: { arg: 'required', served: activeServed, help: 'PORT <h1,h2,h3,h4,p1,p2>', handler: dataChannel.port },
  EPRT: { arg: 'required', served: activeServed, feat: 'EPRT', help: 'EPRT |<proto>|<addr>|<port>|', handler: dataChannel.eprt },
  // RFC 1639's long addresses, superseded by EPRT and EPSV (RFC 2428): known, not implemented.
  LPRT: { arg: 'required', help: 'LPRT <af,hal,h1,...,pal,p1,...>' },
  LPSV: { arg: 'none', help: 'LPSV' },
  // Transfers
  RETR: { arg: 'required', help: 'RETR <path>', handler: transfer.retr },
  STOR: { arg: 'required', help: 'STOR <path>', handler: transfer.stor, refusal: 553 },
  APPE: { arg: 'required', help: 'APPE <path>', handler: transfer.appe },
  STOU: { arg: 'optional', help: 'STOU [<name>]', handler: transfer.stou, refusal: 553 },
  ABOR: { arg: 'none', duringTransfer: true, help: 'ABOR', handler: transfer.abor },
};

/** FEAT lines advertised for this session, from the table plus the features that are not commands. */
export function featureLines(session: Session): string[] {
  const lines = new Set<string>();
  for (const [verb, spec] of Object.entries(COMMANDS)) {
    if (!spec.feat || !spec.handler || session.settings.disabledCommands.includes(verb) || spec.served?.(session) === false) continue;
    const line = typeof spec.feat === 'function' ? spec.feat(session) : spec.feat;
    if (line) lines.add(line);
  }
  lines.add('UTF8');
  lines.add('TVFS');
  return [...lines].sort();
}

import { isIP } from 'node:net';
import { formatFeatFacts, formatOptsMlstReply, parseOpts, parseOptsMlst, SUPPORTED_FACTS, type MlsxFact } from '@ftp/protocol';
import { COMMANDS, featureLines } from '../commands.js';
import { FtpError } from '../errors.js';
import { printable, type Session } from '../session.js';
import { extensionOpts } from './extensions.js';

/** SYST: the answer every client expects, so that it parses LIST as `ls -l`. */
export function syst(s: Session): Promise<void> | void {
  return s.reply(215, 'UNIX Type: L8');
}

/** FEAT (RFC 2389 §3): one feature per line, each indented by a space. */
export function feat(s: Session): Promise<void> | void {
  return s.reply(211, ['Features:', ...featureLines(s).map((l) => ` ${l}`), 'End']);
}

/**
 * The facts listings give: the protocol's, less the owner and group names, which the server has no way to look up
 * (it gives `unix.uid` and `unix.gid`). FEAT offered them and MLSD never sent them.
 */
const SERVED_FACTS: readonly MlsxFact[] = SUPPORTED_FACTS.filter((f) => f !== 'unix.owner' && f !== 'unix.group');

/** The MLST feature line with the facts this session has selected marked by `*`. */
export function mlstFeatLine(s: Session): string {
  return formatFeatFacts(s.mlstFacts, SERVED_FACTS);
}

/** OPTS (RFC 2389 §4): UTF8 (always on: RFC 2640) and MLST fact selection (RFC 3659 §7.9). */
export function opts(s: Session, arg: string): Promise<void> | void {
  const { name, value } = parseOpts(arg);
  switch (name) {
    case 'UTF8':
    case 'UTF-8': {
      const v = value.trim().toUpperCase();
      if (v === '' || v === 'ON') return s.reply(200, 'UTF8 mode enabled.');
      // RFC 2389 §4 allows OPTS 200, 451 or 501. Names already pass byte for byte (a name that is not UTF-8 is sent
      // as its bytes), which is what a client turning UTF-8 off asks for; as vsftpd, the answer is 200.
      if (v === 'OFF') return s.reply(200, 'Names are sent byte for byte, as stored.');
      throw new FtpError(501, 'OPTS UTF8 takes ON or OFF.');
    }
    case 'MLST': {
      s.mlstFacts = parseOptsMlst(value, SERVED_FACTS);
      return s.reply(200, formatOptsMlstReply(s.mlstFacts));
    }
    default: {
      const handled = extensionOpts(s, arg);
      if (handled !== false) return handled;
      throw new FtpError(501, `Option ${printable(name)} not understood.`);
    }
  }
}

/** HELP (RFC 959 §4.1.3): the command list, or one command's syntax. */
export function help(s: Session, arg: string): Promise<void> | void {
  const topic = arg.trim().toUpperCase();
  if (topic) {
    const spec = COMMANDS[topic];
    if (!spec) throw new FtpError(502, `Unknown command ${topic.slice(0, 32)}.`);
    return s.reply(214, `Syntax: ${spec.help}${spec.handler ? '' : ' (not implemented)'}`);
  }
  const verbs = Object.keys(COMMANDS).filter((v) => offered(s, v));
  // Columns as wide as the longest verb (XSHA256), so that they line up.
  const width = Math.max(...verbs.map((v) => v.length));
  const rows: string[] = [];
  for (let i = 0; i < verbs.length; i += 8) rows.push(' ' + verbs.slice(i, i + 8).map((v) => v.padEnd(width)).join(' ').trimEnd());
  return s.reply(214, ['The following commands are recognized:', ...rows, 'Help OK.']);
}

/**
 * Whether HELP lists `verb`: implemented, not disabled, and served to this session (MFMT, MFCT and AVBL where the
 * storage can, AUTH, PBSZ and PROT where there is TLS): a command that would answer 502 is not listed as recognized.
 * Not what FEAT offers: FEAT names MODE only for its Z, and offers MFMT only to users who may use it, yet both
 * commands are recognized (RFC 959 §5.1 makes MODE part of the minimum implementation).
 */
function offered(s: Session, verb: string): boolean {
  const spec = COMMANDS[verb];
  if (!spec?.handler || s.settings.disabledCommands.includes(verb)) return false;
  return spec.served?.(s) !== false;
}

/** NOOP. */
export function noop(s: Session): Promise<void> | void {
  return s.reply(200, 'NOOP ok.');
}

/** HOST (RFC 7151 §3): before login, names the virtual host; the driver may refuse it (504). */
export async function host(s: Session, arg: string): Promise<void> {
  if (s.authenticated || s.user !== undefined) throw new FtpError(503, 'HOST must come before USER.');
  const given = arg.trim();
  // RFC 7151 brackets an IPv6 address; lftp over IPv6 sends it bare (`HOST ::1`): taken as the address it is.
  // A zone (`fe80::1%eth0`) names an interface of the client's, nothing a server's host could be called.
  const name = isIP(given) === 6 && !given.includes('%') ? `[${given}]` : given;
  if (!isHostName(name)) throw new FtpError(501, 'HOST takes a domain name or an address.');
  const accepted = s.ctx.driver.virtualHost ? await s.ctx.driver.virtualHost(s, name) : true;
  if (!accepted) throw new FtpError(504, `Unknown host ${name}.`);
  s.host = name;
  return s.reply(220, `Host ${name} selected.`);
}

/**
 * A name RFC 7151 §3 lets HOST carry: a bracketed IPv6 address, an IPv4 address or a domain name of labels of 1–63
 * letters, digits and hyphens (none at either end of a label; an empty label, as in `a..b`, is none), 253 characters
 * at most, a root's final dot allowed.
 */
function isHostName(name: string): boolean {
  if (name.startsWith('[')) return name.endsWith(']') && !name.includes('%') && isIP(name.slice(1, -1)) === 6;
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  if (bare.length === 0 || bare.length > 253) return false;
  return bare.split('.').every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}

/** CLNT: the client names itself (logged, nothing else). */
export function clnt(s: Session, arg: string): Promise<void> | void {
  s.clientName = arg.slice(0, 128);
  s.log.debug({ client: s.clientName }, 'client name');
  return s.reply(200, 'Noted.');
}

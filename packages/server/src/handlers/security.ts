import { FtpError } from '../errors.js';
import type { Session } from '../session.js';
import { resetLogin } from './auth.js';

const MECHANISMS = new Set(['TLS', 'SSL', 'TLS-C', 'TLS-P']);

/** AUTH TLS (RFC 4217 §4, RFC 2228 §3): 234, then the TLS handshake on the control connection. */
export async function auth(s: Session, arg: string): Promise<void> {
  const mechanism = arg.trim().toUpperCase();
  if (!MECHANISMS.has(mechanism)) throw new FtpError(504, 'Security mechanism not supported; use AUTH TLS.');
  if (s.secure) throw new FtpError(503, 'The control connection is already protected.');
  const context = await s.ctx.tls.context(s).catch((err: unknown) => {
    s.log.error({ err }, 'TLS options unavailable');
    return null;
  });
  if (!context) throw new FtpError(431, 'TLS is not available on this server.');
  s.conn.prepareUpgrade();
  await s.conn.sendFlushed(234, `AUTH ${mechanism} successful.`);
  try {
    await s.secureControl(context);
  } catch (err) {
    s.log.info({ err: (err as Error).message }, 'TLS handshake failed');
    s.close();
    return;
  }
  // RFC 2228 §3: an accepted AUTH removes the state of earlier security commands (a PBSZ or PROT from before a CCC)
  // and requires the user to log in again: a USER given, or a login made, in clear text does not carry over.
  s.pbsz = false;
  s.prot = 'C';
  if (s.authenticated || s.user !== undefined) resetLogin(s);
  // The historical AUTH SSL and TLS-P also protected the data connections.
  if (mechanism === 'SSL' || mechanism === 'TLS-P') s.prot = 'P';
}

/** PBSZ (RFC 4217 §8): only 0 makes sense over TLS, and that is what the reply says whatever was asked. */
export function pbsz(s: Session, arg: string): Promise<void> | void {
  if (!s.secure) throw notSecure(s, 'PBSZ');
  if (!/^\d+$/.test(arg.trim())) throw new FtpError(501, 'PBSZ takes a number.');
  s.pbsz = true;
  return s.reply(200, 'PBSZ=0');
}

/** PROT (RFC 4217 §9): C (clear) or P (private) data connections. */
export function prot(s: Session, arg: string): Promise<void> | void {
  if (!s.secure) throw notSecure(s, 'PROT');
  if (!s.pbsz) throw new FtpError(503, 'PBSZ first.');
  const level = arg.trim().toUpperCase();
  if (level === 'P') {
    s.prot = 'P';
    return s.reply(200, 'Protection level set to P.');
  }
  if (level === 'C') {
    if (s.tlsRequired === 'all') throw new FtpError(534, 'Policy requires protected data connections (PROT P).');
    s.prot = 'C';
    return s.reply(200, 'Protection level set to C.');
  }
  if (level === 'S' || level === 'E') throw new FtpError(536, `Protection level ${level} not supported.`);
  throw new FtpError(504, 'PROT takes C or P.');
}

/**
 * PBSZ or PROT without TLS on the control connection: before AUTH TLS, or after CCC, which keeps the data
 * connections' protection as it was (RFC 4217 §6): a change asked for in clear text is not taken.
 */
function notSecure(s: Session, verb: 'PBSZ' | 'PROT'): FtpError {
  if (s.clearedControl) return new FtpError(503, `${verb} cannot change after CCC: data connections keep protection level ${s.prot}.`);
  return new FtpError(503, `${verb} needs a protected control connection (AUTH TLS first).`);
}

/**
 * CCC (RFC 4217 §6): back to clear text on the control connection, for NAT helpers that must read PORT/PASV.
 * Refused (534) unless `allowCcc`, and while TLS is required.
 */
export async function ccc(s: Session): Promise<void> {
  if (!s.secure) throw new FtpError(533, 'The control connection is not protected.');
  if (!s.settings.allowCcc) throw new FtpError(534, 'CCC is not allowed by policy.');
  if (s.tlsRequired !== 'none') throw new FtpError(534, 'Policy requires a protected control connection.');
  await s.clearControl();
}

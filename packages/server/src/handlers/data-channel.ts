import { isIPv4 } from 'node:net';
import { formatEpsvReplyText, formatPasvReplyText, parseEprt, parseEpsvArg, parseHostPort, ProtocolError } from '@ftp/protocol';
import { watchForEarlyTls } from '../data/early-tls.js';
import type { PassiveReservation } from '../data/passive.js';
import { plainAddress } from '../ip-address.js';
import { FtpError } from '../errors.js';
import { canonicalAddress, isIPv6Address } from '../ip-address.js';
import type { Session } from '../session.js';

async function openPassive(s: Session): Promise<PassiveReservation> {
  // A PASV that replaces an unused one gets another port: a late connection to the old one must not become the
  // new transfer's. (After a transfer the port is reused: that saves a listen() per transfer.)
  const replaced = s.dataSetup?.kind === 'passive' ? s.dataSetup.listener.port : undefined;
  s.setDataSetup(null);
  const listener = await s.ctx.portPool.reserve({
    host: s.localAddress,
    avoidPort: replaced,
    expectedPeer: s.settings.passiveIpCheck === 'strict' ? s.remoteAddress : null,
    early: (socket) => watchForEarlyTls(s, socket),
  });
  s.setDataSetup({ kind: 'passive', listener });
  return listener;
}

const PASV_NEEDS_IPV4 = 'PASV needs IPv4; use EPSV.';

/** PASV (RFC 959 §4.1.1): IPv4 only; advertises `publicHost` when set (servers behind NAT). */
export async function pasv(s: Session): Promise<void> {
  if (s.epsvAll) throw new FtpError(503, 'PASV not allowed after EPSV ALL.');
  // An IPv6 client cannot use an IPv4 address, even an advertised one (NAT): it hears at once that it must use EPSV.
  // (An IPv4 client may reach an IPv6 control connection: through a PROXY-protocol load balancer, which forwards
  // the passive ports too, the advertised IPv4 address is the balancer's.)
  if (isIPv6Address(s.remoteAddress)) throw new FtpError(425, PASV_NEEDS_IPV4);
  const advertised = s.ctx.advertiser.host(s.remoteAddress, s.localAddress, s.listenerPublicHost);
  const host =
    typeof advertised === 'string'
      ? advertised
      : await advertised.catch((err: unknown) => {
          throw new FtpError(425, `Cannot tell the public address: ${(err as Error)?.message ?? err}; use EPSV.`);
        });
  if (!isIPv4(host)) throw new FtpError(425, PASV_NEEDS_IPV4);
  const listener = await openPassive(s);
  return s.reply(227, formatPasvReplyText(host, s.ctx.advertiser.port(listener.port)));
}

/** EPSV (RFC 2428 §3): any family; `EPSV ALL` forbids the other data setup commands for the session. */
export async function epsv(s: Session, arg: string): Promise<void> {
  const family = isIPv6Address(s.localAddress) ? 6 : 4;
  // A passive port is opened on the control connection's own family only: the 522 names that one (RFC 2428 §3),
  // for an unknown protocol number as for the other family.
  const onlyOurs = (): FtpError => new FtpError(522, `Network protocol not supported, use (${family === 4 ? 1 : 2}).`);
  let req: ReturnType<typeof parseEpsvArg>;
  try {
    req = parseEpsvArg(arg);
  } catch (err) {
    throw ProtocolError.isInstance(err) && err.code === 'UNSUPPORTED_NETWORK' ? onlyOurs() : err;
  }
  if (req.kind === 'all') {
    s.epsvAll = true;
    // RFC 2428 §4: from here on only passive connections, so that NATs need not follow PORTs: a PORT given before
    // is dropped too, not used by the next transfer.
    if (s.dataSetup?.kind === 'active') s.setDataSetup(null);
    return s.reply(200, 'EPSV ALL ok.');
  }
  if (req.kind === 'family' && req.family !== family) throw onlyOurs();
  const listener = await openPassive(s);
  return s.reply(229, formatEpsvReplyText(s.ctx.advertiser.port(listener.port)));
}

/** PORT (RFC 959 §4.1.1). */
export function port(s: Session, arg: string): Promise<void> | void {
  if (s.epsvAll) throw new FtpError(503, 'PORT not allowed after EPSV ALL.');
  refuseIfNoActiveMode(s);
  const { host, port } = parseHostPort(arg);
  return setActive(s, clientIfUnspecified(s, host), port, 'PORT');
}

/**
 * The unspecified address (`0.0.0.0`, `::`) as the client's own: lftp sends `EPRT |2|::|port|` in active mode over
 * IPv6 (the address its socket was bound to), and was refused as a bounce on every transfer, falling back to passive
 * each time after a warning in the log. It names no third party, and the client's address is the one a data
 * connection may go to anyway.
 */
function clientIfUnspecified(s: Session, host: string): string {
  return host === '0.0.0.0' || host === '::' ? clientAddress(s) : host;
}

/** The client's address as active-mode addresses are compared with it: plain (session.ts) and canonically spelt. */
function clientAddress(s: Session): string {
  return canonicalAddress(s.remoteAddress);
}

/** EPRT (RFC 2428 §2): IPv4 or IPv6. */
export function eprt(s: Session, arg: string): Promise<void> | void {
  if (s.epsvAll) throw new FtpError(503, 'EPRT not allowed after EPSV ALL.');
  refuseIfNoActiveMode(s);
  const { host, port } = parseEprt(arg);
  // RFC 2428 allows any spelling of an IPv6 address: compared (and connected to) in the socket's own, with an
  // IPv4-mapped one (`::ffff:1.2.3.4`) as the IPv4 address it is, as the session's own address is kept.
  const address = clientIfUnspecified(s, plainAddress(canonicalAddress(host)));
  // The data connection goes out from this server's address of the client's family: an address of the other family
  // is a protocol this session's data cannot use (RFC 2428 §2: 522, naming the one it can), not a foreign address.
  const clientIsIPv4 = isIPv4(clientAddress(s));
  if (isIPv4(address) !== clientIsIPv4) throw new FtpError(522, `Network protocol not supported, use (${clientIsIPv4 ? 1 : 2}).`);
  return setActive(s, address, port, 'EPRT');
}

/**
 * 502 where active mode is off: said before anything about the argument (a 522 for its protocol, a 501 for its
 * form), which would suggest that another PORT or EPRT could do.
 */
function refuseIfNoActiveMode(s: Session): void {
  if (!s.settings.activeMode) throw new FtpError(502, 'Active mode is disabled; use PASV or EPSV.');
}

function setActive(s: Session, host: string, port: number, verb: string): Promise<void> | void {
  // RFC 2577 §3: refuse bounces to third parties and to privileged ports.
  if (s.settings.activeModeBounceCheck && host !== clientAddress(s)) {
    s.log.warn({ host, port }, 'active data connection to a foreign address refused');
    throw new FtpError(500, `Illegal ${verb} command: address must be the client's.`);
  }
  if (port < s.settings.activeModeMinPort) throw new FtpError(500, `Illegal ${verb} command: port ${port} is privileged.`);
  // A client on this machine could point the data connection at this very server: a RETR would then send a file
  // of commands to its control port, as a new session of this machine's address (RFC 2577 §3's bounce, aimed home).
  if (s.ctx.ownsEndpoint(host, port)) {
    s.log.warn({ host, port }, 'active data connection to this server refused');
    throw new FtpError(500, `Illegal ${verb} command: port ${port} is this server's own.`);
  }
  s.setDataSetup({ kind: 'active', host, port });
  return s.reply(200, `${verb} command successful.`);
}

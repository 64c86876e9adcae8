import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { isIPv6Address } from '../ip-address.js';
import { PublicNames } from './public-names.js';
import type { ServerSettings } from '../settings.js';

/**
 * What PASV and EPSV replies advertise, for servers behind NAT, load balancers and containers: the address by
 * client network (`publicHosts`, first match), then the listener's, then `publicHost`, then the control
 * connection's own; and the port, mapped onto `passivePortsAdvertised` when the outside sees other port numbers.
 */
export class Advertiser {
  private readonly networks: Array<{ list: BlockList; host: string }>;
  private readonly names: PublicNames;

  constructor(
    private readonly settings: ServerSettings,
    onNameFailure?: (name: string, err: unknown, lastAddress: string | null) => void,
  ) {
    this.networks = (settings.publicHosts ?? []).map(({ network, host }) => ({ list: subnet(network), host }));
    this.names = new PublicNames(onNameFailure);
    // Looked up now, so that the first PASV need not wait for DNS.
    for (const host of [settings.publicHost, ...this.networks.map((n) => n.host)]) this.prepare(host);
  }

  /** Stops looking names up (the server is closing). */
  close(): void {
    this.names.close();
  }

  /** Starts looking up `host` when it is a name (a listener's public host, say), so a PASV need not wait for it. */
  prepare(host: string | undefined): void {
    if (host !== undefined && !isIPv4(host)) this.names.address(host).catch(() => {});
  }

  /**
   * The address to put in a PASV reply for a client at `remote` on a listener whose public host is `listenerHost`:
   * an IPv4 address, looked up when the one configured is a DNS name (rejects when that name has never resolved).
   */
  host(remote: string, local: string, listenerHost: string | undefined): string | Promise<string> {
    const family = isIPv6Address(remote) ? 'ipv6' : 'ipv4';
    let chosen: string | undefined;
    for (const n of this.networks) {
      if (n.list.check(remote, family)) {
        chosen = n.host;
        break;
      }
    }
    chosen ??= listenerHost ?? this.settings.publicHost ?? local;
    return isIPv4(chosen) || chosen === local ? chosen : this.names.address(chosen);
  }

  /** The port to advertise for a listening passive port. */
  port(listening: number): number {
    const outside = this.settings.passivePortsAdvertised;
    return outside ? outside[0] + (listening - this.settings.passivePortRange[0]) : listening;
  }
}

/** A BlockList holding every one of these CIDR networks. */
export function subnets(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const { address, prefix, type } = parseSubnet(cidr);
    list.addSubnet(address, prefix, type);
  }
  return list;
}

/** A BlockList holding one CIDR network (`10.0.0.0/8`, `fd00::/8`, or a bare address); throws on a bad one. */
export function subnet(cidr: string): BlockList {
  return subnets([cidr]);
}

function parseSubnet(cidr: string): { address: string; prefix: number; type: 'ipv4' | 'ipv6' } {
  const [address = '', bits] = cidr.split('/');
  const type = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : null;
  if (!type) throw new RangeError(`"${cidr}" is not a network (expected e.g. 10.0.0.0/8)`);
  const max = type === 'ipv4' ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits))) {
    throw new RangeError(`"${cidr}" has a bad prefix length`);
  }
  return { address, prefix, type };
}

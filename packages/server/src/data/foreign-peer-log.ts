import type { Logger } from 'pino';
import type { ForeignPeerHook } from './passive.js';

/** At most one line per this many milliseconds about connections refused on passive ports. */
export const FOREIGN_PEER_LOG_MS = 10_000;

/**
 * Logs connections refused on passive ports (from an address no session there waits for: RFC 2577's data theft):
 * the first at once, then at most one line per interval, saying how many were refused since the line before.
 * Connecting needs no login, so a line per connection, or per session waiting on the port, would let anyone fill
 * the log.
 */
export function foreignPeerLog(logger: Logger, intervalMs = FOREIGN_PEER_LOG_MS, now: () => number = () => performance.now(), isClient: (address: string) => boolean = () => false): ForeignPeerHook {
  let last = -Infinity;
  let refused = 0;
  let lastClient = -Infinity;
  return (address, port) => {
    // A late or second connection of a connected client (after ABOR, a failed transfer, a client that opens two):
    // nothing was waiting for it, but it is no one else's. For an operator who debugs a client, not a warning; at
    // most one line per interval too. (A control connection from the address is what counts: one opened to hide
    // probes of the passive ports from the warning still gets them refused, and this line.)
    if (isClient(address)) {
      const t = now();
      if (t - lastClient < intervalMs) return;
      lastClient = t;
      logger.debug({ address, port }, 'passive data connection from a connected client with no transfer waiting for it closed');
      return;
    }
    refused++;
    const t = now();
    if (t - last < intervalMs) return;
    last = t;
    logger.warn({ address, port, refused }, 'passive data connection from a foreign address refused');
    refused = 0;
  };
}

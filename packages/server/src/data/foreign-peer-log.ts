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
export function foreignPeerLog(logger: Logger, intervalMs = FOREIGN_PEER_LOG_MS, now: () => number = () => performance.now()): ForeignPeerHook {
  let last = -Infinity;
  let refused = 0;
  return (address, port) => {
    refused++;
    const t = now();
    if (t - last < intervalMs) return;
    last = t;
    logger.warn({ address, port, refused }, 'passive data connection from a foreign address refused');
    refused = 0;
  };
}

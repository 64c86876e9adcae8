import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A loopback TCP proxy in front of the test Redis that can lose or delay a reply: what a network fault does to a
 * command Redis has already run. Commands always reach Redis at once; only the replies coming back are tampered with.
 */
export interface RedisProxy {
  readonly port: number;
  /** Closes the connection (both sides) instead of relaying the next reply Redis sends. */
  dropNextReply(): void;
  /** Holds back the next reply, and every one after it, for `ms`; then relays them in order. */
  holdNextReply(ms: number): void;
  /** Replies lost or held so far. */
  readonly tampered: number;
  close(): Promise<void>;
}

/** Starts a {@link RedisProxy} to 127.0.0.1:`target` on a free loopback port. */
export async function startProxy(target = 6379): Promise<RedisProxy> {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let next: { drop: true } | { drop: false; ms: number } | undefined;
  let tampered = 0;
  const server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    let held: Buffer[] | undefined;
    client.on('data', (d: Buffer) => upstream.write(d));
    upstream.on('data', (d: Buffer) => {
      if (held !== undefined) {
        held.push(d);
        return;
      }
      const act = next;
      next = undefined;
      if (act === undefined) {
        client.write(d);
        return;
      }
      tampered++;
      if (act.drop) {
        client.destroy();
        upstream.destroy();
        return;
      }
      held = [d];
      const timer = setTimeout(() => {
        timers.delete(timer);
        for (const b of held ?? []) client.write(b);
        held = undefined;
      }, act.ms);
      timers.add(timer);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    dropNextReply: () => void (next = { drop: true }),
    holdNextReply: (ms) => void (next = { drop: false, ms }),
    get tampered() {
      return tampered;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      const closed = once(server, 'close');
      server.close();
      await closed;
    },
  };
}

import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { SecureContext } from 'node:tls';
import { DEFAULT_SETTINGS, type FtpDriver, type SessionInfo } from '../src/index.js';
import { TlsContexts } from '../src/tls.js';
import { makeCertificate } from './tls-fixture.js';

const certificate = makeCertificate();
const session = {} as SessionInfo;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** The server's side of a loopback connection whose client sends nothing: a handshake over it waits. */
async function silentConnection(): Promise<Socket> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = connect((server.address() as { port: number }).port, '127.0.0.1');
  const [accepted] = (await once(server, 'connection')) as [Socket];
  cleanups.push(() => {
    client.destroy();
    server.close();
  });
  return accepted;
}

function contexts(options: () => object | null): TlsContexts {
  const driver = { authenticate: () => null, tlsOptions: options } as unknown as FtpDriver;
  return new TlsContexts(driver, DEFAULT_SETTINGS);
}

describe('TlsContexts', () => {
  it('a released context serves the next session with the same options, with new ticket keys', async () => {
    const options = { ...certificate };
    const tls = contexts(() => options);
    const first = (await tls.context(session)) as SecureContext;
    const native = (first as unknown as { context: { getTicketKeys(): Buffer } }).context;
    const keys = Buffer.from(native.getTicketKeys());
    // While the first session lasts, the next one gets a context of its own.
    const second = await tls.context(session);
    expect(second).not.toBe(first);
    tls.release(first);
    expect(Buffer.from(native.getTicketKeys()).equals(keys)).toBe(false);
    // Released twice (it must not be handed out twice).
    tls.release(first);
    expect(await tls.context(session)).toBe(first);
    expect(await tls.context(session)).not.toBe(first);
  });

  it('a new options object (a certificate reload) starts afresh; no options, no context', async () => {
    let options: object | null = { ...certificate };
    const tls = contexts(() => options);
    const old = (await tls.context(session)) as SecureContext;
    tls.release(old);
    options = { ...certificate };
    expect(await tls.context(session)).not.toBe(old);
    options = null;
    expect(await tls.context(session)).toBeNull();
  });

  it('a context stays out of use while a connection that began a handshake with it is open', async () => {
    const options = { ...certificate };
    const tls = contexts(() => options);
    const ctx = (await tls.context(session)) as SecureContext;
    // The session's control connection, and a data connection whose handshake the client holds back.
    const control = await silentConnection();
    const held = await silentConnection();
    const handshakes = [tls.handshake(control, ctx, 10_000, 'control'), tls.handshake(held, ctx, 10_000, 'data')].map((h) => h.catch(() => undefined));
    control.destroy();
    await once(control, 'close');
    tls.release(ctx);
    expect(await tls.context(session)).not.toBe(ctx);
    held.destroy();
    await once(held, 'close');
    expect(await tls.context(session)).toBe(ctx);
    // A socket already closed does not count.
    const closed = await silentConnection();
    closed.destroy();
    await once(closed, 'close');
    await tls.handshake(closed, ctx, 10_000, 'data').catch(() => undefined);
    tls.release(ctx);
    expect(await tls.context(session)).toBe(ctx);
    await Promise.all(handshakes);
  });

  it('keeps at most 32 free contexts per set of options', async () => {
    const options = { ...certificate };
    const tls = contexts(() => options);
    const made: SecureContext[] = [];
    for (let i = 0; i < 40; i++) made.push((await tls.context(session)) as SecureContext);
    for (const c of made) tls.release(c);
    const again = new Set<SecureContext>();
    for (let i = 0; i < 40; i++) again.add((await tls.context(session)) as SecureContext);
    expect([...again].filter((c) => made.includes(c))).toHaveLength(32);
  });
});

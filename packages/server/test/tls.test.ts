import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { Duplex, Readable, Writable } from 'node:stream';
import { constants } from 'node:crypto';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { Client } from 'basic-ftp';
import { parseEpsvReply, ReplyParser, type Reply } from '@ftp/protocol';
import { MemoryProvider } from '@ftp/vfs';
import type { Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FtpServer, type ServerSettings } from '../src/index.js';
import { SocketPipe } from '../src/socket-pipe.js';
import { makeCertificate } from './tls-fixture.js';
import { collectingLogger, PASSWORD, RawClient, USER } from './helpers.js';

const certificate = makeCertificate();
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function tlsServer(settings: Partial<ServerSettings> = {}, implicit = false, logger?: Logger) {
  const fs = new MemoryProvider();
  let tlsOptions = { ...certificate };
  const server = new FtpServer({
    ...(logger ? { logger } : {}),
    settings: { failedLoginDelay: 0, passivePortRange: [47000, 47999], ...settings },
    driver: {
      authenticate: (_s, user, pass) => (user === USER && pass === PASSWORD ? { fs } : null),
      tlsOptions: () => tlsOptions,
    },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  const implicitPort = implicit ? (await server.listenImplicitTls(0, '127.0.0.1')).port : 0;
  cleanups.push(() => server.close());
  return { server, port, implicitPort, fs, rotate: (o: typeof tlsOptions) => (tlsOptions = o) };
}

async function client(port: number, secure: boolean | 'implicit'): Promise<Client> {
  const c = new Client(10000);
  cleanups.push(() => c.close());
  await c.access({ host: '127.0.0.1', port, user: USER, password: PASSWORD, secure, secureOptions: { rejectUnauthorized: false } });
  return c;
}

async function roundTrip(c: Client): Promise<void> {
  const data = Buffer.alloc(300000, 'x');
  await c.uploadFrom(Readable.from([data]), 'f.bin');
  const chunks: Buffer[] = [];
  await c.downloadTo(new Writable({ write: (chunk: Buffer, _e, cb) => (chunks.push(chunk), cb()) }), 'f.bin');
  expect(Buffer.concat(chunks).equals(data)).toBe(true);
  expect((await c.list()).map((e) => e.name)).toEqual(['f.bin']);
}

/** A client-side relay that can hold back its writes, to send the client's close_notify and a command at once. */
class HoldingPipe extends SocketPipe {
  private passes = Infinity;
  private held: Buffer[] = [];

  holdAfterNextWrite(): void {
    this.passes = 1;
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.passes-- > 0) return super._write(chunk, encoding, callback);
    this.held.push(chunk);
    callback();
  }

  /** Writes what was held and `extra` in one write; returns the bytes written. */
  release(extra: Buffer): Buffer {
    const all = Buffer.concat([...this.held, extra]);
    this.held = [];
    this.passes = Infinity;
    this.raw.write(all);
    return all;
  }
}

/** A control connection upgraded with AUTH TLS by hand, for checking replies exactly. */
class TlsRaw {
  private parser = new ReplyParser();
  private replies: Reply[] = [];
  private waiters: Array<(r: Reply) => void> = [];
  /** The last TLS session (ticket) the server gave this control connection, for resuming it elsewhere. */
  session: Buffer | undefined;
  constructor(
    readonly socket: TLSSocket,
    session?: () => Buffer | undefined,
  ) {
    this.session = session?.();
    socket.on('session', (s: Buffer) => (this.session = s));
    socket.on('data', (d: Buffer) => {
      for (const r of this.parser.push(d)) {
        const w = this.waiters.shift();
        if (w) w(r);
        else this.replies.push(r);
      }
    });
    socket.on('error', () => {});
  }
  static async upgrade(raw: RawClient, options: ConnectionOptions = {}): Promise<TlsRaw> {
    expect((await raw.cmd('AUTH TLS')).code).toBe(234);
    raw.socket.removeAllListeners('data');
    const socket = tlsConnect({ socket: raw.socket, rejectUnauthorized: false, ...options });
    // TLS 1.3 tickets may come with the end of the handshake: listened for before it.
    let session: Buffer | undefined;
    socket.on('session', (s: Buffer) => (session = s));
    await once(socket, 'secureConnect');
    cleanups.push(() => socket.destroy());
    return new TlsRaw(socket, () => session);
  }
  next(): Promise<Reply> {
    const r = this.replies.shift();
    if (r) return Promise.resolve(r);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no reply')), 5000);
      this.waiters.push((x) => (clearTimeout(t), resolve(x)));
    });
  }
  cmd(line: string): Promise<Reply> {
    this.socket.write(line + '\r\n');
    return this.next();
  }
}

describe('explicit FTPS (AUTH TLS)', () => {
  it('FEAT lists AUTH TLS, PBSZ and PROT only when the driver has TLS', async () => {
    const { port } = await tlsServer();
    const raw = await RawClient.connect(port);
    cleanups.push(() => raw.close());
    await raw.next();
    const feat = await raw.cmd('FEAT');
    for (const f of [' AUTH TLS', ' PBSZ', ' PROT']) expect(feat.lines).toContain(f);
    const plain = new FtpServer({ driver: { authenticate: () => null } });
    const { port: plainPort } = await plain.listen(0, '127.0.0.1');
    cleanups.push(() => plain.close());
    const raw2 = await RawClient.connect(plainPort);
    cleanups.push(() => raw2.close());
    await raw2.next();
    expect((await raw2.cmd('FEAT')).lines).not.toContain(' AUTH TLS');
    expect((await raw2.cmd('AUTH TLS')).code).toBe(431);
  });

  it('protects control and data connections (basic-ftp, PROT P, session reuse)', async () => {
    const { port } = await tlsServer();
    await roundTrip(await client(port, true));
  });

  it('refuses a client-initiated renegotiation (TLS 1.2): each would be a full handshake at the client\'s will', async () => {
    const { port } = await tlsServer();
    const raw = await RawClient.connect(port);
    cleanups.push(() => raw.close());
    await raw.next();
    const t = await TlsRaw.upgrade(raw, { maxVersion: 'TLSv1.2' });
    expect((await t.cmd(`USER ${USER}`)).code).toBe(331);
    // Refused, the client's renegotiation fails or never completes; accepted, it completes at once.
    const outcome = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('never completed'), 2000);
      const asked = t.socket.renegotiate({ rejectUnauthorized: false }, (err) => (clearTimeout(timer), resolve(err ? 'failed' : 'completed')));
      if (!asked) resolve('not asked');
    });
    expect(['failed', 'never completed']).toContain(outcome);
  });

  it('offers TLS 1.2 clients only forward-secret AEAD suites, unless the driver names its own', async () => {
    const handshake = async (port: number, ciphers: string): Promise<string> => {
      const raw = await RawClient.connect(port);
      cleanups.push(() => raw.close());
      await raw.next();
      try {
        return (await TlsRaw.upgrade(raw, { maxVersion: 'TLSv1.2', ciphers })).socket.getCipher().standardName;
      } catch (err) {
        return `refused: ${(err as Error).message}`;
      }
    };
    const { port, rotate } = await tlsServer();
    // RSA key exchange with CBC (no forward secrecy), then with GCM: both in Node's own default list.
    expect(await handshake(port, 'AES128-SHA')).toMatch(/^refused/);
    expect(await handshake(port, 'AES128-GCM-SHA256')).toMatch(/^refused/);
    expect(await handshake(port, 'ECDHE-RSA-AES128-GCM-SHA256')).toBe('TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256');
    expect(await handshake(port, 'ECDHE-RSA-CHACHA20-POLY1305')).toBe('TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256');
    // A client without ECDHE (old Windows Schannel): DHE, with OpenSSL's well-known parameters.
    expect(await handshake(port, 'DHE-RSA-AES128-GCM-SHA256')).toBe('TLS_DHE_RSA_WITH_AES_128_GCM_SHA256');
    rotate({ ...certificate, ciphers: 'AES128-SHA' } as typeof certificate);
    expect(await handshake(port, 'AES128-SHA')).toBe('TLS_RSA_WITH_AES_128_CBC_SHA');
  });

  it('PBSZ and PROT need AUTH first; PROT needs PBSZ; PROT S/E are unsupported', async () => {
    const { port } = await tlsServer();
    const raw = await RawClient.connect(port);
    cleanups.push(() => raw.close());
    await raw.next();
    expect((await raw.cmd('PBSZ 0')).code).toBe(503);
    expect((await raw.cmd('PROT P')).code).toBe(503);
    expect((await raw.cmd('AUTH KERBEROS_V4')).code).toBe(504);
    const t = await TlsRaw.upgrade(raw);
    expect((await t.cmd('PROT P')).code).toBe(503);
    expect((await t.cmd('PBSZ 0')).text).toBe('PBSZ=0');
    expect((await t.cmd('PROT S')).code).toBe(536);
    expect((await t.cmd('PROT P')).code).toBe(200);
    expect((await t.cmd('AUTH TLS')).code).toBe(503);
    expect((await t.cmd(`USER ${USER}`)).code).toBe(331);
    expect((await t.cmd(`PASS ${PASSWORD}`)).code).toBe(230);
    expect((await t.cmd('CCC')).code).toBe(534);
  });

  it('AUTH TLS asks for the login again (RFC 2228 §3): a USER or a login from clear text does not carry over', async () => {
    const { port } = await tlsServer();
    // USER in clear text, then AUTH: PASS alone does not log in.
    const raw = await RawClient.connect(port);
    cleanups.push(() => raw.close());
    await raw.next();
    expect((await raw.cmd(`USER ${USER}`)).code).toBe(331);
    const t = await TlsRaw.upgrade(raw);
    expect((await t.cmd(`PASS ${PASSWORD}`)).code).toBe(503);
    expect((await t.cmd(`USER ${USER}`)).code).toBe(331);
    expect((await t.cmd(`PASS ${PASSWORD}`)).code).toBe(230);
    // Logged in in clear text, then AUTH: logged out until USER and PASS come again.
    const raw2 = await RawClient.connect(port);
    cleanups.push(() => raw2.close());
    await raw2.next();
    await raw2.cmd(`USER ${USER}`);
    expect((await raw2.cmd(`PASS ${PASSWORD}`)).code).toBe(230);
    const t2 = await TlsRaw.upgrade(raw2);
    expect((await t2.cmd('PWD')).code).toBe(530);
    expect((await t2.cmd(`USER ${USER}`)).code).toBe(331);
    expect((await t2.cmd(`PASS ${PASSWORD}`)).code).toBe(230);
    expect((await t2.cmd('PWD')).code).toBe(257);
  });

  it('discards commands sent in clear text after AUTH TLS (no command injection)', async () => {
    const { port } = await tlsServer();
    const raw = await RawClient.connect(port);
    cleanups.push(() => raw.close());
    await raw.next();
    // The attacker appends a command to AUTH TLS in the same packet; it must never run.
    raw.send(`AUTH TLS\r\nUSER ${USER}\r\n`);
    expect((await raw.next()).code).toBe(234);
    raw.socket.removeAllListeners('data');
    const socket = tlsConnect({ socket: raw.socket, rejectUnauthorized: false });
    await once(socket, 'secureConnect');
    cleanups.push(() => socket.destroy());
    const t = new TlsRaw(socket);
    // Had USER run, PASS would be accepted; instead it is a bad sequence.
    expect((await t.cmd(`PASS ${PASSWORD}`)).code).toBe(503);
  });

  it('picks up a new certificate for the next AUTH TLS without a restart', async () => {
    const ctx = await tlsServer();
    const first = await client(ctx.port, true);
    const firstCert = (first.ftp.socket as TLSSocket).getPeerCertificate();
    const next = makeCertificate();
    ctx.rotate(next);
    const second = await client(ctx.port, true);
    const secondCert = (second.ftp.socket as TLSSocket).getPeerCertificate();
    expect(firstCert.raw).toBeInstanceOf(Buffer);
    expect(secondCert.raw.equals(firstCert.raw)).toBe(false);
    await roundTrip(second);
  });
});

/**
 * A client TLS connection over `socket` through a relay, so that a test can write bytes past the TLS layer (`pipe.raw`),
 * as a client writing to its socket's descriptor does.
 */
async function tlsOverRelay(socket: Socket): Promise<{ pipe: SocketPipe; secure: TLSSocket }> {
  const pipe = new SocketPipe(socket);
  const secure = tlsConnect({ socket: pipe, rejectUnauthorized: false });
  secure.on('error', () => {});
  cleanups.push(() => secure.destroy());
  await once(secure, 'secureConnect');
  return { pipe, secure };
}

it('a TLS control connection that fails after its handshake (clear text written into it) is closed at once, saying why in the log', async () => {
  const { logger, lines } = collectingLogger('info');
  const { port } = await tlsServer({}, false, logger);
  const raw = await RawClient.connect(port);
  cleanups.push(() => raw.close());
  await raw.next();
  expect((await raw.cmd('AUTH TLS')).code).toBe(234);
  raw.socket.removeAllListeners('data');
  const { pipe, secure } = await tlsOverRelay(raw.socket);
  const t = new TlsRaw(secure);
  expect((await t.cmd(`USER ${USER}`)).code).toBe(331);
  // What Perl's Net::FTP does for an abort over TLS: the Telnet bytes and ABOR, sent in clear past the TLS layer.
  pipe.raw.write(Buffer.from([0xff, 0xf4, 0xff, 0xf2, ...Buffer.from('ABOR\r\n')]));
  // It was kept open, unable to read: the session sat dead until the idle timeout.
  expect(await raw.waitClosed(3000)).toBe(true);
  for (let i = 0; i < 100 && !lines.some((l) => l.msg === 'disconnected'); i++) await new Promise((r) => setTimeout(r, 20));
  const failed = lines.findIndex((l) => l.msg === 'control connection failed');
  expect(failed, JSON.stringify(lines)).toBeGreaterThanOrEqual(0);
  expect(lines[failed]).toMatchObject({ code: expect.stringMatching(/^ERR_SSL_/) });
  expect(failed).toBeLessThan(lines.findIndex((l) => l.msg === 'disconnected'));
});

it('a PROT P upload whose TLS fails midway ends with 426 at once, not at the data stall timeout', async () => {
  const { port } = await tlsServer({ dataStallTimeout: 60 });
  const { t, dataPort } = await protectedSession(port);
  t.socket.write('STOR broken.bin\r\n');
  expect((await t.next()).code).toBe(150);
  const tcp = netConnect(dataPort, '127.0.0.1');
  tcp.on('error', () => {});
  await once(tcp, 'connect');
  const { pipe, secure: data } = await tlsOverRelay(tcp);
  data.write(Buffer.alloc(100_000, 'd'));
  await new Promise((r) => setTimeout(r, 100));
  pipe.raw.write(Buffer.from('this is not a TLS record\r\n'));
  const started = Date.now();
  const final = await t.next();
  expect(final.code, final.text).toBe(426);
  expect(Date.now() - started).toBeLessThan(5000);
  // The session goes on.
  expect((await t.cmd('NOOP')).code).toBe(200);
});

describe('CCC', () => {
  /** A logged-in session over TLS that the client runs over a relay it can take off again (as the server does). */
  async function cccSession(settings: Partial<ServerSettings> = {}): Promise<{ raw: RawClient; pipe: HoldingPipe; t: TlsRaw; server: FtpServer; fs: MemoryProvider }> {
    const { port, server, fs } = await tlsServer({ allowCcc: true, ...settings });
    const raw = await RawClient.connect(port);
    cleanups.push(() => raw.close());
    await raw.next();
    expect((await raw.cmd('AUTH TLS')).code).toBe(234);
    raw.socket.removeAllListeners('data');
    const pipe = new HoldingPipe(raw.socket);
    const socket = tlsConnect({ socket: pipe, rejectUnauthorized: false });
    await once(socket, 'secureConnect');
    const t = new TlsRaw(socket);
    await t.cmd(`USER ${USER}`);
    expect((await t.cmd(`PASS ${PASSWORD}`)).code).toBe(230);
    return { raw, pipe, t, server, fs };
  }

  /** Whether the client's TCP connection closes within `ms`. */
  function closesWithin(raw: RawClient, ms: number): Promise<boolean> {
    if (raw.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      raw.socket.once('close', () => (clearTimeout(timer), resolve(true)));
    });
  }

  /**
   * Sends CCC once the server can no longer hand its replies to the kernel (the client reads nothing, HELP replies
   * fill the connection), so that the 200 stays unflushed in the server's buffers.
   */
  async function cccUnflushed(settings: Partial<ServerSettings>): Promise<RawClient> {
    const { raw, pipe, t, server } = await cccSession(settings);
    // The client stops reading: the relay no longer takes bytes off the socket.
    pipe.detach();
    const sessions = (server as unknown as { sessions: Set<{ controlPipe: SocketPipe | null }> }).sessions;
    const serverRaw = [...sessions][0]!.controlPipe!.raw;
    // Loopback buffers take megabytes; in small steps, so that the server never has so much unsent that it stops
    // serving commands (CCC must be answered).
    for (let i = 0; i < 5000 && serverRaw.writableLength === 0; i++) {
      if (t.socket.writableLength === 0) t.socket.write('HELP\r\n'.repeat(20));
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(serverRaw.writableLength).toBeGreaterThan(0);
    pipe.beginClearing();
    t.socket.write('CCC\r\n');
    return raw;
  }

  /** Reads (and drops) what the server sent, so that the client notices the connection's end. */
  function drain(raw: RawClient): void {
    raw.socket.on('data', () => {});
    raw.socket.resume();
  }

  /** The replies the server sends in clear text once the relay is taken off, waiting for `count` of them. */
  /** The first `count` replies that come in clear text once the TLS layer is off. */
  async function clearReplies(pipe: SocketPipe, count: number): Promise<Reply[]> {
    const { socket: clear } = pipe.detach();
    const parser = new ReplyParser();
    const replies: Reply[] = [];
    clear.on('data', (d: Buffer) => replies.push(...parser.push(d)));
    clear.resume();
    for (let i = 0; i < 50 && replies.length < count; i++) await new Promise((r) => setTimeout(r, 20));
    return replies;
  }

  /**
   * A session with PBSZ 0 and PROT P that sends CCC and then, as lftp does, its close_notify and its first clear-text
   * `lines` in one TCP segment; returns the relay and the bytes of that segment.
   */
  async function clearedWith(lines: string): Promise<{ pipe: HoldingPipe; segment: Buffer }> {
    const { pipe, t } = await cccSession();
    expect((await t.cmd('PBSZ 0')).code).toBe(200);
    expect((await t.cmd('PROT P')).code).toBe(200);
    pipe.beginClearing();
    pipe.holdAfterNextWrite();
    expect((await t.cmd('CCC')).code).toBe(200);
    const flushed = once(pipe, 'finish');
    t.socket.end();
    await flushed;
    return { pipe, segment: pipe.release(Buffer.from(lines)) };
  }

  it('is refused by default; when allowed, the session goes on in clear text after login', async () => {
    const { pipe, segment } = await clearedWith('PWD\r\n');
    expect(segment[0]).toBeGreaterThanOrEqual(20);
    expect((await clearReplies(pipe, 1)).map((r) => r.code)).toEqual([257]);

    const strict = await tlsServer({});
    const raw2 = await RawClient.connect(strict.port);
    cleanups.push(() => raw2.close());
    await raw2.next();
    const t2 = await TlsRaw.upgrade(raw2);
    await t2.cmd(`USER ${USER}`);
    await t2.cmd(`PASS ${PASSWORD}`);
    expect((await t2.cmd('CCC')).code).toBe(534);
    expect((await t2.cmd('NOOP')).code).toBe(200);
  });

  it('after CCC, PBSZ and PROT say the protection stays as it was (they said "AUTH TLS first" after an AUTH TLS)', async () => {
    const { pipe } = await clearedWith('PROT C\r\nPBSZ 0\r\n');
    expect((await clearReplies(pipe, 2)).map((r) => `${r.code} ${r.text}`)).toEqual([
      '503 PROT cannot change after CCC: data connections keep protection level P.',
      '503 PBSZ cannot change after CCC: data connections keep protection level P.',
    ]);
  });

  it('a client that hangs up while the TLS layer is being taken off is let go at once', async () => {
    const { pipe, t } = await cccSession();
    pipe.beginClearing();
    expect((await t.cmd('CCC')).code).toBe(200);
    const { socket: clear } = pipe.detach();
    clear.on('error', () => {});
    clear.resume();
    clear.end();
    const closed = new Promise((r) => (clear.destroyed ? r(true) : clear.once('close', () => r(true))));
    expect(await Promise.race([closed, new Promise((r) => setTimeout(() => r(false), 3000))])).toBe(true);
  });

  it('a session closed while the TLS layer is being taken off (server shutdown) closes its TCP connection too', async () => {
    const { raw, pipe, t, server } = await cccSession();
    // The client keeps its side open, and sends no close_notify: the server waits out its grace period.
    pipe.beginClearing();
    expect((await t.cmd('CCC')).code).toBe(200);
    const closing = server.close();
    expect(await closesWithin(raw, 3000)).toBe(true);
    expect(await Promise.race([closing.then(() => true), new Promise((r) => setTimeout(() => r(false), 3000))])).toBe(true);
  });

  it('a session whose CCC reply the client does not read, ended by the idle timeout, closes its TCP connection', async () => {
    const raw = await cccUnflushed({ idleTimeout: 1 });
    // Past the idle timeout and the 2 s a closed connection is given to flush its last replies.
    await new Promise((r) => setTimeout(r, 3500));
    drain(raw);
    expect(await closesWithin(raw, 3000)).toBe(true);
  });

  it('a CCC reply that cannot be sent within tlsHandshakeTimeout ends the session', async () => {
    const raw = await cccUnflushed({ idleTimeout: 0, tlsHandshakeTimeout: 1 });
    await new Promise((r) => setTimeout(r, 1500));
    drain(raw);
    expect(await closesWithin(raw, 3000)).toBe(true);
  });

  it('AUTH TLS after CCC: data connections must again resume the control connection\'s new TLS session', async () => {
    const { pipe, t, fs } = await cccSession({ tlsSessionReuse: true });
    await fs.mkdir('/d');
    pipe.beginClearing();
    expect((await t.cmd('CCC')).code).toBe(200);
    // Clear text at once, as the client of the test above: the server then sends no close_notify.
    const { socket: clear } = pipe.detach();
    const parser = new ReplyParser();
    const authReply = new Promise<Reply>((resolve) => {
      clear.on('data', (d: Buffer) => {
        const [r] = parser.push(d);
        if (r) resolve(r);
      });
    });
    clear.resume();
    clear.write('AUTH TLS\r\n');
    expect((await authReply).code).toBe(234);
    clear.removeAllListeners('data');
    const socket = tlsConnect({ socket: clear, rejectUnauthorized: false });
    await once(socket, 'secureConnect');
    cleanups.push(() => socket.destroy());
    const t2 = new TlsRaw(socket);
    await t2.cmd(`USER ${USER}`);
    expect((await t2.cmd(`PASS ${PASSWORD}`)).code).toBe(230);
    await t2.cmd('PBSZ 0');
    expect((await t2.cmd('PROT P')).code).toBe(200);
    const dataPort = parseEpsvReply((await t2.cmd('EPSV')).text);
    t2.socket.write('NLST\r\n');
    expect((await t2.next()).code).toBe(150);
    // A fresh TLS session on the data connection: what a hijacker racing to the port would have.
    const data = tlsConnect({ port: dataPort, host: '127.0.0.1', rejectUnauthorized: false });
    data.on('error', () => {});
    let text = '';
    data.on('data', (d: Buffer) => (text += d.toString()));
    await once(data, 'close');
    expect({ code: (await t2.next()).code, data: text }).toEqual({ code: 522, data: '' });
  });

  it('a client that sends no close_notify and speaks clear text right after the 200 is understood', async () => {
    const { raw, pipe, t } = await cccSession();
    pipe.beginClearing();
    expect((await t.cmd('CCC')).code).toBe(200);
    raw.socket.write('NOOP\r\nPWD\r\n');
    expect((await clearReplies(pipe, 2)).map((r) => r.code)).toEqual([200, 257]);
  });
});

describe('implicit FTPS', () => {
  it('speaks TLS from the first byte and protects data by default', async () => {
    const { implicitPort } = await tlsServer({}, true);
    await roundTrip(await client(implicitPort, 'implicit'));
  });

  it('a client that speaks clear text to the implicit port gets nothing and is closed', async () => {
    const { implicitPort, server } = await tlsServer({ tlsHandshakeTimeout: 1 }, true);
    const raw = netConnect({ port: implicitPort, host: '127.0.0.1' });
    raw.on('error', () => {});
    let got = '';
    raw.on('data', (d: Buffer) => (got += d.toString('latin1')));
    raw.write('USER x\r\n');
    await once(raw, 'close');
    expect(got).not.toMatch(/^220/);
    expect(server.sessionCount).toBe(0);
  });
});

describe('a client that completes its data connection\'s TLS handshake before sending the command (aioftp)', () => {
  /** Logs in over AUTH TLS with PROT P; each data connection is secured before its command is sent. */
  async function handshakeFirst(port: number) {
    // Its EPSV's port goes unused: each transfer below asks for its own.
    const { t: c } = await protectedSession(port);
    expect((await c.cmd('TYPE I')).code).toBe(200);
    const secured = async (): Promise<TLSSocket> => {
      const epsv = await c.cmd('EPSV');
      const data = tlsConnect({ host: '127.0.0.1', port: parseEpsvReply(epsv.text), rejectUnauthorized: false });
      data.on('error', () => {});
      cleanups.push(() => data.destroy());
      // Waits for the handshake, as aioftp's open_connection(ssl=…) does, before anything else.
      await once(data, 'secureConnect');
      return data;
    };
    return { c, secured };
  }

  it('uploads, downloads and lists (the server answers the handshake once the session waits for a command)', async () => {
    const { port, fs } = await tlsServer({ tlsHandshakeTimeout: 5 });
    const { c, secured } = await handshakeFirst(port);
    const body = Buffer.alloc(300_000, 'u');
    let data = await secured();
    expect((await c.cmd('STOR up.bin')).code).toBe(150);
    data.end(body);
    expect((await c.next()).code).toBe(226);
    expect(Buffer.from(await fs.readFile('/up.bin')).equals(body)).toBe(true);
    data = await secured();
    const chunks: Buffer[] = [];
    data.on('data', (d: Buffer) => chunks.push(d));
    expect((await c.cmd('RETR up.bin')).code).toBe(150);
    await once(data, 'end');
    expect((await c.next()).code).toBe(226);
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
    data = await secured();
    let listing = '';
    data.on('data', (d: Buffer) => (listing += d.toString()));
    expect((await c.cmd('NLST')).code).toBe(150);
    await once(data, 'end');
    expect((await c.next()).code).toBe(226);
    expect(listing).toBe('up.bin\r\n');
  });

  it('a session busy when the handshake begins answers it once the command is done', async () => {
    const { port, fs } = await tlsServer({ tlsHandshakeTimeout: 5 });
    await fs.writeFile('/f', 'content');
    const stat = fs.stat.bind(fs);
    fs.stat = async (path: string) => {
      if (path === '/slow') await new Promise((r) => setTimeout(r, 700));
      return stat(path);
    };
    const { c } = await handshakeFirst(port);
    const epsv = await c.cmd('EPSV');
    c.socket.write('SIZE slow\r\n');
    const data = tlsConnect({ host: '127.0.0.1', port: parseEpsvReply(epsv.text), rejectUnauthorized: false });
    data.on('error', () => {});
    cleanups.push(() => data.destroy());
    await once(data, 'secureConnect');
    expect((await c.next()).code).toBe(550);
    const chunks: Buffer[] = [];
    data.on('data', (d: Buffer) => chunks.push(d));
    expect((await c.cmd('RETR f')).code).toBe(150);
    await once(data, 'end');
    expect((await c.next()).code).toBe(226);
    expect(Buffer.concat(chunks).toString()).toBe('content');
  });

  it('a data connection the client closed before its command: 425 at once, not after the handshake timeout', async () => {
    const { port, fs } = await tlsServer({ tlsHandshakeTimeout: 10 });
    await fs.writeFile('/f', 'content');
    const { c } = await handshakeFirst(port);
    for (const command of ['LIST', 'RETR f', 'STOR g']) {
      const epsv = await c.cmd('EPSV');
      const data = netConnect({ host: '127.0.0.1', port: parseEpsvReply(epsv.text) });
      data.on('error', () => {});
      await once(data, 'connect');
      data.end();
      await once(data, 'close');
      // Time for the server to see the FIN (and for its early-TLS watch to look at the connection).
      await new Promise((r) => setTimeout(r, 400));
      const started = Date.now();
      const first = await c.cmd(command);
      const final = first.code === 150 ? await c.next() : first;
      expect(final.code, `${command}: ${final.text}`).toBe(425);
      expect(Date.now() - started, command).toBeLessThan(2000);
    }
    // The session goes on.
    expect((await c.cmd('NOOP')).code).toBe(200);
  });

  it('a FIN after PROT C is an empty clear upload (226); a FIN under PROT P, then PROT C, refuses the connection at once', async () => {
    const { port, fs } = await tlsServer({ tlsHandshakeTimeout: 10, dataStallTimeout: 30 });
    const { c } = await handshakeFirst(port);
    for (const order of ['PROT C, then FIN', 'FIN, then PROT C'] as const) {
      expect((await c.cmd('PROT P')).code).toBe(200);
      const epsv = await c.cmd('EPSV');
      const data = netConnect({ host: '127.0.0.1', port: parseEpsvReply(epsv.text) });
      data.on('error', () => {});
      await once(data, 'connect');
      await new Promise((r) => setTimeout(r, 100));
      if (order === 'PROT C, then FIN') expect((await c.cmd('PROT C')).code).toBe(200);
      data.end();
      await new Promise((r) => setTimeout(r, 400));
      if (order === 'FIN, then PROT C') expect((await c.cmd('PROT C')).code).toBe(200);
      const started = Date.now();
      const name = order === 'PROT C, then FIN' ? 'empty-1' : 'empty-2';
      const first = await c.cmd(`STOR ${name}`);
      const final = first.code === 150 ? await c.next() : first;
      expect(Date.now() - started, order).toBeLessThan(2000);
      if (order === 'PROT C, then FIN') {
        expect(final.code, final.text).toBe(226);
        expect((await fs.stat(`/${name}`)).size).toBe(0);
      } else expect(final.code, final.text).toBe(425);
    }
  });

  it('PROT C after the handshake: the connection is refused (425), no clear text goes over TLS', async () => {
    const { port, fs } = await tlsServer({ tlsHandshakeTimeout: 5 });
    await fs.writeFile('/f', 'content');
    const { c, secured } = await handshakeFirst(port);
    const data = await secured();
    let received = 0;
    data.on('data', (d: Buffer) => (received += d.length));
    expect((await c.cmd('PROT C')).code).toBe(200);
    expect((await c.cmd('RETR f')).code).toBe(150);
    expect(await c.next()).toMatchObject({ code: 425, text: expect.stringContaining('began TLS') });
    await once(data, 'close');
    expect(received).toBe(0);
  });
});

describe('a FIN before the handshake', () => {
  /** How long the server keeps a session after the client's FIN, in ms (the sessions must be gone by then). */
  async function timeToRelease(server: FtpServer): Promise<number> {
    const start = Date.now();
    while (server.sessionCount > 0 && Date.now() - start < 5000) await new Promise((r) => setTimeout(r, 10));
    return Date.now() - start;
  }

  it('ends the session at once on the implicit port, not at the handshake timeout', async () => {
    const { implicitPort, server } = await tlsServer({ tlsHandshakeTimeout: 10 }, true);
    const raw = netConnect({ port: implicitPort, host: '127.0.0.1' });
    raw.on('error', () => {});
    await once(raw, 'connect');
    for (let i = 0; i < 200 && server.sessionCount === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(server.sessionCount).toBe(1);
    raw.end();
    expect(await timeToRelease(server)).toBeLessThan(1000);
    expect(await new Promise((r) => (raw.destroyed ? r(true) : raw.once('close', () => r(true))))).toBe(true);
  });

  it('ends the session at once after AUTH TLS', async () => {
    const { port, server } = await tlsServer({ tlsHandshakeTimeout: 10 });
    const raw = await RawClient.connect(port);
    cleanups.push(() => raw.close());
    await raw.next();
    expect((await raw.cmd('AUTH TLS')).code).toBe(234);
    raw.socket.end();
    expect(await timeToRelease(server)).toBeLessThan(1000);
    expect(await raw.waitClosed(3000)).toBe(true);
  });
});

describe('requirement modes', () => {
  it("tlsRequired 'control': USER before AUTH TLS is refused with 530", async () => {
    const { port } = await tlsServer({ tlsRequired: 'control' });
    const raw = await RawClient.connect(port);
    cleanups.push(() => raw.close());
    await raw.next();
    expect((await raw.cmd(`USER ${USER}`)).code).toBe(530);
    const c = new Client(5000);
    cleanups.push(() => c.close());
    await expect(c.access({ host: '127.0.0.1', port, user: USER, password: PASSWORD })).rejects.toThrow(/530/);
    await roundTrip(await client(port, true));
  });

  it("tlsRequired 'all': PROT C is refused (534) and clear transfers get 521", async () => {
    const { port } = await tlsServer({ tlsRequired: 'all' });
    const raw = await RawClient.connect(port);
    cleanups.push(() => raw.close());
    await raw.next();
    const t = await TlsRaw.upgrade(raw);
    expect((await t.cmd(`USER ${USER}`)).code).toBe(331);
    expect((await t.cmd(`PASS ${PASSWORD}`)).code).toBe(230);
    expect((await t.cmd('PBSZ 0')).code).toBe(200);
    expect((await t.cmd('PROT C')).code).toBe(534);
    expect((await t.cmd('EPSV')).code).toBe(229);
    expect((await t.cmd('LIST')).code).toBe(521);
  });

  it('a driver raises the requirement for one user', async () => {
    const fs = new MemoryProvider();
    const server = new FtpServer({
      settings: { failedLoginDelay: 0 },
      driver: {
        authenticate: (_s, user, pass) => (pass === PASSWORD ? { fs, ...(user === 'admin' ? { tlsRequired: 'control' as const } : {}) } : null),
        tlsOptions: () => certificate,
      },
    });
    const { port } = await server.listen(0, '127.0.0.1');
    cleanups.push(() => server.close());
    const raw = await RawClient.connect(port);
    cleanups.push(() => raw.close());
    await raw.next();
    expect((await raw.cmd('USER admin')).code).toBe(331);
    expect((await raw.cmd(`PASS ${PASSWORD}`)).code).toBe(530);
    expect((await raw.cmd('USER guest')).code).toBe(331);
    expect((await raw.cmd(`PASS ${PASSWORD}`)).code).toBe(230);
  });
});

/** A session logged in over TLS with PROT P, and the passive port EPSV gave it. */
async function protectedSession(port: number, options: ConnectionOptions = {}): Promise<{ t: TlsRaw; dataPort: number }> {
  const raw = await RawClient.connect(port);
  cleanups.push(() => raw.close());
  await raw.next();
  const t = await TlsRaw.upgrade(raw, options);
  expect((await t.cmd(`USER ${USER}`)).code).toBe(331);
  expect((await t.cmd(`PASS ${PASSWORD}`)).code).toBe(230);
  expect((await t.cmd('PBSZ 0')).code).toBe(200);
  expect((await t.cmd('PROT P')).code).toBe(200);
  return { t, dataPort: parseEpsvReply((await t.cmd('EPSV')).text) };
}

/** A TLS 1.3 session with PROT P that sent STOR `name` (150), and its data connection, connected, TLS not begun. */
async function protectedStor(port: number, name: string): Promise<{ t: TlsRaw; tcp: Socket }> {
  const { t, dataPort } = await protectedSession(port, { minVersion: 'TLSv1.3' });
  t.socket.write(`STOR ${name}\r\n`);
  expect((await t.next()).code).toBe(150);
  const tcp = netConnect(dataPort, '127.0.0.1');
  tcp.on('error', () => {});
  await once(tcp, 'connect');
  return { t, tcp };
}

describe('REIN under TLS', () => {
  it('keeps the control connection protected, and its PBSZ and PROT (RFC 4217 takes TLS back only with CCC)', async () => {
    const { port } = await tlsServer();
    const { t } = await protectedSession(port);
    expect((await t.cmd('TYPE I')).code).toBe(200);
    expect((await t.cmd('REIN')).code).toBe(220);
    // Still under TLS: a second AUTH is refused.
    expect((await t.cmd('AUTH TLS')).code).toBe(503);
    await t.cmd(`USER ${USER}`);
    expect((await t.cmd(`PASS ${PASSWORD}`)).code).toBe(230);
    expect((await t.cmd('STAT')).text).toContain('TYPE: ASCII');
    // PBSZ held: PROT is accepted without another PBSZ (RFC 4217 §8 wants PBSZ first).
    expect((await t.cmd('PROT P')).code).toBe(200);
    const dataPort = parseEpsvReply((await t.cmd('EPSV')).text);
    t.socket.write('NLST\r\n');
    expect((await t.next()).code).toBe(150);
    // PROT P held: the data connection is TLS, resuming the control connection's session (over a connected socket,
    // the way Node's client offers a session).
    const tcp = netConnect(dataPort, '127.0.0.1');
    await once(tcp, 'connect');
    const data = tlsConnect({ socket: tcp, rejectUnauthorized: false, session: t.session });
    data.on('error', () => {});
    data.resume();
    await once(data, 'close');
    expect((await t.next()).code).toBe(226);
  });
});

describe('TLS session reuse on data connections', () => {
  async function dataWithoutReuse(settings: Partial<ServerSettings>): Promise<{ code: number; data: string }> {
    const { port, fs } = await tlsServer(settings);
    await fs.mkdir('/d');
    const { t, dataPort } = await protectedSession(port);
    t.socket.write('NLST\r\n');
    expect((await t.next()).code).toBe(150);
    // A fresh TLS session on the data connection: what a hijacker racing to the port would have.
    const data = tlsConnect({ port: dataPort, host: '127.0.0.1', rejectUnauthorized: false });
    data.on('error', () => {});
    let text = '';
    data.on('data', (d: Buffer) => (text += d.toString()));
    await once(data, 'close');
    return { code: (await t.next()).code, data: text };
  }

  /**
   * The ticket lifetime hint ([9]) of the SSL_SESSION in what Node hands a client ('session' event): a short header of
   * Node's, then the session's DER, a SEQUENCE running to the end. In seconds.
   */
  function ticketLifetime(session: Buffer): number | undefined {
    let start = 0;
    while (start + 4 < session.length && !(session[start] === 0x30 && session[start + 1] === 0x82 && session.readUInt16BE(start + 2) + 4 === session.length - start)) start++;
    const der = session.subarray(start);
    const length = (at: number): [number, number] => {
      const first = der[at] as number;
      if (first < 0x80) return [first, at + 1];
      let n = 0;
      for (let i = 1; i <= (first & 0x7f); i++) n = n * 256 + (der[at + i] as number);
      return [n, at + 1 + (first & 0x7f)];
    };
    let [, at] = length(1); // inside the outer SEQUENCE
    while (at < der.length) {
      const tag = der[at] as number;
      const [len, body] = length(at + 1);
      if (tag === 0xa9) {
        const [intLen, int] = length(body + 1); // [9] { INTEGER }
        let value = 0;
        for (let i = 0; i < intLen; i++) value = value * 256 + (der[int + i] as number);
        return value;
      }
      at = body + len;
    }
    return undefined;
  }

  it('sessions stay resumable as long as the FTP session lasts, not OpenSSL\'s 2 hours (a long sync would get 522 on every transfer)', async () => {
    const { port } = await tlsServer();
    for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
      const { t } = await protectedSession(port, { minVersion: version, maxVersion: version });
      const hint = ticketLifetime(t.session as Buffer);
      // TLS 1.3 caps a ticket at 7 days (RFC 8446 §4.6.1); TLS 1.2 tells the session's whole lifetime.
      expect([version, hint]).toEqual([version, version === 'TLSv1.3' ? 604_800 : 2_147_483_647]);
      await t.cmd('QUIT');
    }
  });

  it('tlsSessionReuse true: a data connection with a new TLS session is refused (522) from the first one', async () => {
    expect(await dataWithoutReuse({ tlsSessionReuse: true })).toEqual({ code: 522, data: '' });
  });

  it("is not required by default: a client that never resumes (Python's ftplib) is served, and one that resumes its first data connection but not its second (curl under TLS 1.3)", async () => {
    const { port, fs } = await tlsServer();
    await fs.mkdir('/d');
    const { t, dataPort } = await protectedSession(port);
    expect(await nlstResuming(t, dataPort, undefined)).toEqual({ code: 226, data: 'd\r\n', resumed: false });
    expect(await nlstResuming(t, parseEpsvReply((await t.cmd('EPSV')).text), t.session)).toEqual({ code: 226, data: 'd\r\n', resumed: true });
    expect(await nlstResuming(t, parseEpsvReply((await t.cmd('EPSV')).text), undefined)).toEqual({ code: 226, data: 'd\r\n', resumed: false });
  });

  it('a data connection that does not speak TLS gets one 425 line with OpenSSL\'s reason, no source paths', async () => {
    const { port, fs } = await tlsServer();
    await fs.mkdir('/d');
    const { t, dataPort } = await protectedSession(port);
    t.socket.write('NLST\r\n');
    expect((await t.next()).code).toBe(150);
    const data = netConnect(dataPort, '127.0.0.1');
    data.on('error', () => {});
    await once(data, 'connect');
    data.write('GET / HTTP/1.0\r\n\r\n');
    const reply = await t.next();
    expect(reply.code).toBe(425);
    expect(reply.text).toBe("Can't open data connection: TLS handshake failed: http request.");
  });

  it('ABOR while the data connection has not begun its TLS handshake: 426 and 226 at once, not at the handshake timeout', async () => {
    const { port, fs } = await tlsServer({ tlsHandshakeTimeout: 30 });
    await fs.writeFile('/f.bin', Buffer.alloc(100_000, 'x'));
    const { t, dataPort } = await protectedSession(port);
    // Connected, but no ClientHello: the server waits in the handshake.
    const data = netConnect(dataPort, '127.0.0.1');
    data.on('error', () => {});
    await once(data, 'connect');
    t.socket.write('RETR f.bin\r\n');
    expect((await t.next()).code).toBe(150);
    // Past the accept: the handshake is what the transfer now waits for.
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    t.socket.write('ABOR\r\n');
    const codes = [(await t.next()).code, (await t.next()).code];
    expect(codes).toEqual([426, 226]);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('can be turned off for clients that cannot resume', async () => {
    expect(await dataWithoutReuse({ tlsSessionReuse: false })).toEqual({ code: 226, data: 'd\r\n' });
  });

  /** Runs NLST with a data connection that offers `session`; the reply code and what came over it. */
  async function nlstResuming(t: TlsRaw, dataPort: number, session: Buffer | undefined, options: ConnectionOptions = {}): Promise<{ code: number; data: string; resumed: boolean }> {
    made = undefined;
    t.socket.write('NLST\r\n');
    expect((await t.next()).code).toBe(150);
    // Over a connected socket, as basic-ftp does: Node's client offers a session only that way.
    const tcp = netConnect(dataPort, '127.0.0.1');
    await once(tcp, 'connect');
    const data = tlsConnect({ socket: tcp, rejectUnauthorized: false, session, ...options });
    data.on('error', () => {});
    let text = '';
    let resumed = false;
    data.on('secureConnect', () => {
      resumed = data.isSessionReused();
      made = data.getSession();
    });
    data.on('data', (d: Buffer) => (text += d.toString()));
    // A refused resumption may end the connection before the client's handshake does: 'close' either way.
    await new Promise((resolve) => data.once('close', resolve));
    return { code: (await t.next()).code, data: text, resumed };
  }
  /** The TLS session the last data connection of {@link nlstResuming} made or resumed, as its client holds it. */
  let made: Buffer | undefined;

  it("a session's TLS context serves the next session only with new ticket keys: the old session cannot be resumed on the new one's data port", async () => {
    const { port, fs } = await tlsServer({ tlsSessionReuse: true });
    await fs.mkdir('/d');
    const a = await protectedSession(port);
    // A's own data connection resumes A's session, as every client's does.
    expect(await nlstResuming(a.t, a.dataPort, a.t.session)).toEqual({ code: 226, data: 'd\r\n', resumed: true });
    const stolen = a.t.session;
    expect(stolen).toBeDefined();
    expect((await a.t.cmd('QUIT')).code).toBe(221);
    await once(a.t.socket, 'close');
    // B logs in on the context A used (one set of options, one session at a time: the same context comes back).
    const b = await protectedSession(port);
    // A, a user of the same server, races to B's data port with its own old session: refused, nothing sent.
    expect(await nlstResuming(b.t, b.dataPort, stolen)).toEqual({ code: 522, data: '', resumed: false });
    // B's own data connections still resume B's session.
    const b2 = parseEpsvReply((await b.t.cmd('EPSV')).text);
    expect(await nlstResuming(b.t, b2, b.t.session)).toEqual({ code: 226, data: 'd\r\n', resumed: true });
  });
  it('TLS 1.2 clients that send no ticket (curl) resume by session ID; only their own session, and not after it ends', async () => {
    const { port, fs } = await tlsServer({ tlsSessionReuse: true });
    await fs.mkdir('/d');
    // What curl's ClientHello looks like under TLS 1.2: no session_ticket extension, so a session ID is all it has.
    const noTickets: ConnectionOptions = { maxVersion: 'TLSv1.2', secureOptions: constants.SSL_OP_NO_TICKET };
    const a = await protectedSession(port, noTickets);
    expect(a.t.socket.getProtocol()).toBe('TLSv1.2');
    const aSession = a.t.session;
    expect(aSession).toBeDefined();
    expect(await nlstResuming(a.t, a.dataPort, aSession, noTickets)).toEqual({ code: 226, data: 'd\r\n', resumed: true });
    // A data connection that does not resume is refused, and the session its handshake made is not kept: offered on
    // the next data connection it is refused too (else whoever won the race to the port twice in a row got in).
    expect(await nlstResuming(a.t, parseEpsvReply((await a.t.cmd('EPSV')).text), undefined, noTickets)).toEqual({ code: 522, data: '', resumed: false });
    // (Whether the refused client finished its handshake, and so holds a session, depends on timing; the store's own
    // test, in tls-session-ids.test.ts, checks the rule whatever the timing.)
    const racer = made;
    if (racer !== undefined) {
      expect(await nlstResuming(a.t, parseEpsvReply((await a.t.cmd('EPSV')).text), racer, noTickets)).toEqual({ code: 522, data: '', resumed: false });
    }
    // Another session's ID is not resumed on A's data port, nor A's on its.
    const b = await protectedSession(port, noTickets);
    expect(await nlstResuming(a.t, parseEpsvReply((await a.t.cmd('EPSV')).text), b.t.session, noTickets)).toEqual({ code: 522, data: '', resumed: false });
    expect(await nlstResuming(b.t, b.dataPort, aSession, noTickets)).toEqual({ code: 522, data: '', resumed: false });
    // A ends; C logs in on the context A used: A's session ID is forgotten with it.
    expect((await a.t.cmd('QUIT')).code).toBe(221);
    await once(a.t.socket, 'close');
    const c = await protectedSession(port, noTickets);
    expect(await nlstResuming(c.t, c.dataPort, aSession, noTickets)).toEqual({ code: 522, data: '', resumed: false });
    expect(await nlstResuming(c.t, parseEpsvReply((await c.t.cmd('EPSV')).text), c.t.session, noTickets)).toEqual({ code: 226, data: 'd\r\n', resumed: true });
  });
});

describe('uploads that end without close_notify (tlsUploadRequiresCloseNotify)', () => {
  /** Uploads 200 KB over a PROT P data connection ended with close_notify or with a bare TCP FIN. */
  async function upload(settings: Partial<ServerSettings>, ending: 'close_notify' | 'fin'): Promise<{ code: number; stored: number | null }> {
    const { port, fs } = await tlsServer({ tlsSessionReuse: false, ...settings });
    const { t, dataPort } = await protectedSession(port);
    const tcp = netConnect({ port: dataPort, host: '127.0.0.1' });
    await once(tcp, 'connect');
    t.socket.write('STOR up.bin\r\n');
    expect((await t.next()).code).toBe(150);
    const data = tlsConnect({ socket: tcp, rejectUnauthorized: false });
    data.on('error', () => {});
    await once(data, 'secureConnect');
    await new Promise<void>((resolve) => data.write(Buffer.alloc(200_000, 7), () => resolve()));
    if (ending === 'close_notify') data.end();
    else tcp.end(); // the TCP FIN, with no TLS alert before it
    const code = (await t.next()).code;
    const stored = await fs.stat('/up.bin').then((st) => st.size, () => null);
    data.destroy();
    return { code, stored };
  }

  it('is off by default: a bare FIN ends the upload', async () => {
    expect(await upload({}, 'fin')).toEqual({ code: 226, stored: 200_000 });
  });

  it('when on, a bare FIN fails the upload with 426 and a close_notify completes it', async () => {
    expect(await upload({ tlsUploadRequiresCloseNotify: true, partialUploads: 'discard' }, 'fin')).toEqual({ code: 426, stored: null });
    expect(await upload({ tlsUploadRequiresCloseNotify: true }, 'close_notify')).toEqual({ code: 226, stored: 200_000 });
  });
});

describe('uploads from clients that never read their data connection (Go clients such as rclone, basic-ftp, lftp after CCC)', () => {
  /**
   * STOR of `body` over a PROT P data connection whose client, once its handshake is done, leaves everything the server
   * sends unread (as a client that only writes does), then closes at once. Returns the reply, what was stored, and
   * the TLS version of the data connection.
   */
  async function uploadWithoutReading(settings: Partial<ServerSettings>, body: Buffer, session?: 'resume'): Promise<{ code: number; stored: boolean; version: string | null; resumed: boolean }> {
    const { port, fs } = await tlsServer(settings);
    const { t, tcp } = await protectedStor(port, 'up.bin');
    // The TLS client reads through this relay; once its handshake is done the socket is paused, so what the server
    // sends from then on (TLS 1.3's session tickets) stays unread in the kernel.
    const relay = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        tcp.write(chunk, cb);
      },
    });
    tcp.on('data', (d: Buffer) => relay.push(d));
    const data = tlsConnect({ socket: relay, rejectUnauthorized: false, ...(session ? { session: t.session } : {}) });
    data.on('error', () => {});
    await once(data, 'secureConnect');
    tcp.pause();
    const version = data.getProtocol();
    const resumed = data.isSessionReused();
    await new Promise<void>((resolve) => data.write(body, () => resolve()));
    // A close with unread bytes: the kernel resets the connection (and drops what it had not sent yet).
    tcp.destroy();
    const code = (await t.next()).code;
    const stored = await fs.readFile('/up.bin').then((b) => Buffer.compare(Buffer.from(b), body) === 0, () => false);
    return { code, stored, version, resumed };
  }

  const body = Buffer.alloc(4 * 1024 * 1024, 'u');

  it('get the whole file stored and 226: their data connection is TLS 1.2, which sends nothing after its handshake', async () => {
    expect(await uploadWithoutReading({}, body)).toEqual({ code: 226, stored: true, version: 'TLSv1.2', resumed: false });
    // Empty files too (basic-ftp's failed 425 at the handshake, 7 of 20).
    expect(await uploadWithoutReading({}, Buffer.alloc(0))).toEqual({ code: 226, stored: true, version: 'TLSv1.2', resumed: false });
  });

  it('downloads and listings keep TLS 1.3 and resume the control connection\'s session', async () => {
    const { port, fs } = await tlsServer();
    await fs.mkdir('/d');
    const { t, dataPort } = await protectedSession(port, { minVersion: 'TLSv1.3' });
    t.socket.write('NLST\r\n');
    expect((await t.next()).code).toBe(150);
    const tcp = netConnect(dataPort, '127.0.0.1');
    await once(tcp, 'connect');
    const data = tlsConnect({ socket: tcp, rejectUnauthorized: false, session: t.session });
    data.on('error', () => {});
    await once(data, 'secureConnect');
    expect([data.getProtocol(), data.isSessionReused()]).toEqual(['TLSv1.3', true]);
    data.resume();
    await once(data, 'close');
    expect((await t.next()).code).toBe(226);
  });

  it('with tlsSessionReuse required, uploads stay on TLS 1.3 so that they can resume the control session', async () => {
    const { code, version, resumed } = await uploadWithoutReading({ tlsSessionReuse: true }, Buffer.alloc(1000, 'r'), 'resume');
    expect({ version, resumed }).toEqual({ version: 'TLSv1.3', resumed: true });
    // A small upload fits in the server's receive buffer before the reset: it is usually stored; either way the
    // client is told the truth.
    expect([226, 426]).toContain(code);
  });

  it('a client that offers TLS 1.3 only (curl --tlsv1.3) still uploads, on TLS 1.3', async () => {
    const { port, fs } = await tlsServer();
    const { t, dataPort } = await protectedSession(port, { minVersion: 'TLSv1.3' });
    t.socket.write('STOR only13.bin\r\n');
    expect((await t.next()).code).toBe(150);
    const data = tlsConnect({ port: dataPort, host: '127.0.0.1', rejectUnauthorized: false, minVersion: 'TLSv1.3' });
    data.on('error', () => {});
    await once(data, 'secureConnect');
    expect(data.getProtocol()).toBe('TLSv1.3');
    data.end(Buffer.alloc(100_000, 'k'));
    expect((await t.next()).code).toBe(226);
    expect((await fs.stat('/only13.bin')).size).toBe(100_000);
  });

  it('a driver that turns TLS 1.2 off (SSL_OP_NO_TLSv1_2) keeps uploads on TLS 1.3', async () => {
    const mem = new MemoryProvider();
    const server = new FtpServer({
      settings: { failedLoginDelay: 0, passivePortRange: [47000, 47999] },
      driver: {
        authenticate: (_s, user, pass) => (user === USER && pass === PASSWORD ? { fs: mem } : null),
        tlsOptions: () => ({ ...certificate, secureOptions: constants.SSL_OP_NO_TLSv1_2 }),
      },
    });
    const { port } = await server.listen(0, '127.0.0.1');
    cleanups.push(() => server.close());
    const { t, dataPort } = await protectedSession(port);
    t.socket.write('STOR no12.bin\r\n');
    expect((await t.next()).code).toBe(150);
    const data = tlsConnect({ port: dataPort, host: '127.0.0.1', rejectUnauthorized: false });
    data.on('error', () => {});
    await once(data, 'secureConnect');
    expect(data.getProtocol()).toBe('TLSv1.3');
    data.end(Buffer.alloc(1000, 'n'));
    expect((await t.next()).code).toBe(226);
  });

  it('with TLS 1.3 as the minimum, uploads stay on TLS 1.3', async () => {
    const { version } = await uploadWithoutReading({ tlsMinVersion: 'TLSv1.3' }, Buffer.alloc(1000, 'm'));
    expect(version).toBe('TLSv1.3');
  });
});

describe('a data connection that sends a ClientHello cut short', () => {
  it('fails that transfer only: the server (and another session) goes on', async () => {
    // `16 03 01 00 04 01 00 00 00`: a handshake record that ends right after the ClientHello's header. Reading the
    // TLS versions it offers (for an upload's connection) went past its end from a socket handler: the process died.
    const { port } = await tlsServer();
    for (const record of ['160301000401000000', '16030300050100000100']) {
      const { t, tcp } = await protectedStor(port, 'cut.bin');
      tcp.write(Buffer.from(record, 'hex'));
      // Not a ClientHello to guess from: the handshake reads it and fails (425), or waits for the rest until the
      // client leaves; either way this transfer alone ends.
      setTimeout(() => tcp.destroy(), 300);
      expect((await t.next()).code).toBeGreaterThanOrEqual(400);
      expect((await t.cmd('NOOP')).code).toBe(200);
    }
    const other = await client(port, true);
    await roundTrip(other);
  });
});

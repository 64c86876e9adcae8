import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { ReplyParser, parseEpsvReply, type Reply } from '@ftp/protocol';
import { MemoryProvider, type FsProvider } from '@ftp/vfs';
import { FtpServer, type FtpServerOptions, type ServerSettings } from '../src/index.js';

export const USER = 'alice';
export const PASSWORD = 's3cret';

/** A pino logger at `level` whose lines are collected, parsed, in `lines`. */
export function collectingLogger(level: string): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level }, sink), lines };
}

/** A server like {@link startServer}'s whose log lines (pino, at `level`) are collected, parsed, in `lines`. */
export async function serverLogging(
  level: string,
  fs: FsProvider = new MemoryProvider(),
  settings: Partial<ServerSettings> = {},
): Promise<{ port: number; lines: Array<Record<string, unknown>>; close(): Promise<void> }> {
  const { logger, lines } = collectingLogger(level);
  const server = new FtpServer({
    logger,
    settings: { failedLoginDelay: 0, ...settings },
    driver: { authenticate: (_s, user, pass) => (user === USER && pass === PASSWORD ? { fs } : null) },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  return { port, lines, close: () => server.close() };
}

/** Starts a server on a random loopback port with one user over `fs` (a fresh memory provider by default). */
export async function startServer(
  options: { fs?: FsProvider; settings?: Partial<ServerSettings>; driver?: FtpServerOptions['driver'] } = {},
): Promise<{ server: FtpServer; port: number; fs: FsProvider; close(): Promise<void> }> {
  const fs = options.fs ?? new MemoryProvider();
  const server = new FtpServer({
    settings: { failedLoginDelay: 0, passivePortRange: [40000, 44999], ...options.settings },
    driver: options.driver ?? { authenticate: (_s, user, pass) => (user === USER && pass === PASSWORD ? { fs } : null) },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, port, fs, close: () => server.close() };
}

/** A raw control connection for testing replies exactly: every reply is kept in order. */
export class RawClient {
  private readonly parser = new ReplyParser();
  private readonly replies: Reply[] = [];
  private waiters: Array<(r: Reply) => void> = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const r of this.parser.push(chunk)) {
        const w = this.waiters.shift();
        if (w) w(r);
        else this.replies.push(r);
      }
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {});
  }

  /** A logged-in session in TYPE I, closed by `cleanups` (a test file's list, run after each test). */
  static async binarySession(port: number, cleanups: Array<() => unknown>): Promise<RawClient> {
    const c = await RawClient.connect(port);
    cleanups.push(() => c.close());
    await c.login();
    await c.expectCode('TYPE I', 200);
    return c;
  }

  static async connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawClient> {
    const socket = connect({ port, host, localAddress });
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  /** The next reply, or a rejection after `timeoutMs`. */
  next(timeoutMs = 5000): Promise<Reply> {
    const r = this.replies.shift();
    if (r) return Promise.resolve(r);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        reject(new Error(`no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (reply: Reply): void => {
        clearTimeout(timer);
        resolve(reply);
      };
      this.waiters.push(done);
    });
  }

  send(line: string | Buffer): void {
    this.socket.write(typeof line === 'string' ? line + '\r\n' : line);
  }

  async cmd(line: string, timeoutMs?: number): Promise<Reply> {
    this.send(line);
    return this.next(timeoutMs);
  }

  async login(user = USER, pass = PASSWORD): Promise<void> {
    const greeting = await this.next();
    if (greeting.code !== 220) throw new Error(`greeting ${greeting.code}`);
    if ((await this.cmd(`USER ${user}`)).code !== 331) throw new Error('USER');
    const r = await this.cmd(`PASS ${pass}`);
    if (r.code !== 230) throw new Error(`PASS ${r.code} ${r.text}`);
  }

  /** EPSV then connect: the data socket. */
  async passive(): Promise<Socket> {
    const r = await this.cmd('EPSV');
    if (r.code !== 229) throw new Error(`EPSV ${r.code} ${r.text}`);
    const port = parseEpsvReply(r.text);
    const data = connect({ port, host: '127.0.0.1' });
    // A transfer the server stops (ABOR, a stall, shutdown) ends with a reset: a test that cares listens itself.
    data.on('error', () => undefined);
    await once(data, 'connect');
    return data;
  }

  /** STOR over a fresh EPSV connection: `data`, then the end of the file; throws unless 150 and 226 come. */
  async store(name: string, data: Buffer | string): Promise<void> {
    const socket = await this.passive();
    await this.expectCode(`STOR ${name}`, 150);
    await writeAndClose(socket, data);
    await this.expectCode(null, 226);
  }

  /** A download command (RETR, LIST…) over a fresh EPSV connection: its bytes; throws unless 150 and 226 come. */
  async retrieve(command: string): Promise<Buffer> {
    const socket = await this.passive();
    await this.expectCode(command, 150);
    const data = await readAll(socket);
    await this.expectCode(null, 226);
    return data;
  }

  /** Sends `line` (unless null) and checks the next reply's code. */
  private async expectCode(line: string | null, code: number): Promise<void> {
    const r = line === null ? await this.next() : await this.cmd(line);
    if (r.code !== code) throw new Error(`${line ?? 'reply'}: expected ${code}, got ${r.code} ${r.text}`);
  }

  /** Whether the server closed the control connection within `timeoutMs`. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    if (this.closed) return true;
    return Promise.race([once(this.socket, 'close').then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs))]);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Everything a data socket sends until it closes. */
/** The lines a listing command sends over a passive data connection; throws unless it gets 150, then 226. */
export async function listingLines(c: RawClient, command: string): Promise<string[]> {
  const socket = await c.passive();
  c.send(command);
  const started = await c.next();
  if (started.code !== 150) throw new Error(`${command}: expected 150, got ${started.code} ${started.text}`);
  const text = (await readAll(socket)).toString();
  const done = await c.next();
  if (done.code !== 226) throw new Error(`${command}: expected 226, got ${done.code} ${done.text}`);
  return text.split('\r\n').slice(0, -1);
}

export async function readAll(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'close');
  return Buffer.concat(chunks);
}

/** Writes `data` to a data socket and closes it (end of file in stream mode). */
export async function writeAndClose(socket: Socket, data: Buffer | string): Promise<void> {
  await new Promise<void>((resolve) => socket.end(data, () => resolve()));
}

/**
 * `count` consecutive ports that are free now, below the kernel's ephemeral range (32768+), so that no outgoing
 * connection of a parallel test can take one meanwhile. For tests that need an exact, tiny passive range.
 */
export async function freePortRange(count: number): Promise<[number, number]> {
  const { createServer } = await import('node:net');
  const bindable = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 22000 + Math.floor(Math.random() * (32000 - 22000 - count));
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await bindable(p);
    if (ok) return [base, base + count - 1];
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

/** `size` bytes of a pattern that differs with `seed` and along the data (so a shifted or reused chunk shows). */
export function pattern(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 131 + seed * 7 + (i >> 12)) & 0xff;
  return b;
}

/** SHA-256 of `data`, hex: compares big payloads with a readable failure. */
export const sha = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

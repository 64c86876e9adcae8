/**
 * A lean FTP client for the load workloads: raw sockets, Nagle off, data read into one reused buffer. It must
 * cost the machine far less than the server it measures, so it does nothing a workload does not need.
 */
import net from 'node:net';
import { ReplyParser, type Reply } from '@ftp/protocol';

/** A reply that was not the one expected, or a connection that failed. */
export class FtpClientError extends Error {}

// One scratch buffer for every data connection in this process: bytes read are counted, never kept.
const sink = Buffer.allocUnsafe(256 * 1024);

export interface ConnectOptions {
  host: string;
  port: number;
  /** Every wait for a reply or a connection fails after this long. */
  timeoutMs?: number;
}

export class FtpClient {
  readonly #socket: net.Socket;
  readonly #parser = new ReplyParser();
  readonly #replies: Reply[] = [];
  #waiter: { resolve: (r: Reply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null;
  #failure: Error | null = null;
  readonly #host: string;
  readonly #timeoutMs: number;

  private constructor(socket: net.Socket, host: string, timeoutMs: number) {
    this.#socket = socket;
    this.#host = host;
    this.#timeoutMs = timeoutMs;
    socket.on('data', (chunk: Buffer) => {
      for (const reply of this.#parser.push(chunk)) this.#deliver(reply);
    });
    const fail = (e: Error): void => {
      this.#failure ??= e;
      const w = this.#waiter;
      if (w !== null) {
        this.#waiter = null;
        clearTimeout(w.timer);
        w.reject(this.#failure);
      }
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new FtpClientError('control connection closed')));
  }

  /** Connects and reads the greeting (which must be 220). */
  static async connect(options: ConnectOptions): Promise<FtpClient> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const socket = await connectSocket(options.host, options.port, timeoutMs);
    const client = new FtpClient(socket, options.host, timeoutMs);
    try {
      await client.expect(220);
    } catch (err) {
      // A server that accepted but never greeted (a full backlog, a refusal) must not keep this process alive.
      client.destroy();
      throw err;
    }
    return client;
  }

  #deliver(reply: Reply): void {
    const w = this.#waiter;
    if (w === null) {
      this.#replies.push(reply);
      return;
    }
    this.#waiter = null;
    clearTimeout(w.timer);
    w.resolve(reply);
  }

  /** The next reply. */
  next(): Promise<Reply> {
    const queued = this.#replies.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#failure !== null) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = null;
        reject(new FtpClientError(`no reply within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      this.#waiter = { resolve, reject, timer };
    });
  }

  /** The next reply, which must have one of the codes. */
  async expect(...codes: number[]): Promise<Reply> {
    const reply = await this.next();
    if (!codes.includes(reply.code)) throw new FtpClientError(`expected ${codes.join('/')}, got ${reply.code} ${reply.text}`);
    return reply;
  }

  /** Sends one command line. */
  write(line: string): void {
    this.#socket.write(`${line}\r\n`);
  }

  /** Sends a command and returns its reply, which must have one of the codes. */
  async command(line: string, ...codes: number[]): Promise<Reply> {
    this.write(line);
    return this.expect(...codes);
  }

  async login(user: string, password: string): Promise<void> {
    const r = await this.command(`USER ${user}`, 230, 331);
    if (r.code === 331) await this.command(`PASS ${password}`, 230);
  }

  /** Opens a data connection with EPSV (connected before the transfer command, as most clients do). */
  async openData(onData?: (n: number, buf: Buffer) => void): Promise<net.Socket> {
    const r = await this.command('EPSV', 229);
    const m = /\(\|\|\|(\d+)\|\)/.exec(r.text);
    if (!m) throw new FtpClientError(`unreadable EPSV reply: ${r.text}`);
    return connectSocket(this.#host, Number(m[1]), this.#timeoutMs, onData);
  }

  /** Runs a download-type command (RETR, LIST, MLSD); resolves to the bytes and lines (LF count) received. */
  async download(line: string, options: { countLines?: boolean; started?: { at: number } } = {}): Promise<{ bytes: number; lines: number }> {
    let bytes = 0;
    let lines = 0;
    const data = await this.openData((n, buf) => {
      bytes += n;
      if (!options.countLines) return;
      const view = buf.subarray(0, n);
      for (let i = view.indexOf(10); i !== -1; i = view.indexOf(10, i + 1)) lines++;
    });
    try {
      const ended = handled(untilEnd(data, this.#timeoutMs));
      if (options.started) options.started.at = performance.now();
      await this.command(line, 150, 125);
      await ended;
      await this.expect(226, 250);
      return { bytes, lines };
    } finally {
      data.destroy();
    }
  }

  /** Uploads `body` with STOR. */
  async upload(path: string, body: Buffer): Promise<void> {
    const data = await this.openData();
    try {
      const closed = handled(
        new Promise<void>((resolve, reject) => {
          data.once('error', reject);
          data.once('close', () => resolve());
        }),
      );
      data.resume(); // nothing is expected from the server, but never leave its FIN unread
      await this.command(`STOR ${path}`, 150, 125);
      data.end(body);
      await closed;
      await this.expect(226, 250);
    } finally {
      data.destroy();
    }
  }

  async quit(): Promise<void> {
    try {
      await this.command('QUIT', 221);
    } finally {
      this.#socket.destroy();
    }
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

/** A TCP connection with Nagle off; data connections read into the shared sink. */
export function connectSocket(host: string, port: number, timeoutMs: number, onData?: (n: number, buf: Buffer) => void): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host,
      port,
      noDelay: true,
      ...(onData ? { onread: { buffer: sink, callback: (n: number, buf: Buffer) => (onData(n, buf), true) } } : {}),
    });
    const timer = setTimeout(() => socket.destroy(new FtpClientError(`connect to ${host}:${port} timed out`)), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', reject);
      resolve(socket);
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** The same promise, marked as handled: it may reject while the caller is still awaiting something else. */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/** Resolves when the peer has ended the socket (its bytes go to the socket's own reader). */
function untilEnd(socket: net.Socket, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => socket.destroy(new FtpClientError(`data not complete within ${timeoutMs} ms`)), timeoutMs);
    socket.once('close', () => clearTimeout(timer));
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.once('end', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    });
  });
}

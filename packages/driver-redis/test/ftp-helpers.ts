import { Readable, Writable } from 'node:stream';
import { Client } from 'basic-ftp';
import { FtpServer } from '@ftp/server';
import type { FtpServerOptions, ServerSettings } from '@ftp/server';
import type { FsProvider } from '@ftp/vfs';

export const USER = 'alice';
export const PASSWORD = 's3cret';

/** An FtpServer on a random loopback port, one user over `fs`. */
export async function startFtp(fs: FsProvider, settings: Partial<ServerSettings> = {}, extra: Partial<FtpServerOptions> = {}): Promise<{ server: FtpServer; port: number }> {
  const server = new FtpServer({
    settings: { failedLoginDelay: 0, passivePortRange: [45000, 49999], ...settings },
    driver: { authenticate: (_s, user, pass) => (user === USER && pass === PASSWORD ? { fs } : null) },
    ...extra,
  });
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, port };
}

/** A logged-in basic-ftp client. */
export async function ftpClient(port: number, user = USER, password = PASSWORD): Promise<Client> {
  const client = new Client(10_000);
  await client.access({ host: '127.0.0.1', port, user, password });
  return client;
}

/** Uploads a buffer. */
export async function upload(client: Client, path: string, data: Buffer): Promise<void> {
  await client.uploadFrom(Readable.from([data]), path);
}

/** Downloads a file into one buffer (small files only). */
export async function download(client: Client, path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  await client.downloadTo(sink, path);
  return Buffer.concat(chunks);
}


/** A bare control connection: send a command, await the final reply line (`NNN text`). Enough for STOR/ABOR tests. */
export class RawFtp {
  #buffer = '';
  #waiters: ((line: string) => void)[] = [];
  #lines: string[] = [];

  private constructor(readonly socket: import('node:net').Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.#buffer += text;
      for (let i = this.#buffer.indexOf('\r\n'); i >= 0; i = this.#buffer.indexOf('\r\n')) {
        const line = this.#buffer.slice(0, i);
        this.#buffer = this.#buffer.slice(i + 2);
        if (!/^\d{3} /.test(line)) continue; // Continuation lines of multi-line replies.
        const w = this.#waiters.shift();
        if (w) w(line);
        else this.#lines.push(line);
      }
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number): Promise<RawFtp> {
    const { connect } = await import('node:net');
    const socket = connect({ port, host: '127.0.0.1' });
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const c = new RawFtp(socket);
    await c.next();
    return c;
  }

  /** The next final reply line, or a rejection after 5 s. */
  next(): Promise<string> {
    const l = this.#lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reply within 5 s')), 5000);
      this.#waiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  }

  async cmd(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`);
    return this.next();
  }

  close(): void {
    this.socket.destroy();
  }
}

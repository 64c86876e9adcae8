import { once } from 'node:events';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { Client } from 'basic-ftp';
import { FtpServer, type ServerSettings } from '@ftp/server';
import { parseEpsvReply, ReplyParser } from '@ftp/protocol';
import type { Reply } from '@ftp/protocol';
import type { FsProvider } from '@ftp/vfs';

export const USER = 'alice';
export const PASSWORD = 'pw';

let nextRange = 47000 + (process.pid % 20) * 100;

/** An FtpServer on a random loopback port, one user over `fs`, its own passive port range. */
export async function startFtp(fs: FsProvider, settings: Partial<ServerSettings> = {}): Promise<{ server: FtpServer; port: number }> {
  const start = nextRange;
  nextRange += 100;
  if (nextRange >= 49900) nextRange = 47000;
  const server = new FtpServer({
    settings: { failedLoginDelay: 0, passivePortRange: [start, start + 99], ...settings },
    driver: { authenticate: (_s, user, pass) => (user === USER && pass === PASSWORD ? { fs } : null) },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, port };
}

/** A logged-in basic-ftp client. */
export async function ftpClient(port: number): Promise<Client> {
  const c = new Client(15_000);
  await c.access({ host: '127.0.0.1', port, user: USER, password: PASSWORD, secure: false });
  return c;
}

/** A raw control connection (for ABOR in the middle of an upload). */
export class RawFtp {
  readonly #parser = new ReplyParser();
  readonly #replies: Reply[] = [];
  #waiters: ((r: Reply) => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (b: Buffer) => {
      for (const r of this.#parser.push(b)) {
        const w = this.#waiters.shift();
        if (w !== undefined) w(r);
        else this.#replies.push(r);
      }
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number): Promise<RawFtp> {
    const s = connect({ host: '127.0.0.1', port });
    await once(s, 'connect');
    const raw = new RawFtp(s);
    await raw.next();
    await raw.cmd(`USER ${USER}`);
    const r = await raw.cmd(`PASS ${PASSWORD}`);
    if (r.code !== 230) throw new Error(`login: ${r.code} ${r.text}`);
    return raw;
  }

  next(timeoutMs = 10_000): Promise<Reply> {
    const r = this.#replies.shift();
    if (r !== undefined) return Promise.resolve(r);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push((reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
    });
  }

  async cmd(line: string): Promise<Reply> {
    this.socket.write(`${line}\r\n`);
    return this.next();
  }

  /** EPSV and a connected data socket. */
  async passive(): Promise<Socket> {
    const r = await this.cmd('EPSV');
    const data = connect({ host: '127.0.0.1', port: parseEpsvReply(r.text) });
    await once(data, 'connect');
    data.on('error', () => undefined);
    return data;
  }

  close(): void {
    this.socket.destroy();
  }
}

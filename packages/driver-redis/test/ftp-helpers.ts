import { PassThrough, Readable, Writable } from 'node:stream';
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

export { PassThrough };

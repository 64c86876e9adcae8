import { spawn } from 'node:child_process';
import net from 'node:net';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FtpClient, FtpClientError } from '../src/ftp-client.js';
import { waitForGreeting } from '../src/servers/process.js';

const CLI = fileURLToPath(new URL('../../ftpd/dist/cli.js', import.meta.url));

describe('the load generator client, against ftpd', () => {
  it('logs in, uploads, downloads with byte and line counts, and fails clearly on a wrong reply', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'bench-client-'));
    await mkdir(path.join(root, 'dir'));
    for (let i = 0; i < 25; i++) await writeFile(path.join(root, 'dir', `f${i}`), 'x');
    const port = 20000 + Math.floor(Math.random() * 5000);
    const child = spawn(process.execPath, [CLI, '--port', String(port), '--root', root, '--user', 'u', '--password', 'p', '--pasv-range', `${port + 5000}-${port + 5010}`, '--log-level', 'warn'], { stdio: 'ignore' });
    try {
      await waitForGreeting(port, 15_000);
      const client = await FtpClient.connect({ host: '127.0.0.1', port, timeoutMs: 5000 });
      await client.login('u', 'p');
      await client.command('TYPE I', 200);
      const body = Buffer.alloc(100_000, 7);
      await client.upload('up.bin', body);
      expect(await readFile(path.join(root, 'up.bin'))).toEqual(body);
      expect(await client.download('RETR up.bin')).toEqual({ bytes: 100_000, lines: 0 });
      const listing = await client.download('MLSD dir', { countLines: true });
      expect(listing.lines).toBe(25);
      await expect(client.command('NOOP', 331)).rejects.toThrow(FtpClientError);
      await client.quit();
    } finally {
      child.kill('SIGKILL');
      await rm(root, { recursive: true, force: true });
    }
  });

  it('closes its connection when the server accepts it but never greets (a full backlog): nothing keeps the bench alive', async () => {
    const closed: Promise<void>[] = [];
    const silent = net.createServer((socket) => closed.push(new Promise((resolve) => socket.on('close', () => resolve()))));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as net.AddressInfo;
      await expect(FtpClient.connect({ host: '127.0.0.1', port, timeoutMs: 200 })).rejects.toThrow(/no reply within 200 ms/);
      expect(closed).toHaveLength(1);
      await closed[0];
    } finally {
      silent.close();
    }
  });
});

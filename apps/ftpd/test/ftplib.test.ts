import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeFiles, PASSWORD, run, startFtpd, USER, type RunningFtpd } from './harness.js';

let ftpd: RunningFtpd;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ftplib-e2e-'));
  await makeFiles(work);
  ftpd = await startFtpd();
});
afterAll(async () => {
  expect(await ftpd.stop()).toBe(0);
  await rm(work, { recursive: true, force: true });
});

it('Python ftplib: round-trips, odd names, quotes in paths, REST both ways, TYPE A', async () => {
  const script = fileURLToPath(new URL('./fixtures/ftplib_client.py', import.meta.url));
  const { stdout } = await run('python3', [script, '127.0.0.1', String(ftpd.port), USER, PASSWORD, work], { timeoutMs: 120000 });
  expect(stdout).toContain('ftplib: all checks passed');
});

it('ABOR sent with urgent data in the middle of a 1 GiB RETR: 426 then 226, and the session goes on', { timeout: 60000 }, async () => {
  const { open } = await import('node:fs/promises');
  const fh = await open(join(ftpd.root, 'gig.bin'), 'w');
  await fh.truncate(1024 ** 3);
  await fh.close();
  const script = `
import ftplib, socket, time
f = ftplib.FTP(); f.connect('127.0.0.1', ${ftpd.port}, timeout=20); f.login(${JSON.stringify(USER)}, ${JSON.stringify(PASSWORD)})
f.voidcmd('TYPE I')
conn = f.transfercmd('RETR gig.bin')
got = 0
while got < 8 * 1024 * 1024:
    got += len(conn.recv(1 << 20))
# Telnet IP and DM, the DM as TCP urgent data (RFC 959 4.1.3), then ABOR
f.sock.sendall(b'\\xff\\xf4')
f.sock.sendall(b'\\xff\\xf2', socket.MSG_OOB)
f.sock.sendall(b'ABOR\\r\\n')
first = f.getline()
second = f.getline()
conn.close()
print(first[:3], second[:3], f.voidcmd('NOOP')[:3], got < 1024 ** 3)
`;
  const { stdout } = await run('python3', ['-c', script], { timeoutMs: 60000 });
  expect(stdout.trim()).toBe('426 226 200 True');
});

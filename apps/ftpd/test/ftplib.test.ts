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

it('Python ftplib in Latin-1: names that are not UTF-8 are stored, listed and served byte for byte', async () => {
  const { readdir, writeFile, mkdir } = await import('node:fs/promises');
  // A file and a folder named in Latin-1 on disk before the server sees them (a legacy tree).
  await mkdir(Buffer.from(join(ftpd.root, 'legacy-\xe9t\xe9'), 'latin1'));
  await writeFile(Buffer.from(join(ftpd.root, 'legacy-\xe9t\xe9', 'r\xe9sum\xe9.txt'), 'latin1'), 'old bytes');
  const script = `
import ftplib, io
f = ftplib.FTP(encoding='latin-1'); f.connect('127.0.0.1', ${ftpd.port}, timeout=20); f.login(${JSON.stringify(USER)}, ${JSON.stringify(PASSWORD)})
f.voidcmd('TYPE I')
f.storbinary('STOR caf\\xe9.txt', io.BytesIO(b'e-acute'))
f.storbinary('STOR caf\\xe8.txt', io.BytesIO(b'e-grave'))
print(sorted(n for n in f.nlst() if n.startswith('caf')))
f.cwd('legacy-\\xe9t\\xe9'); print(f.pwd())
out = io.BytesIO(); f.retrbinary('RETR r\\xe9sum\\xe9.txt', out.write); print(out.getvalue().decode())
print([name for name, facts in f.mlsd()])
f.quit()
`;
  const { stdout } = await run('python3', ['-c', script], { timeoutMs: 60000 });
  expect(stdout.trim().split('\n')).toEqual([
    "['caf\xe8.txt', 'caf\xe9.txt']",
    '/legacy-\xe9t\xe9',
    'old bytes',
    "['r\xe9sum\xe9.txt']",
  ]);
  const onDisk = (await readdir(ftpd.root, { encoding: 'buffer' })).map((n) => n.toString('latin1'));
  expect(onDisk).toEqual(expect.arrayContaining(['caf\xe9.txt', 'caf\xe8.txt']));
});

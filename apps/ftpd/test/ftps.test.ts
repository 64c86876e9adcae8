import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lftp, makeCertificateFiles, makeFiles, PASSWORD, run, sha256File, startFtpd, USER, type RunningFtpd } from './harness.js';

let work: string;
let tlsArgs: string[];
let files: Awaited<ReturnType<typeof makeFiles>>;
const servers: RunningFtpd[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ftps-e2e-'));
  const { cert, key } = await makeCertificateFiles(work);
  tlsArgs = ['--tls-cert', cert, '--tls-key', key];
  files = await makeFiles(work, [1024 * 1024]);
});
afterAll(async () => {
  for (const s of servers) expect(await s.stop()).toBe(0);
  await rm(work, { recursive: true, force: true });
});

async function ftpd(args: string[]): Promise<RunningFtpd> {
  const s = await startFtpd([...tlsArgs, ...args]);
  servers.push(s);
  return s;
}

const ftplibTls = fileURLToPath(new URL('./fixtures/ftplib_tls.py', import.meta.url));

describe('FTPS with real clients', () => {
  it('curl --ssl-reqd (explicit) and ftps:// (implicit) round-trip files', async () => {
    const s = await ftpd(['--implicit-port', '0', '--tls-required', 'all']);
    const file = files.get(1024 * 1024)!;
    await run('curl', ['-sS', '--fail', '-k', '--ssl-reqd', '-T', file.path, `${s.url}/explicit.bin`]);
    await run('curl', ['-sS', '--fail', '-k', '--ssl-reqd', '-o', join(work, 'explicit.back'), `${s.url}/explicit.bin`]);
    expect(await sha256File(join(work, 'explicit.back'))).toBe(file.sha256);
    const implicit = `ftps://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${s.implicitPort}`;
    await run('curl', ['-sS', '--fail', '-k', '-T', file.path, `${implicit}/implicit.bin`]);
    await run('curl', ['-sS', '--fail', '-k', '-o', join(work, 'implicit.back'), `${implicit}/implicit.bin`]);
    expect(await sha256File(join(work, 'implicit.back'))).toBe(file.sha256);
    // TLS required: a clear-text login is refused.
    await expect(run('curl', ['-sS', '--fail', `${s.url}/explicit.bin`, '-o', '/dev/null'])).rejects.toThrow(/530|denied/i);
  });

  it.each([
    ['passive', 'yes'],
    ['active', 'no'],
  ])('lftp with ftp:ssl-force and ftp:ssl-protect-data (%s)', async (_mode, passive) => {
    const s = await ftpd(['--tls-required', 'all']);
    await writeFile(join(s.root, 'secret.txt'), 'over TLS');
    const { stdout } = await lftp(
      s.port,
      `set ftp:ssl-force yes; set ftp:ssl-protect-data yes; set ftp:passive-mode ${passive}; cat secret.txt; put ${JSON.stringify(files.get(1024 * 1024)!.path)} -o up.bin`,
    );
    expect(stdout).toContain('over TLS');
    expect(await sha256File(join(s.root, 'up.bin'))).toBe(files.get(1024 * 1024)!.sha256);
  });

  it('lftp with ftp:ssl-use-ccc: TLS login, then clear control and protected data', async () => {
    const s = await ftpd(['--allow-ccc']);
    await writeFile(join(s.root, 'after-ccc.txt'), 'still protected data');
    const { stdout } = await lftp(s.port, 'set ftp:ssl-force yes; set ftp:ssl-protect-data yes; set ftp:ssl-use-ccc yes; cat after-ccc.txt; ls');
    expect(stdout).toContain('still protected data');
    expect(stdout).toContain('after-ccc.txt');
    // curl's CCC modes wait for the server's close_notify (passive) or send theirs first (active).
    for (const mode of ['passive', 'active']) {
      const out = join(work, `ccc-${mode}.back`);
      await run('curl', ['-sS', '--fail', '-k', '--ssl-reqd', '--ftp-ssl-ccc', '--ftp-ssl-ccc-mode', mode, '-o', out, `${s.url}/after-ccc.txt`]);
      expect(await readFile(out, 'utf8')).toBe('still protected data');
    }
  });

  it('Python ftplib FTP_TLS: a data channel that resumes the TLS session works, passive and active', async () => {
    const s = await ftpd([]);
    const { stdout } = await run('python3', [ftplibTls, '127.0.0.1', String(s.port), USER, PASSWORD, 'reuse']);
    expect(stdout.trim()).toBe('verdict: ok ok');
  });

  it('Python ftplib FTP_TLS without session reuse works by default, and is refused with --require-tls-session-reuse', async () => {
    const lenient = await ftpd([]);
    expect((await run('python3', [ftplibTls, '127.0.0.1', String(lenient.port), USER, PASSWORD, 'noreuse'])).stdout.trim()).toBe('verdict: ok ok');
    const strict = await ftpd(['--require-tls-session-reuse']);
    expect((await run('python3', [ftplibTls, '127.0.0.1', String(strict.port), USER, PASSWORD, 'noreuse'])).stdout.trim()).toBe(
      'verdict: refused refused',
    );
  });

  it('uploads from a client that never reads its data connection and closes it at once (as Go clients such as rclone do) are stored whole', { timeout: 60000 }, async () => {
    const s = await ftpd([]);
    // Under TLS 1.3 the server's session tickets would stay unread: the client's close then resets the connection
    // and the end of the upload is lost (426, a truncated file). Three uploads of 5 MiB, an empty one last.
    const script = `
import ftplib, ssl, hashlib
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
f = ftplib.FTP_TLS(context=ctx); f.connect('127.0.0.1', ${s.port}, timeout=20); f.auth()
f.login(${JSON.stringify(USER)}, ${JSON.stringify(PASSWORD)}); f.prot_p(); f.voidcmd('TYPE I')
out = []
for i, size in enumerate((5 << 20, 5 << 20, 5 << 20, 0)):
    body = bytes([i + 1]) * size
    conn = f.transfercmd('STOR gone%d.bin' % i)
    conn.sendall(body)
    version = conn.version()
    conn.close()  # no unwrap, nothing read
    try:
        reply = f.voidresp()[:3]
    except ftplib.all_errors as e:
        reply = str(e)[:3]
    out.append('%s %s %s' % (reply, version, hashlib.sha256(body).hexdigest()[:16]))
print('\\n'.join(out))
`;
    const { stdout } = await run('python3', ['-c', script], { timeoutMs: 60000 });
    const lines = stdout.trim().split('\n');
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['226', '226', '226', '226']);
    for (const [i, line] of lines.entries()) {
      expect(await sha256File(join(s.root, `gone${i}.bin`))).toMatch(new RegExp(`^${line.split(' ')[2]}`));
    }
  });

  it('curl: three files in one FTPS session (under TLS 1.3 it resumes only its first data connection)', async () => {
    const s = await ftpd([]);
    const dir = await mkdtemp(join(tmpdir(), 'ftpd-curl-three-'));
    const names = ['one.bin', 'two.bin', 'three.bin'];
    for (const [i, name] of names.entries()) await writeFile(join(s.root, name), Buffer.alloc(100_000 + i, i + 1));
    const args = ['-sS', '--fail', '-k', '--ssl-reqd'];
    for (const name of names) args.push(`${s.url}/${name}`, '-o', join(dir, name));
    await run('curl', args);
    for (const [i, name] of names.entries()) expect((await readFile(join(dir, name))).equals(Buffer.alloc(100_000 + i, i + 1))).toBe(true);
  });
});

describe('attacks', () => {
  it('a PORT bounce to 127.0.0.2 from a client on 127.0.0.1 is refused', async () => {
    const s = await ftpd([]);
    const script = `
import ftplib
f = ftplib.FTP(); f.connect('127.0.0.1', ${s.port}, source_address=('127.0.0.1', 0)); f.login(${JSON.stringify(USER)}, ${JSON.stringify(PASSWORD)})
for cmd in ('PORT 127,0,0,2,31,144', 'EPRT |1|127.0.0.2|8080|', 'PORT 127,0,0,1,0,25'):
    try:
        print(f.sendcmd(cmd))
    except ftplib.error_perm as e:
        print(e)
`;
    const { stdout } = await run('python3', ['-c', script]);
    const codes = stdout.trim().split('\n').map((l) => l.slice(0, 3));
    expect(codes).toEqual(['500', '500', '500']);
  });

  it('by default a brute-force loop from loopback bans nobody (each connection is still closed after 3 failures)', { timeout: 60000 }, async () => {
    const s = await ftpd(['--max-login-failures', '5', '--login-delay', '0']);
    const script = `
import ftplib
for i in range(20):
    f = ftplib.FTP()
    f.connect('127.0.0.1', ${s.port}, timeout=10)
    try:
        f.login('root', 'guess%d' % i)
    except ftplib.error_perm:
        pass
    f.close()
f = ftplib.FTP(); f.connect('127.0.0.1', ${s.port}, timeout=10)
print(f.login(${JSON.stringify(USER)}, ${JSON.stringify(PASSWORD)})[:3])
`;
    expect((await run('python3', ['-c', script], { timeoutMs: 60000 })).stdout.trim()).toBe('230');
  });

  it('a brute-force loop of 30 bad passwords ends in a ban (--ban-exempt \'\': loopback is exempt by default)', { timeout: 60000 }, async () => {
    const s = await ftpd(['--max-login-failures', '10', '--login-delay', '20', '--ban-exempt', '']);
    const script = `
import ftplib, time
outcome = 'not banned'
for i in range(30):
    f = ftplib.FTP()
    try:
        f.connect('127.0.0.1', ${s.port}, timeout=10)
        f.login('root', 'guess%d' % i)
    except ftplib.error_temp as e:
        if str(e).startswith('421'):
            outcome = 'banned after %d attempts' % i
            break
    except ftplib.error_perm:
        pass
    except EOFError:
        pass
    finally:
        f.close()
print(outcome)
`;
    const { stdout } = await run('python3', ['-c', script], { timeoutMs: 60000 });
    expect(stdout).toMatch(/^banned after (\d+) attempts/);
    expect(Number(/(\d+)/.exec(stdout)?.[1])).toBeLessThanOrEqual(11);
    // The banned address is refused at connect, before it can even try the right password.
    const greeting = `
import ftplib
try:
    print(ftplib.FTP().connect('127.0.0.1', ${s.port}, timeout=10))
except ftplib.error_temp as e:
    print(e)
`;
    expect((await run('python3', ['-c', greeting])).stdout).toMatch(/^421 /);
  });
});

import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../src/passwords.js';
import { timeLeft } from '../src/tls-material.js';
import { cliOutcome, makeCertificateFiles, run, startFtpd, startFtpdConfig } from './harness.js';

let work: string;
let hash: string;
let first: { cert: string; key: string };
let second: { cert: string; key: string };
/** `first`'s key, encrypted with the passphrase "open sesame". */
let encryptedKey: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ftpd-tls-files-'));
  hash = await hashPassword('s3cret pass');
  first = await makeCertificateFiles(await mkdtemp(join(work, 'first-')), 30);
  second = await makeCertificateFiles(await mkdtemp(join(work, 'second-')), 30);
  encryptedKey = join(work, 'encrypted-key.pem');
  await run('openssl', ['pkey', '-in', first.key, '-out', encryptedKey, '-aes256', '-passout', 'pass:open sesame']);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => cliOutcome(args, { env });

/** A configuration file with TLS, from the `tls:` line given. */
async function tlsConfig(name: string, tls: string): Promise<string> {
  const file = join(work, name);
  await writeFile(
    file,
    ['listeners: [{ host: 127.0.0.1, port: 0 }, { host: 127.0.0.1, port: 0, implicitTls: true }]', tls, 'backends: { m: { type: memory } }', `users: [{ name: alice, passwordHash: "${hash}", backend: m }]`, ''].join('\n'),
  );
  return file;
}

/** The SHA-256 fingerprint an implicit FTPS listener shows, or the handshake's error. */
function fingerprintAt(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.on('error', (err) => resolve(`refused: ${err.message}`));
  });
}

const keyBody = async (file: string): Promise<string> => (await readFile(file, 'utf8')).split('\n')[1]!;

describe('TLS files', () => {
  it('a key read into tls.key (FTPD_TLS__KEY_FILE, fromFile) is refused, and never printed or logged', async () => {
    const file = await tlsConfig('key-content.yaml', `tls: { cert: ${JSON.stringify(first.cert)}, key: /nowhere/key.pem }`);
    const env = { FTPD_TLS__KEY_FILE: first.key };
    const body = await keyBody(first.key);
    for (const args of [['check-config', file], ['--config', file]]) {
      const r = await cli(args, env);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/tls\.key: holds file content \(PEM text or several lines\) where a file path is expected/);
      expect(`${r.stdout}${r.stderr}`).not.toContain(body);
      expect(`${r.stdout}${r.stderr}`).not.toContain('PRIVATE KEY');
    }
    const fromFile = await tlsConfig('key-from-file.yaml', `tls: { cert: ${JSON.stringify(first.cert)}, key: { fromFile: ${JSON.stringify(first.key)} } }`);
    const r = await cli(['--config', fromFile]);
    expect(r.code).toBe(1);
    expect(`${r.stdout}${r.stderr}`).not.toContain(body);
    // A key given on the command line in place of its path is not printed back either.
    const pasted = await cli(['--port', '0', '--root', work, '--tls-cert', first.cert, `--tls-key=${await readFile(first.key, 'utf8')}`]);
    expect(pasted.code).toBe(1);
    expect(pasted.stderr).toMatch(/--tls-key: holds file content \(PEM text or several lines\) where a file path is expected/);
    expect(`${pasted.stdout}${pasted.stderr}`).not.toContain(body);
  });

  it('check-config and the start refuse TLS files that cannot serve, each in one line', async () => {
    const cases: Array<[string, RegExp]> = [
      [`{ cert: ${JSON.stringify(first.cert)}, key: ${JSON.stringify(second.key)} }`, /tls\.cert and tls\.key do not belong together/],
      [`{ cert: ${JSON.stringify(first.key)}, key: ${JSON.stringify(first.cert)} }`, /tls\.cert holds a private key and tls\.key a certificate: they are swapped/],
      [`{ cert: ${JSON.stringify(first.cert)}, key: ${JSON.stringify(encryptedKey)} }`, /tls\.key is encrypted: give its passphrase in tls\.passphrase/],
      [`{ cert: ${JSON.stringify(first.cert)}, key: ${JSON.stringify(encryptedKey)}, passphrase: wrong }`, /tls\.passphrase does not decrypt tls\.key/],
      [`{ cert: ./missing.pem, key: ${JSON.stringify(first.key)} }`, /tls\.cert: cannot read .*missing\.pem: no such file/],
      [`{ cert: ${JSON.stringify(first.cert)}, key: ${JSON.stringify(first.key)}, ciphers: NO-SUCH-CIPHER }`, /tls\.ciphers: OpenSSL knows none of the ciphers listed/],
    ];
    for (const [i, [tls, message]] of cases.entries()) {
      const file = await tlsConfig(`broken-${i}.yaml`, `tls: ${tls}`);
      const check = await cli(['check-config', file]);
      expect({ tls, code: check.code }).toEqual({ tls, code: 1 });
      expect(check.stderr).toMatch(message);
      const start = await cli(['--config', file]);
      expect({ tls, code: start.code }).toEqual({ tls, code: 1 });
      expect(start.stderr).toMatch(message);
      expect(start.stderr).not.toMatch(/\n\s+at /);
    }
    const good = await tlsConfig('encrypted-ok.yaml', `tls: { cert: ${JSON.stringify(first.cert)}, key: ${JSON.stringify(encryptedKey)}, passphrase: open sesame }`);
    expect(await cli(['check-config', good])).toMatchObject({ code: 0, stderr: '' });
  });

  it('the command line refuses a broken pair or an encrypted key at start, with exit code 1', async () => {
    const mismatch = await cli(['--port', '0', '--root', work, '--tls-cert', first.cert, '--tls-key', second.key]);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toContain('ftpd: cannot start: --tls-cert and --tls-key do not belong together');
    const encrypted = await cli(['--port', '0', '--root', work, '--tls-cert', first.cert, '--tls-key', encryptedKey, '--workers', '2']);
    expect(encrypted.code).toBe(1);
    expect(encrypted.stderr).toMatch(/--tls-key is encrypted: the command line takes no passphrase/);
  });

  it('a certificate near its end (or past it) gets a warning, from check-config and at start', async () => {
    const short = await makeCertificateFiles(await mkdtemp(join(work, 'short-')), 2);
    const file = await tlsConfig('short.yaml', `tls: { cert: ${JSON.stringify(short.cert)}, key: ${JSON.stringify(short.key)} }`);
    const check = await cli(['check-config', file]);
    expect(check.code).toBe(0);
    expect(check.stderr).toMatch(/warning: tls\.cert expires on .*, in 1 day 23 hours\n/);
    const s = await startFtpdConfig(file, 2);
    try {
      expect(s.stderr()).toMatch(/ftpd: warning: tls\.cert expires on/);
      for (let i = 0; i < 20 && !s.logs().some((l) => l.level === 40); i++) await new Promise((r) => setTimeout(r, 100));
      expect(s.logs().find((l) => l.level === 40)?.msg).toMatch(/tls\.cert expires on/);
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });

  it('SIGHUP with a broken pair keeps the working one and says why at error level', async () => {
    const cert = join(work, 'live-cert.pem');
    const key = join(work, 'live-key.pem');
    await copyFile(first.cert, cert);
    await copyFile(first.key, key);
    const s = await startFtpdConfig(await tlsConfig('reload.yaml', `tls: { cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)} }`), 2);
    try {
      const implicit = s.ports[1]!;
      const before = await fingerprintAt(implicit);
      expect(before).toMatch(/^[0-9A-F:]{95}$/);
      // Another key under the same certificate: what a renewal half done, or in the wrong order, leaves.
      await copyFile(second.key, key);
      s.proc.kill('SIGHUP');
      for (let i = 0; i < 50 && !s.logs().some((l) => l.level === 50); i++) await new Promise((r) => setTimeout(r, 100));
      expect(s.logs().find((l) => l.level === 50)?.msg).toBe(
        'TLS certificate reload failed, the previous one stays: tls.cert and tls.key do not belong together: the certificate is for another key',
      );
      expect(s.logs().some((l) => l.msg === 'TLS certificate reloaded')).toBe(false);
      expect(await fingerprintAt(implicit)).toBe(before);
      // A whole new pair is taken.
      await copyFile(second.cert, cert);
      s.proc.kill('SIGHUP');
      let after = before;
      for (let i = 0; i < 50 && after === before; i++) {
        await new Promise((r) => setTimeout(r, 100));
        after = await fingerprintAt(implicit);
      }
      expect(after).toMatch(/^[0-9A-F:]{95}$/);
      expect(after).not.toBe(before);
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });
});

describe('how long a certificate has left, as a warning says it', () => {
  it('in whole units, cut down', () => {
    const h = 3_600_000;
    expect(timeLeft(13 * 24 * h + 4 * h + 59 * 60_000)).toBe('13 days 4 hours');
    expect(timeLeft(2 * 24 * h - 60_000)).toBe('1 day 23 hours');
    expect(timeLeft(24 * h)).toBe('1 day');
    expect(timeLeft(5 * h + 1)).toBe('5 hours');
    expect(timeLeft(h)).toBe('1 hour');
    expect(timeLeft(61_000)).toBe('1 minute');
    expect(timeLeft(12_000)).toBe('0 minutes');
    expect(timeLeft(-5)).toBe('0 minutes');
  });
});

describe('SIGHUP in zero-config mode', () => {
  it('reads --tls-cert and --tls-key again, and does not stop the server', async () => {
    const cert = join(work, 'cli-cert.pem');
    const key = join(work, 'cli-key.pem');
    await copyFile(first.cert, cert);
    await copyFile(first.key, key);
    const s = await startFtpd(['--tls-cert', cert, '--tls-key', key, '--implicit-port', '0', '--log-level', 'info']);
    try {
      const before = await fingerprintAt(s.implicitPort!);
      await copyFile(second.cert, cert);
      await copyFile(second.key, key);
      s.proc.kill('SIGHUP');
      let after = before;
      for (let i = 0; i < 50 && after === before; i++) {
        await new Promise((r) => setTimeout(r, 100));
        after = await fingerprintAt(s.implicitPort!);
      }
      expect(after).not.toBe(before);
      for (let i = 0; i < 50 && !s.logs().some((l) => l.msg === 'TLS certificate reloaded'); i++) await new Promise((r) => setTimeout(r, 100));
      expect(s.logs().some((l) => l.msg === 'TLS certificate reloaded')).toBe(true);
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });

  it.each([[[]], [['--workers', '2']]])('without TLS files %j: says there is nothing to reload and keeps serving', async (extra) => {
    const s = await startFtpd(['--log-level', 'info', ...extra]);
    try {
      s.proc.kill('SIGHUP');
      for (let i = 0; i < 50 && !s.logs().some((l) => /nothing to reload/.test(String(l.msg))); i++) await new Promise((r) => setTimeout(r, 100));
      expect(s.logs().some((l) => /^SIGHUP: nothing to reload/.test(String(l.msg)))).toBe(true);
      expect(s.proc.exitCode).toBe(null);
      expect((await run('curl', ['-sS', '--fail', `${s.url}/`, '-l'])).stdout).toBe('');
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });
});

import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../src/passwords.js';
import { CLI, makeCertificateFiles, run, startFtpdConfig, type ConfiguredFtpdProcess } from './harness.js';

const examples = fileURLToPath(new URL('../examples/', import.meta.url));
let work: string;
let hash: string;
const running: ConfiguredFtpdProcess[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ftpd-config-'));
  hash = await hashPassword('s3cret pass');
});
afterAll(async () => {
  for (const s of running) expect(await s.stop()).toBe(0);
  await rm(work, { recursive: true, force: true });
});

/** Runs the CLI and resolves with its exit code and output, whatever the code. */
function cli(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { timeout: 20000, env: { ...process.env, ...options.env } }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

async function serve(name: string, yaml: string, listeners = 1, env: NodeJS.ProcessEnv = {}): Promise<ConfiguredFtpdProcess> {
  const file = join(work, name);
  await writeFile(file, yaml);
  const s = await startFtpdConfig(file, listeners, env);
  running.push(s);
  return s;
}

describe('ftpd check-config', () => {
  it('accepts every example in examples/', { timeout: 90000 }, async () => {
    const files = (await readdir(examples)).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThanOrEqual(4);
    // Secrets the examples read from files are given here the way a container would (an _FILE override), and the
    // TLS files, which check-config reads, the way one mounts them (a path override).
    const dbUrl = join(work, 'db-url');
    await writeFile(dbUrl, 'postgres://ftpd@127.0.0.1:5432/test\n');
    const tls = await makeCertificateFiles(await mkdtemp(join(work, 'example-tls-')), 30);
    const provided: Record<string, NodeJS.ProcessEnv> = {
      'postgres.yaml': { FTPD_BACKENDS__DB__URL_FILE: dbUrl },
      'tls.yaml': { FTPD_TLS__CERT: tls.cert, FTPD_TLS__KEY: tls.key },
    };
    for (const f of files) {
      const r = await cli(['check-config', join(examples, f)], { env: provided[f] ?? {} });
      expect({ f, code: r.code, err: r.stderr }).toEqual({ f, code: 0, err: '' });
      expect(r.stdout).toContain(': ok (');
    }
  });

  it('names the file, the field path and what was expected, and exits 1', async () => {
    const file = join(work, 'bad.yaml');
    await writeFile(
      file,
      ['listeners:', '  - port: 99999', 'backends:', '  disk: { type: lokal, root: /x }', 'users:', '  - name: bob', '    passwordHash: plain', '    backend: disk', 'server:', '  idleTimout: 5', ''].join('\n'),
    );
    const r = await cli(['check-config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}: invalid configuration`);
    expect(r.stderr).toMatch(/listeners\[0\]\.port: .*65535/);
    expect(r.stderr).toMatch(/backends\.disk\.type: .*'memory' \| 'local' \| 'sqlite'/);
    expect(r.stderr).toMatch(/users\[0\]\.passwordHash \(user "bob"\): expected an scrypt hash/);
    expect(r.stderr).toMatch(/server: Unrecognized key: "idleTimout"/);
  });

  it('takes a DNS name as server.publicHost (PASV advertises its address) and refuses an IPv6 one', async () => {
    const base = ['listeners:', '  - { host: 127.0.0.1, port: 0 }', 'backends:', '  m: { type: memory }', 'users:', `  - { name: bob, passwordHash: "${hash}", backend: m }`];
    const bad = join(work, 'public-six.yaml');
    await writeFile(bad, [...base, 'server: { publicHost: "::1" }', ''].join('\n'));
    const refused = await cli(['check-config', bad]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/server\.publicHost: expected an IPv4 address or a DNS name/);
    const s = await serve('public-name.yaml', [...base, 'server: { publicHost: localhost }', ''].join('\n'));
    const r = await run('curl', ['-sS', '--ftp-pasv', '--disable-epsv', '-v', '-l', `ftp://bob:s3cret%20pass@127.0.0.1:${s.ports[0]}/`]);
    expect(r.stderr).toMatch(/227 Entering Passive Mode \(127,0,0,1,/);
  });

  it('reports references to unknown backends and YAML syntax errors with their line', async () => {
    const refs = join(work, 'refs.yaml');
    await writeFile(refs, `backends:\n  disk: { type: memory }\nusers:\n  - { name: bob, passwordHash: "${hash}", backend: dsk }\n`);
    const r1 = await cli(['check-config', refs]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toContain('users[0].backend (user "bob"): unknown backend "dsk" (defined: disk)');
    // Two listeners on one address and port: said by check-config, not only when the start fails.
    const twice = join(work, 'twice.yaml');
    await writeFile(twice, `listeners:\n  - { port: 2999 }\n  - { host: 127.0.0.1, port: 2999 }\nbackends:\n  disk: { type: memory }\nusers:\n  - { name: bob, passwordHash: "${hash}", backend: disk }\n`);
    const r3 = await cli(['check-config', twice]);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toContain('listeners[1]: 127.0.0.1:2999 is listed twice');
    const syntax = join(work, 'syntax.yaml');
    await writeFile(syntax, 'backends:\n  disk: [\n');
    const r2 = await cli(['check-config', syntax]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/line \d+, column \d+: /);
  });

  it('a server given an invalid file does not start', async () => {
    const file = join(work, 'nostart.yaml');
    await writeFile(file, 'backends: {}\n');
    const r = await cli(['--config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/users: no user and no anonymous access/);
  });

  it('a server whose Redis is down exits 1 at once, saying why (it waited for ever, printing ioredis lines)', async () => {
    const file = join(work, 'redis-down.yaml');
    // Port 1: nothing listens there.
    await writeFile(file, `listeners: [{ host: 127.0.0.1, port: 0 }]\nbackends:\n  r: { type: redis, url: "redis://127.0.0.1:1/0", prefix: down }\nusers:\n  - { name: bob, passwordHash: "${hash}", backend: r }\n`);
    const t0 = Date.now();
    const r = await cli(['--config', file]);
    expect(r.code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(15000);
    expect(r.stderr).toContain('ftpd: cannot start: backend "r" (redis): EIO: redis: cannot reach Redis: connect ECONNREFUSED 127.0.0.1:1');
    expect(r.stderr).not.toContain('[ioredis]');
  });

  it('environment variables override the file, and secrets can come from files', async () => {
    const file = join(work, 'env.yaml');
    await writeFile(file, `backends:\n  m: { type: memory }\nusers:\n  - { name: bob, passwordHash: { fromFile: ./bob.hash }, backend: m }\n`);
    const r1 = await cli(['check-config', file]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(/users\[0\]\.passwordHash: cannot read .*bob\.hash/);
    await writeFile(join(work, 'bob.hash'), `${hash}\n`);
    expect((await cli(['check-config', file])).code).toBe(0);
    const bad = await cli(['check-config', file], { env: { FTPD_SERVER__IDLE_TIMEOUT: 'soon' } });
    expect(bad.stderr).toMatch(/server\.idleTimeout: .*expected number/);
    expect((await cli(['check-config', file], { env: { FTPD_SERVER__IDLE_TIMEOUT: '30', FTPD_LISTENERS__0__PORT: '0' } })).code).toBe(0);
    const missing = await cli(['check-config', file], { env: { FTPD_USERS__0__PASSWORD_HASH_FILE: join(work, 'nope') } });
    expect(missing.stderr).toMatch(/FTPD_USERS__0__PASSWORD_HASH_FILE: cannot read/);
  });
});

describe('ftpd hash-password', () => {
  it('reads the password from standard input and prints a hash that logs in', async () => {
    const r = await cli(['hash-password'], { input: 'from stdin\n' });
    expect(r.code).toBe(0);
    const printed = r.stdout.trim();
    expect(printed).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$/);
    const s = await serve('hashed.yaml', `listeners: [{ port: 0 }]\nbackends: { m: { type: memory } }\nusers:\n  - { name: carol, passwordHash: "${printed}", backend: m }\n`);
    await run('curl', ['-sS', '--fail', `ftp://carol:from%20stdin@127.0.0.1:${s.ports[0]}/`, '-l']);
    await expect(run('curl', ['-sS', '--fail', `ftp://carol:wrong@127.0.0.1:${s.ports[0]}/`, '-l'])).rejects.toThrow(/530|denied/i);
  });
});

describe('ftpd --config with real clients', () => {
  it('serves users in their own homes with their permissions, and anonymous read-only', async () => {
    const root = join(work, 'disk');
    await mkdir(join(root, 'pub'), { recursive: true });
    await writeFile(join(root, 'pub', 'readme.txt'), 'public');
    const s = await serve(
      'users.yaml',
      [
        'listeners: [{ host: 127.0.0.1, port: 0 }, { host: "::1", port: 0 }]',
        'backends:',
        `  disk: { type: local, root: ${JSON.stringify(root)} }`,
        'users:',
        `  - { name: alice, passwordHash: "${hash}", backend: disk, home: /alice }`,
        `  - { name: viewer, passwordHash: "${hash}", backend: disk, home: /alice, permissions: read-only }`,
        `  - { name: dropper, passwordHash: "${hash}", backend: disk, home: /drop, permissions: [write] }`,
        'anonymous: { backend: disk, home: /pub }',
        'server: { failedLoginDelay: 0 }',
        '',
      ].join('\n'),
      2,
    );
    const [v4, v6] = s.ports;
    const url = (user: string, port = v4): string => `ftp://${user}:s3cret%20pass@127.0.0.1:${port}`;
    const src = join(work, 'up.txt');
    await writeFile(src, 'alice data');
    await mkdir(join(root, 'alice'), { recursive: true });
    await mkdir(join(root, 'drop'), { recursive: true });
    await run('curl', ['-sS', '--fail', '-T', src, `${url('alice')}/a.txt`]);
    expect(await readFile(join(root, 'alice', 'a.txt'), 'utf8')).toBe('alice data');
    // The same server on its IPv6 listener.
    expect((await run('curl', ['-sS', '--fail', '-g', `ftp://alice:s3cret%20pass@[::1]:${v6}/a.txt`])).stdout).toBe('alice data');
    // read-only: downloads work, uploads are refused and touch nothing.
    expect((await run('curl', ['-sS', '--fail', `${url('viewer')}/a.txt`])).stdout).toBe('alice data');
    await expect(run('curl', ['-sS', '--fail', '-T', src, `${url('viewer')}/b.txt`])).rejects.toThrow(/550|denied|upload/i);
    // write only: uploads work, downloads and deletes are refused.
    await run('curl', ['-sS', '--fail', '-T', src, `${url('dropper')}/in.txt`]);
    await expect(run('curl', ['-sS', '--fail', `${url('dropper')}/in.txt`])).rejects.toThrow(/550|denied|RETR/i);
    await expect(run('curl', ['-sS', '--fail', '-Q', 'DELE in.txt', `${url('dropper')}/`])).rejects.toThrow(/550|QUOT/i);
    // anonymous sees only /pub, read-only; alice's files are not reachable.
    expect((await run('curl', ['-sS', '--fail', `ftp://anonymous:x@127.0.0.1:${v4}/readme.txt`])).stdout).toBe('public');
    await expect(run('curl', ['-sS', '--fail', `ftp://anonymous:x@127.0.0.1:${v4}/../alice/a.txt`, '--path-as-is'])).rejects.toThrow();
    await expect(run('curl', ['-sS', '--fail', '-T', src, `ftp://anonymous:x@127.0.0.1:${v4}/x.txt`])).rejects.toThrow();
    // A wrong password and an unknown user get the same 530.
    await expect(run('curl', ['-sS', '--fail', `ftp://alice:nope@127.0.0.1:${v4}/`])).rejects.toThrow(/530|denied/i);
    await expect(run('curl', ['-sS', '--fail', `ftp://mallory:nope@127.0.0.1:${v4}/`])).rejects.toThrow(/530|denied/i);
  });

  it('mounts put three backends in one tree; moving between them is refused', async () => {
    const root = join(work, 'mount-disk');
    const s = await serve(
      'mounts.yaml',
      [
        'listeners: [{ port: 0 }]',
        'backends:',
        `  disk: { type: local, root: ${JSON.stringify(root)} }`,
        `  db: { type: sqlite, file: ${JSON.stringify(join(work, 'mounts.db'))} }`,
        '  tmp: { type: memory }',
        'users:',
        `  - name: alice`,
        `    passwordHash: "${hash}"`,
        '    backend: disk',
        '    mounts: { /db: { backend: db, home: / }, /deep/scratch: { backend: tmp } }',
        `  - { name: dbadmin, passwordHash: "${hash}", backend: db }`,
        'server: { failedLoginDelay: 0 }',
        '',
      ].join('\n'),
    );
    const url = (user: string): string => `ftp://${user}:s3cret%20pass@127.0.0.1:${s.ports[0]}`;
    const src = join(work, 'mounted.txt');
    await writeFile(src, 'in sqlite');
    await run('curl', ['-sS', '--fail', '-T', src, `${url('alice')}/db/m.txt`]);
    await run('curl', ['-sS', '--fail', '-T', src, `${url('alice')}/deep/scratch/s.txt`]);
    await run('curl', ['-sS', '--fail', '-T', src, `${url('alice')}/d.txt`]);
    // The file is in the SQLite backend (seen by a user whose home is that backend), not on disk.
    expect((await run('curl', ['-sS', '--fail', `${url('dbadmin')}/m.txt`])).stdout).toBe('in sqlite');
    expect(await readdir(root)).toEqual(['d.txt']);
    const listing = (await run('curl', ['-sS', '--fail', `${url('alice')}/`, '-l'])).stdout.split(/\r?\n/).filter(Boolean).sort();
    expect(listing).toEqual(['d.txt', 'db', 'deep']);
    await expect(run('curl', ['-sS', '--fail', '-Q', 'RNFR d.txt', '-Q', 'RNTO db/d.txt', `${url('alice')}/`])).rejects.toThrow(/550|QUOT/i);
  });

  it('an sql backend (SQLite URL) creates its tables and serves files', async () => {
    const s = await serve(
      'sql.yaml',
      [
        'listeners: [{ port: 0 }]',
        `backends: { db: { type: sql, url: "sqlite:${join(work, 'sql-backend.db')}", tablePrefix: ftpd_, quota: 1000000 } }`,
        `users: [{ name: alice, passwordHash: "${hash}", backend: db }]`,
        '',
      ].join('\n'),
    );
    const url = `ftp://alice:s3cret%20pass@127.0.0.1:${s.ports[0]}`;
    const src = join(work, 'sql.txt');
    await writeFile(src, 'in a table');
    await run('curl', ['-sS', '--fail', '-T', src, `${url}/f.txt`]);
    expect((await run('curl', ['-sS', '--fail', `${url}/f.txt`])).stdout).toBe('in a table');
    // The quota is the backend's: AVBL reports what is left of it.
    const { stderr } = await run('curl', ['-sS', '-v', '-Q', 'AVBL', `${url}/`, '-l']);
    expect(stderr).toMatch(new RegExp(`213 ${1000000 - 'in a table'.length}\\b`));
  });

  it('a user quota refuses the upload that would pass it with 552, and AVBL answers against it', async () => {
    const s = await serve(
      'quota.yaml',
      ['listeners: [{ port: 0 }]', 'backends: { m: { type: memory } }', `users: [{ name: alice, passwordHash: "${hash}", backend: m, quota: 100 }]`, ''].join('\n'),
    );
    const url = `ftp://alice:s3cret%20pass@127.0.0.1:${s.ports[0]}`;
    const src = join(work, 'sixty.bin');
    await writeFile(src, Buffer.alloc(60, 1));
    await run('curl', ['-sS', '--fail', '-T', src, `${url}/one.bin`]);
    expect((await run('curl', ['-sS', '-v', '-Q', 'AVBL', `${url}/`, '-l'])).stderr).toMatch(/213 40\b/);
    await expect(run('curl', ['-sS', '--fail', '-T', src, `${url}/two.bin`])).rejects.toThrow(/Exceeded storage allocation/);
  });

  it('lftp stops at a quota reached during an upload: it reads the 552 and does not send the file again', async () => {
    const s = await serve(
      'quota-lftp.yaml',
      ['listeners: [{ port: 0 }]', 'backends: { m: { type: memory } }', `users: [{ name: alice, passwordHash: "${hash}", backend: m, quota: 1048576 }]`, ''].join('\n'),
    );
    const src = join(work, 'thirty-two.bin');
    await writeFile(src, Buffer.alloc(32 * 1024 * 1024, 7));
    // The storage fails mid-upload, while lftp is still sending. Before, the data connection was cut before the 552
    // went out, and lftp, seeing a reset, reconnected and sent the file again until its retries ran out.
    for (let i = 0; i < 3; i++) {
      const script = `set ftp:ssl-allow no; set cmd:fail-exit yes; set net:max-retries 2; set net:reconnect-interval-base 1; put ${src} -o up${i}.bin; quit`;
      await expect(run('lftp', ['-u', 'alice,s3cret pass', '-p', String(s.ports[0]), '-e', script, '127.0.0.1'])).rejects.toThrow(/Access failed: 552 .*quota/);
    }
  });

  it('TLS required, implicit and explicit listeners, and the certificate reloaded on SIGHUP', async () => {
    const first = await makeCertificateFiles(await mkdtemp(join(work, 'cert1-')));
    const second = await makeCertificateFiles(await mkdtemp(join(work, 'cert2-')));
    const cert = join(work, 'cert.pem');
    const key = join(work, 'key.pem');
    await writeFile(cert, await readFile(first.cert));
    await writeFile(key, await readFile(first.key));
    const s = await serve(
      'tls.yaml',
      [
        'listeners: [{ port: 0 }, { port: 0, implicitTls: true }]',
        `tls: { cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)}, ciphers: "ECDHE-RSA-AES128-GCM-SHA256" }`,
        'backends: { m: { type: memory } }',
        `users: [{ name: alice, passwordHash: "${hash}", backend: m }]`,
        'server: { tlsRequired: all, failedLoginDelay: 0 }',
        '',
      ].join('\n'),
      2,
    );
    const [explicit, implicit] = s.ports;
    const src = join(work, 'tls.txt');
    await writeFile(src, 'over tls');
    await run('curl', ['-sS', '--fail', '-k', '--ssl-reqd', '-T', src, `ftp://alice:s3cret%20pass@127.0.0.1:${explicit}/t.txt`]);
    expect((await run('curl', ['-sS', '--fail', '-k', `ftps://alice:s3cret%20pass@127.0.0.1:${implicit}/t.txt`])).stdout).toBe('over tls');
    await expect(run('curl', ['-sS', '--fail', `ftp://alice:s3cret%20pass@127.0.0.1:${explicit}/t.txt`])).rejects.toThrow(/530|denied/i);

    // The configured cipher list for TLS 1.2 (TLS 1.3, which curl used, keeps its suites), in place of the default.
    const cipherOf = (ciphers: string): Promise<string> =>
      new Promise((resolve) => {
        const socket = tlsConnect({ port: implicit!, host: '127.0.0.1', rejectUnauthorized: false, maxVersion: 'TLSv1.2', ciphers }, () => {
          resolve(socket.getCipher().standardName);
          socket.destroy();
        });
        socket.on('error', (err) => resolve(`refused: ${err.message}`));
      });
    expect(await cipherOf('ECDHE-RSA-AES256-GCM-SHA384')).toMatch(/^refused/);
    expect(await cipherOf('ECDHE-RSA-AES128-GCM-SHA256')).toBe('TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256');

    const fingerprint = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = tlsConnect({ port: implicit!, host: '127.0.0.1', rejectUnauthorized: false }, () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          socket.destroy();
        });
        socket.on('error', reject);
      });
    const before = await fingerprint();
    await writeFile(cert, await readFile(second.cert));
    await writeFile(key, await readFile(second.key));
    s.proc.kill('SIGHUP');
    let after = before;
    for (let i = 0; i < 50 && after === before; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await fingerprint();
    }
    expect(after).not.toBe(before);
    expect(s.proc.exitCode).toBe(null);
  });

  it('metrics and health over HTTP; SIGTERM lets a running transfer finish, then exits 0', { timeout: 60000 }, async () => {
    const root = join(work, 'drain');
    await mkdir(root, { recursive: true });
    await writeFile(join(root, 'slow.bin'), Buffer.alloc(3 * 1024 * 1024, 1));
    const s = await serve(
      'metrics.yaml',
      [
        'listeners: [{ port: 0 }]',
        'metrics: { port: 0 }',
        'shutdownGrace: 20',
        `backends: { disk: { type: local, root: ${JSON.stringify(root)} } }`,
        `users: [{ name: alice, passwordHash: "${hash}", backend: disk, downloadRate: 1048576 }]`,
        'server: { failedLoginDelay: 0 }',
        '',
      ].join('\n'),
    );
    // The metrics line may come in a later chunk than the listeners'.
    for (let i = 0; i < 50 && !/metrics on/.test(s.stderr()); i++) await new Promise((r) => setTimeout(r, 100));
    const metricsPort = Number(/metrics on http:\/\/[^:]+:(\d+)/.exec(s.stderr())?.[1]);
    const http = async (path: string): Promise<{ status: number; body: string }> => {
      const r = await fetch(`http://127.0.0.1:${metricsPort}${path}`);
      return { status: r.status, body: await r.text() };
    };
    const url = `ftp://alice:s3cret%20pass@127.0.0.1:${s.ports[0]}`;
    await writeFile(join(work, 'metrics-up.txt'), 'counted');
    await run('curl', ['-sS', '--fail', '-T', join(work, 'metrics-up.txt'), `${url}/m.txt`]);
    await expect(run('curl', ['-sS', '--fail', `ftp://alice:bad@127.0.0.1:${s.ports[0]}/`])).rejects.toThrow();
    await expect(run('curl', ['-sS', '--fail', `${url}/missing.txt`])).rejects.toThrow();
    expect(await http('/healthz')).toEqual({ status: 200, body: '{"status":"ok"}' });
    const m = (await http('/metrics')).body;
    expect(m).toMatch(/^ftpd_logins_total\{outcome="ok"\} [1-9]/m);
    expect(m).toMatch(/^ftpd_logins_total\{outcome="failed"\} 1$/m);
    expect(m).toMatch(/^ftpd_transfers_total\{direction="upload",outcome="ok"\} 1$/m);
    expect(m).toMatch(/^ftpd_transfer_bytes_total\{direction="in"\} [1-9]/m);
    expect(m).toMatch(/^ftpd_error_replies_total\{code="530"\} 1$/m);
    expect(m).toMatch(/^ftpd_error_replies_total\{code="550"\} [1-9]/m);
    expect(m).toMatch(/^# TYPE ftpd_sessions gauge$/m);

    // A 3 MiB download at 1 MiB/s is running when SIGTERM comes: it completes, new clients are refused.
    const out = join(work, 'slow.back');
    const download = run('curl', ['-sS', '--fail', '-o', out, `${url}/slow.bin`], { timeoutMs: 30000 });
    // SIGTERM only once bytes flow (a loaded machine may take a while to start curl).
    for (let i = 0; i < 100 && ((await stat(out).catch(() => null))?.size ?? 0) === 0; i++) await new Promise((r) => setTimeout(r, 100));
    const exited = new Promise<number | null>((resolve) => s.proc.once('exit', (code) => resolve(code)));
    s.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    expect((await http('/healthz').catch(() => ({ status: 0, body: '' }))).status).toBe(503);
    await expect(run('curl', ['-sS', '--fail', `${url}/`, '-l'], { timeoutMs: 5000 })).rejects.toThrow();
    await download;
    expect((await readFile(out)).length).toBe(3 * 1024 * 1024);
    expect(await exited).toBe(0);
  });
});

import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../src/passwords.js';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { CLI, makeCertificateFiles, startFtpdConfig, waitFor, type ConfiguredFtpdProcess } from './harness.js';

/** A control connection read one final reply at a time (every wait bounded). */
class ControlConnection {
  private buffer = '';
  private wake: (() => void) | null = null;
  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.wake?.();
    });
    socket.on('close', () => this.wake?.());
    socket.on('error', () => this.wake?.());
  }

  /** Connects and resolves with the connection and its greeting. */
  static async open(port: number): Promise<{ control: ControlConnection; greeting: string }> {
    const control = new ControlConnection(connect({ port, host: '127.0.0.1' }));
    return { control, greeting: await control.reply() };
  }

  async send(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`);
    return this.reply();
  }

  private async reply(): Promise<string> {
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const end = this.buffer.indexOf('\r\n');
      if (end >= 0) {
        const line = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        if (/^\d{3} /.test(line)) return line;
        continue;
      }
      if (this.socket.destroyed) return '(closed)';
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 100);
      });
    }
    return '(timeout)';
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Logs in on a new connection: resolves with the logged-in connection, or null and the PASS reply when refused. */
async function logIn(port: number, user: string, password: string): Promise<{ control: ControlConnection | null; reply: string }> {
  const { control } = await ControlConnection.open(port);
  await control.send(`USER ${user}`);
  const reply = await control.send(`PASS ${password}`);
  if (reply.startsWith('230 ')) return { control, reply };
  control.close();
  return { control: null, reply };
}

/** The reply code of a whole login (the connection is closed after). */
async function loginCode(port: number, user: string, password: string): Promise<string> {
  const { control, reply } = await logIn(port, user, password);
  control?.close();
  return reply.slice(0, 3);
}

type Log = Record<string, unknown>;
const messages = (s: ConfiguredFtpdProcess, level: number): string[] => s.logs().filter((l: Log) => l.level === level).map((l: Log) => String(l.msg));
const WARN = 40;
const ERROR = 50;
const INFO = 30;

let work: string;
/** Password hashes by password, at scrypt's lowest cost ftpd accepts: a login takes a millisecond, not 50–100. */
const hashes = new Map<string, string>();
const running: ConfiguredFtpdProcess[] = [];
/** Processes a test starts itself (see 'SIGHUP at the edges'). */
const strays: ChildProcess[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ftpd-reload-'));
  for (const pw of ['bob-old', 'bob-new', 'carol-pw', 'dave-pw']) hashes.set(pw, await hashPassword(pw, { ln: 10, r: 8, p: 1 }));
});
afterAll(async () => {
  for (const p of strays) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const s of running) expect(await s.stop()).toBe(0);
  await rm(work, { recursive: true, force: true });
});

const user = (name: string, password: string, backend = 'm'): Log => ({ name, passwordHash: hashes.get(password), backend });
/** A configuration (JSON is YAML): quick failed logins, no bans (the tests fail logins on purpose). */
const configText = (parts: { users: Log[]; backends?: Log; server?: Log; listeners?: Log[]; workers?: number; tls?: Log; shutdownGrace?: number }): string =>
  JSON.stringify({
    listeners: parts.listeners ?? [{ host: '127.0.0.1', port: 0 }],
    ...(parts.tls ? { tls: parts.tls } : {}),
    backends: parts.backends ?? { m: { type: 'memory' } },
    users: parts.users,
    server: { failedLoginDelay: 0, maxLoginFailures: 0, ...parts.server },
    ...(parts.workers ? { workers: parts.workers } : {}),
    ...(parts.shutdownGrace !== undefined ? { shutdownGrace: parts.shutdownGrace } : {}),
  });

async function serve(name: string, text: string): Promise<{ s: ConfiguredFtpdProcess; file: string }> {
  const file = join(work, name);
  await writeFile(file, text);
  const s = await startFtpdConfig(file, 1);
  running.push(s);
  return { s, file };
}

/** Rewrites the file, sends SIGHUP and waits for the outcome's info line (or, for an invalid file, its error line). */
async function reload(s: ConfiguredFtpdProcess, file: string, text: string): Promise<void> {
  const before = s.logs().length;
  await writeFile(file, text);
  s.proc.kill('SIGHUP');
  const done = (): boolean => s.logs().slice(before).some((l) => /^SIGHUP: configuration (reloaded|not reloaded)/.test(String(l.msg)));
  await waitFor(done);
  expect(done()).toBe(true);
}

describe('SIGHUP with a configuration file', () => {
  it('applies the users to new logins (added, removed, new password) and keeps the sessions already open', async () => {
    const { s, file } = await serve('users.yaml', configText({ users: [user('bob', 'bob-old'), user('dave', 'dave-pw')] }));
    const port = s.ports[0]!;
    expect(await loginCode(port, 'bob', 'bob-old')).toBe('230');
    const dave = (await logIn(port, 'dave', 'dave-pw')).control!;
    expect(dave).not.toBeNull();

    await reload(s, file, configText({ users: [user('bob', 'bob-new'), user('carol', 'carol-pw')] }));
    expect(messages(s, INFO)).toContain('SIGHUP: configuration reloaded: 2 users (1 added, 1 removed, 1 changed), no TLS');
    expect(messages(s, WARN)).toEqual([]);
    expect(await loginCode(port, 'bob', 'bob-old')).toBe('530');
    expect(await loginCode(port, 'bob', 'bob-new')).toBe('230');
    expect(await loginCode(port, 'carol', 'carol-pw')).toBe('230');
    expect(await loginCode(port, 'dave', 'dave-pw')).toBe('530');
    // Dave's session from before the reload goes on, as with vsftpd, proftpd or pure-ftpd.
    expect(await dave.send('MKD /made-after-the-reload')).toMatch(/^257 /);
    expect(await dave.send('CWD /made-after-the-reload')).toMatch(/^250 /);
    dave.close();
    expect(s.proc.exitCode).toBe(null);
  });

  it('an invalid file changes nothing and is said in one error line', async () => {
    const { s, file } = await serve('invalid.yaml', configText({ users: [user('bob', 'bob-old')] }));
    const port = s.ports[0]!;
    const invalid = configText({ users: [user('bob', 'bob-new'), { name: 'carol', passwordHash: 'plain text', backend: 'm' }] });
    await reload(s, file, invalid);
    const errors = messages(s, ERROR);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBe(
      `SIGHUP: configuration not reloaded, nothing changed: ${file}: invalid configuration: users[1].passwordHash (user "carol"): expected an scrypt hash as \`ftpd hash-password\` prints it ($scrypt$ln=…)`,
    );
    expect(messages(s, INFO).some((m) => m.startsWith('SIGHUP: configuration reloaded'))).toBe(false);
    expect(await loginCode(port, 'bob', 'bob-old')).toBe('230');
    expect(await loginCode(port, 'bob', 'bob-new')).toBe('530');
    expect(await loginCode(port, 'carol', 'carol-pw')).toBe('530');
  });

  it('changed listeners and server settings are named and wait for a restart; the users are applied', async () => {
    const server = { banner: 'before the reload' };
    const { s, file } = await serve('sections.yaml', configText({ users: [user('bob', 'bob-old')], server }));
    const port = s.ports[0]!;
    const listeners = [
      { host: '127.0.0.1', port: 0 },
      { host: '127.0.0.1', port: 0, implicitTls: false, proxyProtocol: true },
    ];
    await reload(s, file, configText({ users: [user('bob', 'bob-old'), user('carol', 'carol-pw')], server: { banner: 'after the reload' }, listeners }));
    expect(messages(s, WARN)).toEqual(['SIGHUP: listeners, server changed: restart ftpd to apply them']);
    expect(messages(s, INFO)).toContain('SIGHUP: configuration reloaded: 2 users (1 added, 0 removed, 0 changed), no TLS');
    const { control, greeting } = await ControlConnection.open(port);
    control.close();
    expect(greeting).toBe('220 before the reload');
    expect(await loginCode(port, 'carol', 'carol-pw')).toBe('230');
  });

  it('a user whose home on a local disk is a file is warned of, as at start', async () => {
    const root = join(work, 'homes-root');
    await mkdir(root, { recursive: true });
    await writeFile(join(root, 'afile'), 'not a folder');
    const backends = { disk: { type: 'local', root } };
    const { s, file } = await serve('homes.yaml', configText({ backends, users: [{ ...user('bob', 'bob-old', 'disk'), home: '/bob' }] }));
    expect(messages(s, WARN)).toEqual([]);
    await reload(s, file, configText({ backends, users: [{ ...user('bob', 'bob-old', 'disk'), home: '/bob' }, { ...user('carol', 'carol-pw', 'disk'), home: '/afile' }] }));
    expect(messages(s, WARN)).toEqual([`SIGHUP: users[1].home: home /afile on backend "disk" (${join(root, 'afile')}) is not a folder: user "carol" cannot log in until it is one`]);
    expect(await loginCode(s.ports[0]!, 'bob', 'bob-old')).toBe('230');
  });

  it('users naming a backend that is new are refused whole: the running users stay', async () => {
    const { s, file } = await serve('backend.yaml', configText({ users: [user('bob', 'bob-old')] }));
    const port = s.ports[0]!;
    const backends = { m: { type: 'memory' }, extra: { type: 'memory' } };
    await reload(s, file, configText({ users: [user('bob', 'bob-new'), user('carol', 'carol-pw', 'extra')], backends }));
    expect(messages(s, ERROR)).toEqual(['SIGHUP: users not reloaded, the running ones stay: user "carol" uses backend "extra", which is new: restart ftpd to apply it']);
    expect(messages(s, WARN)).toEqual(['SIGHUP: backends changed: restart ftpd to apply them']);
    expect(messages(s, INFO)).toContain('SIGHUP: configuration reloaded: users unchanged (refused, see the error above), no TLS');
    expect(await loginCode(port, 'bob', 'bob-old')).toBe('230');
    expect(await loginCode(port, 'bob', 'bob-new')).toBe('530');
    expect(await loginCode(port, 'carol', 'carol-pw')).toBe('530');
  });
});

/** The worker processes of a supervisor, now. */
async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(' ').filter(Boolean).map(Number);
}

describe.skipIf(platform() !== 'linux')('SIGHUP with a configuration file and workers (SKIPPED off Linux: SO_REUSEPORT)', () => {
  it('the supervisor checks the file once and every worker applies the users, a worker started later too', { timeout: 60000 }, async () => {
    const root = join(work, 'workers-root');
    await mkdir(root, { recursive: true });
    const backends = { disk: { type: 'local', root } };
    const { s, file } = await serve('workers.yaml', configText({ users: [user('bob', 'bob-old', 'disk')], backends, workers: 2 }));
    const port = s.ports[0]!;
    const applied = (): Log[] => s.logs().filter((l) => l.worker !== undefined && String(l.msg).startsWith('SIGHUP: configuration applied: 2 users'));
    await waitFor(() => s.logs().filter((l) => l.worker !== undefined && l.msg === 'listening').length >= 2);

    // An invalid file: one line from the supervisor, none from the workers.
    await reload(s, file, '{ users: [');
    expect(messages(s, ERROR)).toHaveLength(1);
    expect(s.logs().some((l) => l.worker !== undefined && /^SIGHUP/.test(String(l.msg)))).toBe(false);

    await reload(s, file, configText({ users: [user('bob', 'bob-old', 'disk'), user('carol', 'carol-pw', 'disk')], backends, workers: 2 }));
    // Lines logged close together reach the output together, up to 100 ms later (log-output.ts): waited for.
    await waitFor(() => s.logs().some((l) => l.worker === undefined && String(l.msg).startsWith('SIGHUP: configuration reloaded')));
    expect(s.logs().filter((l) => l.worker === undefined && String(l.msg).startsWith('SIGHUP: configuration reloaded'))).toHaveLength(1);
    await waitFor(() => applied().length >= 2);
    expect(new Set(applied().map((l) => l.pid)).size).toBe(2);
    // The kernel spreads connections over both workers' sockets: 20 logins all on one would be 2^-19.
    const connectedBefore = s.logs().filter((l) => l.msg === 'connected').length;
    for (let i = 0; i < 20; i++) expect(await loginCode(port, 'carol', 'carol-pw')).toBe('230');
    const served = (): Set<unknown> => new Set(s.logs().filter((l) => l.msg === 'connected').slice(connectedBefore).map((l) => l.pid));
    await waitFor(() => served().size === 2);
    expect(served().size).toBe(2);

    // A worker that dies is replaced by one started with the reloaded users.
    const [first] = await childrenOf(s.proc.pid!);
    process.kill(first!, 'SIGKILL');
    await waitFor(() => s.logs().filter((l) => l.worker !== undefined && l.msg === 'listening').length >= 3, 20000);
    for (let i = 0; i < 20; i++) expect(await loginCode(port, 'carol', 'carol-pw')).toBe('230');
  });

  it('with TLS, the supervisor checks the new pair once and every worker serves it', { timeout: 60000 }, async () => {
    const first = await makeCertificateFiles(await mkdtemp(join(work, 'cert1-')));
    const second = await makeCertificateFiles(await mkdtemp(join(work, 'cert2-')));
    const cert = join(work, 'live-cert.pem');
    const key = join(work, 'live-key.pem');
    await copyFile(first.cert, cert);
    await copyFile(first.key, key);
    const root = join(work, 'tls-root');
    await mkdir(root, { recursive: true });
    const text = configText({
      users: [user('bob', 'bob-old', 'disk')],
      backends: { disk: { type: 'local', root } },
      listeners: [{ host: '127.0.0.1', port: 0, implicitTls: true }],
      tls: { cert, key },
      workers: 2,
    });
    const { s, file } = await serve('workers-tls.yaml', text);
    const fingerprint = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = tlsConnect({ port: s.ports[0]!, host: '127.0.0.1', rejectUnauthorized: false }, () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          socket.destroy();
        });
        socket.on('error', reject);
      });
    const before = await fingerprint();
    await copyFile(second.cert, cert);
    await copyFile(second.key, key);
    await reload(s, file, text);
    expect(messages(s, INFO)).toContain('SIGHUP: configuration reloaded: 1 user (0 added, 0 removed, 0 changed), TLS reloaded');
    await waitFor(() => s.logs().filter((l) => l.msg === 'SIGHUP: configuration applied: 1 user, TLS reloaded').length >= 2);
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) seen.add(await fingerprint());
    expect([...seen]).toHaveLength(1);
    expect(seen.has(before)).toBe(false);
  });
});

describe('SIGHUP at the edges of the process', () => {
  it('one sent while ftpd starts is done once it serves, not the end of it; one during its stop changes nothing', async () => {
    // The password hash comes from a FIFO: ftpd is held reading its configuration, well after its code runs and
    // long before it listens, until the test writes to it.
    const fifo = join(work, 'hash.fifo');
    execFileSync('mkfifo', [fifo]);
    const file = join(work, 'early.yaml');
    const text = JSON.stringify({
      listeners: [{ host: '127.0.0.1', port: 0 }],
      backends: { m: { type: 'memory' } },
      users: [{ name: 'bob', passwordHash: { fromFile: fifo }, backend: 'm' }],
      server: { failedLoginDelay: 0, maxLoginFailures: 0 },
      shutdownGrace: 1,
    });
    await writeFile(file, text);
    const proc = spawn(process.execPath, [CLI, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Ended by the test; killed should it fail on the way (it may be held reading the FIFO).
    strays.push(proc);
    let out = '';
    let err = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | string | null>((resolve) => proc.once('exit', (code, signal) => resolve(signal ?? code)));
    // Once ftpd's code catches SIGHUP (the process's caught-signals mask says so): Node's own default would end it.
    const catches = async (): Promise<boolean> => /SigCgt:\s*[0-9a-f]*[13579bdf]\s*$/m.test(await readFile(`/proc/${proc.pid}/status`, 'utf8').catch(() => ''));
    for (let i = 0; i < 400 && !(await catches()); i++) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 100));
    proc.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 100));
    // Still reading its configuration: it goes on once the hash comes, then does the reload it was asked for (which
    // reads the hash again).
    await writeFile(fifo, hashes.get('bob-old')!);
    await waitFor(() => /listening on ftp:\/\/[^\s]+:(\d+)/.test(err) || proc.exitCode !== null || proc.signalCode !== null);
    expect(proc.signalCode).toBe(null);
    const port = Number(/listening on ftp:\/\/[^\s]+:(\d+)/.exec(err)?.[1]);
    await writeFile(fifo, hashes.get('bob-old')!);
    await waitFor(() => out.includes('SIGHUP: configuration reloaded'));
    expect(out.match(/SIGHUP: configuration reloaded: 1 user \(0 added, 0 removed, 0 changed\)/g)).toHaveLength(1);
    // Hang-ups while it drains (a reload overlapping a stop, an upload still running) are ignored, and the stop still
    // ends with 0. (They would read the FIFO again, and wait.) Not in Node's own last milliseconds of exit, where no
    // listener runs: no code of ours can catch those.
    const { control } = await logIn(port, 'bob', 'bob-old');
    const epsv = await control!.send('EPSV');
    const data = connect({ port: Number(/\|(\d+)\|/.exec(epsv)![1]), host: '127.0.0.1' });
    data.on('error', () => {});
    await new Promise((r) => data.once('connect', r));
    expect(await control!.send('STOR slow.bin')).toMatch(/^150 /);
    data.write(Buffer.alloc(1000));
    proc.kill('SIGTERM');
    await waitFor(() => out.includes('shutting down'));
    for (let i = 0; i < 3; i++) {
      proc.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await exited).toBe(0);
    data.destroy();
    control!.close();
  });
});

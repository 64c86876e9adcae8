import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { platform, tmpdir } from 'node:os';
import { connect, createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { PassThrough, Writable } from 'node:stream';
import { Client } from 'basic-ftp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../src/passwords.js';
import { CLI, PASSWORD, run, startFtpd, startFtpdConfig, USER, waitFor, type ConfiguredFtpdProcess, type RunningFtpd } from './harness.js';

/** Connects, reads the first reply line, sends the given lines one reply at a time, and closes. */
async function talk(port: number, lines: string[] = [], from?: string, keepOpen?: (close: () => void) => void): Promise<string[]> {
  const socket = connect({ port, host: '127.0.0.1', ...(from ? { localAddress: from } : {}) });
  socket.setEncoding('utf8');
  const replies: string[] = [];
  let buffer = '';
  let wake: (() => void) | null = null;
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    wake?.();
  });
  socket.on('close', () => wake?.());
  socket.on('error', () => wake?.());
  const next = async (): Promise<string> => {
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const end = buffer.indexOf('\r\n');
      if (end >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (/^\d{3} /.test(line)) return line;
        continue;
      }
      if (socket.destroyed) return '(closed)';
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
    return '(timeout)';
  };
  try {
    replies.push(await next());
    for (const line of lines) {
      if (socket.destroyed) break;
      socket.write(`${line}\r\n`);
      replies.push(await next());
    }
  } finally {
    if (keepOpen) keepOpen(() => socket.destroy());
    else socket.destroy();
  }
  return replies;
}

/**
 * Downloads `name` over a passive data connection read at `bytesPerMs`, and resolves with the bytes received and the
 * reply that ends the transfer (a raw session: a client library takes the 421 of a server that closes the idle
 * session right after its 226 for a failure of the transfer).
 */
async function slowDownload(port: number, name: string, bytesPerMs: number): Promise<{ bytes: number; reply: string }> {
  const control = connect(port, '127.0.0.1');
  control.setEncoding('utf8');
  let text = '';
  control.on('data', (chunk: string) => (text += chunk));
  control.on('error', () => undefined);
  const reply = async (): Promise<string> => {
    for (let i = 0; i < 600; i++) {
      const line = /^(\d{3}) .*\r\n/m.exec(text);
      if (line) {
        text = text.slice(line.index + line[0].length);
        return line[0].trim();
      }
      if (control.destroyed) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return '(none)';
  };
  try {
    await reply();
    for (const line of [`USER ${USER}`, `PASS ${PASSWORD}`, 'TYPE I']) {
      control.write(`${line}\r\n`);
      await reply();
    }
    control.write('EPSV\r\n');
    const dataPort = Number(/\|\|\|(\d+)\|/.exec(await reply())?.[1]);
    const data = connect(dataPort, '127.0.0.1');
    await once(data, 'connect');
    control.write(`RETR ${name}\r\n`);
    let bytes = 0;
    const started = Date.now();
    data.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      const wait = started + bytes / bytesPerMs - Date.now();
      if (wait > 0) {
        data.pause();
        setTimeout(() => data.resume(), wait);
      }
    });
    data.on('error', () => undefined);
    await once(data, 'close');
    await reply(); // 150
    return { bytes, reply: await reply() };
  } finally {
    control.destroy();
  }
}

/** The SHA-256 fingerprint of the certificate an explicit FTPS connection (AUTH TLS) is given. */
async function certificateOf(port: number): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  const onData = (chunk: Buffer): void => {
    text += String(chunk);
  };
  socket.on('data', onData);
  const reply = async (code: RegExp): Promise<void> => {
    for (let i = 0; i < 100 && !code.test(text); i++) await new Promise((r) => setTimeout(r, 50));
    if (!code.test(text)) throw new Error(`no ${code} in ${JSON.stringify(text)}`);
  };
  try {
    await reply(/^220 /m);
    socket.write('AUTH TLS\r\n');
    await reply(/^234 /m);
    socket.off('data', onData);
    const secure = tlsConnect({ socket, rejectUnauthorized: false });
    await once(secure, 'secureConnect');
    const fingerprint = secure.getPeerCertificate().fingerprint256;
    secure.destroy();
    return fingerprint;
  } finally {
    socket.destroy();
  }
}

/** The pids of the worker processes, from their log lines. */
function workerPids(ftpd: RunningFtpd): Set<number> {
  return new Set(ftpd.logs().filter((l) => l.worker !== undefined && l.msg === 'listening').map((l) => l.pid as number));
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const linux = platform() === 'linux';

describe.skipIf(!linux)('ftpd --workers (SKIPPED off Linux: the workers share the port with SO_REUSEPORT, tested on Linux)', () => {
  it('two workers share the port: both serve sessions, transfers work, SIGTERM stops every process', async () => {
    const ftpd = await startFtpd(['--workers', '2', '--log-level', 'info']);
    try {
      await waitFor(() => /2 worker processes/.test(ftpd.stderr()));
      expect(ftpd.stderr()).toMatch(/2 worker processes/);
      await waitFor(() => workerPids(ftpd).size === 2);
      const pids = workerPids(ftpd);
      expect(pids.size).toBe(2);
      // The kernel hashes each connection to one of the two sockets: 40 connections all on one would be 2^-39.
      for (let i = 0; i < 40; i++) expect((await talk(ftpd.port, ['QUIT']))[0]).toMatch(/^220 /);
      // Lines logged close together reach the output together, up to 100 ms later (log-output.ts): waited for.
      const served = (): Set<unknown> => new Set(ftpd.logs().filter((l) => l.msg === 'connected').map((l) => l.pid));
      await waitFor(() => served().size === pids.size);
      expect(served()).toEqual(pids);
      const client = new Client(10000);
      await client.access({ host: '127.0.0.1', port: ftpd.port, user: USER, password: PASSWORD });
      await writeFile(join(ftpd.root, 'seed.txt'), 'seed');
      expect((await client.list()).map((e) => e.name)).toContain('seed.txt');
      client.close();
      expect(await ftpd.stop('SIGTERM')).toBe(0);
      for (const pid of pids) expect(alive(pid)).toBe(false);
    } finally {
      await ftpd.stop('SIGKILL');
    }
  });

  it('SIGTERM waits for a running transfer; a second SIGTERM stops at once', async () => {
    const ftpd = await startFtpd(['--workers', '2', '--log-level', 'info']);
    const client = new Client(10000);
    try {
      await writeFile(join(ftpd.root, 'big.bin'), Buffer.alloc(64 * 1024 * 1024, 7));
      await client.access({ host: '127.0.0.1', port: ftpd.port, user: USER, password: PASSWORD });
      // A sink that never finishes a write: the download stays in progress, held back by the client.
      const stuck = new Writable({ write: () => undefined });
      const downloading = client.downloadTo(stuck, 'big.bin').catch(() => undefined);
      await new Promise((r) => setTimeout(r, 500));
      const exited = new Promise<number | null>((resolve) => ftpd.proc.once('exit', (code) => resolve(code)));
      ftpd.proc.kill('SIGTERM');
      const early = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 1500))]);
      expect(early).toBe('running');
      // The supervisor's line gives the grace its workers use (the command line's 5 s; it once said 0).
      const stopping = ftpd.logs().find((l) => l.signal === 'SIGTERM' && String(l.msg).startsWith('shutting down'));
      expect(stopping?.graceMs).toBe(5000);
      const second = Date.now();
      ftpd.proc.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(Date.now() - second).toBeLessThan(3000);
      client.close();
      await downloading;
    } finally {
      client.close();
      await ftpd.stop('SIGKILL');
    }
  });

  it('SIGTERM to the whole process group (systemd) lets a running download finish', async () => {
    const ftpd = await startFtpd(['--workers', '2'], {}, { detached: true });
    try {
      // Bigger than what the socket buffers on both sides hold (some 10 MB on loopback), read at about 10 MB/s: the
      // server still sends it seconds after the signal, and is done well inside the command line's 5 s of grace.
      const size = 40 * 1024 * 1024;
      await writeFile(join(ftpd.root, 'slow.bin'), Buffer.alloc(size, 5));
      const downloading = slowDownload(ftpd.port, 'slow.bin', 10_000);
      await new Promise((r) => setTimeout(r, 500));
      const exited = new Promise<number | null>((resolve) => ftpd.proc.once('exit', (code) => resolve(code)));
      // Every worker gets the signal and, at once, the supervisor's stop order: together they are one stop, not two.
      process.kill(-ftpd.proc.pid!, 'SIGTERM');
      const { bytes, reply } = await downloading;
      expect(reply).toMatch(/^226 /);
      expect(bytes).toBe(size);
      expect(await exited).toBe(0);
    } finally {
      await ftpd.stop('SIGKILL');
    }
  });

  it('a stuck worker does not keep the supervisor from stopping: a second SIGTERM kills it', async () => {
    const ftpd = await startFtpd(['--workers', '2', '--log-level', 'info']);
    let stuck: number | undefined;
    try {
      await waitFor(() => workerPids(ftpd).size === 2);
      [stuck] = [...workerPids(ftpd)];
      // A worker whose event loop never comes back hears no stop order.
      process.kill(stuck!, 'SIGSTOP');
      const exited = new Promise<number | null>((resolve) => ftpd.proc.once('exit', (code) => resolve(code)));
      ftpd.proc.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
      ftpd.proc.kill('SIGTERM');
      expect(await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), 6000))])).toBe(0);
      expect(alive(stuck!)).toBe(false);
      expect(ftpd.logs().some((l) => l.msg === 'worker did not stop after a second stop; killed' && l.workerPid === stuck)).toBe(true);
    } finally {
      if (stuck !== undefined && alive(stuck)) process.kill(stuck, 'SIGKILL');
      await ftpd.stop('SIGKILL');
    }
  });

  it('a download in one worker of a file an upload in another is rewriting is refused (450), never sent cut', async () => {
    const ftpd = await startFtpd(['--workers', '2', '--log-level', 'info']);
    const uploader = new Client(10000);
    try {
      await waitFor(() => workerPids(ftpd).size === 2);
      await writeFile(join(ftpd.root, 'f.bin'), Buffer.alloc(1024 * 1024, 1));
      await uploader.access({ host: '127.0.0.1', port: ftpd.port, user: USER, password: PASSWORD });
      const body = new PassThrough();
      const uploading = uploader.uploadFrom(body, 'f.bin');
      // Two chunks: a small first one alone is held until the next (a small file is written in one go).
      body.write(Buffer.alloc(64 * 1024, 2));
      body.write(Buffer.alloc(64 * 1024, 2));
      await waitFor(async () => (await readFile(join(ftpd.root, 'f.bin'))).length >= 128 * 1024);
      // The upload keeps moving (one that sits idle for 5 s is taken for abandoned, and a newcomer ends it).
      const moving = setInterval(() => body.write(Buffer.alloc(64 * 1024, 2)), 250);
      // A download in a new session: its reply code.
      const download = async (): Promise<number> => {
        const c = new Client(10000);
        try {
          await c.access({ host: '127.0.0.1', port: ftpd.port, user: USER, password: PASSWORD });
          const sink = new PassThrough();
          sink.resume();
          await c.downloadTo(sink, 'f.bin');
          return 226;
        } catch (err) {
          return (err as { code?: number }).code ?? 0;
        } finally {
          c.close();
        }
      };
      // Twelve sessions, hashed by the kernel to either worker (all to the uploader's: 2^-12): every one is refused.
      const codes: number[] = [];
      for (let i = 0; i < 12; i++) codes.push(await download());
      expect(codes).toEqual(Array(12).fill(450));
      // The claims folder cleaned up under the upload (a /dev/shm clean-up): still refused, in either worker, and said
      // in the log (not on stderr). Without the folder's epoch marker the next claim made it again empty, and
      // downloads in the other worker read the file being rewritten (226).
      const shm = (await readdir('/dev/shm').catch(() => [] as string[])).find((n) => n.startsWith(`ftpd-claims-${ftpd.proc.pid}-`));
      // (Without /dev/shm the folder is in tmpdir, and this part is not run: said here, as it is the only such case.)
      if (existsSync('/dev/shm')) expect(shm).toBeDefined();
      if (shm !== undefined) {
        await rm(join('/dev/shm', shm), { recursive: true });
        for (let i = 0; i < 12; i++) {
          codes.push(await download());
          if (i === 5) await new Promise((r) => setTimeout(r, 2500)); // past the grace: refused for the upload's claim
        }
        expect(codes).toEqual(Array(24).fill(450));
        await waitFor(() => ftpd.logs().some((l) => l.level === 40 && /made anew/.test(String(l.msg))));
        expect(ftpd.logs().find((l) => /made anew/.test(String(l.msg)))?.fileClaims).toContain(shm);
        expect(ftpd.stderr()).not.toMatch(/FtpVfsWarning/);
      }
      clearInterval(moving);
      body.end(Buffer.alloc(64 * 1024, 3));
      await uploading;
      const stored = await readFile(join(ftpd.root, 'f.bin'));
      const after = new Client(10000);
      await after.access({ host: '127.0.0.1', port: ftpd.port, user: USER, password: PASSWORD });
      const chunks: Buffer[] = [];
      const sink = new Writable({ write: (chunk: Buffer, _e, cb) => (chunks.push(chunk), cb()) });
      await after.downloadTo(sink, 'f.bin');
      after.close();
      expect(Buffer.concat(chunks).equals(stored)).toBe(true);
      expect(stored.length).toBeGreaterThan(128 * 1024);
    } finally {
      uploader.close();
      await ftpd.stop('SIGKILL');
    }
  });

  it('a worker that dies is replaced, and the port keeps answering', async () => {
    const ftpd = await startFtpd(['--workers', '2', '--log-level', 'info']);
    try {
      await waitFor(() => workerPids(ftpd).size === 2);
      const [victim] = [...workerPids(ftpd)];
      process.kill(victim!, 'SIGKILL');
      await waitFor(() => workerPids(ftpd).size === 3);
      expect(workerPids(ftpd).size).toBe(3);
      // The first replacement starts at once; only a worker that keeps dying young waits (0.5 s, then doubling).
      await waitFor(() => ftpd.logs().some((l) => l.msg === 'worker died; starting another'));
      expect(ftpd.logs().find((l) => l.msg === 'worker died; starting another')?.restartInMs).toBe(0);
      for (let i = 0; i < 20; i++) expect((await talk(ftpd.port, ['QUIT']))[0]).toMatch(/^220 /);
    } finally {
      await ftpd.stop('SIGKILL');
    }
  });

  it("a worker that dies young waits before its replacement even if the wall clock jumps forward meanwhile", async () => {
    // The supervisor's wall clock jumps two minutes ahead when the test touches `jump` (a preload in every process).
    const dir = await mkdtemp(join(tmpdir(), 'ftpd-clock-'));
    const jump = join(dir, 'jump');
    const preload = join(dir, 'clock.cjs');
    await writeFile(preload, `const fs = require('node:fs'); const real = Date.now; Date.now = () => real() + (fs.existsSync(${JSON.stringify(jump)}) ? 120000 : 0);\n`);
    const ftpd = await startFtpd(['--workers', '2', '--log-level', 'info'], { NODE_OPTIONS: `--require ${preload}` });
    try {
      await waitFor(() => workerPids(ftpd).size === 2);
      const died = () => ftpd.logs().filter((l) => l.msg === 'worker died; starting another');
      process.kill([...workerPids(ftpd)][0]!, 'SIGKILL');
      await waitFor(() => died().length === 1);
      await waitFor(() => workerPids(ftpd).size === 3);
      await writeFile(jump, '');
      // The replacement dies at once too: young by the monotonic clock, whatever the wall clock says.
      const pids = [...workerPids(ftpd)];
      process.kill(pids[pids.length - 1]!, 'SIGKILL');
      await waitFor(() => died().length === 2);
      expect(died().map((l) => l.restartInMs)).toEqual([0, 500]);
    } finally {
      await ftpd.stop('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('--max-sessions holds for all workers together', async () => {
    const ftpd = await startFtpd(['--workers', '2', '--max-sessions', '3']);
    const held: Array<ReturnType<typeof connect>> = [];
    try {
      for (let i = 0; i < 3; i++) {
        const s = connect(ftpd.port, '127.0.0.1');
        held.push(s);
        await new Promise<void>((resolve) => s.once('data', () => resolve()));
      }
      // Each worker alone holds at most 3: without the shared count some of these would be let in.
      for (let i = 0; i < 12; i++) expect((await talk(ftpd.port))[0]).toMatch(/^421 Too many connections/);
      held.pop()?.destroy();
      let admitted = '';
      for (let i = 0; i < 20 && !admitted.startsWith('220'); i++) {
        await new Promise((r) => setTimeout(r, 50));
        admitted = (await talk(ftpd.port, ['QUIT']))[0] ?? '';
      }
      expect(admitted).toMatch(/^220 /);
    } finally {
      for (const s of held) s.destroy();
      await ftpd.stop('SIGKILL');
    }
  });

  it('a ban made by one worker is kept by all of them', async () => {
    const ftpd = await startFtpd(['--workers', '2', '--max-login-failures', '3', '--login-delay', '0', '--ban-exempt', '']);
    try {
      for (let i = 0; i < 3; i++) await talk(ftpd.port, [`USER ${USER}`, 'PASS wrong']);
      // 20 new connections are spread over both workers; every one is refused.
      for (let i = 0; i < 20; i++) expect((await talk(ftpd.port))[0]).toMatch(/^421 Too many failed logins/);
    } finally {
      await ftpd.stop('SIGKILL');
    }
  });

  it('--self-signed: one certificate for all workers, FTPS works on each', async () => {
    const ftpd = await startFtpd(['--workers', '2', '--self-signed', '--log-level', 'info']);
    try {
      expect(ftpd.stderr().match(/SHA-256/g)).toHaveLength(1);
      await writeFile(join(ftpd.root, 'tls.txt'), 'over tls');
      for (let i = 0; i < 6; i++) {
        const { stdout } = await run('curl', ['-s', '--ssl-reqd', '-k', '-u', `${USER}:${PASSWORD}`, `ftp://127.0.0.1:${ftpd.port}/tls.txt`]);
        expect(stdout).toBe('over tls');
      }
      // Every connection, whichever worker takes it, shows the certificate the banner names.
      const printed = /SHA-256 (\S+)/.exec(ftpd.stderr())?.[1];
      const seen = new Set<string>();
      const served = new Set<unknown>();
      for (let i = 0; i < 30 && served.size < 2; i++) {
        seen.add(await certificateOf(ftpd.port));
        served.clear();
        for (const l of ftpd.logs()) if (l.msg === 'connected') served.add(l.pid);
      }
      expect(served.size).toBe(2);
      expect([...seen]).toEqual([printed]);
    } finally {
      await ftpd.stop('SIGKILL');
    }
  });

  it('a port in use stops the start with exit code 1 and says so', async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const port = (holder.address() as AddressInfo).port;
    try {
      await expect(run(process.execPath, [CLI, '--port', String(port), '--workers', '2', '--password', 'x'])).rejects.toThrow(new RegExp(`port ${port} is in use`));
    } finally {
      holder.close();
    }
  });

  it('each worker has its own share of the passive ports: no PASV fails while the range has room', async () => {
    // Below the kernel's ephemeral range (32768+ on Linux): there, any client socket of the tests running alongside
    // may hold one of the two ports, and a PASV then fails for a reason this test is not about.
    const base = 22000 + Math.floor(Math.random() * 2000) * 2;
    const ftpd = await startFtpd(['--workers', '2', '--pasv-range', `${base}-${base + 1}`]);
    const held: Array<() => void> = [];
    try {
      const login = [`USER ${USER}`, `PASS ${PASSWORD}`, 'EPSV'];
      // One client keeps its passive port; others, from another address, still get one on either worker.
      const first = await talk(ftpd.port, login, '127.0.0.1', (close) => held.push(close));
      expect(first[3]).toMatch(/^229 /);
      for (let i = 0; i < 10; i++) {
        const r = await talk(ftpd.port, login, '127.0.0.2');
        expect(r[3]).toMatch(/^229 /);
        const port = Number(/\|\|\|(\d+)\|/.exec(r[3] ?? '')?.[1]);
        expect(port === base || port === base + 1).toBe(true);
      }
      for (const close of held.splice(0)) close();
      // One session at a time, nothing else open: a port the other worker keeps open for reuse is not in the way.
      for (let i = 0; i < 10; i++) expect((await talk(ftpd.port, login))[3]).toMatch(/^229 /);
    } finally {
      for (const close of held) close();
      await ftpd.stop('SIGKILL');
    }
  });

  it('refuses a passive range with fewer ports than workers', async () => {
    await expect(run(process.execPath, [CLI, '--port', '0', '--workers', '3', '--pasv-range', '47000-47001', '--password', 'x'])).rejects.toThrow(
      /passive port range 47000-47001 has 2 port\(s\) for 3 workers/,
    );
  });

  it('rejects a bad --workers with exit code 2', async () => {
    await expect(run(process.execPath, [CLI, '--workers', '0'])).rejects.toThrow(/--workers: expected auto or a number from 1 to 256/);
    await expect(run(process.execPath, [CLI, '--workers', 'many'])).rejects.toThrow(/--workers/);
  });
});

describe.skipIf(!linux)('ftpd --config with workers (SKIPPED off Linux: SO_REUSEPORT)', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'ftpd-workers-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  /** ftpd with two workers over a local folder, serving metrics on a free port of its own. */
  async function twoWorkersWithMetrics(name: string, level: string): Promise<{ ftpd: ConfiguredFtpdProcess; metricsPort: number }> {
    const metricsPort = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const file = join(work, name);
    await writeFile(
      file,
      JSON.stringify({
        workers: 2,
        listeners: [{ host: '127.0.0.1', port: 0 }],
        backends: { disk: { type: 'local', root: join(work, 'root') } },
        users: [{ name: 'a', passwordHash: await hashPassword('pw'), backend: 'disk' }],
        metrics: { host: '127.0.0.1', port: metricsPort },
        log: { level },
      }),
    );
    return { ftpd: await startFtpdConfig(file, 1), metricsPort };
  }

  it('refuses backends and user settings that live in one process', async () => {
    const file = join(work, 'bad.yaml');
    const hash = await hashPassword('pw');
    await writeFile(
      file,
      JSON.stringify({
        workers: 2,
        backends: { mem: { type: 'memory' }, db: { type: 'sqlite', file: join(work, 'fs.db') } },
        users: [{ name: 'a', passwordHash: hash, backend: 'mem', quota: 1000, downloadRate: 10 }],
      }),
    );
    const failed = run(process.execPath, [CLI, 'check-config', file]);
    await expect(failed).rejects.toThrow(/memory backend lives in one process; it needs workers: 1/);
    await expect(run(process.execPath, [CLI, 'check-config', file])).rejects.toThrow(/sqlite backend lives in one process/);
    await expect(run(process.execPath, [CLI, 'check-config', file])).rejects.toThrow(/user quota is counted in memory/);
    await expect(run(process.execPath, [CLI, 'check-config', file])).rejects.toThrow(/per-user rate/);
  });

  it('serves the metrics of all workers summed, and the health check', async () => {
    const { ftpd, metricsPort } = await twoWorkersWithMetrics('ok.yaml', 'warn');
    try {
      await waitFor(() => /2 worker processes/.test(ftpd.stderr()));
      expect(ftpd.stderr()).toMatch(/2 worker processes/);
      for (let i = 0; i < 10; i++) expect((await talk(ftpd.ports[0]!, ['USER a', 'PASS pw', 'QUIT']))[1]).toMatch(/^331 /);
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      expect(text).toMatch(/^ftpd_sessions_total 10$/m);
      expect(text).toMatch(/^ftpd_logins_total\{outcome="ok"\} 10$/m);
      expect((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status).toBe(200);
      expect(await ftpd.stop('SIGTERM')).toBe(0);
    } finally {
      await ftpd.stop('SIGKILL');
    }
  });

  it('the summed counters do not go backwards when a worker answers late or dies', async () => {
    const { ftpd, metricsPort } = await twoWorkersWithMetrics('counters.yaml', 'info');
    let stopped: number | undefined;
    const total = async (): Promise<number> =>
      Number(/^ftpd_sessions_total (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text())?.[1]);
    try {
      const listening = (): Set<number> => new Set(ftpd.logs().filter((l) => l.worker !== undefined && l.msg === 'listening').map((l) => l.pid as number));
      await waitFor(() => listening().size === 2);
      for (let i = 0; i < 10; i++) await talk(ftpd.ports[0]!, ['QUIT']);
      expect(await total()).toBe(10);
      // A worker that served some of them: its share is what could go missing.
      stopped = ftpd.logs().find((l) => l.msg === 'connected')?.pid as number;
      process.kill(stopped, 'SIGSTOP');
      expect(await total()).toBe(10);
      process.kill(stopped, 'SIGCONT');
      process.kill(stopped, 'SIGKILL');
      await waitFor(() => listening().size === 3);
      expect(listening().size).toBe(3);
      expect(await total()).toBe(10);
      await talk(ftpd.ports[0]!, ['QUIT']);
      expect(await total()).toBe(11);
    } finally {
      if (stopped !== undefined && alive(stopped)) process.kill(stopped, 'SIGKILL');
      await ftpd.stop('SIGKILL');
    }
  });
});

/** The worker processes of a supervisor, now. */
async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(' ').filter(Boolean).map(Number);
}

/** Kills one worker and resolves with the pid of its replacement as soon as it is forked (still starting). */
async function killAndCatchReplacement(ftpd: RunningFtpd): Promise<number> {
  const before = await childrenOf(ftpd.proc.pid!);
  process.kill(before[0]!, 'SIGKILL');
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const fresh = (await childrenOf(ftpd.proc.pid!)).find((pid) => !before.includes(pid));
    if (fresh !== undefined) return fresh;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error('no replacement worker');
}

describe.skipIf(!linux)('ftpd --workers: the supervisor under trouble (SKIPPED off Linux: SO_REUSEPORT)', () => {
  it('a session the supervisor answers late for is given back: a stalled supervisor does not lock --max-sessions for good', async () => {
    const ftpd = await startFtpd(['--workers', '2', '--max-sessions', '1']);
    try {
      // The worker waits 2 s for the supervisor's count, then admits the session uncounted; the supervisor counts it later.
      process.kill(ftpd.proc.pid!, 'SIGSTOP');
      const during = talk(ftpd.port, ['NOOP']);
      await new Promise((r) => setTimeout(r, 2600));
      process.kill(ftpd.proc.pid!, 'SIGCONT');
      expect((await during)[0]).toMatch(/^220 /);
      let reply = '';
      for (let i = 0; i < 20 && !reply.startsWith('220'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        reply = (await talk(ftpd.port, ['QUIT']))[0] ?? '';
      }
      expect(reply).toMatch(/^220 /);
    } finally {
      await ftpd.stop('SIGKILL');
    }
  });

  it('every worker dead at once: the supervisor stays and starts new ones', async () => {
    const ftpd = await startFtpd(['--workers', '2']);
    try {
      await waitFor(async () => (await childrenOf(ftpd.proc.pid!)).length === 2);
      for (const pid of await childrenOf(ftpd.proc.pid!)) process.kill(pid, 'SIGKILL');
      let reply = '';
      const deadline = Date.now() + 8000;
      while (!reply.startsWith('220') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        reply = (await talk(ftpd.port, ['QUIT']))[0] ?? '';
      }
      expect(ftpd.proc.exitCode).toBe(null);
      expect(reply).toMatch(/^220 /);
    } finally {
      await ftpd.stop('SIGKILL');
    }
  });

  it('a worker killed while it starts is replaced too', async () => {
    const ftpd = await startFtpd(['--workers', '2', '--log-level', 'info']);
    try {
      await waitFor(() => workerPids(ftpd).size === 2);
      const fresh = await killAndCatchReplacement(ftpd);
      process.kill(fresh, 'SIGKILL');
      // Restart delays of 1 s, then 2 s: a third worker serves within 6 s (the one killed while starting never did).
      await waitFor(() => workerPids(ftpd).size === 3, 6000);
      expect(workerPids(ftpd).size).toBe(3);
      expect(workerPids(ftpd).has(fresh)).toBe(false);
    } finally {
      await ftpd.stop('SIGKILL');
    }
  });

  it('SIGTERM while a worker starts stops it too, once it serves', async () => {
    const ftpd = await startFtpd(['--workers', '2']);
    try {
      await waitFor(async () => (await childrenOf(ftpd.proc.pid!)).length === 2);
      await killAndCatchReplacement(ftpd);
      const exited = new Promise<number | null>((resolve) => ftpd.proc.once('exit', (code) => resolve(code)));
      ftpd.proc.kill('SIGTERM');
      expect(await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), 6000))])).toBe(0);
    } finally {
      await ftpd.stop('SIGKILL');
    }
  });

  it('a ban made while a worker starts reaches that worker', async () => {
    const ftpd = await startFtpd(['--workers', '2', '--max-login-failures', '1', '--login-delay', '0', '--ban-exempt', '', '--log-level', 'info']);
    try {
      await waitFor(async () => (await childrenOf(ftpd.proc.pid!)).length === 2);
      const fresh = await killAndCatchReplacement(ftpd);
      // The only worker listening now bans this address while the replacement still starts.
      expect((await talk(ftpd.port, [`USER ${USER}`, 'PASS wrong']))[2]).toMatch(/^421 Too many failed logins/);
      expect(workerPids(ftpd).has(fresh)).toBe(false);
      await waitFor(() => workerPids(ftpd).has(fresh));
      for (let i = 0; i < 20; i++) expect((await talk(ftpd.port))[0]).toMatch(/^421 Too many failed logins/);
    } finally {
      await ftpd.stop('SIGKILL');
    }
  });
});

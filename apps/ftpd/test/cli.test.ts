import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'basic-ftp';
import { describe, expect, it } from 'vitest';
import { CLI, PASSWORD, run, startFtpd, USER } from './harness.js';

const node = process.execPath;

describe('ftpd command line', () => {
  it('--help prints usage and exits 0; --version prints the version', async () => {
    expect((await run(node, [CLI, '--help'])).stdout).toContain('Usage: ftpd');
    expect((await run(node, [CLI, '--version'])).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('takes its options after a leading `--`, as `pnpm start -- --port 2222` (the README) passes them', async () => {
    expect((await run(node, [CLI, '--', '--version'])).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    await expect(run(node, [CLI, '--', '--port', 'abc'])).rejects.toThrow(/--port: expected a port number/);
  });

  it.each([
    [['--port', 'abc'], /--port: expected a port number/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['--pasv-range', '5000'], /--pasv-range/],
    [['--pasv-range', '0-10'], /--pasv-range: ports must be 1-65535/],
    [['--log-level', 'loud'], /--log-level/],
    [['--max-sessions', 'many'], /--max-sessions: expected a whole number/],
    [['--ban-exempt', '10.0.0.0/8,nowhere'], /--ban-exempt: expected addresses or networks/],
  ])('rejects %j with exit code 2 and a message naming the option', async (args, message) => {
    await expect(run(node, [CLI, ...args])).rejects.toThrow(message);
  });

  it('zero config: serves ./data, prints a generated password that works, exits 0 on SIGINT', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'ftpd-zero-'));
    // Port 0 instead of the default 2121 so that the test never collides with a running server.
    const child = spawn(node, [CLI, '--port', '0'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.resume();
    let err = '';
    const ready = new Promise<{ port: number; password: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner: ${err}`)), 15000);
      child.stderr.on('data', (c: Buffer) => {
        err += c.toString();
        const port = /on ftp:\/\/127\.0\.0\.1:(\d+)/.exec(err)?.[1];
        const password = /password: (\S+)/.exec(err)?.[1];
        if (port && password && /user: ftp/.test(err)) {
          clearTimeout(timer);
          resolve({ port: Number(port), password });
        }
      });
    });
    try {
      const { port, password } = await ready;
      expect(password.length).toBeGreaterThanOrEqual(12);
      expect((await stat(join(cwd, 'data'))).isDirectory()).toBe(true);
      const client = new Client(10000);
      await client.access({ host: '127.0.0.1', port, user: 'ftp', password });
      expect(await client.pwd()).toBe('/');
      client.close();
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await rm(cwd, { recursive: true, force: true });
    }
  });

  it('--max-sessions limits concurrent sessions (421 past it)', async () => {
    const s = await startFtpd(['--max-sessions', '2']);
    const { connect } = await import('node:net');
    const greet = (): Promise<{ text: string; close: () => void }> =>
      new Promise((resolve, reject) => {
        const socket = connect(s.port, '127.0.0.1');
        let text = '';
        socket.on('data', (d: Buffer) => {
          text += d.toString();
          if (/\r\n$/.test(text)) resolve({ text, close: () => socket.destroy() });
        });
        socket.on('error', reject);
      });
    try {
      const first = await greet();
      const second = await greet();
      const third = await greet();
      expect(first.text).toMatch(/^220/);
      expect(second.text).toMatch(/^220/);
      expect(third.text).toMatch(/^421/);
      for (const c of [first, second, third]) c.close();
    } finally {
      await s.stop();
    }
  });

  it('at the default log level a burst of sessions logs every line, in order, the last ones written at SIGTERM', async () => {
    // Lines logged close together go out in batches (log-output.ts); none may be lost or reordered, at exit either.
    const s = await startFtpd(['--log-level', 'info']);
    try {
      for (let i = 0; i < 60; i++) await loginAndQuit(s.port);
    } finally {
      expect(await s.stop()).toBe(0);
    }
    const sessions = new Map<unknown, string[]>();
    for (const l of s.logs()) if (l.session !== undefined) sessions.set(l.session, [...(sessions.get(l.session) ?? []), String(l.msg)]);
    expect(sessions.size).toBe(60);
    for (const msgs of sessions.values()) expect(msgs).toEqual(['connected', 'logged in', 'disconnected']);
    expect(s.logs().at(-1)?.msg).toBe('stopped');
  });

  it('with stdout on a pipe nobody reads (a stopped reader) SIGTERM still ends it, within seconds', { timeout: 30000 }, async () => {
    // A log write blocked in the thread pool kept the process alive after its stop, until the reader came back.
    const root = await mkdtemp(join(tmpdir(), 'ftpd-stalled-'));
    const fifo = join(root, 'log.fifo');
    await run('mkfifo', [fifo]);
    const { openSync, closeSync, constants } = await import('node:fs');
    const keep = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK); // a reader end that never reads
    const out = openSync(fifo, 'w');
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, '--port', String(port), '--root', join(root, 'data'), '--user', USER, '--password', PASSWORD, '--log-level', 'info'], { stdio: ['ignore', out, 'ignore'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitUntilServing(port, child);
      // Node makes its stdout pipe non-blocking; another process sharing it (a worker exiting, a shell) may make it
      // blocking again, as here: a full pipe then holds a write in the thread pool.
      const { spawnSync } = await import('node:child_process');
      expect(spawnSync('/usr/bin/python3', ['-c', 'import os; os.set_blocking(1, True)'], { stdio: ['ignore', out, 'inherit'] }).status).toBe(0);
      closeSync(out);
      // ~150 bytes a line, three a login: the pipe's 64 KiB are full after ~150 logins.
      for (let i = 0; i < 400; i++) await loginAndQuit(port);
      child.kill('SIGTERM');
      expect(await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), 10000))])).toBe(0);
    } finally {
      child.kill('SIGKILL');
      closeSync(keep);
      try {
        closeSync(out);
      } catch {
        // closed above
      }
      await rm(root, { recursive: true, force: true });
    }
  });

  it('with its log on a full disk (stdout on /dev/full) it still serves, and SIGTERM still stops it', async () => {
    // pino's own output threw ENOSPC at the process, then retried every 100 ms for ever in its exit handler:
    // no greeting, no reply, and SIGTERM ignored.
    await servesOnFullDisk(['stdout']);
  });

  it('with stderr on a full disk too (its banner lost) it still serves, and SIGTERM still stops it', async () => {
    // The banner's failed write was an uncaught 'error' on process.stderr: ftpd exited 1 before serving anyone.
    await servesOnFullDisk(['stdout', 'stderr']);
  });

  /** Runs `check` with a port another listener holds and a scratch folder. */
  async function withTakenPort(check: (port: number, cwd: string) => Promise<void>): Promise<void> {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const cwd = await mkdtemp(join(tmpdir(), 'ftpd-busy-'));
    try {
      await check(port, cwd);
    } finally {
      blocker.close();
      await rm(cwd, { recursive: true, force: true });
    }
  }

  it('says clearly when the port is taken', async () => {
    await withTakenPort(async (port, cwd) => {
      await expect(run(node, [CLI, '--port', String(port), '--root', cwd])).rejects.toThrow(new RegExp(`port ${port} is in use`));
    });
  });

  it('a taken --implicit-port stops the start (exit 1) naming that port, not the plain one, which it stops serving', async () => {
    // It said the plain port was in use, and went on serving plain FTP there for ever without its FTPS listener.
    await withTakenPort(async (port, cwd) => {
      const failed = await run(node, [CLI, '--port', '0', '--root', cwd, '--self-signed', '--implicit-port', String(port)], { timeoutMs: 15_000 }).then(
        () => 'exit 0',
        (err: Error) => err.message,
      );
      expect(failed).toMatch(new RegExp(`ftpd: cannot start: port ${port} is in use`));
      expect(failed).not.toMatch(/killed|SIGTERM|timed out/i);
    });
  });

  it('a root it may not make is said as such, not as a port it may not listen on', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'ftpd-ro-'));
    const { chmod } = await import('node:fs/promises');
    await chmod(parent, 0o555);
    try {
      // As root, permissions do not stop mkdir: the check is for everyone else.
      if (process.getuid?.() === 0) {
        const failed = await run('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', node, CLI, '--port', '0', '--root', join(parent, 'ftp'), '--password', 'p']).then(
          () => 'exit 0',
          (err: Error) => err.message,
        );
        expect(failed).toMatch(/cannot start: EACCES: permission denied, mkdir/);
        expect(failed).not.toMatch(/listen on port/);
      } else {
        const failed = await run(node, [CLI, '--port', '0', '--root', join(parent, 'ftp'), '--password', 'p']).then(
          () => 'exit 0',
          (err: Error) => err.message,
        );
        expect(failed).toMatch(/cannot start: EACCES: permission denied, mkdir/);
      }
    } finally {
      await chmod(parent, 0o755);
      await rm(parent, { recursive: true, force: true });
    }
  });

  // Node's own mkdir -p never returns there (mkdir answers ENOENT under /proc, which exists): the start hung.
  it.runIf(existsSync('/proc/self'))('a root that cannot be made under a pseudo file system (/proc) stops the start at once', async () => {
    const { spawnSync } = await import('node:child_process');
    const started = performance.now();
    const r = spawnSync(node, [CLI, '--port', '0', '--root', '/proc/no-such-ftp-root/data', '--password', 'p'], { timeout: 15000, encoding: 'utf8' });
    expect(r.signal).toBeNull();
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/cannot start: ENOENT: no such file or directory, mkdir '\/proc\/no-such-ftp-root'/);
    expect(performance.now() - started).toBeLessThan(15000);
  });

  it('--anonymous-root serves its folder read-only to anonymous and ftp; ftp stays the real user when --user is ftp', async () => {
    const pub = await mkdtemp(join(tmpdir(), 'ftpd-anon-'));
    await writeFile(join(pub, 'readme.txt'), 'public');
    const s = await startFtpd(['--anonymous-root', pub]);
    const asFtp = await startFtpd(['--anonymous-root', pub, '--user', 'ftp', '--password', 'secret']);
    try {
      for (const name of ['anonymous', 'ftp', 'FTP']) {
        expect((await run('curl', ['-sS', '--fail', `ftp://${name}:guest%40example.org@127.0.0.1:${s.port}/readme.txt`])).stdout).toBe('public');
      }
      await expect(run('curl', ['-sS', '--fail', '-T', join(pub, 'readme.txt'), `ftp://ftp:x@127.0.0.1:${s.port}/up.txt`])).rejects.toThrow();
      // The real user named ftp logs in to its own root, with its password; anonymous still reaches the folder.
      expect((await run('curl', ['-sS', '--fail', `ftp://ftp:secret@127.0.0.1:${asFtp.port}/`, '-l'])).stdout).toBe('');
      await expect(run('curl', ['-sS', '--fail', `ftp://ftp:guess@127.0.0.1:${asFtp.port}/readme.txt`])).rejects.toThrow();
      expect((await run('curl', ['-sS', '--fail', `ftp://anonymous:x@127.0.0.1:${asFtp.port}/readme.txt`])).stdout).toBe('public');
    } finally {
      expect(await s.stop()).toBe(0);
      expect(await asFtp.stop()).toBe(0);
      await rm(pub, { recursive: true, force: true });
    }
  });

  it('--self-signed makes a certificate at start, prints its fingerprint, and FTPS works with it', async () => {
    const s = await startFtpd(['--self-signed', '--tls-required', 'control']);
    try {
      const fingerprint = /SHA-256 ([0-9A-F:]{95})/.exec(s.stderr())?.[1];
      expect(fingerprint).toBeDefined();
      const { stdout } = await run('curl', ['-sS', '--fail', '-k', '--ssl-reqd', `${s.url}/`, '-l']);
      expect(stdout).toBe('');
      // The certificate curl was shown is the one whose fingerprint was printed.
      const { stderr } = await run('curl', ['-sS', '-v', '--fail', '-k', '--ssl-reqd', `${s.url}/`, '-l']);
      expect(stderr).toMatch(/self-signed/);
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });
});

/** Runs ftpd with `streams` on /dev/full: it must serve a login and a listing, and stop on SIGTERM with 0. */
async function servesOnFullDisk(streams: ReadonlyArray<'stdout' | 'stderr'>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'ftpd-full-'));
  const { openSync, closeSync } = await import('node:fs');
  // The banner that names the port may be lost: the port is chosen here.
  const port = await freePort();
  const full = openSync('/dev/full', 'w');
  const stdio = ['ignore', streams.includes('stdout') ? full : 'ignore', streams.includes('stderr') ? full : 'ignore'] as const;
  const child = spawn(process.execPath, [CLI, '--port', String(port), '--root', root, '--user', USER, '--password', PASSWORD, '--log-level', 'info'], { stdio: [...stdio] });
  closeSync(full);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await writeFile(join(root, 'seen.txt'), 'x');
    let listed: string[] = [];
    for (let i = 0; i < 150 && child.exitCode === null && listed.length === 0; i++) {
      const client = new Client(5000);
      try {
        await client.access({ host: '127.0.0.1', port, user: USER, password: PASSWORD });
        listed = (await client.list()).map((e) => e.name);
      } catch {
        await new Promise((r) => setTimeout(r, 100)); // not listening yet
      } finally {
        client.close();
      }
    }
    expect(child.exitCode).toBeNull();
    expect(listed).toContain('seen.txt');
    child.kill('SIGTERM');
    expect(await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), 8000))])).toBe(0);
  } finally {
    child.kill('SIGKILL');
    await rm(root, { recursive: true, force: true });
  }
}

/** A loopback port free a moment ago. */
async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const probe = createServer();
  const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)));
  await new Promise((r) => probe.close(r));
  return port;
}

/** Waits (15 s at most) until ftpd answers on `port` with its greeting. */
async function waitUntilServing(port: number, child: { exitCode: number | null }): Promise<void> {
  const { connect } = await import('node:net');
  for (let i = 0; i < 150 && child.exitCode === null; i++) {
    const greeted = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('data', (d: Buffer) => resolve(d.toString().startsWith('220')));
      socket.once('error', () => resolve(false));
      socket.once('close', () => resolve(false));
      setTimeout(() => resolve(false), 1000).unref();
    }).then((ok) => ok);
    if (greeted) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('ftpd did not start');
}

/** One session: USER, PASS (230 expected), QUIT. */
async function loginAndQuit(port: number): Promise<void> {
  const { connect } = await import('node:net');
  await new Promise<void>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const sends = [`USER ${USER}\r\n`, `PASS ${PASSWORD}\r\n`, 'QUIT\r\n'];
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      const next = sends.shift();
      if (next !== undefined) socket.write(next);
    });
    socket.on('close', () => (/^230 /m.test(text) ? resolve() : reject(new Error(text))));
    socket.on('error', reject);
  });
}

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
export const USER = 'tester';
export const PASSWORD = 'pa ss"w0rd';

/** A running `ftpd` child process on a random loopback port, with its own root folder. */
export interface RunningFtpd {
  port: number;
  /** The implicit FTPS port, when started with `--implicit-port`. */
  implicitPort: number | undefined;
  root: string;
  proc: ChildProcess;
  url: string;
  stderr(): string;
  /** The JSON log lines the server wrote so far (stdout). */
  logs(): Array<Record<string, unknown>>;
  /** Resident memory of the server process in KiB (from /proc). */
  rssKiB(): Promise<number>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts the built CLI as a real user would, and waits until it prints its address. `detached`: in a process group
 * of its own, which a test can signal as a whole, as systemd does.
 */
export async function startFtpd(extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}, options: { detached?: boolean; runAs?: { uid: number; gid: number } } = {}): Promise<RunningFtpd> {
  const root = await mkdtemp(join(tmpdir(), 'ftpd-e2e-'));
  // `runAs` (for a test run as root): the server runs as that user, and its root folder is that user's.
  if (options.runAs) await chown(root, options.runAs.uid, options.runAs.gid);
  const proc = spawn(process.execPath, [CLI, '--port', '0', '--root', root, '--user', USER, '--password', PASSWORD, '--log-level', 'warn', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
    detached: options.detached === true,
    ...options.runAs,
  });
  let err = '';
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ftpd did not start: ${err}`)), 15000);
    proc.stderr?.on('data', (c: Buffer) => {
      err += c.toString();
      const m = /on ftp:\/\/127\.0\.0\.1:(\d+)/.exec(err);
      if (m && /user: /.test(err)) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ftpd exited with ${code}: ${err}`));
    });
  });
  const implicit = /ftps:\/\/127\.0\.0\.1:(\d+)/.exec(err)?.[1];
  return {
    port,
    implicitPort: implicit ? Number(implicit) : undefined,
    root,
    proc,
    url: `ftp://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}`,
    stderr: () => err,
    logs: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    rssKiB: async () => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${proc.pid}/status`, 'utf8'))?.[1] ?? NaN),
    stop: async (signal = 'SIGTERM') => {
      const code = await stopProcess(proc, signal);
      await rm(root, { recursive: true, force: true });
      return code;
    },
  };
}

/** Sends `signal`, waits 10 s at most for the exit (then SIGKILL), and resolves with the exit code (null if killed). */
async function stopProcess(proc: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  if (proc.exitCode !== null) return proc.exitCode;
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  proc.kill(signal);
  const code = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 10000))]);
  if (proc.exitCode === null) proc.kill('SIGKILL');
  return code;
}

/** Runs a command with a time limit; rejects with its stderr on a non-zero exit. */
export function run(cmd: string, args: string[], options: { timeoutMs?: number; cwd?: string; input?: string } = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: options.timeoutMs ?? 60000, cwd: options.cwd, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${cmd} ${args.join(' ')} failed: ${error.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Percent-encodes each segment of a path for an ftp:// URL. */
export function urlPath(path: string): string {
  return path
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

/** Sizes every client round-trips (issue: 0 B, 1 B, 1 MiB, 64 MiB). */
export const SIZES = [0, 1, 1024 * 1024, 64 * 1024 * 1024] as const;

/** Writes files of random bytes of each size into `dir`, named `f<size>.bin`, without holding them whole. */
export async function makeFiles(dir: string, sizes: readonly number[] = SIZES): Promise<Map<number, { path: string; sha256: string }>> {
  const { randomFillSync } = await import('node:crypto');
  const { open } = await import('node:fs/promises');
  const out = new Map<number, { path: string; sha256: string }>();
  const buf = Buffer.alloc(1024 * 1024);
  for (const size of sizes) {
    const path = join(dir, `f${size}.bin`);
    const fh = await open(path, 'w');
    const hash = createHash('sha256');
    for (let left = size; left > 0; ) {
      const n = Math.min(left, buf.length);
      randomFillSync(buf, 0, n);
      hash.update(buf.subarray(0, n));
      await fh.write(buf, 0, n);
      left -= n;
    }
    await fh.close();
    out.set(size, { path, sha256: hash.digest('hex') });
  }
  return out;
}

/** Names that break naive servers: spaces, quotes, non-ASCII. */
export const ODD_NAMES = ['with space.txt', `it's "quoted".txt`, 'naïve café 文件.txt', ' leading space.txt'] as const;

/** A self-signed certificate and key for 127.0.0.1, written to `dir` (made with the openssl command). */
export async function makeCertificateFiles(dir: string, days = 2): Promise<{ cert: string; key: string }> {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', String(days), '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
  return { cert, key };
}

/** Runs an lftp script against a server, failing on the first error, with bounded retries and timeouts. */
export function lftp(port: number, script: string, options: { cwd?: string; timeoutMs?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  const settings = 'set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 15; set ssl:verify-certificate no;';
  return run('lftp', ['-u', `${USER},${PASSWORD}`, '-p', String(port), '-e', `${settings} ${script}; quit`, '127.0.0.1'], {
    timeoutMs: options.timeoutMs ?? 120000,
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
}

/** A running `ftpd --config FILE` child process and its listeners' ports, in the file's order. */
export interface ConfiguredFtpdProcess {
  proc: ChildProcess;
  ports: number[];
  stderr(): string;
  /** The JSON log lines the server wrote so far (stdout). */
  logs(): Array<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts the built CLI with a configuration file and waits until every listener is announced. */
export async function startFtpdConfig(file: string, listeners: number, env: NodeJS.ProcessEnv = {}, args: string[] = ['--config', file]): Promise<ConfiguredFtpdProcess> {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let err = '';
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  const ports = await new Promise<number[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ftpd did not start: ${err}`)), 15000);
    proc.stderr?.on('data', (c: Buffer) => {
      err += c.toString();
      const found = [...err.matchAll(/listening on ftps?:\/\/[^\s]+:(\d+)/g)].map((m) => Number(m[1]));
      if (found.length >= listeners) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ftpd exited with ${code}: ${err}`));
    });
  });
  return {
    proc,
    ports,
    stderr: () => err,
    logs: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    stop: (signal = 'SIGTERM') => stopProcess(proc, signal),
  };
}

/** Runs the built CLI and resolves with its exit code and output, whatever the code (20 s at most). */
export function cliOutcome(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { timeout: 20000, env: { ...process.env, ...options.env }, cwd: options.cwd }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/**
 * Waits until `check` holds, 10 s at most, looking every 50 ms; returns either way (the assertion after it says
 * what was missing). ftpd writes its JSON log lines in batches up to 100 ms apart: a test reads them this way.
 */
export async function waitFor(check: () => boolean | Promise<boolean>, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

/**
 * Installing the peer servers without touching the system: Debian packages are downloaded and unpacked into
 * apps/bench/.peers (vsftpd and pure-ftpd conflict as installed packages: both provide ftp-server), ftp-srv is
 * installed from npm into its own scratch folder.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** apps/bench, wherever the bench is run from. */
export const BENCH_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PEERS_DIR = path.join(BENCH_ROOT, '.peers');

async function tryRun(cmd: string, args: string[], cwd: string): Promise<string | null> {
  try {
    await run(cmd, args, { cwd, timeout: 180_000, maxBuffer: 16 << 20 });
    return null;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    return (err.stderr?.trim().split('\n').pop() ?? err.message).slice(0, 300);
  }
}

/**
 * The root of an unpacked Debian package (its files under `<root>/usr/...`), downloading it if `probe` (a path
 * inside the package) is not there yet. Throws with the reason when it cannot be had.
 */
export async function debianPackage(pkg: string, probe: string): Promise<string> {
  const dir = path.join(PEERS_DIR, pkg);
  const root = path.join(dir, 'root');
  if (existsSync(path.join(root, probe))) return root;
  mkdirSync(dir, { recursive: true });
  let failure = await tryRun('apt-get', ['download', pkg], dir);
  if (failure !== null && process.getuid?.() === 0) {
    // A fresh machine may have no package lists yet.
    await tryRun('apt-get', ['update', '-qq'], dir);
    failure = await tryRun('apt-get', ['download', pkg], dir);
  }
  const deb = readdirSync(dir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (deb === undefined) throw new Error(`apt-get download ${pkg} failed: ${failure ?? 'no .deb'}`);
  const unpack = await tryRun('dpkg-deb', ['-x', deb, 'root'], dir);
  if (unpack !== null) throw new Error(`dpkg-deb -x ${deb} failed: ${unpack}`);
  if (!existsSync(path.join(root, probe))) throw new Error(`${pkg} has no ${probe}`);
  return root;
}

/** The folder of an npm package installed into its own scratch prefix (node_modules/<name> inside it). */
export async function npmPackage(name: string, version: string): Promise<string> {
  const prefix = path.join(PEERS_DIR, name);
  const installed = path.join(prefix, 'node_modules', name, 'package.json');
  if (existsSync(installed)) return prefix;
  mkdirSync(prefix, { recursive: true });
  const failure = await tryRun('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--loglevel=error', `${name}@${version}`], prefix);
  if (!existsSync(installed)) throw new Error(`npm install ${name}@${version} failed: ${failure ?? 'not installed'}`);
  return prefix;
}

/** Runs a command to completion; resolves to its stdout. */
export async function output(cmd: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    // 'close', not 'exit': a process can exit before its output has been read, and an empty hash (openssl passwd
    // seen by the bench as the first peer started on a fresh machine) then fails every login with 530.
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.trim().slice(0, 300)}`))));
    // A command that exits without reading its input closes the pipe (EPIPE): its exit code tells the outcome.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** Runs a server's preparation; resolves to null when it worked, else to why it did not (the "missing" reason). */
export async function whyNot(prepare: () => Promise<unknown>): Promise<string | null> {
  try {
    await prepare();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { hashPassword } from '../src/passwords.js';
import { cliOutcome, run, startFtpdConfig } from './harness.js';

const examples = fileURLToPath(new URL('../examples/', import.meta.url));
let work: string;
let hash: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ftpd-config-audit-'));
  hash = await hashPassword('s3cret pass');
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => cliOutcome(args, { env });

describe('configuration file', () => {
  it('a relative sqlite: URL is relative to the file, as every other path (not to the working directory)', () => {
    const yaml = (url: string): string => `backends: { db: { type: sql, url: "${url}" } }\nusers: [{ name: a, passwordHash: "${hash}", backend: db }]\n`;
    const urlOf = (url: string): string => (parseConfig(yaml(url), '/etc/ftpd/ftpd.yaml', {}).backends.db as { url: string }).url;
    expect(urlOf('sqlite:fs.db')).toBe('sqlite:/etc/ftpd/fs.db');
    expect(urlOf('sqlite:./data/fs.db')).toBe('sqlite:/etc/ftpd/data/fs.db');
    expect(urlOf('sqlite:/var/lib/ftpd/fs.db')).toBe('sqlite:/var/lib/ftpd/fs.db');
    expect(urlOf('sqlite:///var/lib/ftpd/fs.db')).toBe('sqlite:///var/lib/ftpd/fs.db');
    expect(urlOf('sqlite::memory:')).toBe('sqlite::memory:');
    expect(urlOf('postgres://u@db/x')).toBe('postgres://u@db/x');
  });

  it('150 users sharing one YAML anchor are fine; an alias bomb is refused in one line', async () => {
    // The first user holds the anchors (a top-level key of their own would be refused by the schema).
    const users = Array.from({ length: 150 }, (_, i) => `  - { name: user${i}, passwordHash: *hash, backend: m, permissions: *common }`).join('\n');
    const many = join(work, 'aliases.yaml');
    await writeFile(many, `backends: { m: { type: memory } }\nusers:\n  - { name: first, passwordHash: &hash "${hash}", backend: m, permissions: &common [read, write] }\n${users}\n`);
    const ok = await cli(['check-config', many]);
    expect({ code: ok.code, stderr: ok.stderr }).toEqual({ code: 0, stderr: '' });
    expect(ok.stdout).toContain('151 user(s)');
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
    const bomb = join(work, 'bomb.yaml');
    await writeFile(bomb, `${levels.join('\n')}\n`);
    for (const args of [['check-config', bomb], ['--config', bomb]]) {
      const r = await cli(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/cannot expand the file's YAML aliases: Excessive alias count/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('examples/postgres.yaml without its secret names the missing file once', async () => {
    const r = await cli(['check-config', join(examples, 'postgres.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([`${join(examples, 'postgres.yaml')}: invalid configuration`, expect.stringMatching(/^ {2}backends\.db\.url: cannot read \/run\/secrets\/ftpd-db-url: ENOENT/)]);
  });

  it('the anonymous home is made at start, so anonymous users can list it', async () => {
    const root = join(work, 'anon-disk');
    const file = join(work, 'anon.yaml');
    await writeFile(file, `listeners: [{ host: 127.0.0.1, port: 0 }]\nbackends: { disk: { type: local, root: ${JSON.stringify(root)} } }\nanonymous: { backend: disk, home: /pub/files }\n`);
    const s = await startFtpdConfig(file, 1);
    try {
      expect((await stat(join(root, 'pub', 'files'))).isDirectory()).toBe(true);
      expect((await run('curl', ['-sS', '--fail', `ftp://anonymous:x@127.0.0.1:${s.ports[0]}/`, '-l'])).stdout).toBe('');
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });

  it('workers with a passive range too small to share: check-config refuses it, and the start exits 1', async () => {
    const file = join(work, 'workers-range.yaml');
    await writeFile(file, `listeners: [{ host: 127.0.0.1, port: 0 }]\nworkers: 2\nbackends: { disk: { type: local, root: ${JSON.stringify(join(work, 'w'))} } }\nusers: [{ name: a, passwordHash: "${hash}", backend: disk }]\nserver: { passivePortRange: 43500-43500 }\n`);
    const check = await cli(['check-config', file]);
    expect(check.code).toBe(1);
    expect(check.stderr).toContain('server.passivePortRange: the passive port range 43500-43500 has 1 port(s) for 2 workers');
    const start = await cli(['--config', file]);
    expect(start.code).toBe(1);
    expect(start.stderr).toContain('server.passivePortRange: the passive port range 43500-43500 has 1 port(s) for 2 workers');
  });

  it('FTPD_CONFIG set: --version and --help answer, another option is refused by name', async () => {
    const env = { FTPD_CONFIG: join(work, 'absent.yaml') };
    const version = await cli(['--version'], env);
    expect(version).toMatchObject({ code: 0, stdout: expect.stringMatching(/^\d+\.\d+\.\d+\n$/) });
    expect((await cli(['--help'], env)).stdout).toContain('Usage: ftpd');
    const port = await cli(['--port', '42999'], env);
    expect(port.code).toBe(2);
    expect(port.stderr).toContain('with FTPD_CONFIG set, ftpd takes no option: the file says everything (got --port 42999)');
    const both = await cli(['--config', join(work, 'absent.yaml'), '-p', '1']);
    expect(both.stderr).toContain('--config FILE takes no other option: the file says everything (got -p 1)');
  });

  it('the example systemd unit waits longer than the default shutdownGrace before SIGKILL', async () => {
    const unit = await readFile(join(examples, 'ftpd.service'), 'utf8');
    const timeout = Number(/^TimeoutStopSec=(\d+)$/m.exec(unit)?.[1]);
    const grace = parseConfig(`backends: { m: { type: memory } }\nusers: [{ name: a, passwordHash: "${hash}", backend: m }]\n`, 'x.yaml', {}).shutdownGrace;
    expect(grace).toBe(30);
    expect(timeout).toBeGreaterThanOrEqual(grace + 10);
    // With workers, the supervisor alone is to be signalled first (it stops its workers itself).
    expect(unit).toMatch(/^KillMode=mixed$/m);
  });
});

describe('command line errors', () => {
  it('a bad option: one line and a pointer to --help (not the whole usage), exit code 2', async () => {
    for (const [args, message] of [
      [['--bogus'], "ftpd: Unknown option '--bogus'"],
      [['--port', '-1'], 'ftpd: --port: expected a port number 0-65535, got "-1"'],
      [['-p', '-1'], 'ftpd: --port: expected a port number 0-65535, got "-1"'],
    ] as const) {
      const r = await cli([...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`${message}\nRun "ftpd --help" for the options.\n`);
    }
  });

  it('--root naming a file says so, with exit code 1', async () => {
    const file = join(work, 'a-file');
    await writeFile(file, 'x');
    await mkdir(join(work, 'elsewhere'), { recursive: true });
    const r = await cli(['--port', '0', '--root', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`ftpd: cannot start: --root ${file} is not a directory\n`);
    expect(r.stdout).not.toContain('"stack"');
  });
});

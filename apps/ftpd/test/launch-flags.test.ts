import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'basic-ftp';
import { describe, expect, it } from 'vitest';
import { LAUNCH_FLAGS, relaunchArgs, RELAUNCHED_ENV, type LaunchState } from '../src/launch-flags.js';
import { CLI, PASSWORD, startFtpd, USER } from './harness.js';

const NODE = '/usr/local/bin/node';
const state = (execArgv: string[], env: NodeJS.ProcessEnv = {}, args = ['--port', '21']): LaunchState => ({
  execPath: NODE,
  execArgv,
  argv: [NODE, '/srv/ftpd/dist/cli.js', ...args],
  env,
});

describe('relaunchArgs', () => {
  it("starts ftpd again with the launch flags first, then node's options, the script and its arguments as given", () => {
    expect(relaunchArgs(state([]))).toEqual([NODE, '--no-concurrent-recompilation', '/srv/ftpd/dist/cli.js', '--port', '21']);
    expect(relaunchArgs(state(['--max-old-space-size=512', '--require', '/opt/agent.js']))).toEqual([
      NODE,
      '--no-concurrent-recompilation',
      '--max-old-space-size=512',
      '--require',
      '/opt/agent.js',
      '/srv/ftpd/dist/cli.js',
      '--port',
      '21',
    ]);
  });

  it("leaves the process as it is when the operator chose either way, in any of V8's spellings", () => {
    for (const chosen of ['--concurrent-recompilation', '--no-concurrent-recompilation', '--no_concurrent_recompilation', '--noconcurrent-recompilation', '-concurrent-recompilation']) {
      expect(relaunchArgs(state([chosen])), chosen).toBeNull();
    }
  });

  it('never relaunches twice, nor when turned off, under a debugger, with inherited sockets, or without a script', () => {
    expect(relaunchArgs(state([], { [RELAUNCHED_ENV]: '1' }))).toBeNull();
    for (const off of ['off', 'false', 'NO', '0', ' off ']) expect(relaunchArgs(state([], { FTPD_RELAUNCH: off })), off).toBeNull();
    expect(relaunchArgs(state([], { FTPD_RELAUNCH: 'on' }))).not.toBeNull();
    for (const debug of ['--inspect', '--inspect-brk=0.0.0.0:9229', '--inspect-port=0', '--debug-port=1']) expect(relaunchArgs(state([debug])), debug).toBeNull();
    expect(relaunchArgs(state([], { LISTEN_FDS: '1' }))).toBeNull();
    // A parent's IPC channel (fork, PM2) and a cluster worker's identity do not survive an exec.
    expect(relaunchArgs({ ...state([]), ipc: true })).toBeNull();
    expect(relaunchArgs(state([], { NODE_UNIQUE_ID: '1' }))).toBeNull();
    expect(relaunchArgs(state([], { NODE_OPTIONS: '--max-old-space-size=512 --inspect=9230' }))).toBeNull();
    expect(relaunchArgs(state([], { NODE_OPTIONS: '--max-old-space-size=512' }))).not.toBeNull();
    expect(relaunchArgs({ execPath: NODE, execArgv: [], argv: [NODE], env: {} })).toBeNull();
    // Commands that print and exit, with or without pnpm's leading `--`; serving with `--config` relaunches.
    for (const args of [['hash-password'], ['check-config', 'f.yaml'], ['--help'], ['--', '--version'], ['-v']]) expect(relaunchArgs(state([], {}, args)), args.join(' ')).toBeNull();
    expect(relaunchArgs(state([], {}, ['--config', 'f.yaml']))).not.toBeNull();
  });
});

/** `node`'s command line and environment of a running process, from /proc. */
function processOf(pid: number): { argv: string[]; env: string[] } {
  const split = (file: string): string[] => readFileSync(`/proc/${pid}/${file}`, 'latin1').split('\0').filter(Boolean);
  return { argv: split('cmdline'), env: split('environ') };
}

describe.runIf(process.platform === 'linux')('ftpd started as a user starts it', () => {
  it('runs with the launch flags in the same process (same pid), says nothing more, and serves', { timeout: 30_000 }, async () => {
    const ftpd = await startFtpd();
    try {
      const pid = ftpd.proc.pid as number;
      const { argv, env } = processOf(pid);
      for (const flag of LAUNCH_FLAGS) expect(argv).toContain(flag);
      expect(env).toContain(`${RELAUNCHED_ENV}=1`);
      // The script and its arguments came through as they were (the password has a space and a quote).
      expect(argv.slice(argv.indexOf(LAUNCH_FLAGS[LAUNCH_FLAGS.length - 1] as string) + 1)).toEqual(expect.arrayContaining(['--password', PASSWORD]));
      expect(ftpd.stderr()).not.toMatch(/warning/i);
      const client = new Client(10_000);
      try {
        await client.access({ host: '127.0.0.1', port: ftpd.port, user: USER, password: PASSWORD });
        expect(await client.list()).toEqual([]);
      } finally {
        client.close();
      }
    } finally {
      expect(await ftpd.stop('SIGINT')).toBe(0);
    }
  });

  it('started by a parent with an IPC channel (fork, PM2) it runs as started and the channel stays', { timeout: 30_000 }, async () => {
    const root = mkdtempSync(join(tmpdir(), 'ftpd-fork-'));
    const child = fork(CLI, ['--port', '0', '--root', root, '--user', USER, '--password', PASSWORD, '--log-level', 'warn'], { silent: true });
    try {
      let err = '';
      child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
      for (let i = 0; i < 150 && !/user: /.test(err); i++) await new Promise((r) => setTimeout(r, 100));
      expect(err).toMatch(/on ftp:\/\/127\.0\.0\.1:\d+/);
      const { argv } = processOf(child.pid as number);
      for (const flag of LAUNCH_FLAGS) expect(argv).not.toContain(flag);
      expect(child.connected).toBe(true);
    } finally {
      child.kill('SIGINT');
      if (child.exitCode === null) await once(child, 'exit');
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('FTPD_RELAUNCH=off runs it as started', { timeout: 30_000 }, async () => {
    const ftpd = await startFtpd([], { FTPD_RELAUNCH: 'off' });
    try {
      const { argv, env } = processOf(ftpd.proc.pid as number);
      for (const flag of LAUNCH_FLAGS) expect(argv).not.toContain(flag);
      expect(env.some((e) => e.startsWith(`${RELAUNCHED_ENV}=`))).toBe(false);
    } finally {
      await ftpd.stop();
    }
  });
});

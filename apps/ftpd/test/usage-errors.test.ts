import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../src/passwords.js';
import { parseOptions } from '../src/options.js';
import { cliOutcome, startFtpdConfig } from './harness.js';

let work: string;
let ok: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ftpd-usage-'));
  ok = join(work, 'ok.yaml');
  // Port 0: were a refusal to fail, the server would not take a port another test uses.
  await writeFile(ok, `listeners: [{ port: 0 }]\nbackends: { m: { type: memory } }\nusers: [{ name: bob, passwordHash: "${await hashPassword('pw', { ln: 10, r: 8, p: 1 })}", backend: m }]\n`);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/**
 * The first line ftpd wrote to stderr, and its exit code. In a folder of the test's own: what is refused would,
 * accepted, serve (and make) ./data.
 */
async function refusal(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; line: string }> {
  const r = await cliOutcome(args, { env, cwd: work });
  return { code: r.code, line: r.stderr.split('\n')[0] ?? '' };
}

describe('usage errors: exit code 2 and one line naming the flag or the variable', () => {
  it('an empty FTPD_PASSWORD or --password (a bare PASS logged in with write access)', async () => {
    expect(await refusal(['--port', '0'], { FTPD_PASSWORD: '' })).toEqual({ code: 2, line: 'ftpd: FTPD_PASSWORD: must not be empty (leave it out and a password is generated)' });
    expect(await refusal(['--port', '0', '--password', ''])).toEqual({ code: 2, line: 'ftpd: --password: must not be empty (leave it out and a password is generated)' });
  });

  it('a zero-config flag with a configuration file', async () => {
    expect(await refusal(['--config', ok, '--port', '61071'])).toMatchObject({ code: 2 });
  });

  it('a switch variable that is neither on nor off', async () => {
    expect(await refusal(['--port', '0'], { FTPD_MODE_Z: 'maybe' })).toEqual({ code: 2, line: 'ftpd: FTPD_MODE_Z: expected 1, true, yes or on (or 0, false, no, off), got "maybe"' });
  });

  it('--public-host that PASV cannot advertise, and one port for both listeners (exit 1 at the start, before)', async () => {
    expect(await refusal(['--port', '0', '--public-host', '::1'])).toEqual({ code: 2, line: 'ftpd: --public-host: expected an IPv4 address or a DNS name (PASV has no IPv6), got "::1"' });
    expect(await refusal(['--port', '61080', '--self-signed', '--implicit-port', '61080'])).toEqual({
      code: 2,
      line: 'ftpd: --implicit-port and --port are both 61080: the plain and the implicit FTPS listener need a port each',
    });
  });

  it('--user anonymous with --anonymous-root (the named user could never log in)', async () => {
    const line = 'ftpd: --user anonymous: that is the anonymous login while --anonymous-root is given; choose another user name';
    expect(await refusal(['--port', '0', '--user', 'anonymous', '--anonymous-root', join(work, 'anon')])).toEqual({ code: 2, line });
  });

  it('check-config with no file, or more than one (the second was silently not checked)', async () => {
    expect(await refusal(['check-config', ok, ok])).toEqual({ code: 2, line: `ftpd check-config: one file at a time (got ${ok} ${ok})` });
    expect(await refusal(['check-config'])).toEqual({ code: 2, line: 'Usage: ftpd check-config FILE' });
    expect((await cliOutcome(['check-config', ok])).code).toBe(0);
  });
});

describe('zero-config variables beside a configuration file: said, and served (they were silently ignored)', () => {
  // Kubernetes and Docker links put FTPD_PORT=tcp://10.0.0.5:21 into every container beside a service named ftpd:
  // refused, such a pod could never start.
  it.each([
    ['--config FILE', (file: string) => ({ args: ['--config', file], env: {} })],
    ['FTPD_CONFIG', (file: string) => ({ args: [], env: { FTPD_CONFIG: file } })],
  ])('with %s', async (how, given) => {
    const file = join(work, 'one-listener.yaml');
    await writeFile(file, `listeners: [{ host: 127.0.0.1, port: 0 }]\nbackends: { m: { type: memory } }\nusers: [{ name: bob, passwordHash: "${await hashPassword('pw', { ln: 10, r: 8, p: 1 })}", backend: m }]\n`);
    const { args, env } = given(file);
    const ftpd = await startFtpdConfig(file, 1, { ...env, FTPD_PORT: 'tcp://10.96.0.12:21', FTPD_MODE_Z: '' }, args);
    try {
      expect(ftpd.stderr()).toContain(`ftpd: warning: FTPD_PORT, FTPD_MODE_Z ignored with ${how}`);
      expect(ftpd.ports[0]).toBeGreaterThan(0);
    } finally {
      await ftpd.stop();
    }
  });

  it('an empty switch variable is unset (compose files write FTPD_MODE_Z=${FTPD_MODE_Z:-})', async () => {
    const r = await cliOutcome(['--port', '0', '--version'], { env: { FTPD_MODE_Z: '', FTPD_ASYNC_METADATA: ' ' }, cwd: work });
    expect(r.code).toBe(0);
    expect(parseOptions(['--port', '0'], { FTPD_MODE_Z: '', FTPD_ASYNC_METADATA: ' ' })).toMatchObject({ modeZ: false, syncMetadata: true });
  });
});

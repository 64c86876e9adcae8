import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { hashPassword } from '../src/passwords.js';
import { cliOutcome, run, startFtpdConfig, waitFor } from './harness.js';

let work: string;
let hash: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ftpd-home-file-'));
  await mkdir(join(work, 'root'));
  await writeFile(join(work, 'root', 'afile'), 'not a folder');
  hash = await hashPassword('pw', { ln: 10, r: 8, p: 1 });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

it('a user whose home is a file: check-config warns, the login is refused (530, no failed login) with an error naming the user and the home', async () => {
  // It logged in (230), LIST showed one entry named /, STOR said 551 Not a directory, and nothing was logged.
  const file = join(work, 'home.yaml');
  await writeFile(
    file,
    [
      'listeners: [{ port: 0 }]',
      'backends: { disk: { type: local, root: ./root } }',
      'users:',
      `  - { name: alice, passwordHash: "${hash}", backend: disk, home: /afile }`,
      `  - { name: bob, passwordHash: "${hash}", backend: disk, home: /bob }`,
      'log: { level: info }',
      // Loopback banned too: a refusal counted as a failed login would ban the address after two.
      'server: { maxLoginFailures: 2, banExempt: [], failedLoginDelay: 0 }',
      '',
    ].join('\n'),
  );
  const checked = await cliOutcome(['check-config', file]);
  expect(checked.code).toBe(0);
  expect(checked.stderr).toBe(
    `${file}: warning: users[0].home: home /afile on backend "disk" (${join(work, 'root', 'afile')}) is not a folder: user "alice" cannot log in until it is one\n`,
  );
  const s = await startFtpdConfig(file, 1);
  try {
    expect(s.stderr()).toMatch(/ftpd: warning: users\[0\]\.home: home \/afile on backend "disk"/);
    // Her password is right: told why, however often she tries, and no ban for her address.
    for (let i = 0; i < 4; i++) await expect(run('curl', ['-sS', '--fail', '-l', `ftp://alice:pw@127.0.0.1:${s.ports[0]}/`])).rejects.toThrow(/530/);
    expect((await run('curl', ['-sS', '--fail', '-l', `ftp://bob:pw@127.0.0.1:${s.ports[0]}/`])).stdout).toBe('');
    // Log lines are written in batches (up to 100 ms apart).
    await waitFor(() => s.logs().some((l) => l.level === 50));
    const refused = s.logs().find((l) => l.level === 50);
    expect(refused).toMatchObject({ msg: 'login refused: user "alice": home /afile on backend "disk" is not a folder', user: 'alice', homes: [{ backend: 'disk', home: '/afile' }] });
  } finally {
    expect(await s.stop()).toBe(0);
  }
});

it('an anonymous home that is a file stops check-config and the start (exit 1), as --anonymous-root naming a file does', async () => {
  const file = join(work, 'anonymous.yaml');
  await writeFile(file, 'listeners: [{ port: 0 }]\nbackends: { disk: { type: local, root: ./root } }\nanonymous: { backend: disk, home: /afile }\n');
  const problem = `anonymous.home: home /afile on backend "disk" (${join(work, 'root', 'afile')}) is not a folder: anonymous access cannot be served there`;
  for (const args of [['check-config', file], ['--config', file]]) {
    const r = await cliOutcome(args);
    expect({ code: r.code, problem: r.stderr.includes(problem) }).toEqual({ code: 1, problem: true });
  }
});

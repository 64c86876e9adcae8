import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { deleteFilesystem } from '@ftp/driver-redis';
import { ensureLocalRedis } from '@ftp/driver-redis/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { hashPassword } from '../src/passwords.js';
import { run, startFtpdConfig, type ConfiguredFtpdProcess } from './harness.js';

// The Redis of the machine (127.0.0.1:6379), started when it is down; one that cannot be had fails the test.
const REDIS = 'redis://127.0.0.1:6379/0';
const prefix = `ftpd-test-${randomBytes(4).toString('hex')}`;
let work: string;
const running: ConfiguredFtpdProcess[] = [];

beforeAll(async () => {
  await ensureLocalRedis();
  work = await mkdtemp(join(tmpdir(), 'ftpd-scale-'));
});
afterAll(async () => {
  for (const s of running) await s.stop();
  const redis = new Redis(REDIS, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    await deleteFilesystem(redis, prefix, { removeIdCounter: true });
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}-ban:*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  await rm(work, { recursive: true, force: true });
});

it('two ftpd instances over one Redis see each other\'s files and share bans', { timeout: 60000 }, async () => {
  const hash = await hashPassword('pw');
  const config = (range: string): string =>
    [
      'listeners: [{ port: 0 }]',
      `backends: { shared: { type: redis, url: "${REDIS}", prefix: ${prefix} } }`,
      `bans: { type: redis, url: "${REDIS}", prefix: ${prefix}-ban, timeoutMs: 2000 }`,
      `users: [{ name: alice, passwordHash: "${hash}", backend: shared }]`,
      `server: { passivePortRange: ${range}, maxLoginFailures: 3, banExempt: [], failedLoginDelay: 0, maxLoginAttemptsPerSession: 5 }`,
      '',
    ].join('\n');
  await writeFile(join(work, 'a.yaml'), config('47500-47509'));
  await writeFile(join(work, 'b.yaml'), config('47510-47519'));
  const a = await startFtpdConfig(join(work, 'a.yaml'), 1);
  running.push(a);
  const b = await startFtpdConfig(join(work, 'b.yaml'), 1);
  running.push(b);
  const url = (s: ConfiguredFtpdProcess, pass = 'pw'): string => `ftp://alice:${pass}@127.0.0.1:${s.ports[0]}`;

  const src = join(work, 'shared.txt');
  await writeFile(src, 'written through a');
  await run('curl', ['-sS', '--fail', '-T', src, `${url(a)}/shared.txt`]);
  expect((await run('curl', ['-sS', '--fail', `${url(b)}/`, '-l'])).stdout.trim()).toBe('shared.txt');
  expect((await run('curl', ['-sS', '--fail', `${url(b)}/shared.txt`])).stdout).toBe('written through a');

  // Three failures on instance a ban the address on instance b too.
  for (let i = 0; i < 3; i++) await run('curl', ['-sS', `${url(a, 'wrong')}/`]).catch(() => undefined);
  // The greeting of instance b, read raw: a banned address gets 421 at connect.
  const greeting = await new Promise<string>((resolve, reject) => {
    const socket = connect({ port: b.ports[0]!, host: '127.0.0.1' });
    socket.once('data', (d: Buffer) => {
      resolve(d.toString());
      socket.destroy();
    });
    socket.once('error', reject);
  });
  expect(greeting).toMatch(/^421 /);
});

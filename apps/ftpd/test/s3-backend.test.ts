import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { hashPassword } from '../src/passwords.js';
import { run, sha256File, startFtpdConfig, makeFiles, type ConfiguredFtpdProcess } from './harness.js';

// A real S3 HTTP endpoint: s3rver as @ftp/driver-s3's own tests run it (its fixture patches what s3rver lacks:
// multipart abort and copy, If-Match), in a process of its own.
const fixtures = fileURLToPath(new URL('../../../packages/driver-s3/test/fixtures/', import.meta.url));
let work: string;
let s3rver: ChildProcess;
let endpoint: string;
const running: ConfiguredFtpdProcess[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ftpd-s3-'));
  const store = join(work, 's3');
  // s3rver keeps a bucket as a folder of its store.
  await mkdir(join(store, 'ftp-files'), { recursive: true });
  s3rver = spawn(process.execPath, ['--openssl-legacy-provider', '--import', join(fixtures, 'ts-hooks.mjs'), join(fixtures, 's3rver-main.ts'), store], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('s3rver did not start within 20 s')), 20000);
    createInterface({ input: s3rver.stdout! }).once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    s3rver.once('exit', (code) => reject(new Error(`s3rver exited (${code})`)));
  });
  endpoint = `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`;
});
afterAll(async () => {
  for (const s of running) await s.stop();
  s3rver?.kill('SIGTERM');
  await rm(work, { recursive: true, force: true });
});

/** A config file `name` in the work folder: one s3 backend at `endpoint` (with `extra` settings) and the user alice. */
async function s3Config(name: string, endpoint: string, extra: string, userExtra = ''): Promise<string> {
  const file = join(work, name);
  const credentials = 'forcePathStyle: true, accessKeyId: S3RVER, secretAccessKey: S3RVER';
  await writeFile(
    file,
    [
      'listeners: [{ port: 0 }]',
      'backends:',
      `  bucket: { type: s3, bucket: ftp-files, region: us-east-1, endpoint: "${endpoint}", ${credentials}, ${extra} }`,
      `users: [{ name: alice, passwordHash: "${await hashPassword('pw')}", backend: bucket${userExtra ? `, ${userExtra}` : ''} }]`,
      '',
    ].join('\n'),
  );
  return file;
}

it('an s3 backend through the built ftpd: upload, list, download, rename, delete', { timeout: 60000 }, async () => {
  const file = await s3Config('ftpd.yaml', endpoint, 'maxRenameObjects: 1', 'home: /alice');
  const s = await startFtpdConfig(file, 1);
  running.push(s);
  const url = `ftp://alice:pw@127.0.0.1:${s.ports[0]}`;
  const files = await makeFiles(work, [3 * 1024 * 1024]);
  const big = files.get(3 * 1024 * 1024)!;
  await run('curl', ['-sS', '--fail', '--ftp-create-dirs', '-T', big.path, `${url}/in/big.bin`]);
  expect((await run('curl', ['-sS', '--fail', `${url}/in/`, '-l'])).stdout.trim()).toBe('big.bin');
  await run('curl', ['-sS', '--fail', '-o', join(work, 'back.bin'), `${url}/in/big.bin`]);
  // maxRenameObjects reaches the driver: a folder of more objects than that is not renamed (553, RNTO's refusal), and
  // stays whole.
  const refused = await run('curl', ['-sS', '-Q', 'RNFR in', '-Q', 'RNTO out', `${url}/`, '-l']).then(
    () => null,
    (err: Error) => err.message,
  );
  expect(refused).toMatch(/QUOT command failed with 553/);
  expect((await run('curl', ['-sS', '--fail', `${url}/in/`, '-l'])).stdout.trim()).toBe('big.bin');
  expect(await sha256File(join(work, 'back.bin'))).toBe(big.sha256);
  await run('curl', ['-sS', '--fail', '-Q', 'RNFR in/big.bin', '-Q', 'RNTO in/moved.bin', '-Q', 'DELE in/moved.bin', `${url}/`, '-l']);
  expect((await run('curl', ['-sS', '--fail', `${url}/in/`, '-l'])).stdout.trim()).toBe('');
});

it('metadataTimeoutMs reaches the driver: a store that accepts and never answers fails a command within it', { timeout: 60000 }, async () => {
  // An endpoint that takes connections and says nothing (a hung store): without the setting, a SIZE waits 60 s.
  const { createServer } = await import('node:net');
  const held: import('node:net').Socket[] = [];
  const silent = createServer((sock) => void held.push(sock));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const silentPort = (silent.address() as import('node:net').AddressInfo).port;
  try {
    const file = await s3Config('ftpd-silent.yaml', `http://127.0.0.1:${silentPort}`, 'metadataTimeoutMs: 500');
    const s = await startFtpdConfig(file, 1);
    running.push(s);
    const started = performance.now();
    const failed = await run('curl', ['-sS', '--max-time', '20', '-o', '/dev/null', `ftp://alice:pw@127.0.0.1:${s.ports[0]}/x.bin`]).then(
      () => null,
      (err: Error) => err.message,
    );
    const seconds = (performance.now() - started) / 1000;
    // curl's own 20 s deadline (exit 28) is not the store's answer: the server must have replied long before.
    expect(failed).toMatch(/RETR|server denied|curl: \(\d+\)/i);
    expect(failed).not.toMatch(/timed out|\(28\)/i);
    expect(seconds).toBeLessThan(15);
  } finally {
    for (const sock of held) sock.destroy();
    silent.close();
  }
});

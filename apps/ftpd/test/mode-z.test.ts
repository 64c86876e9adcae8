import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { lftp, sha256File, startFtpd, type RunningFtpd } from './harness.js';

let ftpd: RunningFtpd;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'modez-e2e-'));
  ftpd = await startFtpd(['--log-level', 'info', '--mode-z']);
});
afterAll(async () => {
  expect(await ftpd.stop()).toBe(0);
  await rm(work, { recursive: true, force: true });
});

it('lftp with ftp:use-mode-z round-trips a compressible 32 MiB file with fewer bytes on the wire', { timeout: 120000 }, async () => {
  const line = 'timestamp=2026-11-21T13:44:00Z level=info msg="request served" path=/api/items status=200\n';
  const text = line.repeat(Math.ceil((32 * 1024 * 1024) / line.length)).slice(0, 32 * 1024 * 1024);
  const local = join(work, 'log.txt');
  await writeFile(local, text);
  await writeFile(join(ftpd.root, 'server-log.txt'), text);
  await lftp(ftpd.port, `set ftp:use-mode-z yes; set ftp:mode-z-level 6; get server-log.txt -o ${JSON.stringify(join(work, 'back.txt'))}; put ${JSON.stringify(local)} -o up.txt`);
  const expected = await sha256File(local);
  expect(await sha256File(join(work, 'back.txt'))).toBe(expected);
  expect(await sha256File(join(ftpd.root, 'up.txt'))).toBe(expected);
  const okTransfers = () => ftpd.logs().filter((l) => l.msg === 'transfer' && l.outcome === 'ok' && (l.direction === 'download' || l.direction === 'upload'));
  // Lines logged close together reach the output together, up to 100 ms later (log-output.ts).
  for (let i = 0; i < 50 && okTransfers().length < 2; i++) await new Promise((r) => setTimeout(r, 100));
  const transfers = okTransfers();
  const down = transfers.find((t) => t.path === '/server-log.txt');
  const up = transfers.find((t) => t.path === '/up.txt');
  // The wire bytes the server counted: deflated, far fewer than the file's 32 MiB.
  expect(down?.bytes).toBeLessThan(text.length / 10);
  expect(up?.bytes).toBeLessThan(text.length / 10);
});

it('by default MODE Z is not offered, so lftp (which turns it on by itself) lists a 30,000-entry folder whole', { timeout: 120000 }, async () => {
  // With MODE Z offered, lftp 4.9's inflater lost the end of listings that deflate better than ~6:1: `ls` of this
  // folder printed 18,978–28,855 lines in about half the runs, and `mirror` copied as few.
  const plain = await startFtpd(['--log-level', 'warn']);
  try {
    const dir = join(plain.root, 'many');
    await mkdir(dir);
    for (let i = 0; i < 30000; i += 1000) {
      await Promise.all(Array.from({ length: 1000 }, (_, k) => writeFile(join(dir, `file-number-${i + k}.txt`), '')));
    }
    const feat = await lftp(plain.port, 'quote FEAT');
    expect(feat.stdout + feat.stderr).not.toMatch(/MODE Z/);
    for (let run = 0; run < 5; run++) {
      const { stdout } = await lftp(plain.port, 'ls many');
      expect(stdout.split('\n').filter((l) => l.includes('file-number-')).length, `run ${run}`).toBe(30000);
    }
  } finally {
    expect(await plain.stop()).toBe(0);
  }
});

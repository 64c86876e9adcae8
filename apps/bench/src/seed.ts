/** The files every server serves: made once per run, then hard-linked (or uploaded) into each fresh home. */
import { randomFillSync } from 'node:crypto';
import { chmodSync, closeSync, linkSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { FtpClient } from './ftp-client.js';
import type { Seed } from './workloads/types.js';

const MIB = 1024 * 1024;

export function makeSeed(work: string, bigMiB: number, listEntries: number): Seed {
  const dir = path.join(work, 'seed');
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  const bigFile = path.join(dir, 'big.bin');
  const chunk = Buffer.allocUnsafe(MIB);
  const fd = openSync(bigFile, 'w', 0o644);
  try {
    for (let i = 0; i < bigMiB; i++) writeSync(fd, randomFillSync(chunk));
  } finally {
    closeSync(fd);
  }
  writeFileSync(path.join(dir, '1m.bin'), randomFillSync(Buffer.allocUnsafe(MIB)), { mode: 0o644 });
  return { bigFile, bigBytes: bigMiB * MIB, bigName: 'big.bin', mibName: '1m.bin', listDir: 'list10k', listEntries };
}

/** A fresh home on disk with the seed files in it. */
export function seedHome(seed: Seed, home: string): void {
  mkdirSync(path.join(home, seed.listDir), { recursive: true, mode: 0o755 });
  linkSync(seed.bigFile, path.join(home, seed.bigName));
  linkSync(path.join(path.dirname(seed.bigFile), seed.mibName), path.join(home, seed.mibName));
  for (let i = 0; i < seed.listEntries; i++) writeFileSync(path.join(home, seed.listDir, `entry-${String(i).padStart(5, '0')}.txt`), 'bench\n');
}

/** Makes the listing folder through FTP, for backends that are not a folder on disk. */
export async function seedListingOverFtp(seed: Seed, port: number, user: string, password: string): Promise<void> {
  const client = await FtpClient.connect({ host: '127.0.0.1', port, timeoutMs: 30_000 });
  try {
    await client.login(user, password);
    await client.command(`MKD ${seed.listDir}`, 257);
    const empty = Buffer.from('bench\n');
    for (let i = 0; i < seed.listEntries; i++) await client.upload(`${seed.listDir}/entry-${String(i).padStart(5, '0')}.txt`, empty);
    await client.quit();
  } finally {
    client.destroy();
  }
}

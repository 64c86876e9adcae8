import { open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFtpd, type RunningFtpd } from './harness.js';

const FOUR_GIB = 4 * 1024 ** 3;
/** How much more the server's RSS may peak for a 4 GiB transfer than for a 512 MiB one ("a few MiB"), in KiB. */
const MAX_GROWTH_KIB = 16 * 1024;

let ftpd: RunningFtpd;

beforeAll(async () => {
  ftpd = await startFtpd();
});
afterAll(async () => {
  expect(await ftpd.stop()).toBe(0);
});

/** Samples the server's RSS every 100 ms while `work` runs; returns the peak. */
async function peakRssDuring(work: Promise<unknown>): Promise<number> {
  let peak = await ftpd.rssKiB();
  let done = false;
  const sampler = (async () => {
    while (!done) {
      peak = Math.max(peak, await ftpd.rssKiB());
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    await work;
  } finally {
    done = true;
    await sampler;
  }
  return peak;
}

/** Runs curl, streaming from /dev/zero or to /dev/null, so the client holds nothing either. */
function curl(args: string[], stdin?: 'zero', bytes = FOUR_GIB): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '--fail', ...args], { stdio: [stdin ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    if (stdin) {
      // Exactly `bytes` of zeros from a 1 MiB buffer, honouring backpressure.
      const chunk = Buffer.alloc(1024 * 1024);
      let left = bytes / chunk.length;
      const pump = (): void => {
        while (left > 0) {
          left--;
          if (!child.stdin!.write(chunk)) return void child.stdin!.once('drain', pump);
        }
        child.stdin!.end();
      };
      pump();
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 240000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`curl exited ${code}: ${err}`));
    });
  });
}

// Every chunk a stream reads is a fresh buffer that V8 frees lazily (it lets up to ~64 MiB of external garbage
// build up between collections), so RSS during any bulk transfer sits some tens of MiB above idle. What must not
// happen is growth with the size of the file: a 4 GiB transfer peaks where a 512 MiB one already does.
const STEADY = 512 * 1024 * 1024;

it('a 4 GiB RETR and a 4 GiB STOR take no more server memory than 512 MiB ones', { timeout: 600000 }, async () => {
  // A sparse file: reading it costs the disk nothing, so the test measures the server alone.
  const sparse = join(ftpd.root, 'sparse.bin');
  const fh = await open(sparse, 'w');
  await fh.truncate(FOUR_GIB);
  await fh.close();
  const idle = await ftpd.rssKiB();
  // The same transfers at 512 MiB first: their peak is what buffers, JIT code and garbage cost whatever the size.
  const smallRetr = await peakRssDuring(curl([`${ftpd.url}/sparse.bin`, '-r', `0-${STEADY - 1}`, '-o', '/dev/null']));
  const smallStor = await peakRssDuring(curl(['-T', '-', `${ftpd.url}/upload.bin`], 'zero', STEADY));
  const retrPeak = await peakRssDuring(curl([`${ftpd.url}/sparse.bin`, '-o', '/dev/null']));
  await rm(sparse);
  const storPeak = await peakRssDuring(curl(['-T', '-', `${ftpd.url}/upload.bin`], 'zero', FOUR_GIB));
  expect((await stat(join(ftpd.root, 'upload.bin'))).size).toBe(FOUR_GIB);
  await rm(join(ftpd.root, 'upload.bin'));
  console.log(
    `server RSS (KiB): idle ${idle}; peak for 512 MiB RETR ${smallRetr}, STOR ${smallStor}; for 4 GiB RETR ${retrPeak}, STOR ${storPeak}`,
  );
  const baseline = Math.max(smallRetr, smallStor);
  expect(retrPeak - baseline).toBeLessThan(MAX_GROWTH_KIB);
  expect(storPeak - baseline).toBeLessThan(MAX_GROWTH_KIB);
});

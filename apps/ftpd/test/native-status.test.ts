// The `ready` line says what runs without @ftp/native's fast paths, and why.
import { afterEach, expect, it } from 'vitest';
import { sendfileUnavailableReason } from '@ftp/native';
import { startFtpd, type RunningFtpd } from './harness.js';

let ftpd: RunningFtpd | undefined;
afterEach(async () => {
  await ftpd?.stop();
  ftpd = undefined;
});

const ready = async (server: RunningFtpd): Promise<Record<string, unknown>> => {
  for (let i = 0; i < 100; i++) {
    const line = server.logs().find((l) => l.msg === 'ready');
    if (line) return line;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ready line in ${JSON.stringify(server.logs())}`);
};

it('names the fast paths that are off and why (here switched off by FTP_SENDFILE=0)', async () => {
  ftpd = await startFtpd(['--log-level', 'info'], { FTP_SENDFILE: '0' });
  const line = await ready(ftpd);
  expect(line.nativeFastPathsOff).toBe('turned off by FTP_SENDFILE=0');
});

const fastPathsOff = sendfileUnavailableReason();
if (fastPathsOff !== null && process.env.CI !== 'true') console.warn(`\n*** ftpd: SKIPPING "says nothing of them when they all work": ${fastPathsOff}.\n`);

it.skipIf(fastPathsOff !== null && process.env.CI !== 'true')('says nothing of them when they all work', async () => {
  ftpd = await startFtpd(['--log-level', 'info']);
  const line = await ready(ftpd);
  expect(line).not.toHaveProperty('nativeFastPathsOff');
  expect(line).not.toHaveProperty('mallocTrimOff');
});

import { accessSync, constants, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFileClaimsFolder } from '@ftp/vfs';

/** How long a dead supervisor's claims folder must have been untouched before a new supervisor removes it. */
const STALE_CLAIMS_MS = 10 * 60_000;

/**
 * Makes the folder where the workers claim local files: in memory (`/dev/shm`, a few µs a claim) when the machine
 * has it, else in tmpdir. Named after this process, so that the folders of supervisors that were killed outright
 * (SIGKILL: no clean-up) are found and removed here.
 */
export function makeClaimsFolder(): string {
  let parent = tmpdir();
  try {
    accessSync('/dev/shm', constants.W_OK);
    parent = '/dev/shm';
  } catch {
    // no tmpfs: tmpdir
  }
  // Only folders this user made, as folders (anyone can name an entry of /dev/shm), whose supervisor is gone and
  // that are empty or untouched for a while (a live supervisor in another PID namespace sharing /dev/shm would look
  // gone; its workers make an empty folder again if it goes): clean-up is a courtesy, and never stops the start.
  const uid = process.getuid?.();
  let names: string[] = [];
  try {
    names = readdirSync(parent);
  } catch {
    // not listable: nothing to clean
  }
  for (const name of names) {
    const pid = /^ftpd-claims-(\d+)-/.exec(name)?.[1];
    if (pid === undefined || processAlive(Number(pid))) continue;
    const folder = join(parent, name);
    try {
      const st = lstatSync(folder);
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
      if (Date.now() - st.mtimeMs > STALE_CLAIMS_MS || readdirSync(folder).every((entry) => entry === 'epoch')) rmSync(folder, { recursive: true, force: true });
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
  const folder = mkdtempSync(join(parent, `ftpd-claims-${process.pid}-`));
  startFileClaimsFolder(folder);
  return folder;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Free page reporting: a virtual machine's kernel handing memory it has freed back to the hypervisor. Writing into
 * such memory again costs a host fault per page, so a round that grows the page cache into it (an upload) is slowed
 * by the machine, not by the server that runs it. Measured on the 2-core VM this bench was built on: a 1 GiB STOR
 * to the same server ran at 3,208 MiB/s and, four and five rounds later with the page cache grown into returned
 * memory, 489 and 333 MiB/s, the server's CPU going from 0.3 to 1.8 s (mostly the kernel's copy into the page cache);
 * touching 1.5 GiB of returned memory took the machine ~5 s. The report names the mechanism so such rounds can be
 * read for what they are.
 */
import { existsSync, readFileSync } from 'node:fs';

const PARAMETERS = '/sys/module/page_reporting/parameters';

/** KiB this machine has reported to its host since boot, or null where free page reporting is not in the kernel. */
export function reportedKib(): number | null {
  const file = `${PARAMETERS}/reported_kib`;
  if (!existsSync(file)) return null;
  const kib = Number(readFileSync(file, 'utf8').trim());
  return Number.isFinite(kib) ? kib : null;
}

/** One line for the report's machine section: whether memory went back to the host during the run, and how much. */
export function describePageReporting(atStart: number | null): string {
  const now = reportedKib();
  if (atStart === null || now === null) return 'Free page reporting: not in this kernel (memory freed stays with the machine).';
  const gib = (now - atStart) / 1024 ** 2;
  return (
    `Free page reporting: on; ${gib.toFixed(1)} GiB of freed memory went back to the hypervisor during the run. ` +
    'Writing into such memory again costs a host fault per page: an upload round that grows the page cache into it ' +
    'runs at a fraction of its speed with several times its kernel CPU, whichever server runs it (STOR varies most).'
  );
}

import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { describePageReporting, reportedKib } from '../src/page-reporting.js';

describe('free page reporting in the report', () => {
  it('reads the kernel counter where it exists, and nothing where it does not', () => {
    const kib = reportedKib();
    if (existsSync('/sys/module/page_reporting/parameters/reported_kib')) expect(kib).toBeGreaterThanOrEqual(0);
    else expect(kib).toBeNull();
  });

  it('says how much memory went back to the host since the start of the run', () => {
    const now = reportedKib();
    if (now === null) {
      // Without the counter the line must say so rather than claim a figure.
      expect(describePageReporting(0)).toMatch(/not in this kernel/);
      return;
    }
    // A start 2 GiB ago: at least 2.0 GiB (the machine may report more while the test runs).
    const line = describePageReporting(now - 2 * 1024 ** 2);
    const gib = Number(/on; (\d+\.\d) GiB/.exec(line)?.[1]);
    expect(gib).toBeGreaterThanOrEqual(2);
  });

  it('claims nothing when the start of the run could not be read', () => {
    expect(describePageReporting(null)).toMatch(/not in this kernel/);
  });
});

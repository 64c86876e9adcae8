import { describe, expect, it } from 'vitest';
import { advantage, formatNumber, renderMarkdown, summary, targets, type Report } from '../src/report.js';
import { summarize } from '../src/stats.js';
import type { Row } from '../src/workloads/types.js';

const row = (workload: string, metric: string, values: number[], better: Row['better'] = 'higher', unit = 'MiB/s'): Row => ({ workload, metric, unit, better, figure: summarize(values) });

function report(servers: Report['servers']): Report {
  return { title: 't', machine: ['m'], command: 'pnpm bench', runs: 3, durationSeconds: 1, workloads: [{ id: 'retr', title: 'RETR' }, { id: 'list', title: 'LIST' }], servers };
}

describe('report', () => {
  it('takes the ratio so that above 1 means ours is better, whichever way the metric goes', () => {
    expect(advantage('higher', 200, 100)).toBe(2);
    expect(advantage('lower', 10, 30)).toBe(3);
    expect(advantage('info', 1, 2)).toBeNull();
    expect(advantage('lower', 0, 5)).toBeNull();
  });

  it('formats numbers to a readable precision', () => {
    expect(formatNumber(1234.5)).toBe('1235');
    expect(formatNumber(12.345)).toBe('12.3');
    expect(formatNumber(1.2345)).toBe('1.23');
    expect(formatNumber(0.01234)).toBe('0.012');
  });

  it('puts servers side by side with median, range and our ratio, and names missing peers', () => {
    const md = renderMarkdown(
      report([
        { name: 'ours', ours: true, rows: [row('retr', 'throughput', [900, 1000, 1100]), row('list', 'MLSD', [20, 25, 30], 'lower', 'ms')] },
        { name: 'vsftpd', ours: false, rows: [row('retr', 'throughput', [500, 500, 500])] },
        { name: 'pure-ftpd', ours: false, missing: 'apt-get download pure-ftpd failed', rows: [] },
      ]),
    );
    expect(md).toContain('| | ours | vsftpd |');
    expect(md).toContain('| throughput (MiB/s) | 1000 (900–1100) | 500 · **2.00×** |');
    expect(md).toContain('**Missing:** pure-ftpd (apt-get download pure-ftpd failed)');
  });

  it('checks targets against the best peer and says which are missed', () => {
    const lines = targets(
      report([
        { name: 'ours', ours: true, rows: [row('retr', 'throughput', [900]), row('list', 'LIST', [45], 'lower', 'ms'), row('list', 'MLSD', [20], 'lower', 'ms')] },
        { name: 'vsftpd', ours: false, rows: [row('retr', 'throughput', [1000])] },
        { name: 'pyftpdlib', ours: false, rows: [row('retr', 'throughput', [800])] },
        { name: 'ftp-srv', ours: false, rows: [row('retr', 'throughput', [250])] },
      ]),
    );
    expect(lines.find((l) => l.startsWith('| RETR ≥ 1.0× the best peer'))).toBe('| RETR ≥ 1.0× the best peer | 900 | vsftpd 1000 MiB/s | **no** |');
    expect(lines.find((l) => l.startsWith('| LIST of 10k'))).toContain('| **no** |');
    expect(lines.find((l) => l.startsWith('| MLSD of 10k'))).toContain('| yes |');
    expect(lines.find((l) => l.startsWith('| ≥ 3× ftp-srv: retr'))).toBe('| ≥ 3× ftp-srv: retr throughput | 3.60 | ftp-srv 250 MiB/s | yes |');
  });

  it('gives the many-session targets for the worker-process column too, and only those', () => {
    const lines = targets(
      report([
        { name: 'ours', ours: true, rows: [row('clients', 'transfers', [900], 'higher', '/s'), row('retr', 'throughput', [900])] },
        { name: 'ours (2 workers)', ours: true, rows: [row('clients', 'transfers', [1300], 'higher', '/s')] },
        { name: 'pyftpdlib', ours: false, rows: [row('clients', 'transfers', [1100], 'higher', '/s')] },
        { name: 'ftp-srv', ours: false, rows: [row('clients', 'transfers', [400], 'higher', '/s'), row('retr', 'throughput', [250])] },
      ]),
    );
    expect(lines).toContain('| 200 clients ≥ 1.0× pyftpdlib transfers/s | 900 | pyftpdlib 1100/s | **no** |');
    expect(lines).toContain('| 200 clients ≥ 1.0× pyftpdlib transfers/s, ours (2 workers) | 1300 | pyftpdlib 1100/s | yes |');
    expect(lines).toContain('| ≥ 3× ftp-srv: clients transfers, ours (2 workers) | 3.25 | ftp-srv 400 /s | yes |');
    expect(lines.some((l) => l.includes('retr') && l.includes('workers'))).toBe(false);
  });

  it('summarizes the headline figure of each workload, leaving out rows no server has and the scrypt column', () => {
    const lines = summary(
      report([
        { name: 'ours', ours: true, rows: [row('retr', 'throughput', [900, 1000, 1100]), row('list', 'MLSD', [20], 'lower', 'ms')] },
        { name: 'ours (scrypt)', ours: true, rows: [row('logins', 'sequential', [5])] },
        { name: 'vsftpd', ours: false, rows: [row('retr', 'throughput', [500]), { ...row('list', 'MLSD', []), figure: null, note: '500 Unknown command' }] },
      ]),
    );
    expect(lines[0]).toBe('| median | ours | vsftpd |');
    expect(lines).toContain('| RETR 1 GiB (MiB/s) | 1000 | 500 |');
    expect(lines).toContain('| MLSD 10k (ms) | 20.0 | failed |');
    expect(lines.some((l) => l.startsWith('| STOR'))).toBe(false);
  });
});

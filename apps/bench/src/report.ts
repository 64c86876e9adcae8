/** The results as Markdown: one table per workload with servers side by side, then the issue's targets. */
import type { Figure } from './stats.js';
import type { Row } from './workloads/types.js';

export interface ServerResult {
  name: string;
  ours: boolean;
  /** Why the server could not be benchmarked, when it could not. */
  missing?: string;
  rows: Row[];
}

export interface Report {
  title: string;
  machine: string[];
  command: string;
  runs: number;
  durationSeconds: number;
  workloads: Array<{ id: string; title: string }>;
  servers: ServerResult[];
}

/** Significant digits that keep a table readable. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 100) return Math.round(v).toString();
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return '0';
  return v.toPrecision(2);
}

function formatFigure(f: Figure): string {
  if (f.runs.length === 1 || f.min === f.max) return formatNumber(f.median);
  return `${formatNumber(f.median)} (${formatNumber(f.min)}–${formatNumber(f.max)})`;
}

/** How many times better `ours` is than `peer` (above 1: ours wins), or null when it cannot be said. */
export function advantage(better: Row['better'], ours: number, peer: number): number | null {
  if (better === 'info' || !Number.isFinite(ours) || !Number.isFinite(peer)) return null;
  if (better === 'higher') return peer > 0 ? ours / peer : null;
  return ours > 0 ? peer / ours : null;
}

function find(server: ServerResult | undefined, workload: string, metric: string): Row | undefined {
  return server?.rows.find((r) => r.workload === workload && r.metric === metric);
}

function table(report: Report, workload: string): string[] {
  const present = report.servers.filter((s) => s.missing === undefined && s.rows.some((r) => r.workload === workload));
  if (present.length === 0) return [];
  const reference = present.find((s) => s.ours && s.name === 'ours') ?? present.find((s) => s.ours);
  const metrics: Row[] = [];
  for (const s of present) for (const r of s.rows) if (r.workload === workload && !metrics.some((m) => m.metric === r.metric)) metrics.push(r);
  const lines = [`| | ${present.map((s) => s.name).join(' | ')} |`, `|---|${present.map(() => '---').join('|')}|`];
  for (const m of metrics) {
    const ourRow = find(reference, workload, m.metric);
    const cells = present.map((s) => {
      const r = find(s, workload, m.metric);
      if (r === undefined) return '–';
      if (r.figure === null) return `failed${r.note ? `: ${r.note.replace(/\|/g, '/').slice(0, 80)}` : ''}`;
      let text = formatFigure(r.figure);
      if (!s.ours && ourRow?.figure) {
        const x = advantage(m.better, ourRow.figure.median, r.figure.median);
        if (x !== null) text += ` · **${formatNumber(x)}×**`;
      }
      if (r.note && r.figure) text += ` ⚠ ${r.note.replace(/\|/g, '/').slice(0, 60)}`;
      return text;
    });
    lines.push(`| ${m.metric} (${m.unit}) | ${cells.join(' | ')} |`);
  }
  return lines;
}

/** One line per target of issue 9: the figures it compares and whether ours meets it. */
export function targets(report: Report): string[] {
  const server = (name: string): ServerResult | undefined => report.servers.find((s) => s.name === name && s.missing === undefined);
  const value = (name: string, w: string, m: string): number | undefined => find(server(name), w, m)?.figure?.median;
  const peers = report.servers.filter((s) => !s.ours && s.missing === undefined);
  const lines = ['| target | ours | compared with | met |', '|---|---|---|---|'];
  const add = (target: string, ours: number | undefined, other: string, met: boolean | undefined): void => {
    lines.push(`| ${target} | ${ours === undefined ? 'not run' : formatNumber(ours)} | ${other} | ${met === undefined ? '–' : met ? 'yes' : '**no**'} |`);
  };
  const bestPeer = (w: string, m: string, better: 'higher' | 'lower'): { name: string; v: number } | undefined => {
    let best: { name: string; v: number } | undefined;
    for (const p of peers) {
      const v = value(p.name, w, m);
      if (v === undefined) continue;
      if (best === undefined || (better === 'higher' ? v > best.v : v < best.v)) best = { name: p.name, v };
    }
    return best;
  };
  for (const w of ['retr', 'stor']) {
    const ours = value('ours', w, 'throughput');
    const best = bestPeer(w, 'throughput', 'higher');
    add(`${w.toUpperCase()} ≥ 1.0× the best peer`, ours, best ? `${best.name} ${formatNumber(best.v)} MiB/s` : 'no peer', ours !== undefined && best ? ours >= best.v : undefined);
    const cpu = value('ours', w, 'server+client+kernel CPU');
    const bestCpu = bestPeer(w, 'server+client+kernel CPU', 'lower');
    add(`${w.toUpperCase()} server+client+kernel CPU ≤ 1.2× the best peer's`, cpu, bestCpu ? `${bestCpu.name} ${formatNumber(bestCpu.v)} s/GiB` : 'no peer', cpu !== undefined && bestCpu ? cpu <= 1.2 * bestCpu.v : undefined);
    const plain = value('ours', w, 'throughput');
    const tls = value('ours', `ftps-${w}`, 'throughput');
    add(`FTPS ${w.toUpperCase()} ≥ 50% of our plain`, tls, plain !== undefined ? `plain ${formatNumber(plain)} MiB/s` : 'not run', tls !== undefined && plain !== undefined ? tls >= plain / 2 : undefined);
  }
  for (const [m, label] of [['uploads', 'up'], ['downloads', 'down']] as const) {
    const ours = value('ours', 'files', m);
    const pure = value('pure-ftpd', 'files', m);
    add(`16 KiB files ${label} ≥ pure-ftpd`, ours, pure !== undefined ? `pure-ftpd ${formatNumber(pure)} files/s` : 'pure-ftpd not run', ours !== undefined && pure !== undefined ? ours >= pure : undefined);
  }
  for (const verb of ['LIST', 'MLSD']) {
    const ours = value('ours', 'list', verb);
    add(`${verb} of 10k entries ≤ 30 ms`, ours, '30 ms', ours !== undefined ? ours <= 30 : undefined);
  }
  // The 200-client targets are given for the default single process and, when run, for ftpd's worker processes.
  const workersColumn = report.servers.find((s) => s.ours && s.missing === undefined && / workers\)$/.test(s.name))?.name;
  const concurrent = ['ours', ...(workersColumn ? [workersColumn] : [])];
  const by = (name: string): string => (name === 'ours' ? '' : `, ${name}`);
  for (const name of concurrent) {
    const ours = value(name, 'clients', 'transfers');
    const py = value('pyftpdlib', 'clients', 'transfers');
    add(`200 clients ≥ 1.0× pyftpdlib transfers/s${by(name)}`, ours, py !== undefined ? `pyftpdlib ${formatNumber(py)}/s` : 'pyftpdlib not run', ours !== undefined && py !== undefined ? ours >= py : undefined);
    const p99 = value(name, 'clients', 'p99 session');
    add(`200 clients p99 ≤ 500 ms${by(name)}`, p99, '500 ms', p99 !== undefined ? p99 <= 500 : undefined);
    const failedRow = find(server(name), 'clients', 'failed sessions');
    const worst = failedRow?.figure?.max;
    add(`200 clients: zero failed sessions (worst run)${by(name)}`, worst, '0', worst !== undefined ? worst === 0 : undefined);
  }
  for (const m of ['sequential', '50 parallel']) {
    const ours = value('ours', 'logins', m);
    const py = value('pyftpdlib', 'logins', m);
    add(`logins ${m} ≥ pyftpdlib`, ours, py !== undefined ? `pyftpdlib ${formatNumber(py)}/s` : 'pyftpdlib not run', ours !== undefined && py !== undefined ? ours >= py : undefined);
  }
  {
    const ours = value('ours', 'idle', 'memory per session (PSS)');
    add('idle session ≤ 4 KiB', ours, '4 KiB', ours !== undefined ? ours <= 4 : undefined);
    const total = value('ours', 'idle-10000', 'server total with them (PSS)');
    const failed = find(server('ours'), 'idle-10000', 'sessions not opened')?.figure?.max;
    add('10,000 idle sessions work (total MiB)', total, failed !== undefined ? `${failed} not opened` : 'not run', failed !== undefined ? failed === 0 : undefined);
  }
  const headline: Array<[string, string]> = [
    ['retr', 'throughput'],
    ['stor', 'throughput'],
    ['ftps-retr', 'throughput'],
    ['ftps-stor', 'throughput'],
    ['files', 'uploads'],
    ['files', 'downloads'],
    ['list', 'LIST'],
    ['list', 'MLSD'],
    ['clients', 'transfers'],
    ['logins', 'sequential'],
    ['logins', '50 parallel'],
    ['idle', 'memory per session (PSS)'],
  ];
  for (const [w, m] of headline) {
    for (const name of w === 'clients' ? concurrent : ['ours']) {
      const r = find(server(name), w, m);
      const peer = find(server('ftp-srv'), w, m);
      if (r?.figure == null) continue;
      const x = peer?.figure ? advantage(r.better, r.figure.median, peer.figure.median) : null;
      add(`≥ 3× ftp-srv: ${w} ${m}${by(name)}`, x ?? undefined, peer?.figure ? `ftp-srv ${formatNumber(peer.figure.median)} ${r.unit}` : 'ftp-srv not run or failed', x !== null ? x >= 3 : undefined);
    }
  }
  return lines;
}

/** The headline figure of each workload, servers side by side: what the top-level README shows. */
const HEADLINES: Array<[string, string, string]> = [
  ['retr', 'throughput', 'RETR 1 GiB (MiB/s)'],
  ['retr', 'server+client+kernel CPU', 'RETR CPU, all (s/GiB)'],
  ['stor', 'throughput', 'STOR 1 GiB (MiB/s)'],
  ['stor', 'server+client+kernel CPU', 'STOR CPU, all (s/GiB)'],
  ['ftps-retr', 'throughput', 'FTPS RETR (MiB/s)'],
  ['ftps-stor', 'throughput', 'FTPS STOR (MiB/s)'],
  ['files', 'uploads', '16 KiB uploads (/s)'],
  ['files', 'downloads', '16 KiB downloads (/s)'],
  ['list', 'LIST', 'LIST 10k (ms)'],
  ['list', 'MLSD', 'MLSD 10k (ms)'],
  ['clients', 'transfers', '200 clients (transfers/s)'],
  ['clients', 'p99 session', '200 clients p99 (ms)'],
  ['clients', 'failed sessions', '200 clients failed (per run)'],
  ['logins', 'sequential', 'logins sequential (/s)'],
  ['logins', '50 parallel', 'logins 50 parallel (/s)'],
  ['idle', 'memory per session (PSS)', 'idle session (KiB)'],
];

export function summary(report: Report): string[] {
  const present = report.servers.filter((s) => s.missing === undefined && s.name !== 'ours (scrypt)');
  const lines = [`| median | ${present.map((s) => s.name).join(' | ')} |`, `|---|${present.map(() => '---').join('|')}|`];
  for (const [w, m, label] of HEADLINES) {
    const cells = present.map((s) => {
      const r = find(s, w, m);
      return r === undefined ? '–' : r.figure === null ? 'failed' : formatNumber(r.figure.median);
    });
    if (cells.every((c) => c === '–')) continue;
    lines.push(`| ${label} | ${cells.join(' | ')} |`);
  }
  return lines;
}

export function renderMarkdown(report: Report): string {
  const out = [`# ${report.title}`, ''];
  out.push(...report.machine.map((m) => `- ${m}`));
  out.push(`- Command: \`${report.command}\``);
  out.push(`- Each figure: median of ${report.runs} runs, (min–max); the whole run took ${Math.round(report.durationSeconds)} s.`);
  out.push('- Server CPU is the server\'s process tree from /proc. A forking server whose session processes exit without being reaped inside that tree (vsftpd\'s) is under-counted there; the machine-wide server+client+kernel figure has no such gap.');
  out.push('- **N×** after a peer\'s figure: how many times better ours is (ours ÷ peer when higher is better, peer ÷ ours when lower is better; above 1× ours wins).');
  const missing = report.servers.filter((s) => s.missing !== undefined);
  if (missing.length > 0) out.push(`- **Missing:** ${missing.map((s) => `${s.name} (${s.missing})`).join('; ')}`);
  out.push('', '## Summary', '', ...summary(report), '');
  for (const w of report.workloads) {
    const t = table(report, w.id);
    if (t.length === 0) continue;
    out.push(`## ${w.title}`, '', ...t, '');
  }
  out.push('## Targets (issue 9)', '', ...targets(report), '');
  return out.join('\n');
}

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FtpServer } from '@ftp/server';

/** One counter or gauge with its label sets, in the Prometheus text format. */
class Family {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
  ) {}

  add(labels: Record<string, string | number> = {}, by = 1): void {
    const key = Object.entries(labels)
      .map(([k, v]) => `${k}="${String(v).replace(/["\\\n]/g, '_')}"`)
      .join(',');
    this.addEntry(key, by);
  }

  /** The values by label set, for summing the figures of several worker processes. */
  entries(): Array<[string, number]> {
    return [...this.values];
  }

  /** Adds a label set's value as {@link entries} gave it. */
  addEntry(key: string, by: number): void {
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    if (this.values.size === 0 && this.type === 'gauge') lines.push(`${this.name} 0`);
    for (const [key, value] of this.values) lines.push(key ? `${this.name}{${key}} ${value}` : `${this.name} ${value}`);
    return lines.join('\n');
  }
}

/**
 * ftpd's metrics, fed by the server's events: sessions, logins, transfers, bytes, error replies by code, bans.
 * Nothing is sampled per byte: each figure moves once per event.
 */
export class Metrics {
  private readonly sessions = new Family('ftpd_sessions', 'Control connections open now.', 'gauge');
  private readonly sessionsTotal = new Family('ftpd_sessions_total', 'Control connections accepted.', 'counter');
  private readonly refused = new Family('ftpd_sessions_refused_total', 'Connections refused before their session began, by reason.', 'counter');
  private readonly logins = new Family('ftpd_logins_total', 'Login attempts, by outcome.', 'counter');
  private readonly transfers = new Family('ftpd_transfers_total', 'Transfers and listings, by direction and outcome.', 'counter');
  private readonly bytes = new Family('ftpd_transfer_bytes_total', 'Bytes moved on data connections, by direction.', 'counter');
  private readonly errors = new Family('ftpd_error_replies_total', 'Replies with a 4xx or 5xx code, by code.', 'counter');
  private readonly bans = new Family('ftpd_bans_total', 'Addresses banned after too many failed logins.', 'counter');
  private open = 0;

  constructor(server: FtpServer) {
    server.on('session:open', () => {
      this.open++;
      this.sessionsTotal.add();
    });
    server.on('session:close', () => this.open--);
    server.on('session:refused', (e) => this.refused.add({ reason: e.reason }));
    server.on('login', () => this.logins.add({ outcome: 'ok' }));
    server.on('login:failed', () => this.logins.add({ outcome: 'failed' }));
    server.on('transfer', (t) => {
      this.transfers.add({ direction: t.direction, outcome: t.outcome });
      this.bytes.add({ direction: t.direction === 'upload' ? 'in' : 'out' }, t.bytes);
    });
    server.on('reply:error', (e) => this.errors.add({ code: e.code }));
    server.on('ban', () => this.bans.add());
  }

  private families(): Family[] {
    const sessions = new Family(this.sessions.name, this.sessions.help, 'gauge');
    sessions.add({}, this.open);
    return [sessions, this.sessionsTotal, this.refused, this.logins, this.transfers, this.bytes, this.errors, this.bans];
  }

  render(): string {
    return renderFamilies(this.families());
  }

  /** Every figure, for a supervisor to sum over its workers ({@link renderSnapshots}). */
  snapshot(): MetricsSnapshot {
    return this.families().map((f) => ({ name: f.name, help: f.help, type: f.type, values: f.entries() }));
  }
}

/** One process's figures, as {@link Metrics.snapshot} gives them (plain data, to cross an IPC channel). */
export type MetricsSnapshot = Array<{ name: string; help: string; type: 'counter' | 'gauge'; values: Array<[string, number]> }>;

/** The figures of several worker processes added up, in the Prometheus text format. */
export function renderSnapshots(snapshots: readonly MetricsSnapshot[]): string {
  const families = new Map<string, Family>();
  for (const snapshot of snapshots) {
    for (const f of snapshot) {
      let family = families.get(f.name);
      if (!family) families.set(f.name, (family = new Family(f.name, f.help, f.type)));
      for (const [key, value] of f.values) family.addEntry(key, value);
    }
  }
  return renderFamilies([...families.values()]);
}

/**
 * `total` with the counters of `snapshot` added: a worker process that exits keeps its share in the sums, which
 * must not go backwards. Its gauges (sessions open) end with it: their families stay, empty.
 */
export function retireSnapshot(total: MetricsSnapshot, snapshot: MetricsSnapshot): MetricsSnapshot {
  const families = new Map(total.map((f) => [f.name, { ...f, values: new Map(f.values) }]));
  for (const f of snapshot) {
    let family = families.get(f.name);
    if (!family) families.set(f.name, (family = { ...f, values: new Map() }));
    if (f.type !== 'counter') continue;
    for (const [key, value] of f.values) family.values.set(key, (family.values.get(key) ?? 0) + value);
  }
  return [...families.values()].map((f) => ({ ...f, values: [...f.values] }));
}

function renderFamilies(families: readonly Family[]): string {
  return families.map((f) => f.render()).join('\n') + '\n';
}

/**
 * The HTTP listener for operators: `GET /metrics` (Prometheus text format) and `GET /healthz` (200 while serving,
 * 503 once shutting down, so a load balancer drains the instance first).
 */
export async function startMetricsServer(
  metrics: { render(): string | Promise<string> },
  health: () => boolean,
  port: number,
  host: string,
): Promise<{ server: Server; address: AddressInfo }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/metrics') {
      Promise.resolve(metrics.render()).then(
        (text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text),
        () => res.writeHead(500).end(),
      );
    } else if (path === '/healthz') {
      const ok = health();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'shutting down' }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, address: server.address() as AddressInfo };
}

/**
 * `pnpm bench`: starts each server on a loopback port with a fresh home, runs the workloads against them with the
 * same clients, in interleaved rounds (rounds.ts), and writes a Markdown table (servers side by side, our ratio to
 * each peer) to results/.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_ROOT } from './peers.js';
import { describePageReporting, reportedKib } from './page-reporting.js';
import { renderMarkdown, type Report, type ServerResult } from './report.js';
import { mergeRounds, RoundPlanner } from './rounds.js';
import { makeSeed, seedHome, seedListingOverFtp } from './seed.js';
import { ftpSrv } from './servers/ftp-srv.js';
import { OUR_BACKENDS, ours, parseVariant } from './servers/ours.js';
import { pureFtpd } from './servers/pure-ftpd.js';
import { pyftpdlib } from './servers/pyftpdlib.js';
import type { RunningServer, ServerSpec, StartContext } from './servers/types.js';
import { SYSTEM_USER, vsftpd } from './servers/vsftpd.js';
import { curlUpload } from './workloads/bulk.js';
import { BACKEND_WORKLOADS, WORKLOADS } from './workloads/index.js';
import type { Row, Seed, Workload, WorkloadContext } from './workloads/types.js';

const USAGE = `Usage: pnpm bench [options]

  --servers <list>     ours,vsftpd,pure-ftpd,pyftpdlib,ftp-srv (default: all); "ours-scrypt" adds
                       scrypt-hashed logins for ours, "ours-workers" the 200-client workload with one
                       ftpd process per CPU (--workers auto; both in the default set)
  --backends <list>    extra backends for ours, besides local disk: ${Object.keys(OUR_BACKENDS).filter((b) => b !== 'local').join(', ')}, or all
                       (default: none); they run the storage workloads only
  --workloads <list>   ${WORKLOADS.map((w) => w.id).join(',')} (default: all)
  --runs <n>           runs per figure (default 3; the figure is their median), taken in rounds:
                       one run of every server, then the next
  --size-mib <n>       size of the RETR/STOR file (default 1024)
  --client-seconds <n> length of each 200-client run (default 10)
  --out <dir>          where the results go (default apps/bench/results)
  --render <file.json> re-render a results file (after a change to the report) and exit
  --variant "<N=v …>"  adds "ours (variant)": ours on the local disk with these environment variables, in
                       the same rounds, for an A/B of a change an environment variable switches
  --profile            CPU-profile our server (node --cpu-prof) into <out>/profiles, one file per process
  -h, --help
`;

const PEERS: Record<string, () => ServerSpec> = { vsftpd, 'pure-ftpd': pureFtpd, pyftpdlib, 'ftp-srv': ftpSrv };

function list(value: string | undefined, all: string[]): string[] {
  if (value === undefined || value === 'all') return all;
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = items.filter((i) => !all.includes(i));
  if (unknown.length > 0) throw new Error(`unknown: ${unknown.join(', ')} (known: ${all.join(', ')})`);
  return items;
}

function positive(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a whole number ≥ 1, got ${JSON.stringify(value)}`);
  return n;
}

/** Enough descriptors for 10,000 sessions (each one a socket here and one in the server, which inherits this). */
function raiseFileLimit(): string {
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), '--nofile=65536:65536'], { stdio: 'ignore' });
  } catch {
    // not permitted here (no CAP_SYS_RESOURCE): the inherited limit is reported below
  }
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const limit = m?.[1] ?? 'unknown';
  const enough = limit === 'unlimited' || Number(limit) > 10_100;
  return `open files limit ${limit}${enough ? '' : ' (too low for the 10,000-session workload)'}`;
}

function machine(note: string): string[] {
  const cpus = os.cpus();
  let curl = 'curl not found';
  try {
    curl = execFileSync('curl', ['--version']).toString().split('\n', 1)[0]!.split(' ').slice(0, 2).join(' ');
  } catch {
    // reported as such
  }
  return [
    `Machine: ${os.hostname()}, ${cpus[0]?.model ?? 'unknown CPU'} × ${cpus.length}, ${Math.round(os.totalmem() / 1024 ** 3)} GiB, Linux ${os.release()}`,
    `Node ${process.version}, ${curl}; ${note}`,
  ];
}

function makeCertificate(work: string): { cert: string; key: string } {
  const cert = path.join(work, 'cert.pem');
  const key = path.join(work, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
  chmodSync(key, 0o644); // servers that drop privileges read it after dropping them
  return { cert, key };
}

function isBench(b: Bench | ServerResult): b is Bench {
  return 'ctx' in b;
}

function failedRows(workload: string, message: string): Row[] {
  return [{ workload, metric: 'the whole workload', unit: 'run', better: 'info', figure: null, note: message }];
}

/** A server under test: its context (the running process, its ports and home) and the rows gathered so far. */
interface Bench {
  spec: ServerSpec;
  /** The workloads it takes. */
  workloads: string[];
  ctx: WorkloadContext;
  home: string;
  tls: { cert: string; key: string };
  rows: Row[];
}

/** Starts a server with a fresh home (seeded on disk, or over FTP); a server that cannot run is reported as missing. */
async function openBench(spec: ServerSpec, index: number, workloadIds: string[], seed: Seed, work: string, tls: { cert: string; key: string }, clientSeconds: number): Promise<Bench | ServerResult> {
  const log = (m: string): void => void process.stderr.write(`[${spec.name}] ${m}\n`);
  const missing = await spec.prepare();
  if (missing !== null) {
    log(`missing: ${missing}`);
    return { name: spec.name, ours: spec.ours, missing, rows: [] };
  }
  const slug = spec.name.replace(/[^a-z0-9]+/gi, '-').replace(/-$/, '');
  const home = path.join(work, 'homes', slug);
  const serverWork = path.join(work, 'servers', slug);
  mkdirSync(home, { recursive: true, mode: 0o755 });
  mkdirSync(serverWork, { recursive: true });
  if (spec.homeOnDisk) seedHome(seed, home);
  const start: StartContext = {
    port: 21000 + index,
    passive: [10000 + index * 1000, 10000 + index * 1000 + 999],
    home,
    work: serverWork,
    user: SYSTEM_USER, // vsftpd logs in system accounts only; every server gets the same name
    password: 'bench-password',
    tls: spec.alwaysTls ? tls : null,
  };
  let server: RunningServer;
  try {
    server = await spec.start(start);
  } catch (e) {
    log(`did not start: ${(e as Error).message}`);
    rmSync(home, { recursive: true, force: true });
    return { name: spec.name, ours: spec.ours, missing: `did not start: ${(e as Error).message}`, rows: [] };
  }
  const ctx: WorkloadContext = {
    spec,
    server,
    start,
    seed,
    runs: 1,
    clientSeconds,
    log,
    async restart() {
      await ctx.server.stop();
      ctx.server = await spec.start(start);
      return ctx.server;
    },
  };
  const bench: Bench = { spec, workloads: workloadIds, ctx, home, tls, rows: [] };
  if (!spec.homeOnDisk) {
    log('uploading the seed files');
    try {
      if (workloadIds.some((w) => w.endsWith('retr'))) await curlUpload(ctx, seed.bigFile, seed.bigName);
      await curlUpload(ctx, path.join(path.dirname(seed.bigFile), seed.mibName), seed.mibName);
      if (workloadIds.includes('list')) await seedListingOverFtp(seed, start.port, start.user, start.password);
    } catch (e) {
      await closeBench(bench);
      throw e;
    }
  }
  return bench;
}

/** Runs `workload` `runs` times on one server (restarting it first when the workload needs TLS and it has none, or the reverse). */
async function runWorkload(bench: Bench, workload: Workload, runs: number, label = ''): Promise<Row[]> {
  const { ctx, spec } = bench;
  const t0 = performance.now();
  try {
    const wantTls = spec.alwaysTls === true || workload.id.startsWith('ftps-');
    if ((ctx.start.tls !== null) !== wantTls) {
      ctx.start.tls = wantTls ? bench.tls : null;
      await ctx.restart();
    }
    ctx.runs = runs;
    const got = await workload.run(ctx);
    const head = got[0];
    ctx.log(`${workload.id}${label}: ${head?.figure ? `${head.metric} ${head.figure.median.toFixed(1)} ${head.unit}` : head?.note ?? 'skipped'} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    return got;
  } catch (e) {
    ctx.log(`${workload.id}${label} failed: ${(e as Error).message}`);
    return failedRows(workload.id, (e as Error).message);
  } finally {
    // What the run left dirty is written back now, not billed to the next server's run.
    execFileSync('sync');
  }
}

async function closeBench(bench: Bench): Promise<void> {
  await bench.ctx.server.stop();
  rmSync(bench.home, { recursive: true, force: true });
  execFileSync('sync');
}

/**
 * Every workload on every server. Most run in interleaved rounds with every server up (see rounds.ts); the memory
 * workloads (`alone`) then run one server at a time, with the others stopped.
 */
async function benchAll(benches: Bench[], runs: number): Promise<void> {
  const planner = new RoundPlanner<Bench>();
  for (const workload of WORKLOADS.filter((w) => !w.alone)) {
    const taking = benches.filter((b) => b.workloads.includes(workload.id));
    const rounds = new Map<Bench, Row[][]>(taking.map((b) => [b, []]));
    for (let round = 0; round < runs; round++) {
      for (const b of planner.next(taking)) rounds.get(b)!.push(await runWorkload(b, workload, 1, runs > 1 ? ` (round ${round + 1} of ${runs})` : ''));
    }
    for (const [b, got] of rounds) b.rows.push(...mergeRounds(got));
  }
  const alone = WORKLOADS.filter((w) => w.alone);
  for (const b of benches) await b.ctx.server.stop();
  for (const b of benches) {
    for (const workload of alone) if (b.workloads.includes(workload.id)) b.rows.push(...(await runWorkload(b, workload, runs)));
    await b.ctx.server.stop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      servers: { type: 'string' },
      backends: { type: 'string' },
      workloads: { type: 'string' },
      runs: { type: 'string' },
      'size-mib': { type: 'string' },
      'client-seconds': { type: 'string' },
      out: { type: 'string' },
      profile: { type: 'boolean' },
      variant: { type: 'string' },
      render: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (values.render !== undefined) {
    const report = JSON.parse(readFileSync(values.render, 'utf8')) as Report;
    const markdown = renderMarkdown(report);
    writeFileSync(values.render.replace(/\.json$/, '.md'), markdown);
    process.stdout.write(markdown);
    return;
  }
  const serverNames = list(values.servers, ['ours', 'ours-scrypt', 'ours-workers', ...Object.keys(PEERS)]);
  const backends = values.backends === undefined ? [] : list(values.backends, Object.keys(OUR_BACKENDS).filter((b) => b !== 'local'));
  const workloadIds = list(values.workloads, WORKLOADS.map((w) => w.id));
  const runs = positive(values.runs, 3, 'runs');
  const sizeMiB = positive(values['size-mib'], 1024, 'size-mib');
  const clientSeconds = positive(values['client-seconds'], 10, 'client-seconds');
  const outDir = values.out ?? path.join(BENCH_ROOT, 'results');
  const variant = values.variant === undefined ? undefined : parseVariant(values.variant);

  const began = Date.now();
  const reportedAtStart = reportedKib();
  const limitNote = raiseFileLimit();
  const work = mkdtempSync(path.join(os.tmpdir(), 'ftp-bench-'));
  chmodSync(work, 0o755);
  process.on('SIGINT', () => {
    rmSync(work, { recursive: true, force: true });
    process.exit(130);
  });
  try {
    process.stderr.write(`preparing ${sizeMiB} MiB of seed data in ${work}\n`);
    const seed = makeSeed(work, sizeMiB, 10_000);
    execFileSync('sync'); // the seed's writeback must not land in the first server's figures
    const tls = makeCertificate(work);
    const plan: Array<{ spec: ServerSpec; workloads: string[] }> = [];
    const profileDir = values.profile ? path.join(outDir, 'profiles') : undefined;
    if (serverNames.includes('ours')) plan.push({ spec: ours('local', { profileDir }), workloads: workloadIds });
    for (const b of backends) plan.push({ spec: ours(b, { profileDir }), workloads: workloadIds.filter((w) => BACKEND_WORKLOADS.has(w)) });
    if (variant) plan.push({ spec: ours('local', { variant, profileDir }), workloads: workloadIds });
    if (serverNames.includes('ours-scrypt') && workloadIds.includes('logins')) plan.push({ spec: ours('local', { scrypt: true }), workloads: ['logins'] });
    // Several processes only change the workloads with many sessions at once: the 200 clients (logins, one client
    // or 50 against ~0.3 ms of work each, were no faster in two runs); on one CPU there is nothing to add.
    const concurrent = workloadIds.filter((w) => w === 'clients');
    if (serverNames.includes('ours-workers') && concurrent.length > 0 && os.availableParallelism() > 1) {
      plan.push({ spec: ours('local', { workers: os.availableParallelism(), profileDir }), workloads: concurrent });
    }
    for (const [name, make] of Object.entries(PEERS)) if (serverNames.includes(name)) plan.push({ spec: make(), workloads: workloadIds });
    const opened: Array<Bench | ServerResult> = [];
    try {
      for (const [i, { spec, workloads }] of plan.entries()) opened.push(await openBench(spec, i, workloads, seed, work, tls, clientSeconds));
      // The seed (1 GiB and the listing folders) is written back now: else its writeback runs during the first
      // rounds of the first workload and bills its kernel time to whichever server runs then (ours, in round 1).
      execFileSync('sync');
      await benchAll(opened.filter(isBench), runs);
    } finally {
      for (const b of opened.filter(isBench)) await closeBench(b);
    }
    const servers: ServerResult[] = opened.map((b) => (isBench(b) ? { name: b.spec.name, ours: b.spec.ours, rows: b.rows } : b));

    const stamp = new Date().toISOString().replace(/:\d\d\.\d+Z$/, 'Z').replace(':', '');
    const report: Report = {
      title: `FTP server benchmark, ${stamp.slice(0, 10)} on ${os.hostname()}`,
      machine: [...machine(limitNote), describePageReporting(reportedAtStart)],
      // Flags tried on our server are part of what was measured: shown with the command.
      command: `${process.env.BENCH_OURS_NODE_ARGS ? `BENCH_OURS_NODE_ARGS=${JSON.stringify(process.env.BENCH_OURS_NODE_ARGS)} ` : ''}pnpm bench ${process.argv.slice(2).join(' ')}`.trim(),
      runs,
      durationSeconds: (Date.now() - began) / 1000,
      workloads: WORKLOADS.filter((w) => workloadIds.includes(w.id)).map((w) => ({ id: w.id, title: w.id.endsWith('retr') || w.id.endsWith('stor') ? `${w.title} (${sizeMiB} MiB)` : w.title })),
      servers,
    };
    mkdirSync(outDir, { recursive: true });
    const base = path.join(outDir, `${stamp}-${os.hostname()}`);
    const markdown = renderMarkdown(report);
    writeFileSync(`${base}.md`, markdown);
    writeFileSync(`${base}.json`, JSON.stringify(report, null, 2));
    process.stdout.write(`${markdown}\nwritten to ${base}.md (and .json)\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).message}\n`);
  process.exit(1);
});

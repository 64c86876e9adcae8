/**
 * 200 concurrent clients, each in a loop of connect + login + RETR of 1 MiB + QUIT, for a fixed time: completed
 * transfers per second, session latency (connect to 221), and sessions that failed (refused, reset, timed out).
 */
import { FtpClient } from '../ftp-client.js';
import { percentile, summarize } from '../stats.js';
import { measure, repeat } from './measure.js';
import type { Row, Workload, WorkloadContext } from './types.js';

const CLIENTS = 200;

async function oneRun(ctx: WorkloadContext): Promise<number[]> {
  const latencies: number[] = [];
  let failed = 0;
  let firstError = '';
  const deadline = performance.now() + ctx.clientSeconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      let client: FtpClient | null = null;
      try {
        client = await FtpClient.connect({ host: '127.0.0.1', port: ctx.start.port, timeoutMs: 10_000 });
        await client.login(ctx.start.user, ctx.start.password);
        await client.command('TYPE I', 200);
        const got = await client.download(`RETR ${ctx.seed.mibName}`);
        if (got.bytes !== 1024 * 1024) throw new Error(`RETR gave ${got.bytes} bytes`);
        await client.quit();
        latencies.push(performance.now() - t0);
      } catch (e) {
        failed++;
        firstError ||= (e as Error).message;
        client?.destroy();
        await new Promise((r) => setTimeout(r, 50)); // a refused client backs off briefly, as real ones do
      }
    }
  };
  const m = await measure(ctx.server.pid, () => Promise.all(Array.from({ length: CLIENTS }, worker)));
  if (failed > 0) ctx.log(`  ${failed} failed sessions, e.g. ${firstError}`);
  return [latencies.length / m.seconds, percentile(latencies, 50), percentile(latencies, 99), failed, (m.serverCpu / Math.max(1, latencies.length)) * 1000, (m.clientCpu / m.seconds) * 100];
}

export const clients: Workload = {
  id: 'clients',
  title: `${CLIENTS} concurrent clients: login + RETR 1 MiB + QUIT in a loop`,
  async run(ctx) {
    const { values, errors } = await repeat(ctx.runs, () => oneRun(ctx), 6);
    const note = errors.length ? `${errors.length} failed: ${errors[0]}` : undefined;
    const w = 'clients';
    return [
      { workload: w, metric: 'transfers', unit: '/s', better: 'higher', figure: summarize(values[0]!), note },
      { workload: w, metric: 'p50 session', unit: 'ms', better: 'lower', figure: summarize(values[1]!) },
      { workload: w, metric: 'p99 session', unit: 'ms', better: 'lower', figure: summarize(values[2]!) },
      { workload: w, metric: 'failed sessions', unit: 'per run', better: 'info', figure: summarize(values[3]!) },
      { workload: w, metric: 'server CPU per transfer', unit: 'ms', better: 'lower', figure: summarize(values[4]!) },
      { workload: w, metric: 'load generator CPU', unit: '% of a core', better: 'info', figure: summarize(values[5]!) },
    ] satisfies Row[];
  },
};

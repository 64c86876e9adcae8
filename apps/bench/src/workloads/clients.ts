/**
 * 200 concurrent clients, each in a loop of connect + login + RETR of 1 MiB + QUIT, for a fixed time: completed
 * transfers per second, session latency (connect to 221), and sessions that failed (refused, reset, timed out).
 */
import { summarize } from '../stats.js';
import { measureLoad, repeat } from './measure.js';
import type { Row, Workload, WorkloadContext } from './types.js';

const CLIENTS = 200;

async function oneRun(ctx: WorkloadContext): Promise<number[]> {
  const m = await measureLoad(ctx, { mode: 'clients', concurrency: CLIENTS, seconds: ctx.clientSeconds, retr: { name: ctx.seed.mibName, bytes: 1024 * 1024 } });
  const got = m.value;
  if (got.failed > 0) ctx.log(`  ${got.failed} failed sessions, e.g. ${got.firstError}`);
  if (got.done === 0) throw new Error(`no session completed (${got.failed} failed, e.g. ${got.firstError})`);
  return [got.doneInWindow / got.window, got.p50, got.p99, got.failed, (m.serverCpu / got.done) * 1000, (m.clientCpu / m.seconds) * 100];
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

/** Logins per second: connect, 220, USER, PASS, QUIT, 221, close; one client at a time, then 50 in parallel. */
import { summarize } from '../stats.js';
import { measureLoad, repeat } from './measure.js';
import type { Row, Workload, WorkloadContext } from './types.js';

const SECONDS = 1.5;
const MAX_LOGINS = 50_000;

async function loginLoop(ctx: WorkloadContext, parallel: number): Promise<number[]> {
  const m = await measureLoad(ctx, { mode: 'logins', concurrency: parallel, seconds: SECONDS, maxSessions: MAX_LOGINS });
  const { done, failed, firstError } = m.value;
  if (done === 0 || failed > done) throw new Error(`${failed} of ${failed + done} logins failed${firstError ? `, e.g. ${firstError}` : ''}`);
  return [m.value.doneInWindow / m.value.window, (m.serverCpu / Math.max(1, done)) * 1000];
}

export const logins: Workload = {
  id: 'logins',
  title: 'Logins per second (connect, USER, PASS, QUIT)',
  async run(ctx) {
    const rows: Row[] = [];
    const modes = ctx.spec.slowLogins ? ([['sequential', 1]] as const) : ([['sequential', 1], ['50 parallel', 50]] as const);
    for (const [label, parallel] of modes) {
      const { values, errors } = await repeat(ctx.runs, () => loginLoop(ctx, parallel), 2);
      const note = errors.length ? `${errors.length} failed: ${errors[0]}` : undefined;
      rows.push({ workload: 'logins', metric: label, unit: 'logins/s', better: 'higher', figure: summarize(values[0]!), note });
      rows.push({ workload: 'logins', metric: `server CPU per login (${label})`, unit: 'ms', better: 'lower', figure: summarize(values[1]!) });
    }
    return rows;
  },
};

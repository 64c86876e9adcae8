/** Logins per second: connect, 220, USER, PASS, QUIT, 221, close; one client at a time, then 50 in parallel. */
import { FtpClient } from '../ftp-client.js';
import { summarize } from '../stats.js';
import { measure, repeat } from './measure.js';
import type { Row, Workload, WorkloadContext } from './types.js';

const SECONDS = 1.5;
const MAX_LOGINS = 50_000;

async function loginLoop(ctx: WorkloadContext, parallel: number): Promise<number[]> {
  const deadline = performance.now() + SECONDS * 1000;
  let done = 0;
  let failed = 0;
  let started = 0;
  let firstError = '';
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline && started < MAX_LOGINS) {
      started++;
      let client: FtpClient | null = null;
      try {
        client = await FtpClient.connect({ host: '127.0.0.1', port: ctx.start.port, timeoutMs: 10_000 });
        await client.login(ctx.start.user, ctx.start.password);
        await client.quit();
        done++;
      } catch (e) {
        failed++;
        firstError ||= (e as Error).message;
        client?.destroy();
      }
    }
  };
  const m = await measure(ctx.server.pid, () => Promise.all(Array.from({ length: parallel }, worker)));
  if (failed > done) throw new Error(`${failed} of ${failed + done} logins failed, e.g. ${firstError}`);
  return [done / m.seconds, (m.serverCpu / Math.max(1, done)) * 1000];
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

/**
 * LIST and MLSD of the 10,000-entry folder: the time from sending the command (data connection already made) to
 * the 226 with every byte read. A server that lists fewer entries fails the run, so a truncated listing cannot
 * look fast.
 */
import { FtpClient } from '../ftp-client.js';
import { summarize } from '../stats.js';
import { measure, repeat } from './measure.js';
import type { Row, Workload } from './types.js';

export const listing: Workload = {
  id: 'list',
  title: 'LIST and MLSD of a 10,000-entry folder',
  async run(ctx) {
    const rows: Row[] = [];
    const client = await FtpClient.connect({ host: '127.0.0.1', port: ctx.start.port, timeoutMs: 30_000 });
    try {
      await client.login(ctx.start.user, ctx.start.password);
      for (const verb of ['LIST', 'MLSD']) {
        // One listing first, not counted, for every server alike: caches and (for ours and ftp-srv) the JIT warm up,
        // as on a server that has been running for a while. A server without the command fails the figure below.
        await client.download(`${verb} ${ctx.seed.listDir}`).catch(() => undefined);
        const { values, errors } = await repeat(
          ctx.runs,
          async () => {
            let lines = 0;
            const started = { at: 0 };
            // The data connection is made inside download() before the command is sent; time from the command.
            const m = await measure(ctx.server.pid, async () => {
              const got = await client.download(`${verb} ${ctx.seed.listDir}`, { countLines: true, started });
              lines = got.lines;
              return performance.now() - started.at;
            });
            if (lines < ctx.seed.listEntries) throw new Error(`${verb} listed ${lines} of ${ctx.seed.listEntries} entries`);
            return [m.value, m.serverCpu * 1000];
          },
          2,
        );
        const note = errors.length ? `${errors.length} failed: ${errors[0]}` : undefined;
        rows.push({ workload: 'list', metric: verb, unit: 'ms', better: 'lower', figure: summarize(values[0]!), note });
        rows.push({ workload: 'list', metric: `server CPU per ${verb}`, unit: 'ms', better: 'lower', figure: summarize(values[1]!) });
      }
      await client.quit();
    } finally {
      client.destroy();
    }
    return rows;
  },
};

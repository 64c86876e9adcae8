/**
 * LIST and MLSD of the 10,000-entry folder: the time from sending the command (data connection already made) to
 * the 226 with every byte read. A server that lists fewer entries fails the run, so a truncated listing cannot
 * look fast.
 */
import { FtpClient } from '../ftp-client.js';
import { summarize } from '../stats.js';
import { measure, repeat } from './measure.js';
import type { Row, Workload } from './types.js';

/** Warm-up listings at most, per command and round: a fresh ftpd takes ~5 to reach its steady time. */
export const WARM_UP_MAX = 6;

/**
 * Runs `list` (one listing; resolves to its milliseconds) until a listing is not at least 10 % faster than the one
 * before, at most `max` times, or until one fails. Returns how many ran. A server without JIT stops after two; a
 * fresh ftpd's first listings of 10,000 entries take ~150, ~90, ~70, ~45 and then ~35 ms.
 */
export async function warmUp(list: () => Promise<number>, max = WARM_UP_MAX): Promise<number> {
  let previous = Infinity;
  for (let done = 0; done < max; ) {
    let ms: number;
    try {
      ms = await list();
    } catch {
      return done + 1;
    }
    done++;
    if (ms > 0.9 * previous) return done;
    previous = ms;
  }
  return max;
}

export const listing: Workload = {
  id: 'list',
  title: 'LIST and MLSD of a 10,000-entry folder',
  async run(ctx) {
    const rows: Row[] = [];
    const client = await FtpClient.connect({ host: '127.0.0.1', port: ctx.start.port, timeoutMs: 30_000 });
    try {
      await client.login(ctx.start.user, ctx.start.password);
      for (const verb of ['LIST', 'MLSD']) {
        // Listings first, not counted, for every server alike, until one is no faster than the one before: caches
        // and (for ours and ftp-srv) the JIT warm up, as on a server that has been running for a while. A server
        // without the command fails the figure below.
        await warmUp(async () => {
          const started = { at: 0 };
          await client.download(`${verb} ${ctx.seed.listDir}`, { started });
          return performance.now() - started.at;
        });
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

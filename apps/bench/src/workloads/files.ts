/** 16 KiB files up and then down over one session, a data connection (EPSV) per file, as sync clients do. */
import { FtpClient } from '../ftp-client.js';
import { summarize } from '../stats.js';
import { measure, repeat } from './measure.js';
import type { Row, Workload } from './types.js';

const FILES = 1000;
const SIZE = 16 * 1024;
/** Each direction stops here even if not all files are done (slow servers take minutes otherwise). */
const BOUND_SECONDS = 4;

export const files: Workload = {
  id: 'files',
  title: `${FILES} files of 16 KiB up, then down, over one session`,
  async run(ctx) {
    const body = Buffer.alloc(SIZE, 'x');
    const { values, errors } = await repeat(
      ctx.runs,
      async () => {
        const client = await FtpClient.connect({ host: '127.0.0.1', port: ctx.start.port, timeoutMs: 10_000 });
        try {
          await client.login(ctx.start.user, ctx.start.password);
          await client.command('TYPE I', 200);
          client.write('MKD small');
          await client.next(); // 257, or 550 when it exists from an earlier run
          const round = async (count: number, step: (i: number) => Promise<void>): Promise<number> => {
            const deadline = performance.now() + BOUND_SECONDS * 1000;
            let done = 0;
            while (done < count && performance.now() < deadline) await step(done++);
            return done;
          };
          const up = await measure(ctx.server.pid, () => round(FILES, (i) => client.upload(`small/f${i}.bin`, body)));
          // Only the files the bounded upload round got to exist.
          const down = await measure(ctx.server.pid, () =>
            round(up.value, async (i) => {
              const got = await client.download(`RETR small/f${i}.bin`);
              if (got.bytes !== SIZE) throw new Error(`RETR small/f${i}.bin gave ${got.bytes} bytes`);
            }),
          );
          await client.quit();
          return [up.value / up.seconds, down.value / down.seconds, (up.serverCpu / up.value) * 1000, (down.serverCpu / down.value) * 1000];
        } finally {
          client.destroy();
        }
      },
      4,
    );
    const note = errors.length ? `${errors.length} failed: ${errors[0]}` : undefined;
    return [
      { workload: 'files', metric: 'uploads', unit: 'files/s', better: 'higher', figure: summarize(values[0]!), note },
      { workload: 'files', metric: 'downloads', unit: 'files/s', better: 'higher', figure: summarize(values[1]!) },
      { workload: 'files', metric: 'server CPU per upload', unit: 'ms', better: 'lower', figure: summarize(values[2]!) },
      { workload: 'files', metric: 'server CPU per download', unit: 'ms', better: 'lower', figure: summarize(values[3]!) },
    ] satisfies Row[];
  },
};

/**
 * RETR and STOR of the big file with curl (plain, or FTPS with PROT P): throughput plus CPU seconds per GiB
 * for the server alone and for the whole machine (server + curl + kernel), which above ~1 GiB/s is the fairer
 * comparison because curl itself becomes the limit.
 */
import { execFile, execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { summarize } from '../stats.js';
import { measure, repeat } from './measure.js';
import type { Row, Workload, WorkloadContext } from './types.js';

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

interface CurlResult {
  bytes: number;
  transferSeconds: number;
}

function curl(args: string[], timeoutSeconds: number): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    const all = ['-sS', '--max-time', String(timeoutSeconds), '-w', '%{size_download} %{size_upload} %{time_pretransfer} %{time_total}', ...args];
    execFile('curl', all, { timeout: (timeoutSeconds + 10) * 1000 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`curl: ${stderr.trim() || error.message}`.slice(0, 300)));
      const [down, up, pre, total] = stdout.trim().split(' ').map(Number) as [number, number, number, number];
      resolve({ bytes: Math.max(down, up), transferSeconds: total - pre });
    });
  });
}

/** Uploads a local file (used to seed backends that are not a folder on disk). */
export async function curlUpload(ctx: WorkloadContext, file: string, name: string): Promise<void> {
  await curl(['-T', file, `ftp://127.0.0.1:${ctx.start.port}/${name}`, '--user', `${ctx.start.user}:${ctx.start.password}`], 600);
}

function bulk(direction: 'retr' | 'stor', tls: boolean): Workload {
  const id = `${tls ? 'ftps-' : ''}${direction}`;
  return {
    id,
    title: `${direction.toUpperCase()} of the big file${tls ? ' over FTPS (PROT P)' : ''}`,
    async run(ctx) {
      const { seed, start } = ctx;
      const base = `ftp://127.0.0.1:${start.port}/`;
      const args = ['--user', `${start.user}:${start.password}`, ...(tls ? ['--ssl-reqd', '-k'] : [])];
      const uploaded = `upload-${id}.bin`;
      if (direction === 'retr') args.push('-o', '/dev/null', base + seed.bigName);
      else args.push('-T', seed.bigFile, base + uploaded);
      const { values, errors } = await repeat(
        ctx.runs,
        async () => {
          const m = await measure(ctx.server.pid, () => curl(args, 300));
          // The upload is removed before the next run: its dirty pages are then dropped rather than written back
          // (a sync after 1 GiB took ~1.7 s here, ~0.3 s after the removal: ~1 minute of a full run), and every
          // run uploads to a new file, so none pays for freeing the blocks of the run before it.
          if (direction === 'stor' && ctx.spec.homeOnDisk) rmSync(path.join(ctx.start.home, uploaded), { force: true });
          // Write back whatever is still dirty before the next run: else the kernel's writeback of one run bills
          // its CPU (and disk) to the next, or to the next server.
          execFileSync('sync');
          if (m.value.bytes !== seed.bigBytes) throw new Error(`moved ${m.value.bytes} of ${seed.bigBytes} bytes`);
          const gib = m.value.bytes / GIB;
          return [m.value.bytes / MIB / m.value.transferSeconds, m.serverCpu / gib, m.machineCpu / gib, m.clientCpu / gib];
        },
        4,
      );
      const note = errors.length ? `${errors.length} failed: ${errors[0]}` : undefined;
      const w = id;
      return [
        { workload: w, metric: 'throughput', unit: 'MiB/s', better: 'higher', figure: summarize(values[0]!), note },
        { workload: w, metric: 'server CPU', unit: 's/GiB', better: 'lower', figure: summarize(values[1]!) },
        { workload: w, metric: 'server+client+kernel CPU', unit: 's/GiB', better: 'lower', figure: summarize(values[2]!) },
        { workload: w, metric: 'curl CPU', unit: 's/GiB', better: 'info', figure: summarize(values[3]!) },
      ] satisfies Row[];
    },
  };
}

export const retr = bulk('retr', false);
export const stor = bulk('stor', false);
export const ftpsRetr = bulk('retr', true);
export const ftpsStor = bulk('stor', true);

// The longest event-loop stall (what every other session of the process waits) and the throughput of a stream upload
// and download of a big file, per dialect.
// Run after a build, from packages/driver-sql:  node bench/transfer-stall.mjs [MiB=200] [dialects=postgres,mysql] [runs=1]
// Needs PostgreSQL (127.0.0.1:5432, db test), MariaDB (127.0.0.1:3306, root, db test); tables get a random prefix and
// are dropped afterwards. The upload is fed as a socket would (64 KiB pieces, as fast as the stream takes them); the
// download is read as fast as it comes; both are checked against the data's SHA-256. Figures only: nothing is asserted.
// DRIVER_DIST=path/to/index.js runs another build of the driver (e.g. the previous version's, for a comparison).
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
const { SqlProvider } = await import(process.env.DRIVER_DIST ?? '../dist/index.js');
import { benchEachDialect, MiB } from './common.mjs';

const mib = Number(process.argv[2] ?? 200);
const dialects = (process.argv[3] ?? 'postgres,mysql').split(',');
const runs = Number(process.argv[4] ?? 1);

/**
 * Runs `fn` with a 1 ms ticker: the longest gap between two ticks (wall clock: on a busy machine it includes time the
 * thread waited for a core), the main thread's CPU time in that longest gap and the longest CPU time between two
 * ticks (`process.threadCpuUsage`: the synchronous work that held the loop, whatever the machine's load), p99 and
 * the count of gaps over 10 ms.
 */
async function probed(fn) {
  const gaps = [];
  const cpus = [];
  let last = performance.now();
  let lastCpu = cpuMs();
  const tick = setInterval(() => {
    const now = performance.now();
    const cpu = cpuMs();
    gaps.push(now - last);
    cpus.push(cpu - lastCpu);
    last = now;
    lastCpu = cpu;
  }, 1);
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  gaps.push(performance.now() - last);
  cpus.push(cpuMs() - lastCpu);
  clearInterval(tick);
  const sorted = [...gaps].sort((a, b) => a - b);
  const worst = gaps.indexOf(sorted.at(-1));
  const cpuSorted = [...cpus].sort((a, b) => a - b);
  return { ms, max: sorted.at(-1), maxCpu: cpus[worst], cpu: cpuSorted.at(-1), cpu99: cpuSorted[Math.floor(cpus.length * 0.99)], p99: sorted[Math.floor(gaps.length * 0.99)], over10: gaps.filter((g) => g > 10).length, cpuOver10: cpus.filter((g) => g > 10).length };
}

/** The main thread's CPU time so far, ms (Node >= 23.9). */
function cpuMs() {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
}

const piece = 64 * 1024;
const data = randomBytes(16 * MiB);
function* source() {
  for (let off = 0; off < mib * MiB; off += piece) {
    const o = off % data.length;
    yield data.subarray(o, o + piece);
  }
}
const want = createHash('sha256');
for (const b of source()) want.update(b);
const wantHex = want.digest('hex');

await benchEachDialect(SqlProvider, dialects, async (dialect, open, rows) => {
  const fs = await open();
  for (let run = 0; run < runs; run++) {
    const up = await probed(async () => pipeline(Readable.from(source(), { objectMode: false, highWaterMark: piece }), await fs.createWriteStream('/big.bin')));
    const h = createHash('sha256');
    const down = await probed(async () =>
      pipeline(
        await fs.createReadStream('/big.bin'),
        new Writable({
          highWaterMark: 1 * MiB,
          write(chunk, _enc, cb) {
            h.update(chunk);
            cb();
          },
        }),
      ),
    );
    const ok = h.digest('hex') === wantHex;
    for (const [op, r] of [['upload', up], ['download', down]]) {
      rows.push({
        dialect,
        op,
        MiB: mib,
        'MiB/s': ((mib * 1000) / r.ms).toFixed(1),
        'longest stall ms': r.max.toFixed(1),
        '(its CPU ms)': r.maxCpu.toFixed(1),
        'p99 gap ms': r.p99.toFixed(1),
        'gaps > 10 ms': r.over10,
        'longest CPU between ticks ms': r.cpu.toFixed(1),
        'p99 CPU ms': r.cpu99.toFixed(1),
        'CPU > 10 ms': r.cpuOver10,
        ok,
      });
      console.log(JSON.stringify(rows.at(-1)));
    }
    await fs.unlink('/big.bin');
  }
});

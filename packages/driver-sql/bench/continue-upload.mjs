// How long an upload that continues a big file (APPE, REST + STOR) takes to open and to be ready for the client's
// data, and the longest the event loop waits meanwhile (what every other session of the process waits).
// Run after a build, from packages/driver-sql:  node bench/continue-upload.mjs [MiB list=256,1024] [dialects=postgres,mysql,sqlite]
// COPY_ROWS=n fixes the chunk rows copied per statement (default: the driver's pace); the figures then include
// the longest and the median gap between two statements.
// Needs PostgreSQL (127.0.0.1:5432, db test), MariaDB (127.0.0.1:3306, root, db test); tables get a random prefix
// and are dropped afterwards. The big file is made in SQL (one random chunk repeated). Figures only: nothing is asserted.
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SqlProvider } from '../dist/index.js';
import { batchGaps, benchEachDialect, bigFile, MiB } from './common.mjs';

const sizes = (process.argv[2] ?? '256,1024').split(',').map(Number);
const dialects = (process.argv[3] ?? 'postgres,mysql,sqlite').split(',');

/**
 * Opens a continuing upload of `path`, writes `tail`, ends it; timings in ms, the longest event-loop stall until the
 * tail is taken (the copy) and in all (with the commit).
 */
async function continueUpload(fs, path, options, tail) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  let longest = 0;
  let last = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  h.enable();
  const t0 = performance.now();
  const ws = await fs.createWriteStream(path, options);
  const open = performance.now() - t0;
  await new Promise((resolve, reject) => ws.write(tail, (err) => (err ? reject(err) : resolve())));
  const ready = performance.now() - t0;
  // The copy's stalls, apart from the commit's (which unlinks the replaced version; its rows go in the background).
  const copyStall = Math.max(longest, performance.now() - last);
  ws.end();
  await new Promise((resolve, reject) => {
    ws.once('finish', resolve);
    ws.once('error', reject);
  });
  const total = performance.now() - t0;
  // A stall still running when the upload ends counts too (a ticker that never got a turn saw none).
  longest = Math.max(longest, performance.now() - last);
  await new Promise((r) => setTimeout(r, 5));
  h.disable();
  clearInterval(tick);
  return { open, ready, total, copyStall, stall: Math.max(longest, h.max / 1e6) };
}

await benchEachDialect(SqlProvider, dialects, async (dialect, open, rows) => {
  const { onBatch, take: batches } = batchGaps();
  const rowsPerStatement = process.env.COPY_ROWS === undefined ? undefined : Number(process.env.COPY_ROWS);
  const fs = await open({ uploadCopy: { ...(rowsPerStatement === undefined ? {} : { rows: rowsPerStatement }), onBatch } });
  for (const mib of sizes) {
    await bigFile(fs, '/big.bin', mib);
    const size = mib * MiB;
    const tail = randomBytes(64 * 1024);
    for (const [mode, options, want] of [
      ['APPE', { append: true }, size + tail.length],
      ['REST+STOR', { start: size - 100_000 }, size - 100_000 + tail.length],
    ]) {
      batches();
      const r = await continueUpload(fs, '/big.bin', options, tail);
      const got = (await fs.stat('/big.bin')).size;
      if (got !== want) throw new Error(`${dialect} ${mode}: size ${got}, expected ${want}`);
      rows.push({ dialect, MiB: mib, mode, 'open ms': r.open.toFixed(0), 'ready ms': r.ready.toFixed(0), 'total ms': r.total.toFixed(0), 'copy: longest stall ms': r.copyStall.toFixed(1), 'longest stall ms': r.stall.toFixed(1), ...batches() });
      console.log(JSON.stringify(rows.at(-1)));
    }
    await fs.unlink('/big.bin');
  }
});

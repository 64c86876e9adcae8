// How long removing a big file's content holds things up: the reply time of a DELE (unlink) and the commit time of a
// STOR that replaces the file, the longest event-loop stall from the command until its chunk rows are all gone (what
// every other session of the process waits, on SQLite), and how long the rows take to go.
// Run after a build, from packages/driver-sql:  node bench/reclaim.mjs [MiB list=1024] [dialects=postgres,mysql,sqlite]
// RECLAIM_ROWS=n fixes the chunk rows deleted per statement (default: the driver's pace). The figures include the
// statements of the reclaim, and the median and longest gap between two (the driver's @internal hook; none before it).
// Needs PostgreSQL (127.0.0.1:5432, db test), MariaDB (127.0.0.1:3306, root, db test); tables get a random prefix
// and are dropped afterwards. The big file is made in SQL (one random chunk repeated). Figures only: nothing is asserted.
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SqlProvider } from '../dist/index.js';
import { batchGaps, benchEachDialect, bigFile, MiB } from './common.mjs';

const sizes = (process.argv[2] ?? '1024').split(',').map(Number);
const dialects = (process.argv[3] ?? 'postgres,mysql,sqlite').split(',');

/** The longest event-loop stall from now until `stop()` (a 1 ms ticker and the perf_hooks histogram). */
function stalls() {
  const h = monitorEventLoopDelay({ resolution: 1 });
  let longest = 0;
  let last = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  h.enable();
  return {
    /** The longest so far (a stall still running counts too). */
    now: () => Math.max(longest, performance.now() - last),
    stop: () => {
      longest = Math.max(longest, performance.now() - last);
      h.disable();
      clearInterval(tick);
      return Math.max(longest, h.max / 1e6);
    },
  };
}

/** Waits until inode `id` has no chunk row left; ms from `t0`. */
async function rowsGone(fs, id, t0) {
  for (;;) {
    const r = await fs.db.selectFrom(fs.tables.chunk('c')).select('c.seq').where('c.inode', '=', id).limit(1).executeTakeFirst();
    if (r === undefined) return performance.now() - t0;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

await benchEachDialect(SqlProvider, dialects, async (dialect, open, rows) => {
  const { onBatch, take: batches } = batchGaps();
  const fixed = process.env.RECLAIM_ROWS === undefined ? {} : { rows: Number(process.env.RECLAIM_ROWS) };
  const fs = await open({ reclaim: { ...fixed, onBatch } });
  for (const mib of sizes) {
    // DELE
    let id = await bigFile(fs, '/big.bin', mib);
    batches();
    await new Promise((r) => setTimeout(r, 50));
    let s = stalls();
    let t0 = performance.now();
    await fs.unlink('/big.bin');
    const reply = performance.now() - t0;
    const replyStall = s.now();
    const gone = await rowsGone(fs, id, t0);
    rows.push({ dialect, MiB: mib, op: 'DELE', 'reply/commit ms': reply.toFixed(0), 'stall until reply ms': replyStall.toFixed(1), 'rows gone after ms': gone.toFixed(0), 'longest stall ms': s.stop().toFixed(1), ...batches() });
    console.log(JSON.stringify(rows.at(-1)));
    // STOR over the file: the commit unlinks the old version
    id = await bigFile(fs, '/big.bin', mib);
    batches();
    await new Promise((r) => setTimeout(r, 50));
    s = stalls();
    const ws = await fs.createWriteStream('/big.bin');
    await new Promise((resolve, reject) => ws.write(randomBytes(64 * 1024), (err) => (err ? reject(err) : resolve())));
    t0 = performance.now();
    ws.end();
    await new Promise((resolve, reject) => {
      ws.once('finish', resolve);
      ws.once('error', reject);
    });
    const commit = performance.now() - t0;
    const commitStall = s.now();
    const gone2 = await rowsGone(fs, id, t0);
    rows.push({ dialect, MiB: mib, op: 'STOR over it', 'reply/commit ms': commit.toFixed(0), 'stall until reply ms': commitStall.toFixed(1), 'rows gone after ms': gone2.toFixed(0), 'longest stall ms': s.stop().toFixed(1), ...batches() });
    console.log(JSON.stringify(rows.at(-1)));
    if ((await fs.stat('/big.bin')).size !== 64 * 1024) throw new Error('wrong size after STOR');
    await fs.unlink('/big.bin');
  }
});

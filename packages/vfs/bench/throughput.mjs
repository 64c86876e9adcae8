// Large-file throughput of the backends through the streaming API, as the server drives it.
//   node bench/throughput.mjs [MiB=256]
// Writes N MiB in 64 KiB chunks (one reused buffer: every provider here copies or writes before calling back),
// then reads it back (256 KiB reads), without hashing, and prints MiB/s and the RSS growth.
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvider, MemoryProvider, openReadStream, openWriteStream, SqliteProvider } from '../dist/index.js';

const mib = Number(process.argv[2] ?? 256);
const total = mib * 1024 * 1024;
const chunk = Buffer.alloc(64 * 1024, 0x5a);
const dir = fs.mkdtempSync(join(tmpdir(), 'ftp-vfs-bench-'));

async function run(name, p) {
  const rss0 = process.memoryUsage.rss();
  let t = performance.now();
  const ws = await openWriteStream(p, '/big.bin');
  for (let n = 0; n < total; n += chunk.length) {
    if (!ws.write(chunk)) await new Promise((r) => ws.once('drain', r));
  }
  await new Promise((resolve, reject) => ws.end((err) => (err ? reject(err) : resolve())));
  const w = performance.now() - t;
  t = performance.now();
  let read = 0;
  for await (const c of await openReadStream(p, '/big.bin')) read += c.length;
  const r = performance.now() - t;
  if (read !== total) throw new Error(`${name}: read ${read}`);
  const rate = (ms) => `${(mib / (ms / 1000)).toFixed(0).padStart(5)} MiB/s`;
  const grow = ((process.memoryUsage.rss() - rss0) / 1048576).toFixed(0);
  console.log(`${name.padEnd(22)} write ${rate(w)}   read ${rate(r)}   rss +${grow} MiB`);
  await p.close?.();
}

console.log(`${mib} MiB, 64 KiB writes`);
await run('LocalProvider', new LocalProvider(join(dir, 'local'), { create: true }));
await run('SqliteProvider (file)', new SqliteProvider(join(dir, 'fs.db')));
await run('SqliteProvider (:memory:)', new SqliteProvider(':memory:'));
await run('MemoryProvider', new MemoryProvider());
fs.rmSync(dir, { recursive: true, force: true });

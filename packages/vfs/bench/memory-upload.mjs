// Upload cost of the in-memory providers: N MiB written in 64 KiB writes.
//   node bench/memory-upload.mjs [MiB=64]
// Compares @platformatic/vfs's MemoryProvider (through its file handles: every extending write reallocates and
// copies the whole buffer) with ours (file handles, and the streaming capability).
import { MemoryProvider as PlatformaticMemory } from '@platformatic/vfs';
import { MemoryProvider, openWriteStream } from '../dist/index.js';

const mib = Number(process.argv[2] ?? 64);
const total = mib * 1024 * 1024;
const chunk = Buffer.alloc(64 * 1024, 0x61);

async function viaHandle(p) {
  const h = await p.open('/f', 'w');
  for (let pos = 0; pos < total; pos += chunk.length) await h.write(chunk, 0, chunk.length, null);
  await h.close();
}

async function viaStream(p) {
  const ws = await openWriteStream(p, '/f');
  for (let pos = 0; pos < total; pos += chunk.length) {
    if (!ws.write(chunk)) await new Promise((r) => ws.once('drain', r));
  }
  await new Promise((resolve, reject) => ws.end((err) => (err ? reject(err) : resolve())));
}

async function measure(name, make, fn) {
  const p = make();
  const t0 = performance.now();
  await fn(p);
  const ms = performance.now() - t0;
  const size = (await p.stat('/f')).size;
  if (size !== total) throw new Error(`${name}: size ${size} != ${total}`);
  console.log(`${name.padEnd(44)} ${ms.toFixed(0).padStart(7)} ms  ${(total / 1048576 / (ms / 1000)).toFixed(0).padStart(6)} MiB/s`);
}

console.log(`${mib} MiB in 64 KiB writes`);
await measure('@platformatic/vfs MemoryProvider (handle)', () => new PlatformaticMemory(), viaHandle);
await measure('@ftp/vfs MemoryProvider (handle)', () => new MemoryProvider(), viaHandle);
await measure('@ftp/vfs MemoryProvider (createWriteStream)', () => new MemoryProvider(), viaStream);

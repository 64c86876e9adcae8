// Measures the driver through @ftp/server on loopback: FTP upload/download throughput of one large file, and the
// time to list a 10,000-entry directory through the provider's `list` and through FTP (MLSD with basic-ftp, LIST
// with curl). Prints figures; asserts nothing but the integrity of what it moved.
// Run after `npx tsup`: node bench/throughput.mjs [MiB=128] [entries=10000]
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { promisify } from 'node:util';
import { Client } from 'basic-ftp';
import { FtpServer } from '@ftp/server';
import { Redis } from 'ioredis';
import { deleteFilesystem, RedisProvider } from '../dist/index.js';

const MiB = 1024 * 1024;
const sizeMiB = Number(process.argv[2] ?? 128);
const entries = Number(process.argv[3] ?? 10_000);
const redis = new Redis('redis://127.0.0.1:6379');
const prefix = `ftp-bench-${Date.now().toString(36)}`;
const fs = new RedisProvider({ redis, prefix });
const server = new FtpServer({
  settings: { failedLoginDelay: 0, passivePortRange: [45000, 49999] },
  driver: { authenticate: (_s, user, pass) => (user === 'bench' && pass === 'bench' ? { fs } : null) },
});
const { port } = await server.listen(0, '127.0.0.1');
const client = new Client(60_000);
const ms = (t0) => performance.now() - t0;
// Commands Redis ran, per command name (INFO commandstats): what a transfer costs in round-trips.
const commandCounts = async () => Object.fromEntries([...(await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1], Number(m[2])]));
const diffCounts = (a, b) => Object.fromEntries(Object.entries(b).map(([c, n]) => [c, n - (a[c] ?? 0)]).filter(([c, n]) => n > 0 && c !== 'info'));

try {
  await client.access({ host: '127.0.0.1', port, user: 'bench', password: 'bench' });

  // A deterministic source produced chunk by chunk, never held whole.
  const sent = createHash('sha256');
  function* source() {
    const chunk = Buffer.alloc(MiB);
    for (let i = 0; i < sizeMiB; i++) {
      chunk.fill(i & 0xff);
      chunk.writeUInt32BE(i, 0);
      sent.update(chunk);
      yield Buffer.from(chunk);
    }
  }
  let t0 = performance.now();
  await client.uploadFrom(Readable.from(source()), 'big.bin');
  const up = ms(t0);
  const got = createHash('sha256');
  let bytes = 0;
  const before = await commandCounts();
  t0 = performance.now();
  await client.downloadTo(
    new Writable({
      write(c, _e, cb) {
        got.update(c);
        bytes += c.length;
        cb();
      },
    }),
    'big.bin',
  );
  const down = ms(t0);
  const during = diffCounts(before, await commandCounts());
  if (bytes !== sizeMiB * MiB || got.digest('hex') !== sent.digest('hex')) throw new Error('download differs from upload');
  console.log(`FTP STOR ${sizeMiB} MiB: ${(up / 1000).toFixed(2)} s = ${(sizeMiB / (up / 1000)).toFixed(0)} MiB/s`);
  console.log(`FTP RETR ${sizeMiB} MiB: ${(down / 1000).toFixed(2)} s = ${(sizeMiB / (down / 1000)).toFixed(0)} MiB/s`);
  console.log(`  Redis commands during the RETR: ${Object.entries(during).map(([c, n]) => `${c} ${n}`).join(', ')}`);
  console.log(`RSS after transfers: ${(process.memoryUsage.rss() / MiB).toFixed(0)} MiB`);
  await fs.unlink('/big.bin');

  await fs.mkdir('/many');
  t0 = performance.now();
  for (let i = 0; i < entries; i += 250) {
    await Promise.all(
      Array.from({ length: Math.min(250, entries - i) }, async (_, j) => {
        const ws = await fs.createWriteStream(`/many/file-${String(i + j).padStart(5, '0')}.dat`);
        await new Promise((resolve, reject) => ws.on('error', reject).end(Buffer.from(`entry ${i + j}`), resolve));
      }),
    );
  }
  console.log(`created ${entries} files in ${ms(t0).toFixed(0)} ms`);
  const evalStats = async () => {
    const line = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(await redis.info('commandstats'));
    return line === null ? [0, 0] : [Number(line[1]), Number(line[2])];
  };
  const [calls0, usec0] = await evalStats();
  const runs = [];
  for (let r = 0; r < 5; r++) {
    t0 = performance.now();
    const list = await fs.list('/many');
    runs.push(ms(t0));
    if (list.length !== entries) throw new Error(`list gave ${list.length} entries`);
  }
  const [calls1, usec1] = await evalStats();
  console.log(`provider list() of ${entries} entries: ${runs.map((x) => x.toFixed(0)).join(', ')} ms (5 runs)`);
  // Time Redis itself spent in the LIST script (what blocks other clients), from INFO commandstats.
  if (calls1 > calls0) console.log(`  of which Redis busy in the script: ${((usec1 - usec0) / (calls1 - calls0) / 1000).toFixed(1)} ms per call`);
  await client.cd('/many');
  const mlsd = [];
  for (let r = 0; r < 3; r++) {
    t0 = performance.now();
    const l = await client.list();
    mlsd.push(ms(t0));
    if (l.length !== entries) throw new Error(`MLSD gave ${l.length} entries`);
  }
  console.log(`FTP MLSD (basic-ftp) of ${entries} entries: ${mlsd.map((x) => x.toFixed(0)).join(', ')} ms (3 runs)`);
  const list = [];
  for (let r = 0; r < 3; r++) {
    t0 = performance.now();
    const { stdout } = await promisify(execFile)('curl', ['-s', `ftp://bench:bench@127.0.0.1:${port}/many/`], { maxBuffer: 64 * MiB });
    list.push(ms(t0));
    const lines = stdout.split('\n').filter((l) => l.trim() !== '').length;
    if (lines !== entries) throw new Error(`LIST gave ${lines} lines`);
  }
  console.log(`FTP LIST (curl, incl. process start) of ${entries} entries: ${list.map((x) => x.toFixed(0)).join(', ')} ms (3 runs)`);
} finally {
  // The keys go whatever happened above (a failed close included).
  try {
    client.close();
    await server.close();
  } finally {
    console.log(`deleted ${await deleteFilesystem(redis, prefix, { removeIdCounter: true })} keys of ${prefix}`);
    await redis.quit();
  }
}

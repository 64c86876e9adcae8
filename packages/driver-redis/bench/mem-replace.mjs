// Redis memory after replacing a 256 MiB file twice: old (grace TTL) vs reader leases. node bench/mem-replace.mjs [dist]
import { Redis } from 'ioredis';
const { RedisProvider, deleteFilesystem } = await import(`../${process.argv[2] ?? 'dist'}/index.js`);
const redis = new Redis();
const prefix = `ftp-mem-${Date.now().toString(36)}`;
const fs = new RedisProvider({ redis, prefix });
const used = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))[1]) / 2 ** 20;
const put = async (seed) => {
  const ws = await fs.createWriteStream('/big');
  const chunk = Buffer.alloc(2 ** 20, seed);
  for (let i = 0; i < 256; i++) if (!ws.write(chunk)) await new Promise((r) => ws.once('drain', r));
  await new Promise((resolve, reject) => ws.on('error', reject).end(resolve));
};
const base = await used();
for (const seed of [1, 2, 3]) await put(seed);
await new Promise((r) => setTimeout(r, 1000)); // UNLINK frees big values in a background thread
console.log(`after 3 uploads of 256 MiB to one path: ${(await used() - base).toFixed(0)} MiB`);
console.log(`deleted ${await deleteFilesystem(redis, prefix, { removeIdCounter: true })} keys`);
await redis.quit();

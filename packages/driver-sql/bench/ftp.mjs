// FTP throughput per dialect and the time to list a 10,000-entry directory (provider `list` and FTP MLSD).
// Run after a build, from packages/driver-sql:  node bench/ftp.mjs [MiB=64] [entries=10000] [dialects=postgres,mysql,sqlite]
// Needs PostgreSQL (127.0.0.1:5432, db test), MariaDB (127.0.0.1:3306, root, db test); tables get a random
// prefix and are dropped afterwards. Figures only: nothing is asserted.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { Client } from 'basic-ftp';
import { FtpServer } from '@ftp/server';
import { SqlProvider } from '../dist/index.js';

const MiB = 1024 * 1024;
const size = Number(process.argv[2] ?? 64) * MiB;
const entries = Number(process.argv[3] ?? 10_000);
const dialects = (process.argv[4] ?? 'postgres,mysql,sqlite').split(',');
const tmp = mkdtempSync(join(tmpdir(), 'driver-sql-bench-'));
const URLS = {
  postgres: process.env.FTP_SQL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  mysql: process.env.FTP_SQL_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
  sqlite: `sqlite:${join(tmp, 'bench.db')}`,
};

/** `size` bytes in 1 MiB chunks, without holding them (one random MiB reused). */
function source(total) {
  const block = randomBytes(MiB);
  let left = total;
  return new Readable({
    read() {
      if (left <= 0) return this.push(null);
      const n = Math.min(left, MiB);
      left -= n;
      this.push(n === MiB ? block : block.subarray(0, n));
    },
  });
}

function counter() {
  let n = 0;
  return { stream: new Writable({ write(c, _e, cb) { n += c.length; cb(); } }), bytes: () => n };
}

const rows = [];
try {
  for (const dialect of dialects) {
    const fs = new SqlProvider({ connection: URLS[dialect], tablePrefix: `b${randomBytes(4).toString('hex')}_` });
    await fs.migrate();
    const server = new FtpServer({
      settings: { failedLoginDelay: 0, passivePortRange: [49000, 49099] },
      driver: { authenticate: (_s, u, p) => (u === 'bench' && p === 'bench' ? { fs } : null) },
    });
    const { port } = await server.listen(0, '127.0.0.1');
    const c = new Client(60_000);
    try {
      await c.access({ host: '127.0.0.1', port, user: 'bench', password: 'bench' });
      let t = performance.now();
      await c.uploadFrom(source(size), '/big.bin');
      const up = size / MiB / ((performance.now() - t) / 1000);
      const sink = counter();
      t = performance.now();
      await c.downloadTo(sink.stream, '/big.bin');
      const down = size / MiB / ((performance.now() - t) / 1000);
      if (sink.bytes() !== size) throw new Error(`downloaded ${sink.bytes()} of ${size} bytes`);

      // 10,000 entries, seeded in bulk (1,000 rows per INSERT): the figure of interest is the listing.
      await fs.mkdir('/many');
      const dirId = (await fs.stat('/many')).ino;
      const now = Date.now();
      for (let i = 0; i < entries; i += 1000) {
        const values = [];
        for (let j = i; j < Math.min(entries, i + 1000); j++) {
          values.push({ parent: dirId, name: `file-${String(j).padStart(5, '0')}.txt`, type: 0, size: j, mtime: now, birthtime: now, mode: 0o644, target: null, sha256: null });
        }
        await fs.db.insertInto(fs.tables.i).values(values).execute();
      }
      t = performance.now();
      const listed = await fs.list('/many');
      const listMs = performance.now() - t;
      if (listed.length !== entries) throw new Error(`list returned ${listed.length}`);
      t = performance.now();
      const mlsd = await c.list('/many');
      const mlsdMs = performance.now() - t;
      if (mlsd.length !== entries) throw new Error(`MLSD returned ${mlsd.length}`);
      // Path resolution: one query whatever the depth (one self-join per component).
      const deep = `/${Array.from({ length: 20 }, (_, i) => `d${i}`).join('/')}`;
      await fs.mkdir(deep, { recursive: true });
      const statUs = async (path) => {
        const n = 200;
        const t0 = performance.now();
        for (let i = 0; i < n; i++) await fs.stat(path);
        return (((performance.now() - t0) / n) * 1000).toFixed(0);
      };
      const shallow = await statUs('/d0');
      const deepUs = await statUs(deep);
      rows.push({
        dialect,
        'upload MiB/s': up.toFixed(0),
        'download MiB/s': down.toFixed(0),
        [`list(${entries}) ms`]: listMs.toFixed(0),
        [`MLSD(${entries}) ms`]: mlsdMs.toFixed(0),
        'stat depth 1 µs': shallow,
        'stat depth 20 µs': deepUs,
      });
    } finally {
      c.close();
      await server.close();
      await fs.dropTables();
      await fs.close();
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`FTP over @ftp/driver-sql, ${size / MiB} MiB file, ${entries}-entry directory (Node ${process.version})`);
console.table(rows);

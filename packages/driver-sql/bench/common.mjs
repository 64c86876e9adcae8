// What the driver's benchmarks share: the databases they run on (PostgreSQL and MariaDB on 127.0.0.1, a SQLite file
// in a temporary folder), and a big file made in SQL from one random chunk.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';

export const MiB = 1024 * 1024;
export const CHUNK = 256 * 1024;

/** A temporary folder for the SQLite database (remove it at the end), and each dialect's connection URL. */
export function benchDatabases() {
  const tmp = mkdtempSync(join(tmpdir(), 'driver-sql-bench-'));
  const urls = {
    postgres: process.env.FTP_SQL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    mysql: process.env.FTP_SQL_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
    sqlite: `sqlite:${join(tmp, 'bench.db')}`,
  };
  return { tmp, urls };
}

/**
 * For each dialect, `body(dialect, open, rows)`: `open(options)` makes a migrated `Provider` (the driver's
 * SqlProvider, of the build under test) on a fresh table prefix, with `options` added, whose tables are dropped and
 * which is closed after `body`; `rows` collects the figures, printed as a table at the end. The SQLite folder is
 * removed whatever happens.
 */
export async function benchEachDialect(Provider, dialects, body) {
  const { tmp, urls } = benchDatabases();
  const rows = [];
  try {
    for (const dialect of dialects) {
      let fs = null;
      const open = async (options = {}) => {
        fs = new Provider({ connection: urls[dialect], tablePrefix: `b${randomBytes(4).toString('hex')}_`, ...options });
        await fs.migrate();
        return fs;
      };
      try {
        await body(dialect, open, rows);
      } finally {
        if (fs !== null) {
          await fs.dropTables();
          await fs.close();
        }
      }
    }
    console.table(rows);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Times between the statements of a batched job (the driver's `onBatch` hooks): `onBatch` to give the driver; `take()`
 * the figures since the last `take()` (statements, median and longest gap), and a fresh start.
 */
export function batchGaps() {
  const gaps = [];
  let last = 0;
  return {
    onBatch: () => {
      const now = performance.now();
      if (last !== 0) gaps.push(now - last);
      last = now;
    },
    take: () => {
      gaps.sort((a, b) => a - b);
      const r = { statements: last === 0 ? 0 : gaps.length + 1, 'median gap ms': (gaps[gaps.length >> 1] ?? 0).toFixed(1), 'longest gap ms': (gaps.at(-1) ?? 0).toFixed(1) };
      gaps.length = 0;
      last = 0;
      return r;
    },
  };
}

/** A file of `mib` MiB at `path`: one chunk uploaded, then copied in SQL (64 rows per statement); its inode id. */
export async function bigFile(fs, path, mib) {
  await pipeline(Readable.from([randomBytes(CHUNK)]), await fs.createWriteStream(path));
  const id = (await fs.stat(path)).ino;
  const n = (mib * MiB) / CHUNK;
  const t = fs.tables;
  for (let have = 1; have < n; ) {
    const m = Math.min(have, n - have, 64);
    await fs.db
      .insertInto(t.c)
      .columns(['inode', 'seq', 'bytes'])
      .expression((eb) => eb.selectFrom(t.chunk('o')).select(['o.inode', eb('o.seq', '+', have).as('seq'), 'o.bytes']).where('o.inode', '=', id).where('o.seq', '<', m))
      .execute();
    have += m;
  }
  await fs.db.updateTable(t.i).set({ size: n * CHUNK }).where('id', '=', id).execute();
  return id;
}

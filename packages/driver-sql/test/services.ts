// Test databases: PostgreSQL and MariaDB on loopback, started when down, SQLite in a temp dir. In CI (CI=true) a
// server that cannot be reached fails the run loudly; elsewhere too (no test is skipped silently): the error says
// how to start it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SqlProvider } from '../src/index.js';
import type { DialectName, SqlProviderOptions } from '../src/index.js';

export const PG_URLS = [process.env.FTP_SQL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test', 'postgres://root@127.0.0.1:5432/test'];
export const MYSQL_URL = process.env.FTP_SQL_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.setTimeout(1000);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

const START: Record<'postgres' | 'mysql', { port: number; start: () => void; how: string }> = {
  postgres: {
    port: 5432,
    how: 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
    start: () => {
      const version = readdirSync('/etc/postgresql')[0];
      if (version === undefined) throw new Error('no cluster in /etc/postgresql');
      execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start'], { stdio: 'ignore', timeout: 30_000 });
    },
  },
  mysql: {
    port: 3306,
    how: 'start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd',
    start: () => execFileSync('start-stop-daemon', ['--start', '--oknodo', '--background', '--exec', '/usr/sbin/mariadbd'], { stdio: 'ignore', timeout: 30_000 }),
  },
};

const started = new Map<string, Promise<void>>();

/** Makes sure a server listens (starting it when it does not), waiting up to 30 s; throws otherwise. */
export function ensureService(name: 'postgres' | 'mysql'): Promise<void> {
  let p = started.get(name);
  if (p === undefined) {
    p = (async () => {
      const s = START[name];
      if (await portOpen(s.port)) return;
      try {
        s.start();
      } catch (err) {
        throw new Error(`${name} is not running on 127.0.0.1:${s.port} and could not be started (${s.how}): ${(err as Error).message}`);
      }
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        if (await portOpen(s.port)) return;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`${name} did not come up on 127.0.0.1:${s.port} within 30 s (${s.how})${process.env.CI === 'true' ? ' [CI]' : ''}`);
    })();
    started.set(name, p);
  }
  return p;
}

let pgUrl: string | undefined;

/** The PostgreSQL URL whose user works here (trust auth: postgres or root). */
export async function postgresUrl(): Promise<string> {
  if (pgUrl !== undefined) return pgUrl;
  await ensureService('postgres');
  const errors: string[] = [];
  for (const url of PG_URLS) {
    const p = new SqlProvider({ connection: url, tablePrefix: randomPrefix(), autoMigrate: false });
    try {
      await p.db.selectNoFrom((eb) => eb.val(1).as('one')).execute();
      pgUrl = url;
      return url;
    } catch (err) {
      errors.push(`${url}: ${(err as Error).message}`);
    } finally {
      await p.close();
    }
  }
  throw new Error(`no PostgreSQL user works: ${errors.join('; ')}`);
}

/** The MariaDB URL, the server started when needed. */
export async function mysqlUrl(): Promise<string> {
  await ensureService('mysql');
  return MYSQL_URL;
}

/** A fresh random table prefix (each provider of the tests gets its own tables). */
export function randomPrefix(): string {
  return `t${randomBytes(5).toString('hex')}_`;
}

/** A dialect under test: how to make a URL for it, and how to clean up after it. */
export interface TestDb {
  dialect: DialectName;
  url(): Promise<string>;
  /** Called once after the file's tests. */
  cleanup(): void;
}

const tmpDirs: string[] = [];

/** The three dialects; SQLite uses one file per provider in a temp dir. */
export const DBS: TestDb[] = [
  { dialect: 'postgres', url: postgresUrl, cleanup: () => undefined },
  { dialect: 'mysql', url: mysqlUrl, cleanup: () => undefined },
  {
    dialect: 'sqlite',
    url: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ftp-driver-sql-'));
      tmpDirs.push(dir);
      return `sqlite:${join(dir, 'fs.db')}`;
    },
    cleanup: () => {
      for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  },
];

/** A migrated provider over fresh tables. */
export async function freshProvider(db: TestDb, options: Partial<SqlProviderOptions> = {}, url?: string): Promise<SqlProvider> {
  const p = new SqlProvider({ connection: url ?? (await db.url()), tablePrefix: randomPrefix(), ...options });
  await p.migrate();
  return p;
}

/** Drops the provider's tables and closes it. */
export async function disposeProvider(p: SqlProvider): Promise<void> {
  try {
    await p.dropTables();
  } finally {
    await p.close();
  }
}

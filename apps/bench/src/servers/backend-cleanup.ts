/**
 * What a benchmark run leaves in the shared services (the local Redis, PostgreSQL and MariaDB): each start of ours
 * on those backends gets a fresh key or table prefix, so that no run reads another's files, and removes it again
 * once the server has stopped. Without this, every run left its files (up to a GiB of them) behind.
 */
import { deleteFilesystem, RedisProvider } from '@ftp/driver-redis';
import { createSqlProvider } from '@ftp/driver-sql';

/** An ftpd `backends` entry as the bench writes it. */
export type BackendConfig = Record<string, unknown>;

/** Removes the data of `backend` from its service; local folders are the run's scratch folder's business. */
export async function removeBackendData(backend: BackendConfig): Promise<void> {
  if (backend.type === 'redis') {
    const provider = new RedisProvider({ redis: String(backend.url), prefix: String(backend.prefix) });
    try {
      await deleteFilesystem(provider.client, String(backend.prefix), { removeIdCounter: true });
    } finally {
      await provider.close();
    }
  } else if (backend.type === 'sql') {
    const provider = await createSqlProvider({ connection: String(backend.url), tablePrefix: String(backend.tablePrefix) });
    try {
      await provider.dropTables();
    } finally {
      await provider.close();
    }
  }
}

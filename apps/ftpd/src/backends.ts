import { dirname } from 'node:path';
import { LocalProvider, makeFoldersSync, MemoryProvider, SqliteProvider, type FsProvider } from '@ftp/vfs';
import type { BackendConfig } from './config/schema.js';

/**
 * Opens one configured backend. Each is opened once and shared by every user (and view) that names it. Drivers are
 * imported only when a backend needs them: the AWS SDK alone doubles the start time and memory of a server that
 * never talks to S3.
 */
export async function openBackend(b: BackendConfig): Promise<FsProvider> {
  switch (b.type) {
    case 'memory':
      return new MemoryProvider();
    case 'local':
      if (b.create) makeFoldersSync(b.root);
      return new LocalProvider(b.root, { syncMetadata: b.syncMetadata });
    case 'sqlite':
      makeFoldersSync(dirname(b.file));
      return new SqliteProvider(b.file);
    case 's3': {
      const { S3Provider } = await import('@ftp/driver-s3');
      return new S3Provider({
        bucket: b.bucket,
        prefix: b.prefix,
        ...(b.region ? { region: b.region } : {}),
        ...(b.endpoint ? { endpoint: b.endpoint } : {}),
        ...(b.forcePathStyle !== undefined ? { forcePathStyle: b.forcePathStyle } : {}),
        ...(b.accessKeyId && b.secretAccessKey
          ? { credentials: { accessKeyId: b.accessKeyId, secretAccessKey: b.secretAccessKey, ...(b.sessionToken ? { sessionToken: b.sessionToken } : {}) } }
          : {}),
        ...(b.partSize ? { partSize: b.partSize } : {}),
        ...(b.uploadConcurrency ? { uploadConcurrency: b.uploadConcurrency } : {}),
        ...(b.uploadMemory ? { uploadMemory: b.uploadMemory } : {}),
        ...(b.maxRenameObjects ? { maxRenameObjects: b.maxRenameObjects } : {}),
        ...(b.metadataTimeoutMs ? { metadataTimeoutMs: b.metadataTimeoutMs } : {}),
      });
    }
    case 'redis': {
      const { RedisProvider } = await import('@ftp/driver-redis');
      const p = new RedisProvider({ redis: b.url, prefix: b.prefix, ...(b.chunkSize ? { chunkSize: b.chunkSize } : {}) });
      // Fail at start, not at the first login, when Redis is unreachable; closed, so that its reconnections do not
      // keep the process that reports it alive.
      await p.stat('/').catch(async (err: unknown) => {
        await p.close().catch(() => undefined);
        throw err;
      });
      return p;
    }
    case 'sql': {
      const { createSqlProvider } = await import('@ftp/driver-sql');
      // Migrates at once: a wrong URL or missing privileges stop the start with a clear message.
      return createSqlProvider({
        connection: b.url,
        tablePrefix: b.tablePrefix,
        ...(b.quota !== undefined ? { quota: b.quota } : {}),
        ...(b.queryTimeoutMs !== undefined ? { queryTimeoutMs: b.queryTimeoutMs } : {}),
      });
    }
  }
}

/** Opens every backend of a configuration by name; on a failure the ones already open are closed again. */
export async function openBackends(backends: Record<string, BackendConfig>): Promise<Map<string, FsProvider>> {
  const open = new Map<string, FsProvider>();
  try {
    for (const [name, b] of Object.entries(backends)) {
      try {
        open.set(name, await openBackend(b));
      } catch (err) {
        throw new Error(`backend "${name}" (${b.type}): ${(err as Error).message}`, { cause: err });
      }
    }
  } catch (err) {
    await closeBackends(open);
    throw err;
  }
  return open;
}

export async function closeBackends(open: Map<string, FsProvider>): Promise<void> {
  for (const p of open.values()) await p.close?.();
}

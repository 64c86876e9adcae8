export { SqlProvider, createSqlProvider } from './provider.js';
export type { SqlProviderOptions } from './provider.js';
export { SqlFileHandle } from './file-handle.js';
export type { DialectName, ExistingConnection, PoolOptions } from './dialects.js';
export { createDialect, redactUrl } from './dialects.js';
export { CHUNK_SIZE, NAME_MAX_BYTES, Tables } from './schema.js';
export type { ChunkTable, Database, Inode, InodeTable } from './schema.js';
export { migrations } from './migrations.js';

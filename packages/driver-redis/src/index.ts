export { RedisProvider } from './provider.js';
export type { RedisProviderOptions } from './provider.js';
export { RedisFileHandle } from './file-handle.js';
export { BanStoreTimeoutError, RedisBanStore } from './ban-store.js';
export type { BanStoreLike, RedisBanStoreOptions } from './ban-store.js';
export { deleteFilesystem, countKeys } from './sweep.js';
export type { DeleteFilesystemOptions } from './sweep.js';
export { Keys } from './keys.js';
export type { RedisClient, RedisTarget } from './client.js';

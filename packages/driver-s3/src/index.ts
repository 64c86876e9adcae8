export { S3Provider } from './provider.js';
export type { S3ProviderOptions } from './options.js';
export { UploadMemoryBudget } from './budget.js';
export { S3UploadStream } from './upload.js';
export { S3ReadHandle, S3WriteHandle } from './handles.js';
export { toS3Error } from './errors.js';

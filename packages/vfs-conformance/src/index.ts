export { describeProvider, GROUPS } from './suite.js';
export type { DescribeProviderOptions, GroupName } from './suite.js';
export {
  deterministicBytes,
  deterministicChunks,
  endStream,
  exposeGc,
  MemoryProbe,
  readAll,
  readText,
  rejectsWithCode,
  sha256Stream,
  startUpload,
  writeAll,
  writeChunk,
} from './helpers.js';
export type { DataSource, DeterministicOptions } from './helpers.js';

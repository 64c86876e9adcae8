import { expect, it } from 'vitest';
import { parseOptions } from '../src/index.js';

it('--async-metadata (or FTPD_ASYNC_METADATA=1) sends the local disk’s metadata calls to the thread pool', () => {
  const sync = (argv: string[], env: NodeJS.ProcessEnv = {}): boolean => {
    const o = parseOptions(argv, env);
    if (typeof o === 'string') throw new Error(o);
    return o.syncMetadata;
  };
  expect(sync([])).toBe(true);
  expect(sync(['--async-metadata'])).toBe(false);
  expect(sync([], { FTPD_ASYNC_METADATA: '1' })).toBe(false);
  expect(sync([], { FTPD_ASYNC_METADATA: '0' })).toBe(true);
});

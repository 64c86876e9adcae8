import { expect, it } from 'vitest';
import { parseOptions } from '../src/index.js';

/** The options `argv` and `env` give (a test failure for a usage error or a help/version request). */
function parsed(argv: string[], env: NodeJS.ProcessEnv = {}): Exclude<ReturnType<typeof parseOptions>, string> {
  const o = parseOptions(argv, env);
  if (typeof o === 'string') throw new Error(o);
  return o;
}

it('--async-metadata (or FTPD_ASYNC_METADATA=1) sends the local disk’s metadata calls to the thread pool', () => {
  expect(parsed([]).syncMetadata).toBe(true);
  expect(parsed(['--async-metadata']).syncMetadata).toBe(false);
  expect(parsed([], { FTPD_ASYNC_METADATA: '1' }).syncMetadata).toBe(false);
  expect(parsed([], { FTPD_ASYNC_METADATA: '0' }).syncMetadata).toBe(true);
});

it('TLS session reuse on data connections: not required by default, required with --require-tls-session-reuse', () => {
  expect(parsed([]).tlsSessionReuse).toBe(false);
  expect(parsed(['--require-tls-session-reuse']).tlsSessionReuse).toBe(true);
  expect(parsed(['--no-tls-session-reuse']).tlsSessionReuse).toBe(false);
  expect(() => parseOptions(['--no-tls-session-reuse', '--require-tls-session-reuse'], {})).toThrow(/contradict/);
});

it('--mode-z (or FTPD_MODE_Z=1) offers MODE Z; it is off by default', () => {
  expect(parsed([]).modeZ).toBe(false);
  expect(parsed(['--mode-z']).modeZ).toBe(true);
  expect(parsed([], { FTPD_MODE_Z: '1' }).modeZ).toBe(true);
  expect(parsed([], { FTPD_MODE_Z: '0' }).modeZ).toBe(false);
});

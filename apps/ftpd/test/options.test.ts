import { expect, it } from 'vitest';
import { parseOptions, UsageError } from '../src/index.js';

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

/** The UsageError `argv` and `env` give, as its message. */
function refusal(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parseOptions(argv, env);
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  return 'accepted';
}

it('an empty password, given by --password or FTPD_PASSWORD, is refused naming which; one of spaces is a password', () => {
  // It served a user who logged in with a bare PASS (write access), the banner saying "password: (as given)".
  expect(refusal(['--password', ''])).toBe('--password: must not be empty (leave it out and a password is generated)');
  expect(refusal([], { FTPD_PASSWORD: '' })).toBe('FTPD_PASSWORD: must not be empty (leave it out and a password is generated)');
  expect(parsed(['--password', '  ']).password).toBe('  ');
  // The flag wins over its variable, as everywhere.
  expect(parsed(['--password', 'given'], { FTPD_PASSWORD: '' }).password).toBe('given');
});

it('--user anonymous (any case) with --anonymous-root is refused: that user could never log in; --user ftp stays the real user', () => {
  expect(refusal(['--user', 'anonymous', '--anonymous-root', './anon'])).toMatch(/^--user anonymous: that is the anonymous login while --anonymous-root is given/);
  expect(refusal(['--user', 'Anonymous'], { FTPD_ANONYMOUS_ROOT: './anon' })).toMatch(/^--user Anonymous: that is the anonymous login while FTPD_ANONYMOUS_ROOT is given/);
  expect(refusal([], { FTPD_USER: 'anonymous', FTPD_ANONYMOUS_ROOT: './anon' })).toMatch(/^FTPD_USER anonymous: /);
  expect(parsed(['--user', 'ftp', '--password', 'p', '--anonymous-root', './anon']).user).toBe('ftp');
  expect(parsed(['--user', 'anonymous', '--password', 'p']).user).toBe('anonymous');
});

it('a --public-host PASV cannot advertise, and one port for both listeners, are usage errors (they were exit 1 at the start)', () => {
  for (const host of ['::1', '300.1.1.1']) {
    expect(refusal(['--public-host', host])).toBe(`--public-host: expected an IPv4 address or a DNS name (PASV has no IPv6), got "${host}"`);
  }
  expect(refusal([], { FTPD_PUBLIC_HOST: '::1' })).toMatch(/^FTPD_PUBLIC_HOST: expected an IPv4 address/);
  expect(parsed(['--public-host', 'ftp.example.org']).publicHost).toBe('ftp.example.org');
  // It said "port 61080 is in use": the implicit listener found the plain one there.
  expect(refusal(['--port', '61080', '--self-signed', '--implicit-port', '61080'])).toBe(
    '--implicit-port and --port are both 61080: the plain and the implicit FTPS listener need a port each',
  );
  expect(refusal(['--self-signed', '--implicit-port', '2121'])).toMatch(/^--implicit-port and --port are both 2121/);
  expect(parsed(['--port', '0', '--self-signed', '--implicit-port', '0']).implicitPort).toBe(0);
});

it('a switch variable takes 1/0, true/false, yes/no, on/off in any case, and refuses anything else naming the variable', () => {
  // FTPD_MODE_Z=maybe was silently off.
  for (const on of ['1', 'true', 'YES', 'On']) expect(parsed([], { FTPD_MODE_Z: on }).modeZ).toBe(true);
  for (const off of ['0', 'false', 'No', 'OFF']) expect(parsed([], { FTPD_ASYNC_METADATA: off }).syncMetadata).toBe(true);
  expect(refusal([], { FTPD_MODE_Z: 'maybe' })).toBe('FTPD_MODE_Z: expected 1, true, yes or on (or 0, false, no, off), got "maybe"');
  // Empty is unset (compose files write FTPD_MODE_Z=${FTPD_MODE_Z:-}).
  expect(parsed([], { FTPD_ASYNC_METADATA: '' }).syncMetadata).toBe(true);
  expect(refusal([], { FTPD_ASYNC_METADATA: 'constructor' })).toMatch(/^FTPD_ASYNC_METADATA: expected/);
});

it('a bad value from a variable is named by the variable, from a flag by the flag', () => {
  expect(refusal([], { FTPD_PORT: 'abc' })).toBe('FTPD_PORT: expected a port number 0-65535, got "abc"');
  expect(refusal(['--port', 'abc'])).toBe('--port: expected a port number 0-65535, got "abc"');
  expect(refusal([], { FTPD_MAX_SESSIONS: 'many' })).toMatch(/^FTPD_MAX_SESSIONS: expected a whole number/);
  expect(refusal([], { FTPD_WORKERS: '0' })).toMatch(/^FTPD_WORKERS: expected auto or a number/);
  expect(refusal([], { FTPD_USER: '' })).toBe('FTPD_USER: must not be empty');
});

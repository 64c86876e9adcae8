import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvider, MemoryProvider, type FsProvider } from '@ftp/vfs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FtpServer } from '../src/index.js';
import { PASSWORD, RawClient, USER } from './helpers.js';

// TYPE A downloads of files spanning many read chunks (the local disk reads 256 KiB at a time, straight into reused
// buffers): every LF becomes CRLF, a CRLF stays one, also when its CR ends one chunk and its LF starts the next.

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});
const root = mkdtempSync(join(tmpdir(), 'type-a-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** What TYPE A sends for `local`: an LF not after a CR gets one. */
function toWire(local: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < local.length; i++) {
    if (local[i] === 0x0a && (i === 0 || local[i - 1] !== 0x0d)) out.push(0x0d);
    out.push(local[i] as number);
  }
  return Buffer.from(out);
}

/** ~1.2 MiB of text: lines of many lengths, some already CRLF, a lone CR, and a CRLF astride each 256 KiB boundary. */
function text(): Buffer {
  const parts: string[] = [];
  for (let i = 0; parts.join('').length < 1_250_000; i++) parts.push(`${'x'.repeat(i % 97)}${i % 5 === 0 ? '\r\n' : i % 11 === 0 ? '\r' : '\n'}`);
  const data = Buffer.from(parts.join(''));
  for (let k = 1; k * 262_144 < data.length; k++) {
    data[k * 262_144 - 1] = 0x0d;
    data[k * 262_144] = 0x0a;
  }
  return data;
}

async function session(fs: FsProvider) {
  const server = new FtpServer({ settings: { failedLoginDelay: 0 }, driver: { authenticate: (_s, u, p) => (u === USER && p === PASSWORD ? { fs } : null) } });
  const { port } = await server.listen(0, '127.0.0.1');
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close(), () => server.close());
  await c.login();
  return c;
}

describe('TYPE A downloads', () => {
  const data = text();
  for (const [name, make] of [
    ['local disk', () => new LocalProvider(root)],
    ['memory', () => new MemoryProvider()],
  ] as const) {
    it(`${name}: the whole file, line ends converted, across read chunks`, async () => {
      const fs: FsProvider = make();
      if (fs instanceof LocalProvider) writeFileSync(join(root, 'big.txt'), data);
      else await (fs as MemoryProvider).writeFile('/big.txt', data);
      const c = await session(fs);
      expect((await c.cmd('TYPE A')).code).toBe(200);
      const got = await c.retrieve('RETR big.txt');
      expect(got.length).toBe(toWire(data).length);
      expect(got.equals(toWire(data))).toBe(true);
      // A restart point in TYPE A is refused (stored bytes or wire octets: no reading of it can be trusted), and
      // spent: the next RETR sends the whole file.
      expect((await c.cmd('REST 262143')).code).toBe(350);
      expect(await c.cmd('RETR big.txt')).toMatchObject({ code: 554, text: expect.stringContaining('ASCII mode') });
      expect((await c.retrieve('RETR big.txt')).equals(toWire(data))).toBe(true);
      expect((await c.cmd('REST 5')).code).toBe(350);
      expect((await c.cmd('STOR big.txt')).code).toBe(554);
      expect((await c.retrieve('RETR big.txt')).equals(toWire(data))).toBe(true);
      // REST 0 is no restart; in TYPE I the offset counts stored bytes as ever.
      expect((await c.cmd('REST 0')).code).toBe(350);
      expect((await c.retrieve('RETR big.txt')).equals(toWire(data))).toBe(true);
      expect((await c.cmd('TYPE I')).code).toBe(200);
      expect((await c.cmd('REST 262143')).code).toBe(350);
      expect((await c.retrieve('RETR big.txt')).equals(data.subarray(262_143))).toBe(true);
    });
  }
});

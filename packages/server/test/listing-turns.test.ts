import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { MemoryProvider } from '@ftp/vfs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FtpServer } from '../src/index.js';
import { PASSWORD, USER } from './helpers.js';

const run = promisify(execFile);

/**
 * Every session shares the event loop: a listing of a big folder from storage that answers at once (memory, SQLite)
 * ran in one go, 90–550 ms for 100,000 entries, and every other session's replies waited (measured with a NOOP
 * every 5 ms beside it). Listings now give the loop a turn every few milliseconds. Measured here as the longest gap
 * between two turns of the loop while a client in another process (curl, Python) takes the listing, against the
 * listing's whole time: on the old code the gap was most of it (LIST 0.55–0.9 of it, STAT 0.4–0.45), now it is a
 * small part (a garbage collection at most).
 */
const ENTRIES = 100_000;
let server: FtpServer;
let port: number;

beforeAll(async () => {
  const fs = new MemoryProvider();
  await fs.mkdir('/big');
  for (let i = 0; i < ENTRIES; i++) await fs.writeFile(`/big/file${String(i).padStart(6, '0')}.txt`, '');
  for (let i = 0; i < 100; i++) {
    await fs.mkdir(`/tree/d${i}`, { recursive: true });
    for (let j = 0; j < 1000; j++) await fs.writeFile(`/tree/d${i}/f${j}`, '');
  }
  server = new FtpServer({
    settings: { passivePortRange: [46000, 46999], failedLoginDelay: 0 },
    driver: { authenticate: (_s, u, p) => (u === USER && p === PASSWORD ? { fs } : null) },
  });
  ({ port } = await server.listen(0, '127.0.0.1'));
}, 120_000);
afterAll(() => server.close());

/** Runs `take` and measures the longest time the event loop went without a turn meanwhile, and the whole time. */
async function longestBlock(take: () => Promise<string>): Promise<{ got: string; gap: number; total: number }> {
  let last = performance.now();
  let gap = 0;
  let ticking = true;
  const tick = (): void => {
    const now = performance.now();
    gap = Math.max(gap, now - last);
    last = now;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  const started = performance.now();
  const got = await take();
  const total = performance.now() - started;
  ticking = false;
  return { got, gap, total };
}

/** Logs in, sends STAT /big and reads the reply to its end in big reads (no parsing); prints its line count. */
const STAT_CLIENT = `
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
def until(marker, data=b''):
    while not data.endswith(marker):
        chunk = s.recv(1 << 20)
        if not chunk:
            raise SystemExit('closed')
        data += chunk
    return data
until(b'\\r\\n')
s.sendall(b'USER ' + sys.argv[2].encode() + b'\\r\\n'); until(b'\\r\\n')
s.sendall(b'PASS ' + sys.argv[3].encode() + b'\\r\\n'); until(b'\\r\\n')
s.sendall(b'STAT /big\\r\\n')
chunks = []
tail = b''
while not tail.endswith(b'\\r\\n213 End of status\\r\\n'):
    chunk = s.recv(1 << 20)
    if not chunk:
        raise SystemExit('closed')
    chunks.append(chunk)
    tail = (tail + chunk)[-64:]
print(b''.join(chunks).count(b'\\n') - 2)
`;

const url = (): string => `ftp://${USER}:${PASSWORD}@127.0.0.1:${port}`;
const curl = async (...args: string[]): Promise<string> => (await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{size_download}', ...args])).stdout;

describe('listings of a big folder on storage that answers at once give the event loop turns', () => {
  it.each([
    ['LIST', () => curl(`${url()}/big/`)],
    ['NLST', () => curl(`${url()}/big/`, '-l')],
    ['MLSD', () => curl(`${url()}/big/`, '-X', 'MLSD')],
    ['LIST -R', () => curl(`${url()}/tree/`, '-X', 'LIST -R')],
    [
      'STAT',
      // A raw read of the reply (no parsing on the client's side), its lines counted.
      async () =>
        (
          await run('python3', ['-c', STAT_CLIENT, String(port), USER, PASSWORD], { maxBuffer: 1 << 26 })
        ).stdout.trim(),
    ],
  ] as const)('%s', { timeout: 90_000 }, async (name, take) => {
    // The best of up to three runs: a garbage collection or another process's burst on a busy machine can make one
    // long block; the old code made one every time (LIST 0.55–0.85 of the listing, NLST 0.5, MLSD 0.6, LIST -R 0.65).
    let best = { share: Infinity, gap: 0, total: 0 };
    for (let attempt = 0; attempt < 3 && best.share >= 0.3; attempt++) {
      const { got, gap, total } = await longestBlock(take);
      // The listing came whole (bytes, or STAT's lines).
      expect(Number(got)).toBeGreaterThanOrEqual(name === 'STAT' ? ENTRIES : name === 'NLST' ? ENTRIES * 15 : 6_000_000);
      if (gap / total < best.share) best = { share: gap / total, gap, total };
    }
    expect(best.share, `${name}: longest block ${best.gap.toFixed(0)} ms of ${best.total.toFixed(0)} ms`).toBeLessThan(0.3);
  });
});

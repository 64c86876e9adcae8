import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, RawClient, startServer, USER } from './helpers.js';

// Connections between lines share one line reader (idle memory, issue 9); a connection with a partial line or
// Telnet state has its own. Many clients whose bytes arrive split at random points, interleaved with each other,
// must each be read exactly as if they had sent whole lines.

const IAC_IP_DM = Buffer.from([0xff, 0xf4, 0xff, 0xf2]);
const SCRIPT: Buffer[] = [
  Buffer.from(`USER ${USER}\r\n`),
  Buffer.from(`PASS ${PASSWORD}\r\n`),
  Buffer.from('TYPE I\r\n'),
  Buffer.from('MKD d\r\n'),
  Buffer.from('CWD d\n'),
  Buffer.from(`NOOP ${'x'.repeat(3000)}\r\n`),
  Buffer.concat([IAC_IP_DM, Buffer.from('NOOP\r\n')]),
  Buffer.from('PWD\r\n'),
  Buffer.from('SYST\r\n'),
  Buffer.from('CDUP\r\n'),
  Buffer.from('RMD d\r\n'),
  Buffer.from('QUIT\r\n'),
];
// 220 greeting, then one reply per line (NOOP ignores its argument, however long: 200).
const EXPECTED = [220, 331, 230, 200, 257, 250, 200, 200, 257, 215, 250, 250, 221];

let seed = 12345;
function rnd(n: number): number {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed % n;
}

/** The script cut at random points into 1–12 pieces per line, some pieces spanning two lines. */
function randomPieces(prefix: string): Buffer[] {
  const all = Buffer.concat(SCRIPT.map((b) => Buffer.from(b.toString('latin1').replace(/ d\b|^MKD d|RMD d/g, (m) => m.replace('d', prefix)), 'latin1')));
  const pieces: Buffer[] = [];
  for (let pos = 0; pos < all.length; ) {
    const len = 1 + rnd(rnd(4) === 0 ? 400 : 12);
    pieces.push(all.subarray(pos, pos + len));
    pos += len;
  }
  return pieces;
}

let srv: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(() => srv.close());

describe('command framing across interleaved connections', () => {
  it('reads every client exactly, whatever the split and however the chunks of others interleave', async () => {
    for (let round = 0; round < 3; round++) {
      const clients = await Promise.all(Array.from({ length: 8 }, () => RawClient.connect(srv.port)));
      for (const c of clients) c.socket.setNoDelay(true);
      const plans = clients.map((_, i) => randomPieces(`d${round}x${i}`));
      // Round-robin over the clients, one piece each, a macrotask apart so the server reads them apart.
      for (let k = 0; plans.some((p) => k < p.length); k++) {
        for (const [i, c] of clients.entries()) {
          const piece = plans[i]![k];
          if (piece) c.socket.write(piece);
        }
        await new Promise((r) => setImmediate(r));
      }
      for (const c of clients) {
        const codes: number[] = [];
        for (let i = 0; i < EXPECTED.length; i++) codes.push((await c.next(5000)).code);
        expect(codes).toEqual(EXPECTED);
      }
      for (const c of clients) c.socket.destroy();
    }
  });
});

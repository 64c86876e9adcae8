import { deflateSync, inflateSync } from 'node:zlib';
import { MemoryProvider } from '@ftp/vfs';
import { afterEach, describe, expect, it } from 'vitest';
import { FtpServer, RateLimiter, type ServerSettings, type TransferEvent } from '../src/index.js';
import { RawClient, readAll, USER, PASSWORD, writeAndClose } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function session(settings: Partial<ServerSettings> = {}, limits?: { download?: RateLimiter; upload?: RateLimiter }) {
  const fs = new MemoryProvider();
  const events: TransferEvent[] = [];
  const server = new FtpServer({
    settings: { failedLoginDelay: 0, ...settings },
    driver: { authenticate: (_s, u, p) => (u === USER && p === PASSWORD ? { fs, ...(limits ? { rateLimits: limits } : {}) } : null) },
  });
  server.on('transfer', (e) => events.push(e));
  const { port } = await server.listen(0, '127.0.0.1');
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close(), () => server.close());
  await c.login();
  // Binary, as clients moving files set it (a session starts in ASCII, RFC 959).
  expect((await c.cmd('TYPE I')).code).toBe(200);
  return { c, events, fs };
}

const put = (c: RawClient, name: string, data: Buffer): Promise<void> => c.store(name, data);
const get = (c: RawClient, command: string): Promise<Buffer> => c.retrieve(command);

describe('MODE Z', () => {
  it('deflates downloads and listings and inflates uploads; fewer bytes cross the wire', async () => {
    const { c, events } = await session({ modeZ: true });
    const text = Buffer.from('All work and no play makes Jack a dull boy.\n'.repeat(50000));
    expect((await c.cmd('FEAT')).lines).toContain(' MODE Z');
    expect((await c.cmd('MODE Z')).code).toBe(200);
    expect((await c.cmd('STAT')).text).toContain('MODE: Deflate');
    expect((await c.cmd('OPTS MODE Z LEVEL 9')).code).toBe(200);
    await put(c, 'jack.txt', deflateSync(text));
    const wire = await get(c, 'RETR jack.txt');
    expect(inflateSync(wire).equals(text)).toBe(true);
    expect(wire.length).toBeLessThan(text.length / 20);
    const listing = inflateSync(await get(c, 'LIST'));
    expect(listing.toString()).toMatch(/ jack\.txt\r\n$/);
    const download = events.find((e) => e.direction === 'download');
    expect(download?.bytes).toBe(wire.length);
    expect((await c.cmd('MODE S')).code).toBe(200);
    expect((await get(c, 'RETR jack.txt')).equals(text)).toBe(true);
    expect((await c.cmd('OPTS MODE Z LEVEL 12')).code).toBe(501);
  });

  it('is off unless enabled: not in FEAT, and MODE Z refused (lftp would turn it on by itself)', async () => {
    for (const settings of [{}, { modeZ: false }]) {
      const { c } = await session(settings);
      expect((await c.cmd('MODE Z')).code).toBe(504);
      expect((await c.cmd('FEAT')).lines).not.toContain(' MODE Z');
      expect((await c.cmd('MODE S')).code).toBe(200);
    }
  });

  it('with MODE Z off, HELP still lists MODE, and every command of RFC 959 §5.1\'s minimum implementation', async () => {
    const { c } = await session();
    const verbs = (await c.cmd('HELP')).lines.slice(1, -1).join(' ').split(/\s+/);
    for (const verb of ['USER', 'QUIT', 'PORT', 'TYPE', 'MODE', 'STRU', 'RETR', 'STOR', 'NOOP']) expect(verbs, verb).toContain(verb);
    expect((await c.cmd('HELP MODE')).text).toContain('MODE <S|Z>');
  });

  it('a corrupt deflate stream fails the upload instead of storing garbage as complete', async () => {
    const { c } = await session({ modeZ: true });
    expect((await c.cmd('MODE Z')).code).toBe(200);
    const socket = await c.passive();
    c.send('STOR bad.bin');
    expect((await c.next()).code).toBe(150);
    await writeAndClose(socket, Buffer.from('this is not zlib data at all'));
    // 426, and it says why: the connection was fine, its data was not deflate.
    expect(await c.next()).toMatchObject({ code: 426, text: expect.stringMatching(/not valid MODE Z/) });
  });
});

describe('bandwidth limits', () => {
  it('a download limited to 2 MiB/s moves 8 MiB in about 4 s', { timeout: 20000 }, async () => {
    const { c } = await session({ downloadRate: 2 * 1024 * 1024 });
    await put(c, 'eight', Buffer.alloc(8 * 1024 * 1024, 1));
    const t0 = Date.now();
    expect((await get(c, 'RETR eight')).length).toBe(8 * 1024 * 1024);
    const seconds = (Date.now() - t0) / 1000;
    // 4 s ± 10% in principle; generous bounds here (a loaded CI machine), exact figures in the benchmark.
    expect(seconds).toBeGreaterThan(3.4);
    expect(seconds).toBeLessThan(5.5);
  });

  it("a user's shared limiter caps uploads and can be changed while a transfer runs", { timeout: 20000 }, async () => {
    const upload = new RateLimiter(1024 * 1024);
    const { c } = await session({}, { upload });
    const socket = await c.passive();
    c.send('STOR four');
    expect((await c.next()).code).toBe(150);
    const t0 = Date.now();
    setTimeout(() => (upload.rate = 4 * 1024 * 1024), 1000);
    await writeAndClose(socket, Buffer.alloc(4 * 1024 * 1024, 2));
    expect((await c.next(15000)).code).toBe(226);
    const seconds = (Date.now() - t0) / 1000;
    // 1 MiB in the first second at 1 MiB/s, then 3 MiB at 4 MiB/s: about 1.75 s; without the change, 4 s.
    expect(seconds).toBeGreaterThan(1.2);
    expect(seconds).toBeLessThan(3.2);
  });
});

describe('STAT during a transfer', () => {
  /** A download of 8 MiB started and held: the client does not read its data connection yet. */
  async function heldDownload() {
    const { c } = await session();
    await put(c, 'big', Buffer.alloc(8 * 1024 * 1024, 3));
    const socket = await c.passive();
    socket.pause();
    c.send('RETR big');
    expect((await c.next()).code).toBe(150);
    return { c, socket };
  }

  it('reports the transfer in progress, and the transfer goes on', async () => {
    const { c, socket } = await heldDownload();
    await new Promise((r) => setTimeout(r, 100));
    const stat = await c.cmd('STAT');
    expect(stat.code).toBe(211);
    expect(stat.text).toMatch(/download of \/big in progress: \d+ bytes/);
    const data = await readAll(socket.resume());
    expect(data.length).toBe(8 * 1024 * 1024);
    expect((await c.next()).code).toBe(226);
  });

  it('an ABOR sent right behind a STAT (one segment) still aborts the transfer', async () => {
    const { c, socket } = await heldDownload();
    c.send('STAT\r\nABOR');
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await c.next(3000)).code);
    expect(codes).toEqual([211, 426, 226]);
    socket.destroy();
  });

  it('a flood of STATs during a transfer is answered one at a time, not all buffered at once', { timeout: 20000 }, async () => {
    const { c, socket } = await heldDownload();
    // 20,000 STATs in one go, while the download is held: each served out of order would leave its reply in the
    // server's memory until the client reads. Past the queue's bound they are dropped, and so many dropped
    // commands end the session once the transfer is over.
    c.send(Array.from({ length: 20_000 }, () => 'STAT').join('\r\n'));
    await new Promise((r) => setTimeout(r, 300));
    socket.resume().on('data', () => undefined);
    const codes = new Map<number, number>();
    for (let i = 0; i < 25_000; i++) {
      const r = await c.next(5000).catch(() => null);
      if (!r) break;
      codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
      if (r.code === 421) break;
    }
    expect(codes.get(211) ?? 0).toBeLessThan(200);
    expect(codes.get(421)).toBe(1);
    expect(await c.waitClosed()).toBe(true);
  });
});

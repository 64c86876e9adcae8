// Downloads from a local-disk provider take the reused-buffer path (sendChunks): these check that it sends every
// byte, honours REST, and ends with the right reply when the client aborts or goes away.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvider } from '@ftp/vfs';
import { afterEach, expect, it } from 'vitest';
import { RawClient, readAll, startServer, pattern, sha } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});



async function setup(files: Record<string, Buffer>, dataStallTimeout = 5) {
  const root = await mkdtemp(join(tmpdir(), 'local-send-'));
  for (const [name, data] of Object.entries(files)) await writeFile(join(root, name), data);
  const ctx = await startServer({ fs: new LocalProvider(root), settings: { dataStallTimeout } });
  cleanups.push(() => ctx.close(), () => rm(root, { recursive: true, force: true }));
  return ctx;
}

const client = (port: number): Promise<RawClient> => RawClient.binarySession(port, cleanups);

/** RETR (after REST when `rest` > 0) over a fresh EPSV connection: the bytes, once the 226 came. */
async function download(c: RawClient, name: string, rest = 0): Promise<Buffer> {
  if (rest > 0) expect((await c.cmd(`REST ${rest}`)).code).toBe(350);
  const socket = await c.passive();
  c.send(`RETR ${name}`);
  expect((await c.next()).code).toBe(150);
  const got = await readAll(socket);
  expect((await c.next()).code).toBe(226);
  return got;
}

it('parallel downloads of different files each get their own bytes (buffers are reused, never shared)', async () => {
  const files = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`f${i}.bin`, pattern(1_500_000 + i * 77_777, i)]));
  const ctx = await setup(files);
  await Promise.all(
    Object.entries(files).map(async ([name, data]) => {
      const c = await client(ctx.port);
      for (let round = 0; round < 2; round++) expect(sha(await download(c, name))).toBe(sha(data));
    }),
  );
});

it('big files (sent through 1 MiB buffers) and small ones downloaded at once each get their own bytes, REST included', async () => {
  const files: Record<string, Buffer> = {
    'big0.bin': pattern(9 * 1024 * 1024 + 12_345, 1),
    'big1.bin': pattern(10 * 1024 * 1024 - 1, 2),
    'big2.bin': pattern(8 * 1024 * 1024, 3),
    'small.bin': pattern(300_001, 4),
  };
  const ctx = await setup(files);
  await Promise.all(
    Object.entries(files).map(async ([name, data]) => {
      const c = await client(ctx.port);
      expect(sha(await download(c, name))).toBe(sha(data));
      const rest = Math.floor(data.length / 3) + 7;
      expect(sha(await download(c, name, rest))).toBe(sha(data.subarray(rest)));
    }),
  );
});

it('REST then RETR sends the rest of the file; an empty file and REST at the end send nothing', async () => {
  const data = pattern(1_000_003, 9);
  const ctx = await setup({ 'a.bin': data, 'empty.bin': Buffer.alloc(0) });
  const c = await client(ctx.port);
  for (const [name, offset, expected] of [
    ['a.bin', 262_145, data.subarray(262_145)],
    ['a.bin', data.length, Buffer.alloc(0)],
    ['empty.bin', 0, Buffer.alloc(0)],
  ] as const) {
    expect((await download(c, name, offset)).equals(expected)).toBe(true);
  }
});

it('ABOR during a download gets 426 then 226, and a client that drops the data connection gets 426', async () => {
  const ctx = await setup({ 'big.bin': pattern(64 * 1024 * 1024, 3) });
  const c = await client(ctx.port);
  let socket = await c.passive();
  socket.pause(); // read nothing: the server's writes back up
  c.send('RETR big.bin');
  expect((await c.next()).code).toBe(150);
  await new Promise((r) => setTimeout(r, 100));
  c.send('ABOR');
  const aborted = await c.next();
  expect(aborted.code).toBe(426);
  expect(aborted.text).toMatch(/abort/i);
  expect((await c.next()).code).toBe(226);
  socket.destroy();

  socket = await c.passive();
  c.send('RETR big.bin');
  expect((await c.next()).code).toBe(150);
  await new Promise<void>((r) => socket.once('data', () => r()));
  socket.destroy();
  expect((await c.next(10_000)).code).toBe(426);
  expect((await c.cmd('NOOP')).code).toBe(200);
});

// The upload's file is opened once its data connection is up, after the 150: RFC 959 §5.4 allows 451 there, not 450.
it('an upload over a file another session is downloading is refused (450, file busy) before any 150, and the download is whole', async () => {
  const data = pattern(32 * 1024 * 1024, 3);
  const ctx = await setup({ 'big.bin': data });
  const a = await client(ctx.port);
  const b = await client(ctx.port);
  const downloading = await a.passive();
  a.send('RETR big.bin');
  expect((await a.next()).code).toBe(150);
  // A reads nothing yet: its download holds the file open. The uploads are refused before the client could send a
  // byte (after a 150 the refusal would be a 451, and clients resume onto the file).
  for (const command of ['STOR big.bin', 'APPE big.bin']) {
    await b.passive();
    const refused = await b.cmd(command);
    expect(refused.code, `${command}: ${refused.text}`).toBe(450);
    expect(refused.text).toMatch(/busy/i);
  }
  expect(sha(await readAll(downloading))).toBe(sha(data));
  expect((await a.next()).code).toBe(226);
});

it('RETR of a FIFO is refused with 550 at once, and leaves the server responsive', async () => {
  const { execFileSync } = await import('node:child_process');
  const dir = await mkdtemp(join(tmpdir(), 'local-fifo-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  execFileSync('mkfifo', [join(dir, 'pipe')]);
  const fifoCtx = await startServer({ fs: new LocalProvider(dir) });
  cleanups.push(() => fifoCtx.close());
  const c = await client(fifoCtx.port);
  await c.passive();
  const started = Date.now();
  // Several at once: before the fix each held a thread-pool thread until a writer opened the FIFO.
  for (let i = 0; i < 5; i++) expect((await c.cmd('RETR pipe')).code).toBe(550);
  expect(Date.now() - started).toBeLessThan(3000);
  expect((await c.cmd('NOOP')).code).toBe(200);
});

/**
 * Opens `fifo` at both ends from another process after `ms`, for a few seconds: a server that blocks on the FIFO
 * (this very test process, in sync mode) is freed then, so a regression fails the test's time checks instead of
 * hanging the run.
 */
async function unblockFifoLater(fifo: string, ms: number): Promise<void> {
  const { spawn } = await import('node:child_process');
  const helper = spawn('sh', ['-c', `sleep ${ms / 1000}; exec 3<>"$1"; sleep 5`, 'sh', fifo], { stdio: 'ignore' });
  cleanups.push(() => void helper.kill());
}

// With syncMetadata (the default) the open runs on the main thread: an open that waited for a FIFO's reader would
// hang every session, not one thread-pool thread.
it.each([true, false])('STOR and APPE to a FIFO are refused (553 and 550) before any 150, and the server stays responsive (syncMetadata %s)', async (syncMetadata) => {
  const { execFileSync } = await import('node:child_process');
  const dir = await mkdtemp(join(tmpdir(), 'local-fifo-up-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  execFileSync('mkfifo', [join(dir, 'pipe')]);
  const fifoCtx = await startServer({ fs: new LocalProvider(dir, { syncMetadata }), settings: { dataConnectTimeout: 5 } });
  cleanups.push(() => fifoCtx.close());
  const c = await client(fifoCtx.port);
  await unblockFifoLater(join(dir, 'pipe'), 2000);
  const started = Date.now();
  for (const [cmd, code] of [['STOR pipe', 553], ['APPE pipe', 550]] as const) {
    const data = await c.passive();
    data.on('error', () => undefined); // the server cuts it: ECONNRESET
    const reply = await c.cmd(cmd);
    data.destroy();
    expect(reply.code).toBe(code);
    expect(reply.text).toContain('not a plain file');
  }
  // Well before the helper would have freed a blocked open.
  expect(Date.now() - started).toBeLessThan(1500);
  expect((await c.cmd('NOOP')).code).toBe(200);
});

/**
 * A client in another process (Python's ftplib): it RETRs the file, does not read the data connection until told to
 * (a client in this process would read the socket into its own buffers at once), and prints what it got.
 */
const HOLDING_CLIENT = `
import ftplib, sys, hashlib
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
a = ftplib.FTP(); a.connect('127.0.0.1', port, timeout=20); a.login(user, password); a.voidcmd('TYPE I')
d = a.transfercmd('RETR sf.bin')
print(a.getresp()[:3], flush=True)
sys.stdin.readline()
got = b''
d.settimeout(20)
reset = False
while True:
    try:
        x = d.recv(65536)
    except ConnectionResetError:
        reset = True
        break
    if not x: break
    got += x
print(len(got), hashlib.sha256(got).hexdigest() + (' reset' if reset else ''), flush=True)
`;

/** {@link HOLDING_CLIENT} started on `port`: `line(n)` waits up to 20 s for its n-th line of output; `go()` lets it read. */
async function holdingClient(port: number): Promise<{ line: (n: number) => Promise<string>; go: () => void }> {
  const { spawn } = await import('node:child_process');
  const { USER, PASSWORD } = await import('./helpers.js');
  const python = spawn('python3', ['-c', HOLDING_CLIENT, String(port), USER, PASSWORD], { stdio: ['pipe', 'pipe', 'inherit'] });
  cleanups.push(() => python.kill());
  const lines: string[] = [];
  let partial = '';
  let wake: (() => void) | null = null;
  python.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    // A line may come in two chunks: only whole lines count.
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter(Boolean));
    wake?.();
  });
  const line = async (n: number): Promise<string> => {
    for (let i = 0; i < 200 && lines.length < n; i++) await new Promise<void>((r) => ((wake = r), setTimeout(r, 100)));
    return lines[n - 1] ?? '(nothing)';
  };
  return { line, go: () => void python.stdin.write('\n') };
}

it('a download still in the kernel when another session replaces the file gets the version it began with, whole', async () => {
  // The bug: sent with sendfile, the bytes waiting in the socket were the file's pages; a small upload rewrites those
  // in place, and the client, reading after the 226, got the new version's bytes (or zeros past its end).
  for (const [size, replacement] of [
    [65_536, 65_536],
    [65_536, 100],
    [16_384, 16_384],
    [300_000, 100],
  ] as const) {
    const old = Buffer.alloc(size, 'A');
    const ctx = await setup({ 'sf.bin': old });
    const { line, go } = await holdingClient(ctx.port);
    // The download's 226: the server is done with it, the bytes wait in the kernel for the client.
    expect(await line(1)).toBe('226');
    const b = await client(ctx.port);
    const data = await b.passive();
    expect((await b.cmd('STOR sf.bin')).code).toBe(150);
    data.end(Buffer.alloc(replacement, 'B'));
    expect((await b.next()).code).toBe(226);
    go();
    expect(await line(2), `${size} bytes replaced by ${replacement}: the old version`).toBe(`${size} ${sha(old)}`);
  }
}, 60_000);

/**
 * A server over sf.bin (300,000 bytes of 'A', sent from the file's pages) with `dataStallTimeout` seconds, and a
 * client that downloaded it (226) and reads nothing of it until `go()`.
 */
async function heldDownload(dataStallTimeout?: number) {
  const size = 300_000;
  const old = Buffer.alloc(size, 'A');
  const ctx = await setup({ 'sf.bin': old }, dataStallTimeout);
  const { line, go } = await holdingClient(ctx.port);
  expect(await line(1)).toBe('226');
  return { size, old, ctx, line, go };
}

it('an upload that would rewrite in place (REST inside the file) bytes a finished download still has in the kernel is refused until the client has them', async () => {
  // sendfile leaves the file's own pages in the socket after the 226: REST + STOR rewrote them in place, and the
  // client, reading after its 226, got the new bytes. Now 450 before the 150 while they are unacknowledged.
  const { size, old, ctx, line, go } = await heldDownload();
  const b = await client(ctx.port);
  const resume = async (): Promise<number> => {
    expect((await b.cmd('REST 1000')).code).toBe(350);
    const data = await b.passive();
    const r = await b.cmd('STOR sf.bin');
    if (r.code !== 150) {
      data.destroy();
      return r.code;
    }
    data.end(Buffer.alloc(100_000, 'B'));
    return (await b.next()).code;
  };
  expect(await resume()).toBe(450);
  // Past the data connection's linger (5 s): still the client's until it has them (the socket closed then, the
  // kernel went on sending the pages, and the resume rewrote them: 200,000 of its bytes were the new version's).
  await new Promise((r) => setTimeout(r, 6_000));
  expect(await resume()).toBe(450);
  go();
  expect(await line(2)).toBe(`${size} ${sha(old)}`);
  // Once the client has everything (and has closed), the resume goes through.
  let code = 0;
  for (let i = 0; i < 50 && (code = await resume()) === 450; i++) await new Promise((r) => setTimeout(r, 50));
  expect(code).toBe(226);
  const now = await download(b, 'sf.bin');
  expect(now.length).toBe(101_000);
  expect(now.subarray(0, 1000).equals(Buffer.alloc(1000, 'A'))).toBe(true);
  expect(now.subarray(1000).equals(Buffer.alloc(100_000, 'B'))).toBe(true);
}, 60_000);

it('a client that takes none of its lent bytes for the data stall timeout is reset: it sees its transfer fail', async () => {
  // The linger keeps a download sent from the file's pages open until the client closes its side (see the test
  // above), but not for ever: with nothing taken for the data stall timeout, a reset drops what the kernel holds.
  const { size, old, line, go } = await heldDownload(1);
  // The linger's end (5 s), then a look with nothing taken past the stall timeout (1 s): reset at about 10 s.
  await new Promise((r) => setTimeout(r, 11_000));
  go();
  const [count, digest, reset] = (await line(2)).split(' ');
  expect(Number(count)).toBeLessThan(size);
  expect(digest).toBe(sha(old.subarray(0, Number(count))));
  expect(reset).toBe('reset');
}, 60_000);

it('closing the server ends the finished downloads it still holds for their clients (they held the process)', async () => {
  // A download sent from the file's pages lingers until its client closes it (see above): the server's close must
  // not leave it to hold the process for the stall timeout. Closed, not reset: the kernel still delivers it all.
  const { size, old, ctx, line, go } = await heldDownload();
  const sockets = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
  expect(sockets()).toBeGreaterThan(0);
  await ctx.server.close();
  for (let i = 0; i < 50 && sockets() > 0; i++) await new Promise((r) => setTimeout(r, 20));
  expect(sockets()).toBe(0);
  go();
  expect(await line(2)).toBe(`${size} ${sha(old)}`);
}, 30_000);

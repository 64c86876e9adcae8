// Each test pins a defect found in review; named after what went wrong.
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { parseEpsvReply } from '@ftp/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RawClient, readAll, startServer, writeAndClose } from './helpers.js';

let ctx: Awaited<ReturnType<typeof startServer>>;
let c: RawClient;

beforeEach(async () => {
  ctx = await startServer({ settings: { dataStallTimeout: 2 } });
  c = await RawClient.connect(ctx.port);
  await c.login();
});
afterEach(async () => {
  c.close();
  await ctx.close();
});

/** The lines a listing command sends over a passive data connection, or its reply code alone when it refuses. */
async function dataLines(command: string): Promise<string[]> {
  const socket = await c.passive();
  const r = await c.cmd(command);
  if (r.code !== 150) {
    socket.destroy();
    return [String(r.code)];
  }
  const out = (await readAll(socket)).toString();
  expect((await c.next()).code).toBe(226);
  return out.split('\r\n').filter(Boolean);
}

async function put(name: string, data: Buffer | string): Promise<void> {
  const socket = await c.passive();
  c.send(`STOR ${name}`);
  expect((await c.next()).code).toBe(150);
  await writeAndClose(socket, data);
  expect((await c.next()).code).toBe(226);
}

describe('review findings', () => {
  it('two names in a legacy 8-bit charset are two files, not one overwritten', async () => {
    for (const [byte, content] of [[0xe9, 'first'], [0xe8, 'second']] as const) {
      const socket = await c.passive();
      c.send(Buffer.concat([Buffer.from('STOR caf'), Buffer.from([byte]), Buffer.from('.txt\r\n')]));
      expect((await c.next()).code).toBe(150);
      await writeAndClose(socket, content);
      expect((await c.next()).code).toBe(226);
    }
    // The memory provider keeps raw names: each byte that is not UTF-8 as its escape (byte-names.test.ts).
    expect((await ctx.fs.stat('/caf\udce9.txt')).size).toBe(5);
    expect((await ctx.fs.stat('/caf\udce8.txt')).size).toBe(6);
    c.send(Buffer.concat([Buffer.from('SIZE caf'), Buffer.from([0xe9]), Buffer.from('.txt\r\n')]));
    expect(await c.next()).toMatchObject({ code: 213, text: '5' });
  });

  it('RETR over a data connection the client already closed ends with 426, not a hang', async () => {
    await put('f', 'x'.repeat(100000));
    const socket = await c.passive();
    socket.destroy();
    await new Promise((r) => setTimeout(r, 50));
    c.send('RETR f');
    expect((await c.next()).code).toBe(150);
    const final = await c.next(3000);
    expect([425, 426]).toContain(final.code);
    expect((await c.cmd('NOOP')).code).toBe(200);
  });

  it('a client that half-closes mid-download does not get 226', async () => {
    await put('big', Buffer.alloc(16 * 1024 * 1024, 1));
    const socket = await c.passive();
    c.send('RETR big');
    expect((await c.next()).code).toBe(150);
    await once(socket, 'data');
    socket.pause();
    socket.end(); // FIN from the client, then it stops reading and leaves
    await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    expect((await c.next(5000)).code).toBe(426);
  });

  it('repeated USER commands cannot grow the session forever', async () => {
    for (let i = 0; i < 20 && !c.closed; i++) c.send(`USER ${'u'.repeat(200)}${i}`);
    const codes: number[] = [];
    for (;;) {
      const r = await c.next(3000).catch(() => null);
      if (!r) break;
      codes.push(r.code);
      if (r.code === 421) break;
    }
    expect(codes).toContain(421);
    expect(await c.waitClosed()).toBe(true);
  });

  it('ABOR is heard while a transfer runs even after 40 commands were queued', async () => {
    await put('big', Buffer.alloc(16 * 1024 * 1024, 1));
    const socket = await c.passive();
    socket.pause();
    c.send('RETR big');
    expect((await c.next()).code).toBe(150);
    // PWD: a NOOP is answered at once during a transfer (keepalives), not queued.
    c.send(Array.from({ length: 40 }, () => 'PWD').join('\r\n') + '\r\n');
    await new Promise((r) => setTimeout(r, 100));
    c.send('ABOR');
    const codes = [];
    for (let i = 0; i < 42; i++) codes.push((await c.next(3000)).code);
    expect(codes[0]).toBe(426);
    expect(codes[1]).toBe(226);
    // Every PWD is answered in order afterwards: 257, or 500 for those dropped past the limit.
    expect(codes.slice(2).every((code) => code === 257 || code === 500)).toBe(true);
    socket.destroy();
  });

  it('a flood of commands during a transfer is no longer read once it is to end the session (421), not parsed to the end', { timeout: 20000 }, async () => {
    // Past 1,000 dropped lines the session ends the connection once the transfer is over: reading on only kept the
    // event loop parsing whatever the client streamed for as long as the transfer ran (260 MB in 10 s, one client).
    await put('big', Buffer.alloc(16 * 1024 * 1024, 1));
    const socket = await c.passive();
    socket.pause();
    c.send('RETR big');
    expect((await c.next()).code).toBe(150);
    // In 60 KiB pieces, so that what the kernel took shows in the client's queue as it goes.
    // PWD, not NOOP: a NOOP is answered at once during a transfer (see the keepalive tests).
    const piece = Buffer.from('PWD\r\n'.repeat(12 * 1024));
    for (let i = 0; i < 1600; i++) c.socket.write(piece, () => undefined);
    // Within the transfer's 2 s stall limit. The server runs in this process: reading on, it spent the whole time
    // parsing lines it would drop (1.5 s of CPU in 1.5 s, measured; 30 ms once it stops reading).
    const cpu = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 1500));
    const spent = process.cpuUsage(cpu);
    expect((spent.user + spent.system) / 1000).toBeLessThan(600);
    // Loopback buffers hold a few MiB at most: nearly all of the 94 MiB stays with the client.
    expect(c.socket.writableLength).toBeGreaterThan(78 * 1024 * 1024);
    const codes: number[] = [];
    for (let i = 0; i < 200; i++) {
      const r = await c.next(5000).catch(() => null);
      if (!r) break;
      codes.push(r.code);
      if (r.code === 421) break;
    }
    expect(codes[0]).toBe(426);
    expect(codes.at(-1)).toBe(421);
    // Closed by the server (the client's unsent flood makes its side fail with EPIPE: no 'close' wait that throws).
    for (let i = 0; i < 100 && !c.closed; i++) await new Promise((r) => setTimeout(r, 50));
    expect(c.closed).toBe(true);
    socket.destroy();
  });

  it('a finished data connection is closed by the server even if the client keeps it open', { timeout: 15000 }, async () => {
    await put('small', 'abc');
    const r = await c.cmd('EPSV');
    // allowHalfOpen: the client does not answer the server's FIN with its own.
    const socket = connect({ port: parseEpsvReply(r.text), host: '127.0.0.1', allowHalfOpen: true });
    await once(socket, 'connect');
    c.send('RETR small');
    expect((await c.next()).code).toBe(150);
    socket.on('data', () => {});
    expect((await c.next()).code).toBe(226);
    // The client never closes its side. Past the server's linger time, the server's descriptor must be closed
    // (this process holds both ends: count its descriptors, the client's staying open).
    const openFds = (): number => readdirSync('/proc/self/fd').length;
    const before = openFds();
    await new Promise((r) => setTimeout(r, 6000));
    expect(socket.destroyed).toBe(false);
    expect(openFds()).toBeLessThan(before);
    socket.destroy();
  });

  it('NLST and LIST expand wildcards in the last segment (mget)', async () => {
    await put('a.csv', '1');
    await put('b.csv', '2');
    await put('c.txt', '3');
    expect((await c.cmd('MKD d')).code).toBe(257);
    await put('d/e.csv', '4');
    const nlst = (arg: string): Promise<string[]> => dataLines(`NLST ${arg}`);
    expect(await nlst('*.csv')).toEqual(['a.csv', 'b.csv']);
    expect(await nlst('d/*.csv')).toEqual(['d/e.csv']);
    expect(await nlst('[ac].*')).toEqual(['a.csv', 'c.txt']);
    expect(await nlst('*.zip')).toEqual(['550']);
    // A set no client can have meant (a range out of order) is plain text, not a server error (451).
    expect(await nlst('[z-a]')).toEqual(['550']);
    expect(await nlst('*[z-a]*')).toEqual(['550']);
    await put('x[z-a]', '5');
    expect(await nlst('x[z-a]')).toEqual(['x[z-a]']);
    expect(await nlst('?[z-a]')).toEqual(['x[z-a]']);
  });

  it('NLST * and LIST * leave out names that start with a dot, as the shell and proftpd do; .* names them; plain LIST keeps them', async () => {
    await put('.hidden', '1');
    await put('shown', '2');
    expect((await c.cmd('MKD .dir')).code).toBe(257);
    await put('.dir/.inner', '3');
    await put('.dir/inner', '4');
    const lines = dataLines;
    const names = (listing: string[]): string[] => listing.map((l) => l.slice(l.lastIndexOf(' ') + 1));
    expect(await lines('NLST *')).toEqual(['shown']);
    expect(await lines('NLST ?hidden')).toEqual(['550']);
    expect(names(await lines('LIST *'))).toEqual(['shown']);
    expect(await lines('NLST .*')).toEqual(['.dir', '.hidden']);
    expect(await lines('NLST .dir/*')).toEqual(['.dir/inner']);
    expect(names(await lines('LIST'))).toEqual(['.dir', '.hidden', 'shown']);
    expect(await lines('NLST')).toEqual(['.dir', '.hidden', 'shown']);
  });

  it('RMD of the working directory is refused', async () => {
    expect((await c.cmd('MKD here')).code).toBe(257);
    expect((await c.cmd('CWD here')).code).toBe(250);
    expect((await c.cmd('RMD /here')).code).toBe(550);
    expect((await c.cmd('CDUP')).code).toBe(250);
    expect((await c.cmd('RMD here')).code).toBe(250);
  });
});

it('a connection that never logs in is closed after loginTimeout', async () => {
  const local = await startServer({ settings: { loginTimeout: 0.3, idleTimeout: 60 } });
  const client = await RawClient.connect(local.port);
  expect((await client.next()).code).toBe(220);
  expect((await client.next(3000)).code).toBe(421);
  expect(await client.waitClosed()).toBe(true);
  client.close();
  await local.close();
});

it('commands before login do not put loginTimeout off: NOOPs every 100 ms still get 421 (ProFTPD TimeoutLogin)', async () => {
  const local = await startServer({ settings: { loginTimeout: 0.5, idleTimeout: 60 } });
  const client = await RawClient.connect(local.port);
  expect((await client.next()).code).toBe(220);
  const started = performance.now();
  let closedBy = 0;
  for (let i = 0; i < 50; i++) {
    const r = await client.cmd('NOOP', 3000);
    if (r.code === 421) {
      closedBy = performance.now() - started;
      break;
    }
    expect(r.code).toBe(200);
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(closedBy).toBeGreaterThan(400);
  expect(closedBy).toBeLessThan(3000);
  client.close();
  // Logged in, NOOPs keep the session: idleTimeout counts silence.
  const user = await RawClient.connect(local.port);
  await user.login();
  for (let i = 0; i < 10; i++) {
    expect((await user.cmd('NOOP')).code).toBe(200);
    await new Promise((r) => setTimeout(r, 100));
  }
  user.close();
  await local.close();
});

it('a data connection from the wrong client is dropped; the transfer still completes for the right one', async () => {
  const local = await startServer();
  const client = await RawClient.connect(local.port, '127.0.0.1');
  await client.login();
  const r = await client.cmd('EPSV');
  const port = parseEpsvReply(r.text);
  // An intruder on another loopback address races to the port first.
  const intruder = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
  intruder.on('error', () => {});
  await once(intruder, 'close');
  const data = connect({ port, host: '127.0.0.1' });
  await once(data, 'connect');
  client.send('STOR ok.txt');
  expect((await client.next()).code).toBe(150);
  await writeAndClose(data, 'mine');
  expect((await client.next()).code).toBe(226);
  client.close();
  await local.close();
});

it('an empty upload whose data connection closed before STOR completes (curl -T of a 0-byte file hung)', async () => {
  const socket = await c.passive();
  socket.end();
  await once(socket, 'finish');
  await new Promise((r) => setTimeout(r, 100));
  c.send('STOR empty.bin');
  expect((await c.next()).code).toBe(150);
  expect((await c.next(3000)).code).toBe(226);
  expect((await ctx.fs.stat('/empty.bin')).size).toBe(0);
});

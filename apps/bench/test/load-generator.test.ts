import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateLoad, loadGenerator } from '../src/load-generator.js';
import { waitForGreeting } from '../src/servers/process.js';

const CLI = fileURLToPath(new URL('../../ftpd/dist/cli.js', import.meta.url));

/**
 * A scripted FTP server: a multi-line greeting, then fixed replies; RETR sends `retrBytes` on the EPSV data
 * connection. Enough to see what the generator accepts and what it fails.
 */
async function scriptedServer(options: { password: string; retrBytes: number; greet?: boolean; trickle?: boolean }): Promise<{ port: number; close(): void }> {
  const data = net.createServer();
  await new Promise<void>((resolve) => data.listen(0, '127.0.0.1', resolve));
  const dataPort = (data.address() as net.AddressInfo).port;
  // The data connection may be accepted after the RETR that uses it is read.
  const waiting: net.Socket[] = [];
  const wanted: Array<(s: net.Socket) => void> = [];
  data.on('connection', (s) => (wanted.length > 0 ? wanted.shift()!(s) : waiting.push(s)));
  const nextDataSocket = (use: (s: net.Socket) => void): void => void (waiting.length > 0 ? use(waiting.shift()!) : wanted.push(use));
  const control = net.createServer((socket) => {
    if (options.greet === false) return;
    socket.write('220-Welcome\r\n220-second line\r\n220 ready\r\n');
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString();
      for (let i = buffered.indexOf('\r\n'); i !== -1; i = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 2);
        const [verb, arg] = line.split(' ');
        if (verb === 'USER') socket.write('331 password please\r\n');
        else if (verb === 'PASS') socket.write(arg === options.password ? '230-in\r\n230 logged in\r\n' : '530 Login incorrect.\r\n');
        else if (verb === 'TYPE') socket.write('200 binary\r\n');
        else if (verb === 'EPSV') socket.write(`229 Entering Extended Passive Mode (|||${dataPort}|)\r\n`);
        else if (verb === 'RETR') {
          socket.write('150 here it comes\r\n');
          if (options.trickle) {
            // A byte every 50 ms for ever (until the socket goes): progress enough for any timeout, never an end.
            nextDataSocket((d) => {
              d.on('error', () => undefined);
              const timer = setInterval(() => (d.destroyed ? clearInterval(timer) : d.write('x')), 50);
            });
          } else nextDataSocket((d) => d.end(Buffer.alloc(options.retrBytes, 1), () => socket.write('226 done\r\n')));
        } else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('500 what\r\n');
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
  return {
    port: (control.address() as net.AddressInfo).port,
    close() {
      control.close();
      data.close();
      for (const s of waiting) s.destroy();
    },
  };
}

const base = { user: 'u', password: 'p', seconds: 0.5, timeoutSeconds: 2 };

describe('the C load generator (native/loadgen.c)', () => {
  beforeAll(async () => {
    await loadGenerator(); // built once with cc; a machine without one fails here, loudly
  }, 60_000);

  describe('against ftpd', () => {
    let root = '';
    let port = 0;
    let child: ReturnType<typeof spawn> | undefined;
    beforeAll(async () => {
      root = await mkdtemp(path.join(tmpdir(), 'bench-loadgen-'));
      await writeFile(path.join(root, 'f.bin'), Buffer.alloc(100_000, 3));
      port = 20000 + Math.floor(Math.random() * 5000);
      child = spawn(process.execPath, [CLI, '--port', String(port), '--root', root, '--user', 'u', '--password', 'p', '--pasv-range', `${port + 5000}-${port + 5050}`, '--log-level', 'warn'], { stdio: 'ignore' });
      await waitForGreeting(port, 15_000);
    }, 30_000);
    afterAll(async () => {
      child?.kill('SIGKILL');
      await rm(root, { recursive: true, force: true });
    });

    it('runs sessions of login + RETR + QUIT in parallel, checks each byte count, and times them', async () => {
      const got = await generateLoad({ ...base, mode: 'clients', port, concurrency: 5, retr: { name: 'f.bin', bytes: 100_000 } });
      expect(got.failed, got.firstError).toBe(0);
      expect(got.done).toBeGreaterThan(5);
      expect(got.doneInWindow).toBeLessThanOrEqual(got.done);
      expect(got.doneInWindow).toBeGreaterThan(0);
      expect(got.window).toBeCloseTo(0.5, 1);
      expect(got.p50).toBeGreaterThan(0);
      expect(got.p99).toBeGreaterThanOrEqual(got.p50);
      expect(got.cpuSeconds).toBeGreaterThanOrEqual(0);
    });

    it('a different size fails every session, saying what came', async () => {
      const got = await generateLoad({ ...base, mode: 'clients', port, concurrency: 2, retr: { name: 'f.bin', bytes: 99_999 } });
      expect(got.done).toBe(0);
      expect(got.failed).toBeGreaterThan(0);
      expect(got.firstError).toBe('RETR gave 100000 bytes');
    });

    it('logins stop at the session limit, every one counted', async () => {
      const got = await generateLoad({ ...base, mode: 'logins', port, concurrency: 3, seconds: 10, maxSessions: 20 });
      expect(got).toMatchObject({ done: 20, failed: 0, doneInWindow: 20 });
      expect(got.seconds).toBeLessThan(10);
    });
  });

  describe('against a scripted server', () => {
    it('reads multi-line replies and counts data discarded in the kernel', async () => {
      const server = await scriptedServer({ password: 'p', retrBytes: 3_000_000 });
      try {
        const got = await generateLoad({ ...base, mode: 'clients', port: server.port, concurrency: 1, retr: { name: 'x', bytes: 3_000_000 } });
        expect(got.failed, got.firstError).toBe(0);
        expect(got.done).toBeGreaterThan(0);
      } finally {
        server.close();
      }
    });

    it('a refused login fails with the reply that refused it', async () => {
      const server = await scriptedServer({ password: 'other', retrBytes: 0 });
      try {
        const got = await generateLoad({ ...base, mode: 'logins', port: server.port, concurrency: 1, seconds: 0.2 });
        expect(got.done).toBe(0);
        expect(got.failed).toBeGreaterThan(0);
        expect(got.firstError).toBe('after PASS: got 530 Login incorrect.');
      } finally {
        server.close();
      }
    });

    it('a server that accepts but never greets fails the session after the timeout, and the run still ends', async () => {
      const server = await scriptedServer({ password: 'p', retrBytes: 0, greet: false });
      try {
        const t0 = performance.now();
        const got = await generateLoad({ ...base, mode: 'logins', port: server.port, concurrency: 3, seconds: 0.2, timeoutSeconds: 0.3 });
        expect(performance.now() - t0).toBeLessThan(3000);
        expect(got.done).toBe(0);
        expect(got.failed).toBe(3);
        expect(got.firstError).toMatch(/^no progress within 0.3 s \(at greeting/);
      } finally {
        server.close();
      }
    });

    it('a server that closes right after the login fails the session, not the run (no SIGPIPE)', async () => {
      // Every reply at once, then gone: the first command written after gets a reset back, the next one EPIPE.
      const rude = net.createServer((socket) => {
        socket.on('error', () => undefined);
        socket.end('220 hi\r\n331 pw\r\n230 in\r\n200 ok\r\n', () => socket.destroy());
      });
      await new Promise<void>((resolve) => rude.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = rude.address() as net.AddressInfo;
        const got = await generateLoad({ ...base, mode: 'clients', port, concurrency: 2, seconds: 0.3, retr: { name: 'x', bytes: 1 } });
        expect(got.done).toBe(0);
        expect(got.failed).toBeGreaterThan(0);
      } finally {
        rude.close();
      }
    });

    it('replies split across reads, one byte at a time, and a multi-line reply closed by the bare code', async () => {
      const slow = net.createServer((socket) => {
        socket.on('error', () => undefined);
        const say = async (text: string): Promise<void> => {
          for (const ch of text) {
            if (socket.destroyed) return;
            socket.write(ch);
            await new Promise((r) => setImmediate(r));
          }
        };
        void say('220-a\r\n220\r\n');
        let buffered = '';
        socket.on('data', (chunk) => {
          buffered += chunk.toString();
          for (let i = buffered.indexOf('\r\n'); i !== -1; i = buffered.indexOf('\r\n')) {
            const verb = buffered.slice(0, i).split(' ')[0];
            buffered = buffered.slice(i + 2);
            if (verb === 'USER') void say('331 more\r\n');
            else if (verb === 'PASS') void say('230-one\r\n230-two\r\n230 three\r\n');
            else if (verb === 'QUIT') void say('221 bye\r\n').then(() => socket.end());
          }
        });
      });
      await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = slow.address() as net.AddressInfo;
        const got = await generateLoad({ ...base, mode: 'logins', port, concurrency: 2, seconds: 0.3 });
        expect(got.failed, got.firstError).toBe(0);
        expect(got.done).toBeGreaterThan(0);
      } finally {
        slow.close();
      }
    });

    it('sessions still running when the run must end are failed, not dropped', async () => {
      // Greets, logs in, then answers RETR with a trickle of data that never ends within the bound.
      const trickle = await scriptedServer({ password: 'p', retrBytes: 0, trickle: true });
      try {
        const t0 = performance.now();
        const got = await generateLoad({ ...base, mode: 'clients', port: trickle.port, concurrency: 2, seconds: 0.2, timeoutSeconds: 0.5, retr: { name: 'x', bytes: 10 } });
        expect(performance.now() - t0).toBeLessThan(5000);
        expect(got.done).toBe(0);
        expect(got.failed).toBe(2);
        expect(got.firstError).toBe('still running when the run had to end');
      } finally {
        trickle.close();
      }
    });

    it('a closed port fails with the connect error', async () => {
      const probe = net.createServer();
      await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
      const { port } = probe.address() as net.AddressInfo;
      await new Promise((resolve) => probe.close(resolve));
      const got = await generateLoad({ ...base, mode: 'logins', port, concurrency: 1, seconds: 0.2 });
      expect(got.done).toBe(0);
      expect(got.firstError).toMatch(/connect: Connection refused/);
    });
  });
});

import { Readable, Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryProvider, type DirEntry, type FsProvider } from '@ftp/vfs';
import { AccountUnavailableError, FtpServer, type FtpDriver, type ServerSettings } from '../src/index.js';
import { PASSWORD, RawClient, readAll, USER, writeAndClose } from './helpers.js';

// A server must outlive the driver plugged into it: an authenticator or a provider that hangs, throws or answers
// nonsense, and event listeners that throw, each end in a clear reply; never a crash, a hang, a shifted reply, or a
// download reported complete that was not.

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(driver: FtpDriver, settings: Partial<ServerSettings> = {}): Promise<{ server: FtpServer; port: number }> {
  const server = new FtpServer({ driver, settings: { failedLoginDelay: 0, ...settings } });
  const { port } = await server.listen(0, '127.0.0.1');
  cleanups.push(() => server.close());
  return { server, port };
}

async function connect(port: number, from?: string): Promise<RawClient> {
  const c = await RawClient.connect(port, '127.0.0.1', from);
  cleanups.push(() => c.close());
  expect((await c.next()).code).toBe(220);
  return c;
}

async function pass(c: RawClient, user: string, password: string, timeoutMs?: number): Promise<number> {
  expect((await c.cmd(`USER ${user}`)).code).toBe(331);
  return (await c.cmd(`PASS ${password}`, timeoutMs)).code;
}

const forever = new Promise<never>(() => {});

/** Logs in, sends a whole upload (STOR x) and closes its data connection: the client, for what comes next. */
async function uploadWhole(port: number): Promise<RawClient> {
  const c = await connect(port);
  expect(await pass(c, 'u', 'p')).toBe(230);
  const data = await c.passive();
  c.send('STOR x');
  expect((await c.next()).code).toBe(150);
  await writeAndClose(data, 'all of it');
  return c;
}

describe('an authenticator', () => {
  it('that never answers holds no login slot past its session: later logins, from its address and others, go through', async () => {
    const fs = new MemoryProvider();
    const { port } = await serve(
      { authenticate: (_s, user, password) => (user === 'hang' ? forever : user === USER && password === PASSWORD ? { fs } : null) },
      { loginTimeout: 1, maxConcurrentLogins: 1 },
    );
    const hung = await connect(port);
    const started = Date.now();
    expect(await pass(hung, 'hang', 'x', 5000)).toBe(421);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(await pass(await connect(port), USER, PASSWORD, 3000)).toBe(230);
    expect(await pass(await connect(port, '127.0.0.2'), USER, PASSWORD, 3000)).toBe(230);
  });

  it('keeps its login slots while it works, even when its client resets right after PASS, and a failure it finds counts', async () => {
    let running = 0;
    let most = 0;
    let calls = 0;
    const { port } = await serve(
      {
        authenticate: async () => {
          calls++;
          most = Math.max(most, ++running);
          await new Promise((r) => setTimeout(r, 150));
          running--;
          return null;
        },
      },
      { maxConcurrentLogins: 1, maxConcurrentLoginsPerIp: 1, maxLoginFailures: 3, failedLoginDelay: 0, banExempt: [] },
    );
    // Each client resets as soon as its own check has begun: a check that gave its slot back then would let the
    // next one run beside it.
    for (let i = 0; i < 3; i++) {
      const c = await RawClient.connect(port);
      c.socket.on('error', () => {});
      await c.next();
      c.send('USER u');
      await c.next();
      const before = calls;
      c.send('PASS wrong');
      for (let wait = 0; calls === before && wait < 100; wait++) await new Promise((r) => setTimeout(r, 10));
      expect(calls).toBe(before + 1);
      c.socket.resetAndDestroy();
    }
    await new Promise((r) => setTimeout(r, 400));
    expect(most).toBe(1);
    // Three wrong passwords found after their clients left: the address is banned (421 at connect).
    const late = await RawClient.connect(port);
    cleanups.push(() => late.close());
    expect((await late.next()).code).toBe(421);
  });

  it('that answers undefined, true, {} or { fs: null } refuses the login (530), and each refusal counts as a failure', async () => {
    for (const answer of [undefined, true, {}, { fs: null }, 42]) {
      const { server, port } = await serve({ authenticate: () => answer as never }, { maxLoginAttemptsPerSession: 2 });
      let failures = 0;
      server.on('login:failed', () => failures++);
      const c = await connect(port);
      expect(await pass(c, USER, PASSWORD, 3000), JSON.stringify(answer)).toBe(530);
      expect(await pass(c, USER, PASSWORD, 3000)).toBe(530);
      // The second failure was the last this connection may have.
      expect(await c.waitClosed(3000)).toBe(true);
      expect(failures).toBe(2);
    }
  });
});

describe('event listeners that throw', () => {
  it('are logged and change nothing: no crash, one reply per command, failures still counted', async () => {
    const fs = new MemoryProvider();
    await fs.writeFile('/a.txt', 'abc');
    const { server, port } = await serve(
      { authenticate: (_s, user, password) => (user === USER && password === PASSWORD ? { fs } : null) },
      { maxLoginAttemptsPerSession: 2 },
    );
    let heard = 0;
    for (const event of ['session:open', 'session:close', 'login', 'login:failed', 'transfer:start', 'transfer', 'reply:error'] as const) {
      server.on(event, () => {
        throw new Error(`listener of ${event}`);
      });
      // A listener after the one that threw still hears the event; an async one that rejects is caught too.
      server.on(event, async () => {
        heard++;
        throw new Error(`async listener of ${event}`);
      });
    }
    const c = await connect(port);
    expect(await pass(c, USER, 'wrong')).toBe(530);
    expect(await pass(c, USER, PASSWORD)).toBe(230);
    const socket = await c.passive();
    c.send('RETR a.txt');
    expect((await c.next()).code).toBe(150);
    expect((await readAll(socket)).toString()).toBe('abc');
    expect((await c.next()).code).toBe(226);
    // Each command gets its own reply: nothing left over from the transfer's event.
    expect((await c.cmd('SIZE /missing')).code).toBe(550);
    expect((await c.cmd('MKD /new')).code).toBe(257);
    expect((await c.cmd('NOOP')).code).toBe(200);
    // A client that just goes (session:close) does not end the process.
    c.close();
    const again = await connect(port);
    expect(await pass(again, USER, 'wrong')).toBe(530);
    // The failed login counted: the second one closes the connection.
    expect(await pass(again, USER, 'wrong')).toBe(530);
    expect(await again.waitClosed(3000)).toBe(true);
    expect(heard).toBeGreaterThanOrEqual(7);
  });
});

/** A memory filesystem whose uploads never finish storing (their commit never calls back). */
class CommitNeverEnds extends MemoryProvider {
  override async createWriteStream(): Promise<Writable> {
    return new Writable({
      write: (_chunk, _enc, cb) => cb(),
      final: () => {},
    }) as never;
  }
}

/** A memory filesystem whose uploads take `ms` to be stored once all has arrived, and say whether they were. */
class SlowCommit extends MemoryProvider {
  readonly outcomes: string[] = [];
  constructor(private readonly ms: number) {
    super();
  }
  override async createWriteStream(): Promise<Writable> {
    const outcomes = this.outcomes;
    let finished = false;
    return new Writable({
      write: (_chunk, _enc, cb) => cb(),
      final: (cb) => {
        setTimeout(() => {
          finished = true;
          cb();
        }, this.ms);
      },
      destroy(err, cb) {
        outcomes.push(err ? 'discarded' : finished ? 'stored' : 'closed unfinished');
        cb(err);
      },
    }) as never;
  }
}

describe('an upload that arrived whole, being stored when its session ends', () => {
  it('is stored all the same, whether the client resets the control connection or the server shuts down', async () => {
    for (const end of ['reset', 'shutdown'] as const) {
      const fs = new SlowCommit(300);
      const { server, port } = await serve({ authenticate: () => ({ fs }) });
      const c = await uploadWhole(port);
      await new Promise((r) => setTimeout(r, 50));
      if (end === 'reset') c.socket.resetAndDestroy();
      else void server.close(0);
      // Stored, so not "aborted": the shutdown says 421 alone (a transfer still moving bytes gets 426 first).
      if (end === 'shutdown') expect((await c.next(2000)).code).toBe(421);
      await new Promise((r) => setTimeout(r, 600));
      expect(fs.outcomes, end).toEqual(['stored']);
    }
  });
});

describe('an upload whose storage never finishes storing it', () => {
  it('ends with 451 at dataStallTimeout, not at the idle timeout', async () => {
    const fs = new CommitNeverEnds();
    const { port } = await serve({ authenticate: () => ({ fs }) }, { dataStallTimeout: 1 });
    const c = await uploadWhole(port);
    const final = await c.next(8000);
    expect(final.code).toBe(451);
    expect(final.text).toMatch(/did not finish storing/);
    expect((await c.cmd('NOOP')).code).toBe(200);
  });

  it('is ended by ABOR: 426, then 226', async () => {
    const fs = new CommitNeverEnds();
    const { port } = await serve({ authenticate: () => ({ fs }) });
    const c = await uploadWhole(port);
    await new Promise((r) => setTimeout(r, 100));
    c.send('ABOR');
    expect((await c.next(8000)).code).toBe(426);
    expect((await c.next(3000)).code).toBe(226);
  });
});

/** A filesystem whose listing of `/` holds names no folder can hold; records every path it is asked to list. */
class OddNames extends MemoryProvider {
  readonly listed: string[] = [];
  override async list(path: string): Promise<DirEntry[]> {
    this.listed.push(path);
    const entries = await super.list(path);
    if (path !== '/') return entries;
    const dir = await this.stat('/sub');
    return [...entries, { name: '..', stats: dir }, { name: '.', stats: dir }, { name: 'sub/../..', stats: dir }];
  }
}

describe('a provider whose listing holds ., .. or names with a slash', () => {
  it('LIST -R descends into real folders only: every path it lists is normalised', async () => {
    const fs = new OddNames();
    await fs.mkdir('/sub');
    await fs.writeFile('/sub/f', 'x');
    const { port } = await serve({ authenticate: () => ({ fs: fs as FsProvider }) });
    const c = await connect(port);
    expect(await pass(c, 'u', 'p')).toBe(230);
    const socket = await c.passive();
    c.send('LIST -R');
    expect((await c.next()).code).toBe(150);
    await readAll(socket);
    expect((await c.next()).code).toBe(226);
    expect(fs.listed).toContain('/sub');
    for (const path of fs.listed) expect(path.split('/'), path).not.toContain('..');
    for (const path of fs.listed) expect(path.split('/').slice(1), path).not.toContain('.');
  });
});

/** A filesystem whose downloads end early, or fail with an error that has no code, or are destroyed by it. */
class BrokenReads extends MemoryProvider {
  override async createReadStream(path: string): Promise<Readable> {
    const name = path.slice(1);
    if (name === 'short') return Readable.from([Buffer.alloc(1000, 1)]);
    if (name === 'codeless') {
      return new Readable({
        read() {
          this.destroy(new Error('the remote store went away'));
        },
      });
    }
    // Ten bytes, then destroyed at the next read: on a timer instead, a loaded machine let the stream push 10-byte
    // chunks for megabytes before the timer came, and the test timed out reading them.
    let pushed = false;
    const stream = new Readable({
      read() {
        if (pushed) return this.destroy();
        pushed = true;
        this.push(Buffer.alloc(10, 2));
      },
    });
    return stream;
  }
}

describe('a download that storage does not deliver whole', () => {
  async function retr(name: string): Promise<{ code: number; text: string; bytes: number }> {
    const fs = new BrokenReads();
    await fs.writeFile(`/${name}`, Buffer.alloc(200_000));
    const { port } = await serve({ authenticate: () => ({ fs }) });
    const c = await connect(port);
    expect(await pass(c, 'u', 'p')).toBe(230);
    expect((await c.cmd('TYPE I')).code).toBe(200);
    const socket = await c.passive();
    c.send(`RETR ${name}`);
    expect((await c.next()).code).toBe(150);
    const bytes = (await readAll(socket)).length;
    const final = await c.next(5000);
    expect((await c.cmd('NOOP')).code).toBe(200);
    return { ...final, bytes };
  }

  it('ended early (1,000 of 200,000 bytes, no error) is 451, not 226', async () => {
    const r = await retr('short');
    expect(r.bytes).toBe(1000);
    expect(r.code).toBe(451);
    expect(r.text).toMatch(/1000 of 200000 bytes/);
  });

  it('failing with an error without a code, or destroyed by storage, is storage’s failure (451), not the connection’s (426)', async () => {
    expect((await retr('codeless')).code).toBe(451);
    expect((await retr('destroyed')).code).toBe(451);
  });
});

/** Uploads that storage fails without an error code, or destroys itself. */
class BrokenWrites extends MemoryProvider {
  override async createWriteStream(path: string): Promise<Writable> {
    const destroyItself = path === '/destroyed';
    const stream: Writable = new Writable({
      write(_chunk, _enc, cb) {
        if (destroyItself) {
          cb();
          stream.destroy();
        } else cb(new Error('the remote store went away'));
      },
    });
    return stream as never;
  }
}

describe('an upload that storage fails without an error code', () => {
  it('is 451 (storage’s failure), and the session goes on', async () => {
    for (const name of ['codeless', 'destroyed']) {
      const fs = new BrokenWrites();
      const { port } = await serve({ authenticate: () => ({ fs }) });
      const c = await connect(port);
      expect(await pass(c, 'u', 'p')).toBe(230);
      const data = await c.passive();
      data.on('error', () => {});
      c.send(`STOR ${name}`);
      expect((await c.next()).code).toBe(150);
      data.write(Buffer.alloc(100_000));
      expect((await c.next(5000)).code, name).toBe(451);
      expect((await c.cmd('NOOP')).code).toBe(200);
    }
  });
});

describe('sizes and times a provider cannot have', () => {
  it('SIZE and MDTM answer 451 (storage’s error), never a size that is not digits or a 501 about the client’s syntax', async () => {
    class OddStats extends MemoryProvider {
      override async stat(path: string) {
        const st = await super.stat(path);
        if (path === '/nan') return Object.assign(Object.create(Object.getPrototypeOf(st)), st, { size: Number.NaN, mtimeMs: Number.NaN });
        if (path === '/negative') return Object.assign(Object.create(Object.getPrototypeOf(st)), st, { size: -5, mtimeMs: -1e15 });
        return st;
      }
    }
    const fs = new OddStats();
    await fs.writeFile('/nan', 'x');
    await fs.writeFile('/negative', 'x');
    const { port } = await serve({ authenticate: () => ({ fs }) });
    const c = await connect(port);
    expect(await pass(c, 'u', 'p')).toBe(230);
    for (const name of ['nan', 'negative']) {
      expect((await c.cmd(`SIZE ${name}`)).code, name).toBe(451);
      expect((await c.cmd(`MDTM ${name}`)).code, name).toBe(451);
    }
  });
});


describe('an account the driver cannot serve now (AccountUnavailableError)', () => {
  it('is told 530 with the driver\'s words, and counts no failed login: retrying with the right password bans no one', async () => {
    const fs = new MemoryProvider();
    const { port } = await serve(
      {
        authenticate: (_s, user, password) => {
          if (password !== PASSWORD) return null;
          if (user === 'moved') throw new AccountUnavailableError('Your files are being moved; try again in an hour.');
          return user === USER ? { fs } : null;
        },
      },
      { maxLoginFailures: 2, banExempt: [], failedLoginDelay: 0 },
    );
    for (let i = 0; i < 4; i++) {
      const c = await connect(port);
      expect((await c.cmd('USER moved')).code).toBe(331);
      expect(await c.cmd(`PASS ${PASSWORD}`)).toMatchObject({ code: 530, text: 'Your files are being moved; try again in an hour.' });
    }
    expect(await pass(await connect(port), USER, PASSWORD, 3000)).toBe(230);
  });
});

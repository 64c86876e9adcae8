import { Writable } from 'node:stream';
import { pino } from 'pino';
import { MemoryProvider, readOnly, type FsProvider } from '@ftp/vfs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FtpServer, MemoryBanStore, type FtpServerOptions, type Permissions, type ServerSettings } from '../src/index.js';
import { PASSWORD, RawClient, readAll, USER, writeAndClose } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function serve(settings: Partial<ServerSettings> = {}, extra: Partial<FtpServerOptions> = {}) {
  const fs = new MemoryProvider();
  const server = new FtpServer({
    // Loopback is exempt from bans by default (banExempt); these tests ban loopback addresses.
    settings: { failedLoginDelay: 0, banExempt: [], ...settings },
    driver: { authenticate: (_s, u, p) => (u === USER && p === PASSWORD ? { fs } : null) },
    ...extra,
  });
  const { port } = await server.listen(0, '127.0.0.1');
  cleanups.push(() => server.close());
  return { server, port, fs };
}

async function connect(port: number, localAddress?: string): Promise<RawClient> {
  const c = await RawClient.connect(port, '127.0.0.1', localAddress);
  cleanups.push(() => c.close());
  return c;
}

describe('failed logins', () => {
  it('a brute-force loop of 30 bad passwords ends in a ban, and the banned address gets 421 at connect', async () => {
    const { port } = await serve({ maxLoginFailures: 10, maxLoginAttemptsPerSession: 3 });
    let banned = false;
    let attempts = 0;
    for (let conn = 0; conn < 15 && !banned; conn++) {
      const c = await connect(port, '127.0.0.3');
      const greeting = await c.next();
      if (greeting.code === 421) {
        banned = true;
        break;
      }
      for (let i = 0; i < 3 && attempts < 30; i++) {
        if ((await c.cmd('USER root')).code !== 331) break;
        attempts++;
        const r = await c.cmd(`PASS guess${attempts}`);
        if (r.code === 421) {
          banned = true;
          break;
        }
        expect(r.code).toBe(530);
      }
      c.close();
    }
    expect(banned).toBe(true);
    expect(attempts).toBeLessThanOrEqual(10);
    const again = await connect(port, '127.0.0.3');
    expect((await again.next()).code).toBe(421);
    // Only that address: another one still logs in, even with the right password after the ban.
    const other = await connect(port, '127.0.0.4');
    await other.login();
  });

  // With a REIN between the failures too: REIN does not give a connection its failed logins back.
  it.each([false, true])('closes a connection after maxLoginAttemptsPerSession failures (REIN between them: %s)', async (rein) => {
    const { port } = await serve({ maxLoginAttemptsPerSession: 2, maxLoginFailures: 0 });
    const c = await connect(port);
    await c.next();
    await c.cmd('USER a');
    expect((await c.cmd('PASS b')).code).toBe(530);
    if (rein) expect((await c.cmd('REIN')).code).toBe(220);
    await c.cmd('USER a');
    expect((await c.cmd('PASS b')).code).toBe(530);
    expect(await c.waitClosed()).toBe(true);
  });

  it('answers each failure later than the one before', async () => {
    const { port } = await serve({ failedLoginDelay: 100, maxLoginFailures: 0, maxLoginAttemptsPerSession: 0 });
    const c = await connect(port);
    await c.next();
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      await c.cmd('USER a');
      const t0 = Date.now();
      expect((await c.cmd('PASS b')).code).toBe(530);
      times.push(Date.now() - t0);
    }
    expect(times[0]).toBeGreaterThanOrEqual(90);
    expect(times[1]).toBeGreaterThan(times[0]! + 50);
    expect(times[2]).toBeGreaterThan(times[1]! + 50);
  });

  it('loopback is exempt from bans by default (as fail2ban\'s ignoreip): 30 bad passwords from 127.0.0.1 ban nobody', async () => {
    const { port } = await serve({ banExempt: undefined, maxLoginFailures: 5, maxLoginAttemptsPerSession: 3 });
    for (let i = 0; i < 10; i++) {
      const c = await connect(port);
      expect((await c.next()).code).toBe(220);
      for (let j = 0; j < 3; j++) {
        await c.cmd(`USER ${USER}`);
        expect((await c.cmd('PASS wrong')).code).toBe(530);
      }
      // The per-connection limit still holds.
      expect(await c.waitClosed()).toBe(true);
    }
    const c = await connect(port);
    await c.login();
  });

  it('banExempt exempts the networks it names, and only those', async () => {
    const { port } = await serve({ banExempt: ['127.0.0.16/30'], maxLoginFailures: 2, maxLoginAttemptsPerSession: 0 });
    for (const address of ['127.0.0.17', '127.0.0.21']) {
      const c = await connect(port, address);
      expect((await c.next()).code).toBe(220);
      for (let j = 0; j < 2; j++) {
        await c.cmd(`USER ${USER}`);
        await c.cmd('PASS wrong');
      }
    }
    const exempt = await connect(port, '127.0.0.17');
    expect((await exempt.next()).code).toBe(220);
    const banned = await connect(port, '127.0.0.21');
    expect((await banned.next()).code).toBe(421);
    expect(() => new FtpServer({ settings: { banExempt: ['10.0.0.0/33'] }, driver: { authenticate: () => null } })).toThrow(/bad prefix/);
    expect(() => new FtpServer({ settings: { banExempt: ['localhost'] }, driver: { authenticate: () => null } })).toThrow(/not a network/);
  });

  it("the memory store's failure window runs on the monotonic clock: a wall clock set back does not keep old failures", () => {
    const store = new MemoryBanStore();
    let mono = 1_000_000;
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => mono);
    const wall = vi.spyOn(Date, 'now').mockImplementation(() => 1_800_000_000_000);
    try {
      expect(store.addFailure('a', 60_000)).toBe(1);
      expect(store.addFailure('a', 60_000)).toBe(2);
      // An hour back on the wall clock, a minute and more on the monotonic one: the two old failures are out.
      wall.mockImplementation(() => 1_800_000_000_000 - 3_600_000);
      mono += 60_001;
      expect(store.addFailure('a', 60_000)).toBe(1);
    } finally {
      clock.mockRestore();
      wall.mockRestore();
    }
  });

  it('a shared ban store bans across servers', async () => {
    const store = new MemoryBanStore();
    const a = await serve({ maxLoginFailures: 2, maxLoginAttemptsPerSession: 0 }, { banStore: store });
    const b = await serve({}, { banStore: store });
    const c = await connect(a.port, '127.0.0.5');
    await c.next();
    await c.cmd('USER x');
    await c.cmd('PASS y');
    await c.cmd('USER x');
    expect((await c.cmd('PASS y')).code).toBe(421);
    const d = await connect(b.port, '127.0.0.5');
    expect((await d.next()).code).toBe(421);
  });
});

describe('password checks at once (maxConcurrentLogins, maxConcurrentLoginsPerIp)', () => {
  /** A server whose checks take `ms` and count how many run at once; the right password is PASSWORD. */
  async function slowChecks(ms: number, settings: Partial<ServerSettings>) {
    const stats = { running: 0, peak: 0, checks: 0 };
    const fs = new MemoryProvider();
    const server = new FtpServer({
      settings: { failedLoginDelay: 0, banExempt: [], ...settings },
      driver: {
        authenticate: async (_s, u, p) => {
          stats.checks++;
          stats.peak = Math.max(stats.peak, ++stats.running);
          await new Promise((r) => setTimeout(r, ms));
          stats.running--;
          return u === USER && p === PASSWORD ? { fs } : null;
        },
      },
    });
    const { port } = await server.listen(0, '127.0.0.1');
    cleanups.push(() => server.close());
    const ctx = (server as unknown as { ctx: { loginTurns: { waiting: number }; loginSlots: { waiting: number } } }).ctx;
    return { port, stats, ctx };
  }

  /** Clients from `addresses`, greeted, each with `USER alice` answered and `PASS wrong` sent (not yet answered). */
  async function wrongPasswords(port: number, addresses: string[]): Promise<RawClient[]> {
    const clients = await Promise.all(addresses.map((a) => connect(port, a)));
    await Promise.all(clients.map((c) => c.next()));
    await Promise.all(clients.map((c) => c.cmd('USER alice')));
    for (const c of clients) c.socket.write('PASS wrong\r\n');
    return clients;
  }

  /** How long (ms) a login with the right password from `address` takes, from its PASS to its 230. */
  async function loginMs(port: number, address: string): Promise<number> {
    const victim = await connect(port, address);
    await victim.next();
    await victim.cmd('USER alice');
    const started = performance.now();
    expect((await victim.cmd(`PASS ${PASSWORD}`, 20_000)).code).toBe(230);
    return performance.now() - started;
  }

  it('guesses sent in parallel from one address are checked one at a time, and no more than maxLoginFailures of them', async () => {
    const { port, stats } = await slowChecks(20, { maxLoginFailures: 10, maxLoginAttemptsPerSession: 0 });
    const clients = await Promise.all(Array.from({ length: 40 }, () => connect(port, '127.0.0.21')));
    await Promise.all(clients.map((c) => c.next()));
    const replies = await Promise.all(
      clients.map(async (c, i) => {
        await c.cmd('USER alice');
        return (await c.cmd(`PASS guess${i}`, 20_000)).code;
      }),
    );
    expect(stats.peak).toBe(1);
    expect(stats.checks).toBe(10);
    expect(replies.filter((code) => code === 530)).toHaveLength(9);
    expect(replies.filter((code) => code === 421)).toHaveLength(31);
    // The right password, after them, is never checked: the ban fell after ten wrong ones.
    const late = await connect(port, '127.0.0.21');
    expect((await late.next()).code).toBe(421);
    expect(stats.checks).toBe(10);
  });

  it("floods of checks from two addresses delay a third address's login by one check each, not by the floods", async () => {
    const { port, stats } = await slowChecks(40, { maxConcurrentLogins: 1, maxConcurrentLoginsPerIp: 1, maxLoginFailures: 0, maxLoginAttemptsPerSession: 0 });
    const flood = await wrongPasswords(port, Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? '127.0.0.22' : '127.0.0.25')));
    await new Promise((r) => setTimeout(r, 100));
    // One check per flooding address at most before it (2 × 40 ms), and its own: the floods take 40 × 40 ms.
    expect(await loginMs(port, '127.0.0.23')).toBeLessThan(600);
    expect(stats.peak).toBe(1);
    for (const c of flood) c.close();
  });

  it("a failed login's delay holds up its own address only, not another's login", async () => {
    // Eight addresses each with a failed login in its delay (300 ms here): with the server's check slots held
    // through the delays, a ninth address waited for them (8 × 300 ms / 2 slots).
    const { port } = await slowChecks(0, { failedLoginDelay: 300, maxLoginFailures: 0, maxLoginAttemptsPerSession: 0 });
    const guessers = await wrongPasswords(port, Array.from({ length: 8 }, (_, i) => `127.0.0.${40 + i}`));
    await new Promise((r) => setTimeout(r, 50));
    expect(await loginMs(port, '127.0.0.49')).toBeLessThan(250);
    expect((await Promise.all(guessers.map((c) => c.next()))).map((r) => r.code)).toEqual(Array(8).fill(530));
  });

  it('a client that leaves while it waits for its turn or a check slot leaves the line at once', async () => {
    // One check of 800 ms holds the address's turn and the server's only slot; the others wait behind it.
    const { port, stats, ctx } = await slowChecks(800, { maxConcurrentLogins: 1, maxLoginFailures: 0, maxLoginAttemptsPerSession: 0 });
    const holder = await wrongPasswords(port, ['127.0.0.26']);
    await new Promise((r) => setTimeout(r, 50));
    const sameAddress = await wrongPasswords(port, Array(10).fill('127.0.0.26'));
    const otherAddresses = await wrongPasswords(port, Array.from({ length: 5 }, (_, i) => `127.0.0.${30 + i}`));
    await new Promise((r) => setTimeout(r, 100));
    expect([ctx.loginTurns.waiting, ctx.loginSlots.waiting]).toEqual([10, 5]);
    for (const c of [...sameAddress, ...otherAddresses]) c.socket.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 100));
    // Before the holder's check ends: nobody left in line (a closed session was kept until its turn came).
    expect(stats.running).toBe(1);
    expect([ctx.loginTurns.waiting, ctx.loginSlots.waiting]).toEqual([0, 0]);
    expect((await holder[0]!.next(5000)).code).toBe(530);
    expect(stats.checks).toBe(1);
  });

  it('a client that leaves while its check waits costs no check', async () => {
    const { port, stats } = await slowChecks(100, { maxLoginFailures: 0, maxLoginAttemptsPerSession: 0 });
    const clients = await wrongPasswords(port, Array(10).fill('127.0.0.24'));
    await new Promise((r) => setTimeout(r, 30));
    // Reset, not closed: a client that only half-closes may still read its replies, and is answered.
    for (const c of clients) c.socket.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 400));
    expect(stats.checks).toBeLessThanOrEqual(2);
  });
});

describe('ban stores that answer later or fail', () => {
  /** A store answering through promises, as a shared (Redis) store does. */
  function asyncStore(banned: Set<string>) {
    return {
      addFailure: async () => 1,
      ban: async (key: string) => void banned.add(key),
      isBanned: async (key: string) => banned.has(key),
    };
  }

  it('an address an async store bans gets 421 at connect, and at PASS when the ban came while connected', async () => {
    const banned = new Set<string>();
    const { port } = await serve({}, { banStore: asyncStore(banned) });
    const open = await connect(port, '127.0.0.6');
    expect((await open.next()).code).toBe(220);
    banned.add('127.0.0.6');
    const refused = await connect(port, '127.0.0.6');
    expect((await refused.next()).code).toBe(421);
    expect((await open.cmd(`USER ${USER}`)).code).toBe(331);
    expect((await open.cmd(`PASS ${PASSWORD}`)).code).toBe(421);
    // Others are not touched.
    const other = await connect(port, '127.0.0.7');
    await other.login();
  });

  it('a store that throws or rejects locks nobody out', async () => {
    const broken = (fail: () => never | Promise<never>) => ({ addFailure: fail, ban: fail, isBanned: fail });
    const throwing = await serve({ maxLoginFailures: 3 }, { banStore: broken(() => { throw new Error('store down'); }) });
    const rejecting = await serve({ maxLoginFailures: 3 }, { banStore: broken(() => Promise.reject(new Error('store down'))) });
    for (const { port } of [throwing, rejecting]) {
      const c = await connect(port);
      await c.next();
      await c.cmd('USER x');
      expect((await c.cmd('PASS wrong')).code).toBe(530);
      const d = await connect(port);
      await d.login();
    }
  });
});

describe('permissions', () => {
  it('denied operations get 550 and touch nothing', async () => {
    const fs = new MemoryProvider();
    await fs.mkdir('/dir');
    const server = new FtpServer({
      settings: { failedLoginDelay: 0 },
      driver: {
        authenticate: () => ({ fs, permissions: { write: false, append: false, delete: false, rename: false, mkdir: false, rmdir: false } }),
      },
    });
    const { port } = await server.listen(0, '127.0.0.1');
    cleanups.push(() => server.close());
    const w = await fs.createWriteStream('/keep.txt');
    await new Promise<void>((r) => w.end('keep', () => r()));
    const c = await connect(port);
    await c.login();
    const socket = await c.passive();
    expect((await c.cmd('STOR new.txt')).code).toBe(553); // RFC 959 §5.4: STOR has 553, not 550
    expect((await c.cmd('APPE keep.txt')).code).toBe(550);
    expect((await c.cmd('DELE keep.txt')).code).toBe(550);
    expect((await c.cmd('RNFR keep.txt')).code).toBe(550);
    expect((await c.cmd('MKD other')).code).toBe(550);
    expect((await c.cmd('RMD dir')).code).toBe(550);
    c.send('RETR keep.txt');
    expect((await c.next()).code).toBe(150);
    expect((await readAll(socket)).toString()).toBe('keep');
    expect((await c.next()).code).toBe(226);
    expect((await fs.stat('/keep.txt')).size).toBe(4);
    await expect(fs.stat('/new.txt')).rejects.toThrow();
    await expect(fs.stat('/other')).rejects.toThrow();
    expect((await fs.stat('/dir')).isDirectory()).toBe(true);
  });

  it('the MLSx perm fact says what this user may do (RFC 3659 §7.5.5), not what the filesystem allows', async () => {
    const fs = new MemoryProvider();
    await fs.mkdir('/dir');
    const w = await fs.createWriteStream('/f.txt');
    await new Promise<void>((r) => w.end('x', () => r()));
    // A link that cannot be followed is listed as a link: it can be removed or renamed, never read or written.
    await fs.symlink('/missing', '/link');
    const perms: Array<Record<string, boolean>> = [
      {},
      { append: false, delete: false, rename: false, rmdir: false, site: false },
      { read: false, write: false, mkdir: false },
    ];
    const facts: string[] = [];
    for (const permissions of perms) {
      const server = new FtpServer({ settings: { failedLoginDelay: 0 }, driver: { authenticate: () => ({ fs, permissions }) } });
      const { port } = await server.listen(0, '127.0.0.1');
      cleanups.push(() => server.close());
      const c = await connect(port);
      await c.login();
      for (const name of ['dir', 'f.txt', 'link']) {
        const r = await c.cmd(`MLST ${name}`);
        facts.push(/perm=([a-z]*);/.exec(r.lines[1] ?? '')?.[1] ?? 'none');
      }
      // And a listing says the same of the link as MLST.
      const linkLine = /^type=OS\.unix=symlink;.*perm=([a-z]*);.* link\r$/m.exec((await c.retrieve('MLSD')).toString());
      expect(linkLine?.[1]).toBe(facts.at(-1));
    }
    expect(facts).toEqual(['cdeflmp', 'adfrw', 'df', 'celm', 'rw', '', 'deflp', 'adf', 'df']);
  });
  it('FEAT offers MFMT, MFCT and COMB only to a user who may use them, on storage that can change (ftpd read-only users, anonymous)', async () => {
    const fs = new MemoryProvider();
    const w = await fs.createWriteStream('/f.txt');
    await new Promise<void>((r) => w.end('x', () => r()));
    const none = { write: false, append: false, delete: false, rename: false, mkdir: false, rmdir: false, site: false };
    const cases: Array<[login: { fs: FsProvider; permissions?: Partial<Permissions> }, offered: string[]]> = [
      [{ fs }, ['COMB', 'MFCT', 'MFMT']],
      // ftpd's read-only user: nothing granted but read, and a read-only view.
      [{ fs: readOnly(fs), permissions: none }, []],
      // Granted, but over a read-only view: every change would fail.
      [{ fs: readOnly(fs) }, []],
      [{ fs, permissions: { site: false } }, ['COMB']],
      // COMB writes the target and removes the parts.
      [{ fs, permissions: { delete: false } }, ['MFCT', 'MFMT']],
      [{ fs, permissions: { write: false } }, ['MFCT', 'MFMT']],
    ];
    for (const [login, offered] of cases) {
      const server = new FtpServer({ settings: { failedLoginDelay: 0 }, driver: { authenticate: () => login } });
      const { port } = await server.listen(0, '127.0.0.1');
      cleanups.push(() => server.close());
      const c = await connect(port);
      await c.login();
      const feat = (await c.cmd('FEAT')).lines.map((l) => l.trim());
      expect(['COMB', 'MFCT', 'MFMT'].filter((f) => feat.includes(f)), JSON.stringify(login.permissions ?? 'all')).toEqual(offered);
      // What FEAT leaves out is refused, whatever HELP says it recognizes.
      if (!offered.includes('MFMT')) expect((await c.cmd('MFMT 20200102030405 f.txt')).code).toBe(550);
      if (!offered.includes('COMB')) expect((await c.cmd('COMB t.txt f.txt')).code).toBe(550);
      const help = (await c.cmd('HELP')).text;
      expect(help).toMatch(/\bMFMT\b/);
      expect(help).toMatch(/\bCOMB\b/);
    }
    // Anonymous sessions: the server's read-only view, no permission to change anything.
    const { port } = await serve({}, { anonymous: { fs } });
    const c = await connect(port);
    await c.next();
    await c.cmd('USER anonymous');
    expect((await c.cmd('PASS me@example.com')).code).toBe(230);
    const feat = (await c.cmd('FEAT')).lines.map((l) => l.trim());
    expect(feat.filter((f) => ['COMB', 'MFCT', 'MFMT'].includes(f))).toEqual([]);
    expect((await c.cmd('MFMT 20200102030405 f.txt')).code).toBe(550);
    expect((await c.cmd('COMB t.txt f.txt')).code).toBe(550);
  });
});

describe('anonymous access', () => {
  it('is read-only inside its own root, and off unless configured', async () => {
    const pub = new MemoryProvider();
    const w = await pub.createWriteStream('/readme.txt');
    await new Promise<void>((r) => w.end('public', () => r()));
    const { port, fs } = await serve({}, { anonymous: { fs: pub } });
    const c = await connect(port);
    await c.next();
    expect((await c.cmd('USER anonymous')).code).toBe(331);
    expect((await c.cmd('PASS me@example.com')).code).toBe(230);
    const socket = await c.passive();
    c.send('RETR readme.txt');
    expect((await c.next()).code).toBe(150);
    expect((await readAll(socket)).toString()).toBe('public');
    expect((await c.next()).code).toBe(226);
    const up = await c.passive();
    expect((await c.cmd('STOR evil.txt')).code).toBe(553);
    up.destroy();
    expect((await c.cmd('MKD x')).code).toBe(550);
    expect((await c.cmd('DELE readme.txt')).code).toBe(550);
    expect((await c.cmd('CWD ../../..')).code).toBe(250);
    expect((await c.cmd('PWD')).text).toMatch(/^"\/"/);
    await expect(pub.stat('/evil.txt')).rejects.toThrow();
    // The users' filesystem is out of reach.
    await fs.mkdir('/private');
    expect((await c.cmd('CWD /private')).code).toBe(550);

    const { port: closedPort } = await serve();
    const d = await connect(closedPort);
    await d.next();
    await d.cmd('USER anonymous');
    expect((await d.cmd('PASS me@example.com')).code).toBe(530);
  });
});

describe('paths and logs', () => {
  it('refuses NUL in paths and never leaves the root', async () => {
    const { port, fs } = await serve();
    await fs.mkdir('/home');
    const c = await connect(port);
    await c.login();
    expect((await c.cmd('CWD home\0/..')).code).toBe(501);
    for (const path of ['../../../../etc', '/../..', 'home/../../..', '%2e%2e/%2e%2e']) {
      const r = await c.cmd(`CWD ${path}`);
      if (r.code === 250) expect((await c.cmd('PWD')).text).toMatch(/^"\/"/);
    }
  });

  it('never logs a password, at any level', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'trace' }, new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(chunk.toString()), cb()) }));
    const { port } = await serve({}, { logger });
    const c = await connect(port);
    await c.next();
    await c.cmd(`USER ${USER}`);
    await c.cmd('PASS wrong-Secret-123');
    await c.cmd(`USER ${USER}`);
    await c.cmd(`PASS ${PASSWORD}`);
    await c.cmd('NOOP');
    const all = lines.join('');
    expect(all).toContain('PASS ****');
    expect(all).not.toContain('wrong-Secret-123');
    expect(all).not.toContain(PASSWORD);
  });
});

it('an upload to a path whose directory is missing is answered 553 and the session goes on', async () => {
  const { port } = await serve();
  const c = await connect(port);
  await c.login();
  const socket = await c.passive();
  expect((await c.cmd('STOR missing/dir/f.txt')).code).toBe(553);
  expect((await c.cmd('STOU missing/dir/f.txt')).code).toBe(553);
  expect((await c.cmd('NOOP')).code).toBe(200);
  socket.destroy();
});

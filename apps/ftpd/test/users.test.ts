import { MemoryProvider, type FsProvider } from '@ftp/vfs';
import { describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { decoyCostOf, hashPassword } from '../src/passwords.js';
import { accountsDriver, HOME_RECHECK_MS, homeMaker } from '../src/users.js';

/** A logger for drivers whose errors these tests do not look at. */
const quiet = { error: () => {} };

describe("a user's homes", () => {
  it('are made at a login; a backend that failed (down at the first login) is asked again at the next one, then no more', async () => {
    const memory = new MemoryProvider();
    const asked: string[] = [];
    let down = true;
    const backend = Object.assign(Object.create(memory) as FsProvider, {
      mkdir: async (path: string, options?: { recursive?: boolean }) => {
        asked.push(path);
        if (down) throw Object.assign(new Error('EIO: backend unreachable'), { code: 'EIO' });
        return memory.mkdir(path, options);
      },
    });
    const ensure = homeMaker(new Map([['b', backend]]), [{ backend: 'b', home: '/alice' }]);
    await ensure(); // the login goes on: the commands will say what is wrong
    down = false;
    await ensure();
    expect((await memory.stat('/alice')).isDirectory()).toBe(true);
    await ensure();
    expect(asked).toEqual(['/alice', '/alice']);
  });

  it('a home removed while ftpd runs is made again at a login once the last check is HOME_RECHECK_MS old, not at every login', async () => {
    const memory = new MemoryProvider();
    const asked: string[] = [];
    const backend = Object.assign(Object.create(memory) as FsProvider, {
      mkdir: async (path: string, options?: { recursive?: boolean }) => {
        asked.push(path);
        return memory.mkdir(path, options);
      },
    });
    let now = 1000;
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => now);
    try {
      const ensure = homeMaker(new Map([['b', backend]]), [{ backend: 'b', home: '/carol' }]);
      await ensure();
      await memory.rmdir('/carol');
      now += HOME_RECHECK_MS - 1;
      await ensure();
      expect(asked).toEqual(['/carol']);
      now += 1;
      await ensure();
      expect((await memory.stat('/carol')).isDirectory()).toBe(true);
      await ensure();
      expect(asked).toEqual(['/carol', '/carol']);
    } finally {
      clock.mockRestore();
    }
  });

  it('a backend that refuses for good (read-only) is not asked again at every login', async () => {
    const asked: string[] = [];
    const backend = Object.assign(Object.create(new MemoryProvider()) as FsProvider, {
      mkdir: async (path: string) => {
        asked.push(path);
        throw Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' });
      },
    });
    const ensure = homeMaker(new Map([['b', backend]]), [{ backend: 'b', home: '/bob' }]);
    for (let i = 0; i < 3; i++) await ensure();
    expect(asked).toEqual(['/bob']);
  });
});

describe('a home that is a file (or lies under one)', () => {
  /** alice's home is a file, bob's mount lies under it; carol's home is a folder. */
  async function driverOverAFile() {
    const memory = new MemoryProvider();
    await memory.writeFile('/afile', 'x');
    const hash = await hashPassword('pw', { ln: 10, r: 8, p: 1 });
    const config = parseConfig(
      [
        'backends: { m: { type: memory } }',
        'users:',
        `  - { name: alice, passwordHash: "${hash}", backend: m, home: /afile }`,
        `  - { name: bob, passwordHash: "${hash}", backend: m, home: /bob, mounts: { /more: { backend: m, home: /afile/more } } }`,
        `  - { name: carol, passwordHash: "${hash}", backend: m, home: /carol }`,
        '',
      ].join('\n'),
      'homes.yaml',
      {},
    );
    const errors: Array<{ fields: unknown; message: string }> = [];
    const logger = { error: (fields: unknown, message: string) => void errors.push({ fields, message }) };
    const driver = accountsDriver(config, new Map([['m', memory]]), logger);
    return { memory, driver, errors, session: {} as Parameters<typeof driver.authenticate>[0] };
  }

  it('refuses the login (530, counting no failed login) and logs an error naming the user and the home, instead of serving a file as /', async () => {
    // The login succeeded: LIST then showed one entry named /, and STOR answered 551 Not a directory, nothing logged.
    const { driver, errors, session } = await driverOverAFile();
    await expect(driver.authenticate(session, 'alice', 'pw')).rejects.toMatchObject({ name: 'AccountUnavailableError' });
    await expect(driver.authenticate(session, 'bob', 'pw')).rejects.toMatchObject({ name: 'AccountUnavailableError' });
    // A wrong password is still a wrong password (checked first).
    expect(await driver.authenticate(session, 'alice', 'wrong')).toBeNull();
    expect(await driver.authenticate(session, 'carol', 'pw')).not.toBeNull();
    expect(errors.map((e) => e.message)).toEqual([
      'login refused: user "alice": home /afile on backend "m" is not a folder',
      'login refused: user "bob": home /afile/more on backend "m" is not a folder',
    ]);
  });

  it('lets the user in at the next login once the file is gone (the home is then made)', async () => {
    const { memory, driver, session } = await driverOverAFile();
    await expect(driver.authenticate(session, 'alice', 'pw')).rejects.toMatchObject({ name: 'AccountUnavailableError' });
    await memory.unlink('/afile');
    expect(await driver.authenticate(session, 'alice', 'pw')).not.toBeNull();
    expect((await memory.stat('/afile')).isDirectory()).toBe(true);
  });
});

describe('an empty password', () => {
  it('never logs a configured user in, even one whose hash (made elsewhere) is of the empty password', async () => {
    // `ftpd hash-password` refuses an empty password; a hash of one made with hashPassword('') let a bare PASS in.
    const empty = await hashPassword('', { ln: 10, r: 8, p: 1 });
    const config = parseConfig(`backends: { m: { type: memory } }\nusers: [{ name: alice, passwordHash: "${empty}", backend: m }]\n`, 'empty.yaml', {});
    const { authenticate } = accountsDriver(config, new Map([['m', new MemoryProvider()]]), quiet);
    expect(await authenticate({} as Parameters<typeof authenticate>[0], 'alice', '')).toBeNull();
  });
});

describe('password checks of unknown users', () => {
  /** Median ms of `n` calls of `f`. */
  async function medianMs(n: number, f: () => unknown): Promise<number> {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await f();
      times.push(performance.now() - t0);
    }
    return times.sort((a, b) => a - b)[n >> 1]!;
  }

  it("take the users' own scrypt cost, not the default: the time of an answer does not tell which names exist", async () => {
    // Hashes made at a cost far below the default (2^10 against 2^15: ~1 ms against ~50–100 ms a check).
    const cheap = await hashPassword('right', { ln: 10, r: 8, p: 1 });
    const config = parseConfig(
      ['backends: { m: { type: memory } }', `users: [{ name: alice, passwordHash: "${cheap}", backend: m }, { name: bob, passwordHash: "${cheap}", backend: m }]`, ''].join('\n'),
      'users.yaml',
      {},
    );
    const { authenticate } = accountsDriver(config, new Map([['m', new MemoryProvider()]]), quiet);
    const session = {} as Parameters<typeof authenticate>[0];
    expect(await authenticate(session, 'alice', 'right')).not.toBeNull();
    expect(await authenticate(session, 'nobody', 'right')).toBeNull();
    const known = await medianMs(5, () => authenticate(session, 'alice', 'wrong'));
    const unknown = await medianMs(5, () => authenticate(session, 'nobody', 'wrong'));
    // At the default cost the unknown name took 10–50 times longer than the known one.
    expect(unknown).toBeLessThan(Math.max(5 * known, 20));
    expect(decoyCostOf([])).toEqual({ ln: 15, r: 8, p: 1 });
    expect(decoyCostOf([{ ln: 10, r: 8, p: 1 }, { ln: 12, r: 8, p: 1 }, { ln: 12, r: 8, p: 1 }])).toEqual({ ln: 12, r: 8, p: 1 });
  });
});

describe('users replaced at a reload (SIGHUP)', () => {
  it('an unchanged user keeps their login (view and limiters shared with open sessions); a changed one keeps the parts that did not change', async () => {
    const [one, two] = [await hashPassword('one', { ln: 10, r: 8, p: 1 }), await hashPassword('two', { ln: 10, r: 8, p: 1 })];
    const users = (bob: { hash: string; rate: number; home: string }): string =>
      [
        'backends: { m: { type: memory } }',
        'users:',
        `  - { name: alice, passwordHash: "${one}", backend: m, downloadRate: 1000, quota: 5000 }`,
        `  - { name: bob, passwordHash: "${bob.hash}", backend: m, downloadRate: ${bob.rate}, uploadRate: 300, home: ${bob.home} }`,
        '',
      ].join('\n');
    const config = (bob: { hash: string; rate: number; home: string }) => parseConfig(users(bob), 'users.yaml', {});
    const driver = accountsDriver(config({ hash: one, rate: 500, home: '/bob' }), new Map([['m', new MemoryProvider()]]), quiet);
    const session = {} as Parameters<typeof driver.authenticate>[0];
    const login = async (name: string, password: string) => (await driver.authenticate(session, name, password))!;
    const alice = await login('alice', 'one');
    const bob = await login('bob', 'one');

    driver.replaceUsers(config({ hash: two, rate: 500, home: '/bob' }).users);
    expect(await login('alice', 'one')).toBe(alice);
    expect(await driver.authenticate(session, 'bob', 'one')).toBeNull();
    const rehashed = await login('bob', 'two');
    expect(rehashed).not.toBe(bob);
    expect(rehashed.fs).toBe(bob.fs);
    expect(rehashed.rateLimits!.download).toBe(bob.rateLimits!.download);

    driver.replaceUsers(config({ hash: two, rate: 800, home: '/elsewhere' }).users);
    const moved = await login('bob', 'two');
    expect(moved.fs).not.toBe(bob.fs);
    expect(moved.rateLimits!.download).not.toBe(bob.rateLimits!.download);
    expect(moved.rateLimits!.download!.rate).toBe(800);
    expect(moved.rateLimits!.upload).toBe(bob.rateLimits!.upload);
    expect(await login('alice', 'one')).toBe(alice);

    driver.replaceUsers([]);
    expect(await driver.authenticate(session, 'alice', 'one')).toBeNull();
  });

  it('a login whose password was being checked when the users changed gets the users as they are now', async () => {
    const [one, two] = [await hashPassword('one', { ln: 10, r: 8, p: 1 }), await hashPassword('two', { ln: 10, r: 8, p: 1 })];
    const config = (lines: string[]) => parseConfig(['backends: { m: { type: memory } }', 'users:', ...lines, ''].join('\n'), 'users.yaml', {});
    const alice = `  - { name: alice, passwordHash: "${one}", backend: m }`;
    const driver = accountsDriver(config([alice, `  - { name: bob, passwordHash: "${one}", backend: m }`]), new Map([['m', new MemoryProvider()]]), quiet);
    const session = {} as Parameters<typeof driver.authenticate>[0];
    // The checks start, then bob is removed and alice's password changed (revoked), before they end.
    const bob = driver.authenticate(session, 'bob', 'one');
    const aliceOld = driver.authenticate(session, 'alice', 'one');
    driver.replaceUsers(config([`  - { name: alice, passwordHash: "${two}", backend: m, downloadRate: 100 }`]).users);
    expect(await bob).toBeNull();
    expect(await aliceOld).toBeNull();
    // A check under the old users that the change does not concern gets the account as it is now.
    const carolHash = `  - { name: carol, passwordHash: "${one}", backend: m }`;
    const again = accountsDriver(config([carolHash]), new Map([['m', new MemoryProvider()]]), quiet);
    const carol = again.authenticate(session, 'carol', 'one');
    again.replaceUsers(config([`  - { name: carol, passwordHash: "${one}", backend: m, downloadRate: 100 }`]).users);
    expect((await carol)?.rateLimits?.download?.rate).toBe(100);
  });
});

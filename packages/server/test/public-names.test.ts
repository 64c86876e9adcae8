import { afterEach, describe, expect, it, vi } from 'vitest';
import { parsePasvReply } from '@ftp/protocol';
import { isHostName, LOOKUP_TIMEOUT_MS, PublicNames } from '../src/data/public-names.js';
import { FtpServer } from '../src/index.js';
import { RawClient, startServer } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('isHostName', () => {
  it('takes DNS names and refuses addresses and malformed names', () => {
    for (const name of ['localhost', 'ftp.example.com', 'my-home.dyndns.org', 'a.b-c.d9', 'example.com.']) expect(isHostName(name), name).toBe(true);
    for (const name of ['', '1.2.3.4', '10.0.0', '0x7f000001', '::1', '-bad.com', 'bad-.com', 'a..b', 'sp ace.com', 'x'.repeat(64) + '.com', 'é.com']) {
      expect(isHostName(name), name).toBe(false);
    }
  });
});

describe('PublicNames', () => {
  it('looks a name up once, answers from its cache, and after the TTL looks it up again while the last address answers', async () => {
    let now = 0;
    const answers = ['198.51.100.1', '198.51.100.2'];
    const asked: string[] = [];
    const names = new PublicNames(undefined, async (name) => (asked.push(name), answers.shift()!), 60_000, () => now);
    expect(await names.address('home.example')).toBe('198.51.100.1');
    expect(await names.address('home.example')).toBe('198.51.100.1');
    expect(asked).toHaveLength(1);
    now = 60_000;
    // Due again: the stale address now, the new one once the lookup is back.
    expect(await names.address('home.example')).toBe('198.51.100.1');
    await new Promise((r) => setImmediate(r));
    expect(await names.address('home.example')).toBe('198.51.100.2');
    expect(asked).toHaveLength(2);
  });

  it('keeps the last address when a later lookup fails (and says so), and fails only a name that never resolved', async () => {
    let now = 0;
    let fail = false;
    const failures: string[] = [];
    const names = new PublicNames((name) => failures.push(name), async (name) => {
      if (fail || name === 'never.example') throw new Error('ENOTFOUND');
      return '203.0.113.9';
    }, 1000, () => now);
    await expect(names.address('never.example')).rejects.toThrow('ENOTFOUND');
    expect(await names.address('ok.example')).toBe('203.0.113.9');
    fail = true;
    now = 5000;
    expect(await names.address('ok.example')).toBe('203.0.113.9');
    await new Promise((r) => setImmediate(r));
    expect(await names.address('ok.example')).toBe('203.0.113.9');
    expect(failures).toEqual(['never.example', 'ok.example']);
  });

  it('a name that never resolved is not looked up again for every PASV, only once its retry is due', async () => {
    let now = 0;
    let asked = 0;
    const failures: Array<string | null> = [];
    const names = new PublicNames((_n, _e, last) => failures.push(last), async () => (asked++, Promise.reject(new Error('ENOTFOUND'))), 60_000, () => now);
    await expect(names.address('down.example')).rejects.toThrow('ENOTFOUND');
    await expect(names.address('down.example')).rejects.toThrow('ENOTFOUND');
    expect(asked).toBe(1);
    now = 5_000;
    await expect(names.address('down.example')).rejects.toThrow('ENOTFOUND');
    expect(asked).toBe(2);
    // Said as a name without an address yet.
    expect(failures).toEqual([null, null]);
    names.close();
  });

  it('a lookup that does not answer fails after LOOKUP_TIMEOUT_MS, and names are refreshed in the background', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    try {
      let now = 0;
      const hung = new PublicNames(undefined, () => new Promise<string>(() => {}), 60_000, () => now);
      const waiting = hung.address('slow.example');
      const outcome = waiting.then(() => 'resolved', (err: Error) => err.message);
      await vi.advanceTimersByTimeAsync(LOOKUP_TIMEOUT_MS);
      expect(await outcome).toMatch(/took over 5 s/);
      hung.close();

      const answers = ['198.51.100.1', '198.51.100.2'];
      let asked = 0;
      const names = new PublicNames(undefined, async () => (asked++, answers.shift()!), 60_000, () => now);
      expect(await names.address('home.example')).toBe('198.51.100.1');
      // Nobody asks for a minute: the address is looked up again all the same.
      now = 60_000;
      await vi.advanceTimersByTimeAsync(5_000);
      expect(asked).toBe(2);
      expect(await names.address('home.example')).toBe('198.51.100.2');
      names.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses an answer that is not an IPv4 address', async () => {
    const names = new PublicNames(undefined, async () => '::1');
    await expect(names.address('six.example')).rejects.toThrow(/not an IPv4 address/);
  });
});

describe('a public host given as a DNS name', () => {
  it('PASV advertises the address it resolves to (server-wide and per listener); a bad name is refused at start', async () => {
    const ctx = await startServer({ settings: { publicHost: 'localhost' } });
    cleanups.push(() => ctx.close());
    const c = await RawClient.connect(ctx.port);
    cleanups.push(() => c.close());
    await c.login();
    expect(parsePasvReply((await c.cmd('PASV')).text).host).toBe('127.0.0.1');
    expect(() => new FtpServer({ driver: { authenticate: () => null }, settings: { publicHost: 'not a name' } })).toThrow(/IPv4 address or a DNS name/);
    await expect(ctx.server.listen(0, '127.0.0.1', { publicHost: '::1' })).rejects.toThrow(/IPv4 address or a DNS name/);
  });
});

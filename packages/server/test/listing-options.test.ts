import { listDirectory, MemoryProvider, slicesOf, SqliteProvider, type DirSlices, type FsProvider, type ListSlicesOptions } from '@ftp/vfs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FtpServer, type ServerSettings } from '../src/index.js';
import { listingLines as listing, RawClient, readAll } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function session(settings: Partial<ServerSettings> = {}, fs: FsProvider = new MemoryProvider()) {
  for (const dir of ['/a', '/a/b', '/a/b/c', '/a/b/c/d']) await fs.mkdir(dir);
  for (const file of ['/top.txt', '/a/one.txt', '/a/b/two.txt', '/a/b/c/three.txt', '/a/b/c/d/four.txt', '/.hidden']) {
    const w = await fs.createWriteStream!(file);
    await new Promise<void>((r) => w.end('x', () => r()));
  }
  const server = new FtpServer({ settings: { failedLoginDelay: 0, ...settings }, driver: { authenticate: () => ({ fs }) } });
  const events: string[] = [];
  server.on('transfer:start', (e) => events.push(`start ${e.direction} ${e.path}`));
  server.on('transfer', (e) => events.push(`end ${e.direction} ${e.path} ${e.outcome}`));
  const { port } = await server.listen(0, '127.0.0.1');
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close(), () => server.close());
  await c.login();
  return { c, fs, events, port };
}

describe('LIST and NLST options', () => {
  it('LIST -R walks the tree, ls -lR style, down to listMaxDepth', async () => {
    const { c } = await session({ listMaxDepth: 3 });
    const lines = await listing(c, 'LIST -laR /');
    expect(lines[0]).toBe('/:');
    expect(lines).toContain('/a/b:');
    expect(lines).toContain('/a/b/c:');
    expect(lines).not.toContain('/a/b/c/d:');
    expect(lines.some((l) => l.endsWith(' three.txt'))).toBe(true);
    expect(lines.some((l) => l.endsWith(' four.txt'))).toBe(false);
    // Dotfiles are always listed.
    expect(lines.some((l) => l.endsWith(' .hidden'))).toBe(true);
  });

  it('LIST -R says in its 226 when the tree was cut at listMaxDepth or listMaxEntries, and not when it was whole', async () => {
    /** The 226 text of a LIST -R. */
    const final = async (c: RawClient): Promise<string> => {
      const socket = await c.passive();
      c.send('LIST -R /');
      expect((await c.next()).code).toBe(150);
      await readAll(socket);
      const reply = await c.next();
      expect(reply.code).toBe(226);
      return reply.text;
    };
    expect(await final((await session({ listMaxDepth: 3 })).c)).toBe('Transfer complete; folders deeper than 3 levels not listed (use LIST per folder for them).');
    expect(await final((await session({ listMaxEntries: 5 })).c)).toBe('Transfer complete; listing cut at 5 entries (use LIST per folder for the rest).');
    expect(await final((await session()).c)).toBe('Transfer complete.');
  });

  it('NLST -l gives long lines; with listOptions off the options are ignored', async () => {
    const { c } = await session();
    expect((await listing(c, 'NLST -l /a'))[0]).toMatch(/^d[rwx-]{9} .* b$/);
    const off = await session({ listOptions: false });
    expect(await listing(off.c, 'NLST -l /a')).toEqual(['/a/b', '/a/one.txt']);
    expect((await listing(off.c, 'LIST -R /')).some((l) => l.endsWith(':'))).toBe(false);
  });

  it('a name that begins with spaces or a dash is listed: only options and their spaces come off, `--` ends them', async () => {
    const { c, fs } = await session();
    for (const file of ['/  lead.txt', '/-dash.txt']) {
      const w = await fs.createWriteStream!(file);
      await new Promise<void>((r) => w.end('x', () => r()));
    }
    // RFC 959: one space between the command and its argument; the rest is the name.
    expect(await listing(c, 'NLST   lead.txt')).toEqual(['  lead.txt']);
    expect((await listing(c, "LIST   lead.txt"))[0]).toMatch(/^-[rwx-]{9} .*\d {3}lead\.txt$/);
    expect(await listing(c, 'NLST -- -dash.txt')).toEqual(['-dash.txt']);
    expect((await listing(c, 'LIST -l -- -dash.txt'))[0]).toMatch(/^-[rwx-]{9} .* -dash\.txt$/);
    expect(await listing(c, 'NLST -dash.txt')).toEqual(['-dash.txt']);
    // Options after extra spaces are still options; a blank argument lists the current folder.
    expect((await listing(c, 'LIST   -la /a')).map((l) => l.split(' ').pop())).toEqual(['b', 'one.txt']);
    expect(await listing(c, 'NLST  ')).toContain('top.txt');
  });

  it('listings share listSortBudget: a listing held up keeps its share, the next sorts less, and all is given back', async () => {
    // A provider that says what each listing asked to sort, and whose first listing waits until it is let go.
    const asked: Array<number | undefined> = [];
    let letGo: () => void = () => {};
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    class Recording extends MemoryProvider {
      override async listSlices(path: string, options?: ListSlicesOptions): Promise<DirSlices> {
        asked.push(options?.sortedUpTo);
        if (asked.length === 1) await gate;
        return slicesOf([await listDirectory(this, path)]);
      }
    }
    const fs = new Recording();
    const { c, port } = await session({ listSortMax: 1000, listSortBudget: 1500 }, fs);
    const other = await RawClient.connect(port);
    cleanups.push(() => other.close());
    await other.login();
    const second = { c: other };
    const socket = await c.passive();
    c.send('NLST /a');
    // The first listing waits inside the provider, holding 1000 of the 1500.
    await vi.waitFor(() => expect(asked).toEqual([1000]));
    expect(await listing(second.c, 'NLST /a')).toEqual(['/a/b', '/a/one.txt']);
    expect(asked).toEqual([1000, 500]);
    letGo();
    expect((await c.next()).code).toBe(150);
    await readAll(socket);
    expect((await c.next()).code).toBe(226);
    // Everything was given back: the next listings get their whole share again.
    await listing(second.c, 'NLST /a');
    await listing(c, 'LIST /a');
    expect(asked).toEqual([1000, 500, 1000, 1000]);
  });

  it('LIST -d gives the folder its own line, ls -d style; with listOptions off its entries', async () => {
    const { c } = await session();
    const lines = await listing(c, 'LIST -d /a/b');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^d[rwx-]{9} .* b$/);
    expect(await listing(c, 'LIST -ld /')).toHaveLength(1);
    expect((await listing(c, 'LIST -d /top.txt'))[0]).toMatch(/^-.* top\.txt$/);
    const off = await session({ listOptions: false });
    expect((await listing(off.c, 'LIST -d /a/b')).map((l) => l.split(' ').pop())).toEqual(['c', 'two.txt']);
  });

  it('emits transfer:start and transfer for every data transfer', async () => {
    const { c, events } = await session();
    await listing(c, 'LIST');
    expect(events).toEqual(['start listing /', 'end listing / ok']);
  });
});

describe('interrupted uploads', () => {
  async function interruptedUpload(partialUploads: 'keep' | 'discard'): Promise<boolean> {
    const { c, fs } = await session({ partialUploads });
    const socket = await c.passive();
    c.send('STOR partial.bin');
    expect((await c.next()).code).toBe(150);
    socket.write(Buffer.alloc(100000, 1));
    await new Promise((r) => setTimeout(r, 100));
    c.send('ABOR');
    expect((await c.next()).code).toBe(426);
    expect((await c.next()).code).toBe(226);
    socket.destroy();
    return fs.stat('/partial.bin').then(
      () => true,
      () => false,
    );
  }

  it('keep (default) leaves the partial file; discard removes it', async () => {
    expect(await interruptedUpload('keep')).toBe(true);
    expect(await interruptedUpload('discard')).toBe(false);
  });

  it('discard never deletes the previous version kept by a provider whose uploads show only when complete', async () => {
    const sqlite = new SqliteProvider();
    cleanups.push(() => sqlite.close());
    const { c, fs } = await session({ partialUploads: 'discard' }, sqlite);
    const socket = await c.passive();
    c.send('STOR top.txt');
    expect((await c.next()).code).toBe(150);
    socket.write(Buffer.alloc(100000, 2));
    await new Promise((r) => setTimeout(r, 100));
    c.send('ABOR');
    expect((await c.next()).code).toBe(426);
    expect((await c.next()).code).toBe(226);
    socket.destroy();
    // The interrupted upload never replaced it: the previous one-byte version is still there.
    expect((await fs.stat('/top.txt')).size).toBe(1);
  });

  it('discard never removes a file an APPE was adding to', async () => {
    const { c, fs } = await session({ partialUploads: 'discard' });
    const socket = await c.passive();
    c.send('APPE top.txt');
    expect((await c.next()).code).toBe(150);
    socket.write('more');
    await new Promise((r) => setTimeout(r, 50));
    c.send('ABOR');
    expect((await c.next()).code).toBe(426);
    expect((await c.next()).code).toBe(226);
    socket.destroy();
    expect((await fs.stat('/top.txt')).size).toBeGreaterThanOrEqual(1);
  });
});

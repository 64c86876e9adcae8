// A file an upload is still writing cannot be deleted, renamed away or renamed over from another session (450, as a
// second upload or a download of it is refused): the upload would go on into a file no longer in the tree and be
// told 226 while its bytes were lost. Once the upload has its 226, the file is free at once (upload, then rename, is
// how sync clients publish a file).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvider, MemoryProvider, type FsProvider } from '@ftp/vfs';
import type { ServerSettings } from '../src/index.js';
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient, startServer, writeAndClose } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Backend {
  name: string;
  make(): Promise<{ fs: FsProvider; read(name: string): Promise<Buffer>; plant(name: string, data: string): Promise<void> }>;
}

const local = (syncMetadata: boolean): Backend => ({
  name: `local disk (syncMetadata: ${syncMetadata})`,
  async make() {
    const root = await mkdtemp(join(tmpdir(), 'busy-uploads-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    return {
      fs: new LocalProvider(root, { syncMetadata }),
      read: (name) => readFile(join(root, name)),
      plant: (name, data) => writeFile(join(root, name), data),
    };
  },
});

const memory: Backend = {
  name: 'memory',
  async make() {
    const fs = new MemoryProvider();
    return {
      fs,
      read: async (name) => Buffer.from(await fs.readFile(`/${name}`)),
      plant: (name, data) => fs.writeFile(`/${name}`, data),
    };
  },
};

for (const backend of [local(true), local(false), memory]) {
  describe(backend.name, () => {
    async function setup(settings: Partial<ServerSettings> = {}) {
      const store = await backend.make();
      const ctx = await startServer({ fs: store.fs, settings });
      cleanups.push(() => ctx.close());
      const session = async (): Promise<RawClient> => {
        const c = await RawClient.binarySession(ctx.port, cleanups);
        return c;
      };
      return { ...store, session };
    }

    it('DELE, RNFR of it and RNTO over it are 450 while the upload writes; the upload completes whole', async () => {
      const { read, plant, session } = await setup();
      await plant('other.txt', 'OTHER FILE\n');
      await plant('inprog.bin', 'an older version');
      const a = await session();
      const b = await session();
      const data = await a.passive();
      expect((await a.cmd('STOR inprog.bin')).code).toBe(150);
      // Storage opened the upload before the 150.
      data.write(Buffer.alloc(200_000, 'a'));
      const dele = await b.cmd('DELE inprog.bin');
      expect(dele.code, dele.text).toBe(450);
      expect((await b.cmd('RNFR other.txt')).code).toBe(350);
      const over = await b.cmd('RNTO inprog.bin');
      expect(over.code, over.text).toBe(450);
      expect((await b.cmd('RNFR inprog.bin')).code).toBe(350);
      const away = await b.cmd('RNTO moved.bin');
      expect(away.code, away.text).toBe(450);
      await writeAndClose(data, Buffer.alloc(200_000, 'b'));
      expect((await a.next()).code).toBe(226);
      const stored = await read('inprog.bin');
      expect(stored.length).toBe(400_000);
      expect(stored.subarray(199_990, 200_010).toString()).toBe('a'.repeat(10) + 'b'.repeat(10));
      expect((await read('other.txt')).toString()).toBe('OTHER FILE\n');
    });

    it("another session's STOR of the file while an upload runs, then its DELE: the DELE is 450, and the first upload, told 226, is the file", async () => {
      // Found with Apache Commons Net: on memory the second STOR ended (226), its DELE was allowed, and the first upload,
      // told 226 after it, left no file. (The local disk refuses the second STOR itself: 450.)
      const { read, session } = await setup();
      const a = await session();
      const b = await session();
      const first = await a.passive();
      expect((await a.cmd('STOR twice.bin')).code).toBe(150);
      first.write(Buffer.alloc(100_000, 'a'));
      await new Promise((r) => setTimeout(r, 100));
      const second = await b.passive();
      const stor = await b.cmd('STOR twice.bin');
      if (stor.code === 150) {
        await writeAndClose(second, 'B whole');
        expect((await b.next()).code).toBe(226);
      } else {
        expect(stor.code, stor.text).toBe(450);
        second.destroy();
      }
      const dele = await b.cmd('DELE twice.bin');
      expect(dele.code, dele.text).toBe(450);
      await writeAndClose(first, Buffer.alloc(100_000, 'z'));
      expect((await a.next()).code).toBe(226);
      const stored = await read('twice.bin');
      expect(stored.length).toBe(200_000);
      expect(stored.subarray(99_990, 100_010).toString()).toBe('a'.repeat(10) + 'z'.repeat(10));
    });

    it('a slow but steady upload (20 KB/s) is no idle one: a DELE after 9.5 s is 450, and the upload completes', async () => {
      const { read, session } = await setup();
      const a = await session();
      const b = await session();
      const data = await a.passive();
      expect((await a.cmd('STOR slow.bin')).code).toBe(150);
      // Past the first buffer (64 KiB) in ~3.3 s; then storage would see a write only per 256 KiB (~13 s at this
      // rate) if the bytes waited for a whole write's worth, and the upload looked idle from ~8.3 s on.
      const piece = Buffer.alloc(2000, 's');
      let sent = 0;
      let dele = 0;
      for (let i = 0; i < 100; i++) {
        data.write(piece);
        sent += piece.length;
        await new Promise((r) => setTimeout(r, 100));
        if (i === 95) dele = (await b.cmd('DELE slow.bin')).code;
      }
      expect(dele).toBe(450);
      await writeAndClose(data, piece);
      expect((await a.next()).code).toBe(226);
      expect((await read('slow.bin')).length).toBe(sent + piece.length);
    }, 20_000);

    it('an upload the open would refuse as busy is refused with 450 before any 150, the running one completes whole', async () => {
      const { fs, read, plant, session } = await setup();
      // Bigger than what the disk overwrites in place: emptied at the open, so the open shows.
      const older = 'an older version'.repeat(65_536);
      await plant('held.bin', older);
      const a = await session();
      const b = await session();
      const data = await a.passive();
      expect((await a.cmd('STOR held.bin')).code).toBe(150);
      data.write(Buffer.alloc(300_000, 'a'));
      // Until storage has the upload open (its first bytes are in the file, or, for memory, the old version is gone).
      for (let i = 0; i < 100 && (await fs.stat('/held.bin')).size === older.length; i++) await new Promise((r) => setTimeout(r, 50));
      // Continuing uploads meet the running one everywhere; a plain one too where uploads are not atomic (the disk).
      const refused = backend.name === 'memory' ? ['APPE held.bin', 'REST 10\r\nSTOR held.bin'] : ['STOR held.bin', 'APPE held.bin', 'REST 10\r\nSTOR held.bin'];
      for (const command of refused) {
        const [first, ...rest] = command.split('\r\n');
        await b.passive();
        if (rest.length > 0) expect((await b.cmd(first as string)).code).toBe(350);
        // The client learns it before it could send a byte: no 150 first (after one, the refusal would be a 451).
        const reply = await b.cmd(rest[0] ?? (first as string));
        expect(reply.code, `${command}: ${reply.text}`).toBe(450);
      }
      await writeAndClose(data, Buffer.alloc(100_000, 'b'));
      expect((await a.next()).code).toBe(226);
      const stored = await read('held.bin');
      expect(stored.length).toBe(400_000);
      expect(stored.subarray(299_995, 300_005).toString()).toBe('a'.repeat(5) + 'b'.repeat(5));
    });

    it('two uploads of one file announced at the same moment: one is told 150, the other 450 before any 150', async () => {
      // Without the hold both were told 150 and the second was refused at its open (451), after which lftp resumed it
      // onto the first one's file.
      const { read, plant, session } = await setup();
      await plant('same.bin', 'an older version');
      /** Two sessions send `command` in one turn (the server reads both before either opens the file): one is told 150 and stores `data`, the other 450. */
      const race = async (command: string, data: string): Promise<void> => {
        const a = await session();
        const b = await session();
        const [da, db] = [await a.passive(), await b.passive()];
        a.send(command);
        b.send(command);
        const [ra, rb] = [await a.next(), await b.next()];
        expect([ra.code, rb.code].sort(), `${command}: ${ra.code} ${ra.text} / ${rb.code} ${rb.text}`).toEqual([150, 450]);
        const [winner, socket, other] = ra.code === 150 ? [a, da, db] : [b, db, da];
        other.destroy();
        await writeAndClose(socket, Buffer.from(data));
        expect((await winner.next()).code).toBe(226);
      };
      // A plain STOR replaces the file on memory beside a running upload (its atomicUploads): APPEs there.
      const verb = backend.name === 'memory' ? 'APPE' : 'STOR';
      for (let round = 0; round < 5; round++) await race(`${verb} same.bin`, `round ${round};`);
      const stored = (await read('same.bin')).toString();
      expect(stored).toBe(verb === 'STOR' ? 'round 4;' : 'an older versionround 0;round 1;round 2;round 3;round 4;');
      // A name that does not exist yet is held too (by its path), on the disk; memory replaces.
      if (verb !== 'STOR') return;
      for (let round = 0; round < 5; round++) {
        await race(`STOR new-${round}.bin`, `new ${round}`);
        expect((await read(`new-${round}.bin`)).toString()).toBe(`new ${round}`);
      }
    });

    it('a hold its upload left (no data connection came) is given back: neither another session nor its own retry is refused', async () => {
      // The hold of an announced upload lasts until it opens; one that failed before its open gives it back (it once
      // kept other sessions out for 3 s: a client retrying on a new connection was told 450).
      const { read, plant, session } = await setup({ dataConnectTimeout: 1 });
      await plant('kept.bin', 'an older version');
      const verb = backend.name === 'memory' ? 'APPE' : 'STOR';
      const a = await session();
      const b = await session();
      // PASV without connecting: 150, then 425 after dataConnectTimeout.
      expect((await a.cmd('PASV')).code).toBe(227);
      expect((await a.cmd(`${verb} kept.bin`)).code).toBe(150);
      expect((await a.next()).code).toBe(425);
      const other = await b.passive();
      const taken = await b.cmd(`${verb} kept.bin`);
      expect(taken.code, taken.text).toBe(150);
      await writeAndClose(other, Buffer.from(' and b'));
      expect((await b.next()).code).toBe(226);
      const data = await a.passive();
      expect((await a.cmd(`${verb} kept.bin`)).code).toBe(150);
      await writeAndClose(data, Buffer.from('retried'));
      expect((await a.next()).code).toBe(226);
      expect((await read('kept.bin')).toString()).toBe(verb === 'STOR' ? 'retried' : 'an older version and bretried');
    });

    it('an upload idle for 5 s is ended by a newcomer with its own reason (451, not "busy, try again"), the newcomer\'s upload is the file', async () => {
      const { read, session } = await setup();
      const a = await session();
      const b = await session();
      const stale = await a.passive();
      expect((await a.cmd('STOR taken.bin')).code).toBe(150);
      stale.write(Buffer.alloc(1000, 'a'));
      // The 1,000 bytes reach storage within a second or two whatever follows; then nothing for WRITER_TAKEOVER_IDLE_MS
      // of @ftp/vfs (5 s).
      await new Promise((r) => setTimeout(r, 7500));
      // A resume (memory lets a plain STOR replace the file beside a running upload: see its atomicUploads).
      const data = await b.passive();
      expect((await b.cmd('APPE taken.bin')).code).toBe(150);
      await writeAndClose(data, Buffer.alloc(2000, 'b'));
      expect((await b.next()).code).toBe(226);
      const ended = await a.next();
      expect(ended.code).toBe(451);
      expect(ended.text).toMatch(/sent nothing for a while and another session took the file over/);
      expect((await read('taken.bin')).toString()).toBe('a'.repeat(1000) + 'b'.repeat(2000));
    }, 20_000);

    it('once the 226 is in, the file is free at once: renamed, replaced and deleted', async () => {
      const { read, session } = await setup();
      const a = await session();
      for (let round = 0; round < 20; round++) {
        await a.store('part.tmp', `version ${round}`);
        expect((await a.cmd('RNFR part.tmp')).code).toBe(350);
        const renamed = await a.cmd('RNTO final.txt');
        expect(renamed.code, renamed.text).toBe(250);
      }
      expect((await read('final.txt')).toString()).toBe('version 19');
      await a.store('gone.bin', 'x');
      const dele = await a.cmd('DELE gone.bin');
      expect(dele.code, dele.text).toBe(250);
    });
  });
}

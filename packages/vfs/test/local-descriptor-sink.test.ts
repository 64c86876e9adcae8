// The local disk's uploads lend their descriptor (fileDescriptorSinkOf): writes through it count as the upload's own
// (position, REST's cut, the close after them), a destroy waits for the borrower, and a failure fails the upload.
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileDescriptorSinkOf, LocalProvider, MemoryProvider, openWriteStream, quota, type UploadStream } from '../src/index.js';

let root: string;
let p: LocalProvider;
beforeAll(() => {
  root = fs.mkdtempSync(join(tmpdir(), 'vfs-descriptor-sink-'));
  p = new LocalProvider(root);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const write = (u: UploadStream, data: string): Promise<void> => new Promise((resolve, reject) => u.write(data, (err) => (err ? reject(err) : resolve())));

/** Lends `u`'s descriptor and writes `data` through it (as the kernel would, at the position given). */
function writeThrough(u: UploadStream, data: string): Promise<{ position: number | null }> {
  return new Promise((resolve, reject) => {
    const lent = fileDescriptorSinkOf(u)!.lend((fd, position, done) => {
      const bytes = Buffer.from(data);
      const n = position === null ? fs.writeSync(fd, bytes) : fs.writeSync(fd, bytes, 0, bytes.length, position);
      done(n, null);
      resolve({ position });
      return () => {};
    });
    if (!lent) reject(new Error('not lent'));
  });
}

describe('local uploads lend their descriptor', () => {
  it('writes through it continue the upload where its own writes stopped, and end() completes it', async () => {
    const u = await openWriteStream(p, '/a.txt');
    await write(u, 'first,');
    expect((await writeThrough(u, 'lent,')).position).toBe(6);
    await write(u, 'last');
    u.end();
    await finished(u);
    expect(fs.readFileSync(join(root, 'a.txt'), 'latin1')).toBe('first,lent,last');
  });

  it('a small held first chunk is written before the borrower writes', async () => {
    const u = await openWriteStream(p, '/held.txt');
    await write(u, 'held;');
    await writeThrough(u, 'after');
    u.end();
    await finished(u);
    expect(fs.readFileSync(join(root, 'held.txt'), 'latin1')).toBe('held;after');
  });

  it("REST's cut and APPE's end follow the lent writes", async () => {
    fs.writeFileSync(join(root, 'r.txt'), 'abcdefghijklmnopqrstuvwxyz');
    const rest = await openWriteStream(p, '/r.txt', { start: 3 });
    expect((await writeThrough(rest, 'XYZ')).position).toBe(3);
    rest.end();
    await finished(rest);
    expect(fs.readFileSync(join(root, 'r.txt'), 'latin1')).toBe('abcXYZ');
    const append = await openWriteStream(p, '/r.txt', { append: true });
    expect((await writeThrough(append, '+more')).position).toBeNull();
    append.end();
    await finished(append);
    expect(fs.readFileSync(join(root, 'r.txt'), 'latin1')).toBe('abcXYZ+more');
  });

  it('is refused while a write is unfinished, and after the end', async () => {
    const u = await openWriteStream(p, '/busy.txt');
    await write(u, 'x'.repeat(100_000));
    const pending = write(u, 'y'.repeat(100_000));
    expect(fileDescriptorSinkOf(u)!.lend(() => expect.unreachable('lent while busy'))).toBe(false);
    await pending;
    u.end();
    expect(fileDescriptorSinkOf(u)!.lend(() => expect.unreachable('lent after end'))).toBe(false);
    await finished(u);
  });

  it('a destroy while lent closes the descriptor only once the borrower is done, keeping what it wrote', async () => {
    const u = await openWriteStream(p, '/d.txt');
    let finish!: () => void;
    let lentFd = -1;
    let ended = 0;
    fileDescriptorSinkOf(u)!.lend((fd, _position, done) => {
      lentFd = fd;
      finish = () => done(fs.writeSync(fd, 'late but kept', null, 'latin1'), null);
      return () => ended++;
    });
    u.destroy(new Error('client went away'));
    u.on('error', () => {});
    // The borrower is told to stop; until it says it is done, the descriptor stays open.
    expect(ended).toBe(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(() => fs.fstatSync(lentFd)).not.toThrow();
    finish();
    await new Promise((r) => u.once('close', r));
    expect(fs.readFileSync(join(root, 'd.txt'), 'latin1')).toBe('late but kept');
  });

  it("an error given back is the file's: the upload fails with it", async () => {
    const u = await openWriteStream(p, '/e.txt');
    const failed = new Promise<NodeJS.ErrnoException>((resolve) => u.once('error', resolve));
    fileDescriptorSinkOf(u)!.lend((_fd, _position, done) => {
      done(0, Object.assign(new Error('no space'), { code: 'ENOSPC' }));
      return () => expect.unreachable('ended after done');
    });
    const err = await failed;
    expect(err.code).toBe('ENOSPC');
    expect(err.name).toBe('VfsError');
  });

  it('writes and the end that come while it is lent wait for the borrower, then follow its bytes', async () => {
    fs.writeFileSync(join(root, 'w.txt'), 'an old file, longer than the new one');
    const u = await openWriteStream(p, '/w.txt', { start: 2 });
    let finish!: () => void;
    fileDescriptorSinkOf(u)!.lend((fd, position, done) => {
      finish = () => done(fs.writeSync(fd, 'LENT', position), null);
      return () => {};
    });
    const order: string[] = [];
    u.write('+after', () => order.push('write'));
    u.end(() => order.push('end'));
    await new Promise((r) => setTimeout(r, 30));
    expect(order).toEqual([]);
    finish();
    await finished(u);
    expect(order).toEqual(['write', 'end']);
    // REST 2: the first two bytes stay, the lent bytes and the write follow, the old tail is cut.
    expect(fs.readFileSync(join(root, 'w.txt'), 'latin1')).toBe('anLENT+after');
  });

  it('is refused right after a write failed (its error not emitted yet), so nothing is written past a gap', async () => {
    const u = await openWriteStream(p, '/failed.txt');
    u.on('error', () => {});
    // A write that fails: the file size limit of this process (each test file runs in one of its own).
    const { spawnSync } = await import('node:child_process');
    await write(u, 'x'.repeat(100));
    const limited = spawnSync('prlimit', ['--pid', String(process.pid), '--fsize=150:']);
    expect(limited.status).toBe(0);
    let lentAfterFailure: boolean | undefined;
    try {
      await new Promise<void>((resolve) =>
        u.write('y'.repeat(100_000), (err) => {
          expect(err).toBeTruthy();
          try {
            lentAfterFailure = fileDescriptorSinkOf(u)!.lend(() => {
              throw new Error('lent after a failed write');
            });
          } catch {
            lentAfterFailure = true;
          }
          resolve();
        }),
      );
    } finally {
      spawnSync('prlimit', ['--pid', String(process.pid), '--fsize=unlimited:']);
    }
    expect(lentAfterFailure).toBe(false);
  });

  it('an upload whose borrower stopped writing for a while can be taken over; one that reports progress cannot', async () => {
    const taker = new LocalProvider(root);
    const quiet = await openWriteStream(p, '/quiet.txt');
    quiet.on('error', () => {});
    let quietDone!: (written: number, err: null) => void;
    let quietEnded = 0;
    fileDescriptorSinkOf(quiet)!.lend((_fd, _position, done) => {
      quietDone = done;
      return () => {
        quietEnded++;
        queueMicrotask(() => done(0, null));
      };
    });
    const vi = (await import('vitest')).vi;
    const realNow = performance.now.bind(performance);
    let skew = 0;
    const spy = vi.spyOn(performance, 'now').mockImplementation(() => realNow() + skew);
    try {
      // Six seconds later (the clock moved on), a newcomer takes the quiet upload's file over.
      skew = 6000;
      const newcomer = await openWriteStream(taker, '/quiet.txt');
      expect(quietEnded).toBe(1);
      newcomer.end('new');
      await finished(newcomer);
      expect(fs.readFileSync(join(root, 'quiet.txt'), 'latin1')).toBe('new');
      void quietDone;

      const busy = await openWriteStream(p, '/busy-lent.txt');
      let busyDone!: (written: number, err: null) => void;
      fileDescriptorSinkOf(busy)!.lend((_fd, _position, done) => {
        busyDone = done;
        return () => expect.unreachable('a busy borrower is not stopped');
      });
      skew = 12_000;
      fileDescriptorSinkOf(busy)!.progressed();
      skew = 14_000;
      await expect(openWriteStream(taker, '/busy-lent.txt')).rejects.toMatchObject({ code: 'EBUSY' });
      busyDone(0, null);
      busy.end();
      await finished(busy);
    } finally {
      spy.mockRestore();
    }
  });

  it('memory uploads and uploads under a quota have none', async () => {
    const m = await openWriteStream(new MemoryProvider(), '/m.txt');
    expect(fileDescriptorSinkOf(m)).toBeUndefined();
    m.destroy();
    const q = await openWriteStream(quota(p, { bytes: 1 << 20 }), '/q.txt');
    expect(fileDescriptorSinkOf(q)).toBeUndefined();
    q.destroy();
  });
});

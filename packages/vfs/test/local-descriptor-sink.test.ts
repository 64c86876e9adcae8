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
    fileDescriptorSinkOf(u)!.lend((fd, position, done) => {
      lentFd = fd;
      finish = () => done(fs.writeSync(fd, 'late but kept', null, 'latin1'), null);
      void position;
    });
    u.destroy(new Error('client went away'));
    u.on('error', () => {});
    await new Promise((r) => setTimeout(r, 50));
    // Still open: the borrower writes on.
    expect(() => fs.fstatSync(lentFd)).not.toThrow();
    finish();
    await new Promise((r) => u.once('close', r));
    expect(fs.readFileSync(join(root, 'd.txt'), 'latin1')).toBe('late but kept');
  });

  it("an error given back is the file's: the upload fails with it", async () => {
    const u = await openWriteStream(p, '/e.txt');
    const failed = new Promise<NodeJS.ErrnoException>((resolve) => u.once('error', resolve));
    fileDescriptorSinkOf(u)!.lend((_fd, _position, done) => done(0, Object.assign(new Error('no space'), { code: 'ENOSPC' })));
    const err = await failed;
    expect(err.code).toBe('ENOSPC');
    expect(err.name).toBe('VfsError');
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

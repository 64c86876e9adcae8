import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryProvider } from '@ftp/vfs';
import type { FsProvider } from '@ftp/vfs';
import { endStream, startUpload, writeChunk } from '../src/index.js';

/** A provider whose uploads fail on their own, shortly after their first write (as an S3 REST whose kept prefix changed). */
function failingLater(): FsProvider {
  const p = new MemoryProvider() as FsProvider & { createWriteStream: unknown };
  p.createWriteStream = async () =>
    new Writable({
      write(_chunk, _enc, cb) {
        cb();
        setTimeout(() => this.destroy(Object.assign(new Error('EBUSY: changed meanwhile'), { code: 'EBUSY' })), 5);
      },
    });
  return p;
}

const uncaught: unknown[] = [];
const record = (err: unknown): void => void uncaught.push(err);
afterEach(() => {
  process.off('uncaughtException', record);
  uncaught.length = 0;
});

describe('startUpload / writeChunk / endStream', () => {
  it('an upload that fails while nobody writes to it is reported by endStream, not as an uncaught exception', async () => {
    process.on('uncaughtException', record);
    const ws = await startUpload(failingLater(), '/f', {}, Buffer.from('first'));
    await new Promise((r) => setTimeout(r, 30));
    await expect(endStream(ws)).rejects.toMatchObject({ code: 'EBUSY' });
    expect(uncaught).toEqual([]);
  });

  it('a write to an upload that has failed rejects with its error instead of waiting for a drain', async () => {
    const ws = await startUpload(failingLater(), '/f', {}, Buffer.from('first'));
    await new Promise((r) => setTimeout(r, 30));
    await expect(writeChunk(ws, Buffer.alloc(1024 * 1024))).rejects.toMatchObject({ code: 'EBUSY' });
  });
});

import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { fileSizeOf } from '@ftp/vfs';
import { readAll, writeAll } from '@ftp/vfs-conformance';
import { storedDigest } from '../src/hash.js';
import type { S3ReadHandle, S3WriteHandle } from '../src/index.js';
import { harness } from './fixtures/harness.js';
import { startStore } from './fixtures/store.js';

const store = await startStore();
afterAll(() => store.close());

describe('file handles', () => {
  it("'r' reads any range with ranged GETs; 'w' writes sequentially; random writes and 'r+' are ENOTSUP", async () => {
    const h = await harness(store);
    try {
      await writeAll(h.p, '/f.txt', '0123456789');
      const r = (await h.p.open('/f.txt', 'r')) as S3ReadHandle;
      const buf = Buffer.alloc(4);
      expect((await r.read(buf, 0, 4, 3)).bytesRead).toBe(4);
      expect(buf.toString()).toBe('3456');
      expect((await r.read(buf, 0, 4, null)).bytesRead).toBe(4);
      expect(buf.toString()).toBe('0123');
      expect((await r.read(buf, 0, 4, 8)).bytesRead).toBe(2);
      expect((await r.read(buf, 0, 4, 10)).bytesRead).toBe(0);
      expect((await r.stat()).size).toBe(10);
      await r.close();

      const w = (await h.p.open('/g.txt', 'w')) as S3WriteHandle;
      await w.write(Buffer.from('abc'), 0, 3, null);
      await w.write(Buffer.from('xdefx'), 1, 3, 3);
      await expect(w.write(Buffer.from('z'), 0, 1, 0)).rejects.toMatchObject({ code: 'ENOTSUP' });
      // Nothing is visible before close (the upload completes then).
      await expect(h.p.stat('/g.txt')).rejects.toMatchObject({ code: 'ENOENT' });
      await w.close();
      expect((await readAll(h.p, '/g.txt')).toString()).toBe('abcdef');

      const a = (await h.p.open('/g.txt', 'a')) as S3WriteHandle;
      await a.write(Buffer.from('!'), 0, 1, null);
      await a.close();
      expect((await readAll(h.p, '/g.txt')).toString()).toBe('abcdef!');

      await expect(h.p.open('/g.txt', 'r+')).rejects.toMatchObject({ code: 'ENOTSUP' });
      await expect(h.p.open('/g.txt', 'wx')).rejects.toMatchObject({ code: 'EEXIST' });
      await expect(h.p.open('/missing', 'r')).rejects.toMatchObject({ code: 'ENOENT' });
      await h.p.mkdir('/d');
      await expect(h.p.open('/d', 'r')).rejects.toMatchObject({ code: 'EISDIR' });
    } finally {
      await h.close();
    }
  });
});

describe('read streams', () => {
  it("carry the size of the version their GET reads (the server needs no stat, which could see a newer one)", async () => {
    const h = await harness(store);
    try {
      await writeAll(h.p, '/f.txt', '0123456789');
      const whole = await h.p.createReadStream!('/f.txt');
      // Replaced after the GET: the stream still reads, and says the size of, the version it opened.
      await writeAll(h.p, '/f.txt', 'x'.repeat(100));
      expect(fileSizeOf(whole)).toBe(10);
      const chunks: Buffer[] = [];
      for await (const c of whole) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe('0123456789');
      // A range says nothing of the file's size.
      const part = await h.p.createReadStream!('/f.txt', { start: 2 });
      expect(fileSizeOf(part)).toBeUndefined();
      part.destroy();
    } finally {
      await h.close();
    }
  });
});

describe('stored digests', () => {
  const data = Buffer.from('stored digests');
  const b64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');
  const sha256 = createHash('sha256').update(data).digest('hex');
  const sha1 = createHash('sha1').update(data).digest('hex');
  const crc = crc32(data).toString(16).padStart(8, '0');

  it('uses the driver\'s metadata digest and S3\'s full-object checksums, never composite ones', () => {
    expect(storedDigest({ $metadata: {}, Metadata: { sha256 } }, 'SHA-256')).toBe(sha256);
    expect(storedDigest({ $metadata: {}, Metadata: { sha256: 'not-hex' } }, 'SHA-256')).toBeUndefined();
    expect(storedDigest({ $metadata: {}, ChecksumSHA256: b64(sha256), ChecksumType: 'FULL_OBJECT' }, 'SHA-256')).toBe(sha256);
    expect(storedDigest({ $metadata: {}, ChecksumSHA1: b64(sha1) }, 'SHA-1')).toBe(sha1);
    expect(storedDigest({ $metadata: {}, ChecksumCRC32: b64(crc), ChecksumType: 'FULL_OBJECT' }, 'CRC32')).toBe(crc);
    // A multipart upload's checksum is a checksum of the parts' checksums: not the file's.
    expect(storedDigest({ $metadata: {}, ChecksumSHA256: `${b64(sha256)}-3`, ChecksumType: 'COMPOSITE' }, 'SHA-256')).toBeUndefined();
    expect(storedDigest({ $metadata: {}, ChecksumCRC32: b64(crc), ChecksumType: 'COMPOSITE' }, 'CRC32')).toBeUndefined();
    expect(storedDigest({ $metadata: {}, Metadata: { sha256 } }, 'MD5')).toBeUndefined();
  });
});

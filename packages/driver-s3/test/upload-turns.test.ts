// Uploads share the server's one event loop with every other session: a big write is hashed and copied in steps of
// at most HASH_STEP bytes with a turn of the loop between them, and the SDK's signer is handed each part's SHA-256
// (computed in those steps) instead of hashing the whole part in one synchronous call.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { openWriteStream } from '@ftp/vfs';
import { deterministicBytes, readAll, writeChunk } from '@ftp/vfs-conformance';
import { HASH_STEP } from '../src/upload.js';
import { harness, type Harness } from './fixtures/harness.js';
import { startStore } from './fixtures/store.js';

const store = await startStore();
afterAll(() => store.close());

const MiB = 1024 * 1024;
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

/**
 * Counts the bytes every SHA-256/MD5 `update` of this process (the driver's, the SDK signer's) hashes in each turn of
 * the event loop, a turn being the time between two runs of a self-renewing setImmediate. Returns the most bytes
 * hashed in one turn.
 */
function hashedPerTurn(): { max(): number; stop(): void } {
  const proto = Object.getPrototypeOf(createHash('sha256')) as { update(data: unknown, enc?: unknown): unknown };
  const original = proto.update;
  let now = 0;
  let max = 0;
  const spy = vi.spyOn(proto, 'update').mockImplementation(function (this: unknown, data: unknown, enc?: unknown) {
    now += typeof data === 'string' ? Buffer.byteLength(data) : (data as Uint8Array).byteLength;
    max = Math.max(max, now);
    return original.call(this, data, enc);
  });
  let stopped = false;
  const tick = (): void => {
    now = 0;
    if (!stopped) setImmediate(tick);
  };
  setImmediate(tick);
  return {
    max: () => max,
    stop() {
      stopped = true;
      spy.mockRestore();
    },
  };
}

/** The x-amz-content-sha256 header and body of each signed UploadPart / PutObject request. */
function watchSignedPayloads(h: Harness): { command: string; header: string | undefined; signedHeaders: string; body: Buffer }[] {
  const seen: { command: string; header: string | undefined; signedHeaders: string; body: Buffer }[] = [];
  h.client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers: Record<string, string>; body: unknown };
      if ((context.commandName === 'UploadPartCommand' || context.commandName === 'PutObjectCommand') && request.body instanceof Uint8Array) {
        seen.push({
          command: String(context.commandName),
          header: request.headers['x-amz-content-sha256'],
          signedHeaders: /SignedHeaders=([^,]*)/.exec(request.headers.authorization ?? '')?.[1] ?? '',
          body: Buffer.from(request.body),
        });
      }
      return next(args);
    },
    { step: 'deserialize', name: 'watchSignedPayloads' },
  );
  return seen;
}

describe('uploads give the event loop turns', () => {
  it('a write of many MiB is hashed in steps with turns between (the signer hashes nothing big); the object and its digest are unchanged', async () => {
    const h = await harness(store);
    const signed = watchSignedPayloads(h);
    const PART = 8 * MiB; // the default partSize
    // Three parts and a bit, written as the server hands over big reads: several MiB per write.
    const data = Buffer.concat([0, 1, 2, 3].map((i) => deterministicBytes(i < 3 ? 8 * MiB : 3 * MiB + 12_345, 100 + i)));
    const probe = hashedPerTurn();
    try {
      const ws = await openWriteStream(h.p, '/big.bin');
      for (let off = 0; off < data.length; off += 6 * MiB) await writeChunk(ws, data.subarray(off, Math.min(data.length, off + 6 * MiB)));
      ws.end();
      await once(ws, 'finish');
      probe.stop();
      // One step hashes HASH_STEP bytes twice (the object's digest and the part's); before, a 6 MiB write was hashed
      // whole, and the signer hashed each 8 MiB part at once.
      expect(probe.max()).toBeLessThanOrEqual(2 * HASH_STEP + 64 * 1024);

      // Same object, same digest in the metadata, same ETag: S3's multipart ETag of the same parts, or the whole
      // object's MD5 where the digest's self-copy gave the object a new one (s3rver).
      const head = await h.client.send(new HeadObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}big.bin` }));
      const parts = [0, 1, 2, 3].map((i) => data.subarray(i * PART, Math.min(data.length, (i + 1) * PART)));
      const etag = `"${md5(Buffer.concat(parts.map((p) => Buffer.from(md5(p), 'hex'))))}-4"`;
      expect(head.ContentLength).toBe(data.length);
      expect([etag, `"${md5(data)}"`]).toContain(head.ETag);
      expect(head.Metadata?.sha256).toBe(sha256(data));
      expect(sha256(await readAll(h.p, '/big.bin'))).toBe(sha256(data));

      // Each part was signed with its own SHA-256, as the SDK would have computed it.
      const ups = signed.filter((s) => s.command === 'UploadPartCommand');
      expect(ups).toHaveLength(4);
      for (const s of ups) {
        expect(s.header).toBe(sha256(s.body));
        expect(s.signedHeaders.split(';')).toContain('x-amz-content-sha256');
      }
    } finally {
      probe.stop();
      await h.close();
    }
  }, 120_000);

  it('a single-part upload (PutObject) is hashed in steps too, signed with its SHA-256, digest unchanged', async () => {
    const h = await harness(store);
    const signed = watchSignedPayloads(h);
    const data = deterministicBytes(6 * MiB + 777, 5);
    const probe = hashedPerTurn();
    try {
      const ws = await openWriteStream(h.p, '/one.bin');
      await writeChunk(ws, data);
      ws.end();
      await once(ws, 'finish');
      probe.stop();
      expect(probe.max()).toBeLessThanOrEqual(2 * HASH_STEP + 64 * 1024);
      expect(h.count('PutObjectCommand')).toBe(1);
      const head = await h.client.send(new HeadObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}one.bin` }));
      expect(head.ETag).toBe(`"${md5(data)}"`);
      expect(head.Metadata?.sha256).toBe(sha256(data));
      const puts = signed.filter((s) => s.command === 'PutObjectCommand');
      expect(puts).toHaveLength(1);
      expect(puts[0]?.header).toBe(sha256(data));
    } finally {
      probe.stop();
      await h.close();
    }
  }, 60_000);

  it('without storeSha256 the parts are still signed with their SHA-256, computed in steps', async () => {
    const h = await harness(store, { storeSha256: false, partSize: 5 * MiB });
    const signed = watchSignedPayloads(h);
    const data = deterministicBytes(11 * MiB, 9);
    const probe = hashedPerTurn();
    try {
      const ws = await openWriteStream(h.p, '/nosha.bin');
      await writeChunk(ws, data);
      ws.end();
      await once(ws, 'finish');
      probe.stop();
      expect(probe.max()).toBeLessThanOrEqual(HASH_STEP + 64 * 1024);
      const head = await h.client.send(new HeadObjectCommand({ Bucket: h.target.bucket, Key: `${h.target.prefix}nosha.bin` }));
      expect(head.Metadata?.sha256).toBeUndefined();
      expect(head.ContentLength).toBe(data.length);
      const ups = signed.filter((s) => s.command === 'UploadPartCommand');
      expect(ups).toHaveLength(3);
      for (const s of ups) expect(s.header).toBe(sha256(s.body));
    } finally {
      probe.stop();
      await h.close();
    }
  }, 60_000);
});

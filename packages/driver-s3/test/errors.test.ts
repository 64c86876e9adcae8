import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { writeAll } from '@ftp/vfs-conformance';
import { openReadStream, toVfsError } from '@ftp/vfs';
import { S3Provider, toS3Error, type S3ProviderOptions } from '../src/index.js';
import { S3_TIMEOUTS } from '../src/options.js';
import { s3ErrorLike } from './fixtures/harness.js';
import { startStore } from './fixtures/store.js';

const store = await startStore();
afterAll(() => store.close());

/** A store that accepts connections and never answers, and provider settings that point at it. */
async function silentStore(): Promise<{ silent: Server; settings: S3ProviderOptions }> {
  const silent = createServer((socket) => socket.on('error', () => undefined));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  const endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  return { silent, settings: { bucket: 'b', endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } } };
}

describe('error mapping', () => {
  it('maps S3 error codes and HTTP statuses to the contract, keeping the message of the rest', () => {
    const cases: [Error, string][] = [
      [s3ErrorLike('NoSuchKey', 404), 'ENOENT'],
      [s3ErrorLike('NotFound', 404), 'ENOENT'],
      [s3ErrorLike('AccessDenied', 403), 'EACCES'],
      [s3ErrorLike('Forbidden', 403), 'EACCES'],
      [s3ErrorLike('InvalidAccessKeyId', 403), 'EACCES'],
      [s3ErrorLike('SignatureDoesNotMatch', 403), 'EACCES'],
      [s3ErrorLike('SlowDown', 503), 'EBUSY'],
      [s3ErrorLike('NotImplemented', 501), 'ENOTSUP'],
      [s3ErrorLike('EntityTooLarge', 400), 'ENOSPC'],
      [s3ErrorLike('UnknownThing', 403), 'EACCES'],
      [s3ErrorLike('UnknownThing', 404), 'ENOENT'],
      [s3ErrorLike('InternalError', 500, 'We encountered an internal error. Please try again.'), 'EIO'],
      [s3ErrorLike('NoSuchBucket', 404, 'The specified bucket does not exist'), 'EIO'],
      [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'EIO'],
    ];
    for (const [err, code] of cases) {
      const mapped = toS3Error(err, '/p', 'stat');
      expect(mapped.code, err.name).toBe(code);
      expect(mapped.path).toBe('/p');
      expect(mapped.cause).toBe(err);
      expect(toVfsError(mapped).code).toBe(code);
    }
    expect(toS3Error(s3ErrorLike('InternalError', 500, 'We encountered an internal error.'), '/p').message).toContain('InternalError: We encountered an internal error.');
    expect(toS3Error(s3ErrorLike('NoSuchBucket', 404, 'The specified bucket does not exist'), '/p').message).toContain('NoSuchBucket');
  });

  it('unknown credentials are EACCES', async () => {
    const t = await store.target();
    const p = new S3Provider({ bucket: t.bucket, prefix: t.prefix, ...store.settings, credentials: { accessKeyId: 'NOBODY-KNOWS-ME', secretAccessKey: 'wrong' } });
    try {
      await expect(p.readdir('/')).rejects.toMatchObject({ code: 'EACCES' });
      await expect(p.stat('/x')).rejects.toMatchObject({ code: 'EACCES' });
      await expect(writeAll(p, '/x', 'x')).rejects.toMatchObject({ code: 'EACCES' });
    } finally {
      p.close();
      await t.cleanup();
    }
  });

  it('a missing bucket is EIO naming NoSuchBucket (not ENOENT: the path is not the problem)', async () => {
    const p = new S3Provider({ bucket: `no-such-bucket-${Date.now()}`, ...store.settings });
    try {
      const err = await p.readdir('/').then(
        () => undefined,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(err?.code).toBe('EIO');
      expect(err?.message).toContain('NoSuchBucket');
    } finally {
      p.close();
    }
  });

  it('an unreachable store is EIO', async () => {
    const p = new S3Provider({ bucket: 'b', endpoint: 'http://127.0.0.1:1', forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, clientConfig: { maxAttempts: 1 } });
    try {
      await expect(p.stat('/x')).rejects.toMatchObject({ code: 'EIO' });
    } finally {
      p.close();
    }
  });

  it('a store that accepts and never answers fails after the silence limit (EIO), not never; the client it makes has one', async () => {
    const { silent, settings } = await silentStore();
    const defaults = new S3Provider({ ...settings });
    const p = new S3Provider({ ...settings, clientConfig: { maxAttempts: 1, requestHandler: { ...S3_TIMEOUTS, socketTimeout: 500 } } });
    try {
      const handler = defaults.client.config.requestHandler as unknown as { configProvider: Promise<Record<string, unknown>> };
      expect(await handler.configProvider).toMatchObject({ connectionTimeout: 10_000, socketTimeout: 300_000 });
      const t0 = Date.now();
      await expect(p.stat('/x')).rejects.toMatchObject({ code: 'EIO' });
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      p.close();
      defaults.close();
      silent.close();
    }
  });

  it('a request about names and metadata fails after metadataTimeoutMs in all, its retries included (EIO)', async () => {
    // Each retry started the 300 s silence limit again: a frozen store held a SIZE for over ten minutes.
    const { silent, settings } = await silentStore();
    // The SDK's own retries, and a silence limit longer than the test.
    const p = new S3Provider({ ...settings, metadataTimeoutMs: 500, clientConfig: { maxAttempts: 3, requestHandler: { ...S3_TIMEOUTS, socketTimeout: 60_000 } } });
    try {
      // A download's wait for the store's first answer too (a RETR was held for the 300 s silence limit).
      for (const call of [() => p.stat('/x'), () => p.list('/'), () => p.unlink('/x'), () => p.mkdir('/d'), () => p.createReadStream('/x')]) {
        const t0 = Date.now();
        await expect(call()).rejects.toMatchObject({ code: 'EIO' });
        expect(Date.now() - t0).toBeLessThan(4000);
      }
      expect(() => new S3Provider({ ...settings, metadataTimeoutMs: 0 })).toThrow(/metadataTimeoutMs/);
    } finally {
      p.close();
      silent.close();
    }
  }, 30_000);

  it('a download read slower than metadataTimeoutMs is not cut by it: only the wait for the first answer is', async () => {
    const t = await store.target();
    const p = new S3Provider({ bucket: t.bucket, prefix: t.prefix, ...store.settings, metadataTimeoutMs: 300 });
    try {
      const data = Buffer.alloc(3 << 20, 7);
      await writeAll(p, '/slow.bin', data);
      const stream = await openReadStream(p, '/slow.bin');
      let got = 0;
      for await (const chunk of stream) {
        got += (chunk as Buffer).length;
        // Three pauses past the deadline while the body is read.
        if (got < 3 * 65536) await new Promise((r) => setTimeout(r, 250));
      }
      expect(got).toBe(data.length);
    } finally {
      p.close();
    }
  }, 30_000);

  it('throttling is retried by the SDK; throttling that persists is EBUSY', async () => {
    const t = await store.target();
    const client = new S3Client({ ...store.settings, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', retryStrategy: undefined, maxAttempts: 3 });
    let throttleNext = 0;
    let attempts = 0;
    // Inside the retry loop (deserialize step): each attempt passes here.
    client.middlewareStack.add(
      (next) => async (args) => {
        attempts++;
        if (throttleNext > 0) {
          throttleNext--;
          throw Object.assign(s3ErrorLike('SlowDown', 503, 'Please reduce your request rate.'), { $retryable: { throttling: true } });
        }
        return next(args);
      },
      { step: 'deserialize', name: 'throttle' },
    );
    const p = new S3Provider({ bucket: t.bucket, prefix: t.prefix, client });
    try {
      await writeAll(p, '/f', 'x');
      throttleNext = 2;
      attempts = 0;
      expect((await p.stat('/f')).size).toBe(1);
      expect(attempts).toBe(3);
      throttleNext = 100;
      await expect(openReadStream(p, '/f')).rejects.toMatchObject({ code: 'EBUSY' });
      throttleNext = 0;
    } finally {
      p.close();
      client.destroy();
      await t.cleanup();
    }
  }, 60_000);
});

import { describe, expect, it } from 'vitest';
import type { S3Provider } from '@ftp/driver-s3';
import { openBackend } from '../src/backends.js';
import { parseConfig } from '../src/config/load.js';
import { hashPassword } from '../src/passwords.js';

const MiB = 1024 * 1024;

describe('s3 backend: uploadMemory', () => {
  const yaml = (extra: string, hash: string): string =>
    [
      'backends:',
      `  bucket: { type: s3, bucket: ftp-files, region: us-east-1, endpoint: "http://127.0.0.1:9", forcePathStyle: true${extra} }`,
      `users: [{ name: alice, passwordHash: "${hash}", backend: bucket }]`,
      '',
    ].join('\n');

  it('reaches the driver as the budget of the backend\'s part buffers; the driver\'s default without it', async () => {
    const hash = await hashPassword('pw');
    const configured = parseConfig(yaml(', uploadMemory: 67108864', hash), 'x.yaml', {}).backends.bucket!;
    expect((configured as { uploadMemory?: number }).uploadMemory).toBe(64 * MiB);
    const p = (await openBackend(configured)) as S3Provider;
    const d = (await openBackend(parseConfig(yaml('', hash), 'x.yaml', {}).backends.bucket!)) as S3Provider;
    try {
      expect(p.uploadMemory.capacity).toBe(64 * MiB);
      expect(p.uploadMemory.held).toBe(0);
      expect(d.uploadMemory.capacity).toBe(256 * MiB);
    } finally {
      p.close();
      d.close();
    }
  });

  it('refuses a budget under 1 MiB or not a whole number of bytes', async () => {
    const hash = await hashPassword('pw');
    expect(() => parseConfig(yaml(', uploadMemory: 1000', hash), 'x.yaml', {})).toThrow(/uploadMemory/);
    expect(() => parseConfig(yaml(', uploadMemory: 2097152.5', hash), 'x.yaml', {})).toThrow(/uploadMemory/);
  });
});

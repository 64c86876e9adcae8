import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { Client } from 'basic-ftp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeFiles, ODD_NAMES, PASSWORD, SIZES, startFtpd, USER, type RunningFtpd } from './harness.js';

let ftpd: RunningFtpd;
let work: string;
let files: Awaited<ReturnType<typeof makeFiles>>;
let client: Client;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'basic-ftp-e2e-'));
  files = await makeFiles(work);
  ftpd = await startFtpd();
});
afterAll(async () => {
  expect(await ftpd.stop()).toBe(0);
  await rm(work, { recursive: true, force: true });
});
beforeEach(async () => {
  client = new Client(30000);
  await client.access({ host: '127.0.0.1', port: ftpd.port, user: USER, password: PASSWORD });
});
afterEach(() => client.close());

function hashSink(): { sink: Writable; digest: () => string } {
  const hash = createHash('sha256');
  return {
    sink: new Writable({
      write(chunk: Buffer, _e, cb) {
        hash.update(chunk);
        cb();
      },
    }),
    digest: () => hash.digest('hex'),
  };
}

describe('basic-ftp', () => {
  it.each(SIZES)('uploads and downloads %i bytes with identical SHA-256', async (size) => {
    const file = files.get(size)!;
    await client.uploadFrom(file.path, `bf-${size}.bin`);
    const { sink, digest } = hashSink();
    await client.downloadTo(sink, `bf-${size}.bin`);
    expect(digest()).toBe(file.sha256);
    expect(await client.size(`bf-${size}.bin`)).toBe(size);
  });

  it('lists with MLSD, including odd names and sizes', async () => {
    await client.ensureDir('/odd');
    for (const name of ODD_NAMES) await client.uploadFrom(Readable.from([Buffer.from(name)]), name);
    const list = await client.list();
    for (const name of ODD_NAMES) {
      const entry = list.find((e) => e.name === name);
      expect(entry, name).toBeDefined();
      expect(entry?.size).toBe(Buffer.byteLength(name));
      expect(entry?.isFile).toBe(true);
    }
    expect(await client.pwd()).toBe('/odd');
  });

  it('resumes a download from an offset and appends to an upload', async () => {
    const file = files.get(1024 * 1024)!;
    const original = await readFile(file.path);
    await client.uploadFrom(file.path, 'resume.bin');
    const chunks: Buffer[] = [];
    await client.downloadTo(new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }), 'resume.bin', 400000);
    expect(Buffer.concat(chunks).equals(original.subarray(400000))).toBe(true);
    await writeFile(join(work, 'head'), original.subarray(0, 600000));
    await writeFile(join(work, 'tail'), original.subarray(600000));
    await client.uploadFrom(join(work, 'head'), 'appended.bin');
    await client.appendFrom(join(work, 'tail'), 'appended.bin');
    const { sink, digest } = hashSink();
    await client.downloadTo(sink, 'appended.bin');
    expect(digest()).toBe(file.sha256);
  });

  it('renames, removes files and directory trees', async () => {
    await client.ensureDir('/tree/a/b');
    await client.uploadFrom(Readable.from([Buffer.from('x')]), 'x.txt');
    await client.rename('/tree/a/b/x.txt', '/tree/y.txt');
    expect((await client.list('/tree')).map((e) => e.name).sort()).toEqual(['a', 'y.txt']);
    await client.removeDir('/tree');
    await expect(client.list('/tree')).rejects.toThrow(/550/);
  });

  it('reports a missing file as 550', async () => {
    await expect(client.downloadTo(new Writable({ write: (_c, _e, cb) => cb() }), 'nope.bin')).rejects.toThrow(/550/);
    // The session stays usable after the error.
    expect((await client.send('NOOP')).code).toBe(200);
  });
});

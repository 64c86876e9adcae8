import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeFiles, ODD_NAMES, run, sha256File, SIZES, startFtpd, urlPath, type RunningFtpd } from './harness.js';

let ftpd: RunningFtpd;
let work: string;
let files: Awaited<ReturnType<typeof makeFiles>>;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'curl-e2e-'));
  files = await makeFiles(work);
  ftpd = await startFtpd();
});
afterAll(async () => {
  expect(await ftpd.stop()).toBe(0);
  await rm(work, { recursive: true, force: true });
});

describe.each([
  ['passive', [] as string[]],
  ['active', ['-P', '-']],
])('curl, %s mode', (mode, flags) => {
  it.each(SIZES)('round-trips %i bytes with identical SHA-256', async (size) => {
    const file = files.get(size)!;
    const remote = `${ftpd.url}/${mode}/f${size}.bin`;
    await run('curl', ['-sS', '--fail', ...flags, '--ftp-create-dirs', '-T', file.path, remote]);
    const back = join(work, `${mode}-back-${size}`);
    await run('curl', ['-sS', '--fail', ...flags, '-o', back, remote]);
    expect(await sha256File(back)).toBe(file.sha256);
    expect(await sha256File(join(ftpd.root, mode, `f${size}.bin`))).toBe(file.sha256);
  });
});

describe('curl', () => {
  it.each(ODD_NAMES)('stores and fetches %j', async (name) => {
    const local = join(work, 'odd');
    await writeFile(local, `content of ${name}`);
    await run('curl', ['-sS', '--fail', '-T', local, `${ftpd.url}/${urlPath(name)}`]);
    expect(await readFile(join(ftpd.root, name), 'utf8')).toBe(`content of ${name}`);
    const { stdout } = await run('curl', ['-sS', '--fail', `${ftpd.url}/${urlPath(name)}`]);
    expect(stdout).toBe(`content of ${name}`);
  });

  it('lists names with NLST exactly', async () => {
    const { stdout } = await run('curl', ['-sS', '--fail', '-l', `${ftpd.url}/`]);
    for (const name of ODD_NAMES) expect(stdout.split(/\r?\n/)).toContain(name);
  });

  it('resumes a download (-C) and an upload (-C -)', async () => {
    const file = files.get(1024 * 1024)!;
    await run('curl', ['-sS', '--fail', '-T', file.path, `${ftpd.url}/resume.bin`]);
    const { stdout } = await run('curl', ['-sS', '--fail', '-C', '1000', `${ftpd.url}/resume.bin`, '-o', join(work, 'tail')]);
    expect(stdout).toBe('');
    const original = await readFile(file.path);
    expect((await readFile(join(work, 'tail'))).equals(original.subarray(1000))).toBe(true);
    // Upload resume: the server has the first half, curl asks SIZE and sends the rest with APPE.
    await writeFile(join(ftpd.root, 'half.bin'), original.subarray(0, 300000));
    await run('curl', ['-sS', '--fail', '-C', '-', '-T', file.path, `${ftpd.url}/half.bin`]);
    expect(await sha256File(join(ftpd.root, 'half.bin'))).toBe(file.sha256);
  });

  it('runs quote commands: MKD, RNFR/RNTO, DELE', async () => {
    await writeFile(join(ftpd.root, 'q.txt'), 'q');
    await run('curl', ['-sS', '--fail', '-Q', 'MKD qdir', '-Q', 'RNFR q.txt', '-Q', 'RNTO qdir/r.txt', `${ftpd.url}/`, '-o', '/dev/null']);
    expect(await readFile(join(ftpd.root, 'qdir', 'r.txt'), 'utf8')).toBe('q');
    await run('curl', ['-sS', '--fail', '-Q', 'DELE qdir/r.txt', '-Q', 'RMD qdir', `${ftpd.url}/`, '-o', '/dev/null']);
    await expect(readFile(join(ftpd.root, 'qdir', 'r.txt'))).rejects.toThrow();
  });

  it('refuses a wrong password', async () => {
    await expect(run('curl', ['-sS', '--fail', `ftp://${'tester'}:wrong@127.0.0.1:${ftpd.port}/`])).rejects.toThrow(/530|denied/i);
  });
});

describe('curl with bytes that are not UTF-8 in the URL', () => {
  it('makes folders and files named with those bytes (a lone 0xFF included), lists and fetches them back', async () => {
    const local = join(work, 'latin1');
    await writeFile(local, 'bytes');
    // CP1251 `я` is 0xFF, which curl sends alone rather than doubled as Telnet's IAC IAC.
    await run('curl', ['-sS', '--fail', '--ftp-create-dirs', '-T', local, `${ftpd.url}/d%FF%E9/caf%E9%FF.txt`]);
    const { readdir } = await import('node:fs/promises');
    expect((await readdir(join(ftpd.root), { encoding: 'buffer' })).map((n) => n.toString('latin1'))).toContain('d\xff\xe9');
    expect((await readdir(Buffer.from(join(ftpd.root, 'd\xff\xe9'), 'latin1'), { encoding: 'buffer' })).map((n) => n.toString('latin1'))).toEqual(['caf\xe9\xff.txt']);
    const listing = join(work, 'latin1-listing');
    await run('curl', ['-sS', '--fail', '--list-only', '-o', listing, `${ftpd.url}/d%FF%E9/`]);
    expect((await readFile(listing, 'latin1')).split(/\r?\n/).filter(Boolean)).toEqual(['caf\xe9\xff.txt']);
    const back = join(work, 'latin1-back');
    await run('curl', ['-sS', '--fail', '-o', back, `${ftpd.url}/d%FF%E9/caf%E9%FF.txt`]);
    expect(await readFile(back, 'utf8')).toBe('bytes');
  });
});

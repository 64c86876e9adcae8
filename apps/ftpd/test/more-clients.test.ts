// Clients beyond curl, lftp, ftplib and basic-ftp, each for what it does differently and once failed on:
// aria2c reads the 150 and the 226 with one recv when they arrive together and then waits for a 226 it has already
// read (60 s a file, when the 150 was held back to share a write with the 226); tnftp turns `ftp://host//path` into
// `CWD ` with an empty argument (RFC 1738 §3.2.2), which was 501; wget parses LIST lines to mirror a tree.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeFiles, run, sha256File, startFtpd, urlPath, type RunningFtpd } from './harness.js';

const installed = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
/** Outside CI, a client that is not installed is skipped (the describe's title says so); in CI its absence fails. */
const absent = (cmd: string): boolean => !installed(cmd) && process.env.CI !== 'true';

let ftpd: RunningFtpd;
let work: string;
let files: Awaited<ReturnType<typeof makeFiles>>;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'more-clients-e2e-'));
  ftpd = await startFtpd();
  // 6 B, 100 kB and 1 MiB: each small enough for its 150 and 226 to have shared a write; 8 MiB for segments.
  files = await makeFiles(ftpd.root, [6, 100_000, 1024 * 1024, 8 * 1024 * 1024]);
});
afterAll(async () => {
  expect(await ftpd.stop()).toBe(0);
  await rm(work, { recursive: true, force: true });
});

const remoteName = (path: string): string => path.slice(ftpd.root.length + 1);

describe.skipIf(absent('aria2c'))('aria2c (SKIPPED outside CI when aria2c is not installed; .ci/run installs it)', () => {
  it('downloads small files at once, byte-exact (their 150 comes before the data)', { timeout: 60_000 }, async () => {
    const out = join(work, 'aria2c');
    for (const size of [6, 100_000, 1024 * 1024]) {
      const name = remoteName(files.get(size)!.path);
      const started = performance.now();
      // A 15 s timeout: a client left waiting for the 226 would take that long per file.
      await run('aria2c', ['-q', '--timeout=15', '--max-tries=1', '-d', out, '-o', name, `${ftpd.url}/${urlPath(name)}`], { timeoutMs: 30_000 });
      expect(performance.now() - started, `${size} bytes`).toBeLessThan(8_000);
      expect(await sha256File(join(out, name))).toBe(files.get(size)!.sha256);
    }
  });

  it('a download in four segments over four connections (REST) is byte-exact', { timeout: 60_000 }, async () => {
    const name = remoteName(files.get(8 * 1024 * 1024)!.path);
    const out = join(work, 'aria2c-split');
    await run('aria2c', ['-q', '--timeout=15', '--max-tries=1', '-x4', '-s4', '--min-split-size=1M', '-d', out, '-o', name, `${ftpd.url}/${urlPath(name)}`], { timeoutMs: 45_000 });
    expect(await sha256File(join(out, name))).toBe(files.get(8 * 1024 * 1024)!.sha256);
  });
});

describe.skipIf(absent('tnftp'))('tnftp (SKIPPED outside CI when tnftp is not installed; .ci/run installs it)', () => {
  it('fetches ftp://host//path (an empty CWD, then the file) byte-exact', { timeout: 30_000 }, async () => {
    const name = remoteName(files.get(100_000)!.path);
    const out = join(work, 'tnftp.bin');
    await run('tnftp', ['-o', out, `${ftpd.url}//${urlPath(name)}`], { timeoutMs: 20_000 });
    expect(await sha256File(out)).toBe(files.get(100_000)!.sha256);
  });
});

describe.skipIf(absent('wget'))('wget (SKIPPED outside CI when wget is not installed; .ci/run installs it)', () => {
  it('mirrors a tree from its LIST output, names with spaces and UTF-8 included, byte-exact', { timeout: 60_000 }, async () => {
    const tree = join(ftpd.root, 'wget tree');
    await mkdir(join(tree, 'sub dir', 'deeper'), { recursive: true });
    const contents: Record<string, string> = { 'a.txt': 'a\n', 'sub dir/naïve café.txt': 'café\n', 'sub dir/deeper/z.bin': 'z'.repeat(70_000) };
    for (const [path, text] of Object.entries(contents)) await writeFile(join(tree, path), text);
    const out = join(work, 'wget');
    // -nH: no host folder, so the copy is under `wget tree/` as the server names it.
    await run('wget', ['-q', '-r', '-nH', '--tries=1', '--timeout=15', '-P', out, `${ftpd.url}/${urlPath('wget tree')}/`], { timeoutMs: 45_000 });
    for (const path of Object.keys(contents)) expect(await sha256File(join(out, 'wget tree', path)), path).toBe(await sha256File(join(tree, path)));
  });
});

import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lftp as lftpRun, makeFiles, ODD_NAMES, sha256File, startFtpd, type RunningFtpd } from './harness.js';

let ftpd: RunningFtpd;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'lftp-e2e-'));
  ftpd = await startFtpd();
});
afterAll(async () => {
  expect(await ftpd.stop()).toBe(0);
  await rm(work, { recursive: true, force: true });
});

function lftp(script: string): Promise<{ stdout: string; stderr: string }> {
  return lftpRun(ftpd.port, `set ftp:ssl-allow no; ${script}`, { cwd: work });
}

/** Every file under `dir` with its SHA-256, keyed by relative path; directories too (value 'dir'). */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        out.set(relative(dir, p), 'dir');
        await walk(p);
      } else out.set(relative(dir, p), await sha256File(p));
    }
  };
  await walk(dir);
  return out;
}

describe.each([
  ['passive', 'set ftp:passive-mode yes;'],
  ['active', 'set ftp:passive-mode no;'],
])('lftp mirror, %s mode', (mode, setting) => {
  it('mirror -R uploads a nested tree and mirror downloads it back identically', async () => {
    const tree = join(work, `tree-${mode}`);
    await mkdir(join(tree, 'a', 'b', 'c'), { recursive: true });
    await mkdir(join(tree, 'empty dir'), { recursive: true });
    await mkdir(join(tree, 'ünï cødé'), { recursive: true });
    const files = await makeFiles(join(tree, 'a', 'b'), [0, 1, 1024 * 1024, 3 * 1024 * 1024 + 7]);
    await copyFile(files.get(1)!.path, join(tree, 'a', 'b', 'c', 'deep.bin'));
    for (const name of ODD_NAMES) await writeFile(join(tree, 'ünï cødé', name), name);
    await lftp(`${setting} mirror -R ${JSON.stringify(tree)} ${mode}-up`);
    expect(await snapshot(join(ftpd.root, `${mode}-up`))).toEqual(await snapshot(tree));
    const back = join(work, `back-${mode}`);
    await lftp(`${setting} mirror ${mode}-up ${JSON.stringify(back)}`);
    expect(await snapshot(back)).toEqual(await snapshot(tree));
  });
});

describe('lftp', () => {
  it('resumes an interrupted download with get -c', async () => {
    const files = await makeFiles(work, [2 * 1024 * 1024]);
    const src = files.get(2 * 1024 * 1024)!;
    await copyFile(src.path, join(ftpd.root, 'resume.bin'));
    const partial = join(work, 'resume.bin');
    await writeFile(partial, (await readFile(src.path)).subarray(0, 777777));
    await lftp('get -c resume.bin');
    expect((await stat(partial)).size).toBe(2 * 1024 * 1024);
    expect(await sha256File(partial)).toBe(src.sha256);
  });

  it('resumes an upload with put -c (REST + STOR)', async () => {
    const files = await makeFiles(work, [1024 * 1024 + 3]);
    const src = files.get(1024 * 1024 + 3)!;
    await writeFile(join(ftpd.root, 'up-resume.bin'), (await readFile(src.path)).subarray(0, 100000));
    await lftp(`put -c ${JSON.stringify(src.path)} -o up-resume.bin`);
    expect(await sha256File(join(ftpd.root, 'up-resume.bin'))).toBe(src.sha256);
  });

  it('lists, renames and removes', async () => {
    await writeFile(join(ftpd.root, 'x.txt'), 'x');
    const { stdout } = await lftp('cls -1');
    expect(stdout.split('\n')).toContain('x.txt');
    await lftp('mv x.txt y.txt; mkdir -p d1/d2; rm y.txt; rmdir d1/d2');
    await expect(stat(join(ftpd.root, 'y.txt'))).rejects.toThrow();
    expect((await stat(join(ftpd.root, 'd1'))).isDirectory()).toBe(true);
  });
});

import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { OPTION_VARIABLES, OPTIONS, USAGE } from '../src/flags.js';
import { hashPassword } from '../src/passwords.js';
import { run, startFtpdConfig } from './harness.js';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const MOUNTS_EXAMPLE = readFileSync(new URL('../examples/mounts.yaml', import.meta.url), 'utf8');

/** The README's flags table: each row's flag cell (`-p, --port`) and env cell (`FTPD_PORT`, or — for none). */
function flagsTable(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of README.split('\n')) {
    const cells = /^\| `([^`]+)` \| ([^|]+) \|/.exec(line);
    const long = cells && /--([a-z-]+)$/.exec(cells[1]!)?.[1];
    if (long) rows.set(long, cells[2]!.trim().replace(/`/g, ''));
  }
  return rows;
}

it('the README table has every flag --help shows, with its variable (it listed 11 of 26)', () => {
  const table = flagsTable();
  const variables = OPTION_VARIABLES as Partial<Record<string, string>>;
  for (const name of Object.keys(OPTIONS)) {
    expect({ name, row: table.has(name) }).toEqual({ name, row: true });
    expect({ name, env: table.get(name) }).toEqual({ name, env: variables[name] ?? '—' });
  }
  expect([...table.keys()].sort()).toEqual(Object.keys(OPTIONS).sort());
});

it('--help shows every option parseArgs takes, and no other', () => {
  const shown = new Set([...USAGE.matchAll(/^\s+(?:-\w, )?--([a-z-]+)/gm)].map((m) => m[1]));
  expect([...shown].sort()).toEqual(Object.keys(OPTIONS).sort());
});

it('a move between mounts is refused with the code the README and examples/mounts.yaml say (they said 550)', async () => {
  const work = await mkdtemp(join(tmpdir(), 'ftpd-readme-mounts-'));
  const file = join(work, 'mounts.yaml');
  const hash = await hashPassword('pw', { ln: 10, r: 8, p: 1 });
  await writeFile(file, `listeners: [{ port: 0 }]\nbackends: { disk: { type: memory }, tmp: { type: memory } }\nusers: [{ name: alice, passwordHash: "${hash}", backend: disk, mounts: { /scratch: { backend: tmp } } }]\n`);
  await writeFile(join(work, 'a.txt'), 'a');
  const s = await startFtpdConfig(file, 1);
  try {
    const url = `ftp://alice:pw@127.0.0.1:${s.ports[0]}/`;
    await run('curl', ['-sS', '--fail', '-T', join(work, 'a.txt'), url]);
    const refused = await run('curl', ['-sS', '--fail', url, '-Q', 'RNFR a.txt', '-Q', 'RNTO /scratch/a.txt']).then(
      () => 'moved',
      (err: Error) => err.message,
    );
    const code = /QUOT command failed with (\d{3})/.exec(refused)?.[1];
    expect(code).toBe('553');
    // Whatever the lines' wrapping.
    const words = (text: string): string => text.replace(/\s+/g, ' ').replace(/ # /g, ' ');
    expect(words(README)).toContain(`a move between backends is refused (\`${code} Cannot move across filesystems.\``);
    expect(words(MOUNTS_EXAMPLE)).toContain(`refused (${code} Cannot move across filesystems.)`);
  } finally {
    expect(await s.stop()).toBe(0);
    await rm(work, { recursive: true, force: true });
  }
});

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { unsupportedNode } from '../src/node-version.js';
import { CLI } from './harness.js';

describe('the Node.js ftpd needs', () => {
  it.each([
    ['20.20.2', true],
    ['22.0.0', true],
    ['22.12.0', true],
    ['22.13.0', false],
    ['22.23.1', false],
    ['23.0.0', false],
    ['24.21.0', false],
  ])('Node %s refused: %s', (version, refused) => {
    const why = unsupportedNode(version);
    if (refused) expect(why).toMatch(new RegExp(`needs Node.js 22.13.0 or later; this is Node.js ${version.replaceAll('.', '\\.')}`));
    else expect(why).toBeNull();
  });

  // The machine's own Node (Debian's, /usr/bin/node) is 20 here: it must get the plain refusal, not a crash
  // about node:sqlite. A machine whose system Node is new enough has nothing to show.
  const systemNode = '/usr/bin/node';
  const systemVersion = existsSync(systemNode) ? execFileSync(systemNode, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim() : null;
  const old = systemVersion !== null && unsupportedNode(systemVersion) !== null;
  if (!old) console.warn(`SKIPPED: no Node older than 22.13 at ${systemNode} (found ${systemVersion ?? 'none'}), so the refusal is checked by the unit rows only`);
  it.skipIf(!old)(`an older Node (${systemNode}, ${systemVersion}) gets one clear line and exit code 1, for --version too`, () => {
    for (const args of [['--version'], ['--port', '0']]) {
      const r = spawnSync(systemNode, [CLI, ...args], { encoding: 'utf8', timeout: 30000 });
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(`${unsupportedNode(systemVersion!)}\n`);
      expect(r.stdout).toBe('');
    }
  });
});

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The README's start command is `pnpm start` at the repository root: its turbo filter must name a package of the
 * workspace. It named `ftpd` (the package is `@ftp/ftpd`), which turbo 2 does not match, so `pnpm start` failed
 * with "No package found with name 'ftpd' in workspace" while every test, which runs the CLI directly, passed.
 */
const root = resolve(import.meta.dirname, '../../..');
const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

function workspacePackages(): Set<string> {
  const names = new Set<string>();
  for (const folder of ['apps', 'packages']) {
    for (const entry of readdirSync(join(root, folder))) {
      const manifest = join(root, folder, entry, 'package.json');
      if (existsSync(manifest)) names.add((JSON.parse(readFileSync(manifest, 'utf8')) as { name: string }).name);
    }
  }
  return names;
}

describe('the root scripts the README gives', () => {
  it.each(['start', 'bench'])('`pnpm %s` builds through a turbo filter that names a workspace package, then runs a built file', (name) => {
    const script = scripts[name];
    expect(script, name).toBeDefined();
    const filters = [...(script as string).matchAll(/--filter=(\S+)/g)].map((m) => (m[1] as string).replace(/\.\.\.$/, ''));
    expect(filters.length).toBeGreaterThan(0);
    const packages = workspacePackages();
    for (const filter of filters) expect(packages, `--filter=${filter}`).toContain(filter);
    const entry = /&& node (\S+)/.exec(script as string)?.[1];
    expect(entry).toBeDefined();
    expect(existsSync(join(root, entry as string)), entry).toBe(true);
  });
});

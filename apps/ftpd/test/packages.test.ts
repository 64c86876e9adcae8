import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MIN_NODE_VERSION } from '../src/node-version.js';

/**
 * What a user installing the packages from npm gets, checked on the manifests and the built files (found by an
 * audit that packed and installed every package: `require()` failed on each, the SQL driver's types named `pg`
 * without its types, `engines` let Node 22.0–22.12 in, where `node:sqlite` does not load, and no LICENSE shipped).
 */
const root = resolve(import.meta.dirname, '../../..');

interface Manifest {
  name: string;
  private?: boolean;
  engines?: { node?: string };
  exports: Record<string, Record<string, string>>;
  files?: string[];
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const published: { dir: string; manifest: Manifest }[] = [];
for (const folder of ['apps', 'packages']) {
  for (const entry of readdirSync(join(root, folder))) {
    const file = join(root, folder, entry, 'package.json');
    if (!existsSync(file)) continue;
    const manifest = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
    if (manifest.private !== true) published.push({ dir: join(root, folder, entry), manifest });
  }
}

/** The package a bare specifier names (`@a/b/c` → `@a/b`, `x/y` → `x`); null for builtins and relative paths. */
function packageOf(specifier: string): string | null {
  if (specifier.startsWith('.') || specifier.startsWith('/') || isBuiltin(specifier)) return null;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] as string);
}

/** Every package the built files of `dir` import (`from '…'`, `import '…'`, `import('…')`, `require('…')`), by file extension. */
function importsOf(dir: string, ending: string): Set<string> {
  const dist = join(dir, 'dist');
  expect(existsSync(dist), `${dist} (run pnpm build)`).toBe(true);
  const names = new Set<string>();
  const files = (readdirSync(dist, { recursive: true }) as string[]).filter((f) => f.endsWith(ending));
  expect(files.length, `${dist}: no *${ending}`).toBeGreaterThan(0);
  for (const file of files) {
    // Block comments dropped: a TSDoc example's `import … from '<the package itself>'` imports nothing.
    const text = readFileSync(join(dist, file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\(\s*)["']([^"']+)["']/g)) {
      const name = packageOf(m[1] as string);
      if (name !== null) names.add(name);
    }
  }
  return names;
}

/** Whether the dependency `name` of the package in `dir` ships its own type declarations. */
function shipsTypes(dir: string, name: string): boolean {
  const home = join(dir, 'node_modules', name);
  const manifest = JSON.parse(readFileSync(join(home, 'package.json'), 'utf8')) as Record<string, unknown>;
  return manifest.types !== undefined || manifest.typings !== undefined || JSON.stringify(manifest.exports ?? {}).includes('"types') || existsSync(join(home, 'index.d.ts'));
}

describe('the published packages', () => {
  it('are all found', () => {
    expect(published.map((p) => p.manifest.name).sort()).toEqual(
      ['@ftp/driver-redis', '@ftp/driver-s3', '@ftp/driver-sql', '@ftp/ftpd', '@ftp/native', '@ftp/protocol', '@ftp/server', '@ftp/vfs', '@ftp/vfs-conformance'],
    );
  });

  it.each(published.map((p) => [p.manifest.name, p] as const))('%s: exports types first and a default (import and require alike)', (_name, { manifest }) => {
    for (const [entry, conditions] of Object.entries(manifest.exports)) {
      expect(Object.keys(conditions), entry).toEqual(['types', 'default']);
    }
  });

  it.each(published.map((p) => [p.manifest.name, p] as const))('%s: declares the Node it loads on, builds before packing, ships a LICENSE', (name, { dir, manifest }) => {
    // Everything but the protocol and native packages loads @platformatic/vfs, which loads node:sqlite.
    expect(manifest.engines?.node).toBe(name === '@ftp/protocol' || name === '@ftp/native' ? '>=22' : `>=${MIN_NODE_VERSION.replace(/\.0$/, '')}`);
    expect(manifest.scripts?.prepack).toBe('tsup');
    expect(manifest.files).toContain('LICENSE');
    expect(readFileSync(join(dir, 'LICENSE'), 'utf8')).toBe(readFileSync(join(root, 'LICENSE'), 'utf8'));
  });

  it.each(published.map((p) => [p.manifest.name, p] as const))('%s: every package its built code or types import is a dependency (types: its own or @types/…)', (_name, { dir, manifest }) => {
    const declared = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})]);
    for (const used of importsOf(dir, '.js')) expect(declared, `${used} (imported by dist)`).toContain(used);
    for (const used of importsOf(dir, '.d.ts')) {
      expect(declared, `${used} (imported by the .d.ts files)`).toContain(used);
      const typesPackage = `@types/${used.replace(/^@/, '').replace('/', '__')}`;
      if (!shipsTypes(dir, used)) expect(declared, `${typesPackage} (${used} has no types of its own)`).toContain(typesPackage);
    }
  });

  it('load with require() from CommonJS as well as with import', () => {
    const names = published.map((p) => p.manifest.name).filter((n) => n !== '@ftp/vfs-conformance' && n !== '@ftp/ftpd');
    // From ftpd's folder, whose node_modules holds the workspace packages: resolved through each `exports`.
    const script = `for (const n of ${JSON.stringify(names)}) { const m = require(n); if (Object.keys(m).length === 0) throw new Error(n + ': empty'); } console.log('ok')`;
    expect(execFileSync(process.execPath, ['-e', script], { cwd: join(root, 'apps/ftpd'), encoding: 'utf8' }).trim()).toBe('ok');
  });
});

import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  // Everything but the addon, which build.mjs compiles after this (a `pnpm pack` runs tsup alone: the built addon
  // stays).
  clean: ['!native.node'],
  target: 'node22',
  // Keep `node:` specifiers: builtins such as node:sqlite exist only under that prefix.
  removeNodeProtocol: false,
});

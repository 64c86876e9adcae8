import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node22',
  // Keep `node:` specifiers: builtins such as node:sqlite exist only under that prefix.
  removeNodeProtocol: false,
});

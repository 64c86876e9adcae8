import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node22',
  // Keep `node:` in imports: `node:sqlite` has no un-prefixed alias.
  removeNodeProtocol: false,
});

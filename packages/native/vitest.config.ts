import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    // The JSON report feeds the repository-wide closing line (scripts/test-summary.mjs).
    reporters: ['default', 'json'],
    outputFile: { json: 'test-report.json' },
  },
});

// Adds up the vitest JSON reports of every package (written by each vitest.config.ts) into one closing line,
// so that a run of all tests ends with a single, machine-readable count.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const reportFiles = () =>
  ['packages', 'apps']
    .filter((g) => existsSync(g))
    .flatMap((g) => readdirSync(g).map((n) => join(g, n)))
    .filter((dir) => existsSync(join(dir, 'vitest.config.ts')));

// `clean`: remove old reports first, so that a package whose tests did not run cannot count with stale figures.
if (process.argv[2] === 'clean') {
  for (const dir of reportFiles()) rmSync(join(dir, 'test-report.json'), { force: true });
  process.exit(0);
}

let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
for (const dir of reportFiles()) {
  const file = join(dir, 'test-report.json');
  if (!existsSync(file)) {
    missing.push(dir);
    continue;
  }
  const report = JSON.parse(readFileSync(file, 'utf8'));
  passed += report.numPassedTests ?? 0;
  failed += (report.numFailedTests ?? 0) + (report.numFailedTestSuites ?? 0);
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  console.log(`${dir}: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${report.numPendingTests} skipped`);
}
// A package whose tests did not run at all counts as a failure: nothing may silently not run.
for (const dir of missing) console.log(`${dir}: no test report (its tests did not run)`);
failed += missing.length;
console.log(`Tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exitCode = failed > 0 ? 1 : 0;

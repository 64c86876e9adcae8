import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { ftpdV8Flags, TURBOFAN_INVOCATIONS } from '../src/v8-flags.js';

const TURBOFAN = `--invocation-count-for-turbofan=${TURBOFAN_INVOCATIONS}`;

it('ftpd turns Maglev off by default, and lets TurboFan in at Maglev’s threshold instead', () => {
  expect(ftpdV8Flags([])).toEqual(['--no-maglev', TURBOFAN]);
  // Other runtime flags, and paths that happen to hold the word, are the operator's business.
  expect(ftpdV8Flags(['--max-semi-space-size=2', '--require', '/opt/maglev/agent.js', '--require=/opt/maglev/x.js'])).toEqual(['--no-maglev', TURBOFAN]);
});

it("the operator's own Maglev flag wins over ftpd's, the last on/off flag deciding", () => {
  // Maglev on: V8's tiering as it is.
  expect(ftpdV8Flags(['--maglev'])).toEqual([]);
  expect(ftpdV8Flags(['--no-maglev', '--maglev'])).toEqual([]);
  // Other Maglev flags: the operator works with Maglev.
  expect(ftpdV8Flags(['--maglev-inlining'])).toEqual([]);
  expect(ftpdV8Flags(['--maglev-filter=*'])).toEqual([]);
  // Maglev off by the operator, in any of V8's spellings: the gap before TurboFan is closed all the same.
  for (const off of ['--no-maglev', '--no_maglev', '--nomaglev', '-no-maglev']) expect(ftpdV8Flags([off])).toEqual([TURBOFAN]);
  expect(ftpdV8Flags(['--maglev', '--no-maglev'])).toEqual([TURBOFAN]);
});

it("the operator's own TurboFan threshold is kept", () => {
  expect(ftpdV8Flags(['--invocation-count-for-turbofan=3000'])).toEqual(['--no-maglev']);
  expect(ftpdV8Flags(['--invocation_count_for_turbofan=100', '--no-maglev'])).toEqual([]);
});

/**
 * Calls a small function until V8 optimizes it, in a fresh process that first sets `flags` at run time as ftpd
 * does (v8.setFlagsFromString); returns the calls made and whether Maglev or TurboFan did it.
 */
function optimizedAfter(flags: string[]): { calls: number; maglev: boolean; turbofan: boolean } {
  const probe = `
    const v8 = require('node:v8');
    for (const flag of ${JSON.stringify(flags)}) v8.setFlagsFromString(flag);
    function hot(a, b) { return a.x * b + a.y; }
    const o = { x: 1, y: 2 };
    let calls = 0;
    // V8's status bits: 32 Maglev code; 64 TurboFan code; 256/512/1024 marked or queued for optimization.
    for (; calls < 20000; calls++) { hot(o, calls); if ((%GetOptimizationStatus(hot) & (32 | 64 | 256 | 512 | 1024)) !== 0) break; }
    const status = %GetOptimizationStatus(hot);
    console.log(JSON.stringify({ calls, maglev: (status & 32) !== 0, turbofan: (status & (64 | 256 | 512 | 1024)) !== 0 }));
  `;
  const child = spawnSync(process.execPath, ['--allow-natives-syntax', '-e', probe], { encoding: 'utf8', timeout: 20_000 });
  expect(child.stderr).toBe('');
  return JSON.parse(child.stdout) as { calls: number; maglev: boolean; turbofan: boolean };
}

it('the flags take effect when set at run time, as ftpd sets them', () => {
  const ours = optimizedAfter(ftpdV8Flags([]));
  // TurboFan at the threshold, give or take V8's budget rounding; Maglev never.
  expect(ours.maglev).toBe(false);
  expect(ours.turbofan).toBe(true);
  expect(ours.calls).toBeLessThan(3 * TURBOFAN_INVOCATIONS);
  // Maglev off alone (ftpd's earlier setting): TurboFan only after V8's default of 3,000 calls or more.
  const maglevOffOnly = optimizedAfter(['--no-maglev']);
  expect(maglevOffOnly.maglev).toBe(false);
  expect(maglevOffOnly.calls).toBeGreaterThan(3000);
});

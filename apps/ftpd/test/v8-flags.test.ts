import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect, it } from 'vitest';
import { applyFtpdV8Flags, ftpdV8Flags, TURBOFAN_INVOCATIONS } from '../src/v8-flags.js';

const TURBOFAN = `--invocation-count-for-turbofan=${TURBOFAN_INVOCATIONS}`;

it('ftpd turns Maglev off by default, and lets TurboFan in at Maglev’s threshold instead', () => {
  expect(ftpdV8Flags([], undefined)).toEqual(['--no-maglev', TURBOFAN]);
  // Heap-size flags are the operator's business and do not change ftpd's choice.
  expect(ftpdV8Flags([], '--max-semi-space-size=2')).toEqual(['--no-maglev', TURBOFAN]);
});

it("the operator's own Maglev flag wins over ftpd's", () => {
  // Maglev on: V8's tiering as it is.
  expect(ftpdV8Flags(['--maglev'], undefined)).toEqual([]);
  expect(ftpdV8Flags([], '--maglev --max-old-space-size=512')).toEqual([]);
  // Maglev off by the operator: the gap before TurboFan is closed all the same.
  expect(ftpdV8Flags([], '--no-maglev')).toEqual([TURBOFAN]);
  expect(ftpdV8Flags(['--no_maglev'], undefined)).toEqual([TURBOFAN]);
});

it("the operator's own TurboFan threshold is kept", () => {
  expect(ftpdV8Flags(['--invocation-count-for-turbofan=3000'], undefined)).toEqual(['--no-maglev']);
  expect(ftpdV8Flags([], '--invocation_count_for_turbofan=100')).toEqual(['--no-maglev']);
});

it('the flags take effect when set at run time, as ftpd sets them', () => {
  // This test process runs with V8's defaults (Maglev on, TurboFan after 3,000 calls): ftpd's flags are set as
  // ftpd's CLI sets them, then V8's defaults are put back. Natives syntax asks V8 what it did with a function.
  expect(applyFtpdV8Flags()).toEqual(['--no-maglev', TURBOFAN]);
  setFlagsFromString('--allow-natives-syntax');
  try {
    const status = runInNewContext(`
      function hot(a, b) { return a.x * b + a.y; }
      const o = { x: 1, y: 2 };
      let calls = 0;
      // 16: optimized; 256/512/1024: marked or queued for optimization.
      for (; calls < 20000; calls++) { hot(o, calls); if ((%GetOptimizationStatus(hot) & (16 | 256 | 512 | 1024)) !== 0) break; }
      calls;
    `) as number;
    // V8 decides at the threshold, give or take its budget's rounding: far sooner than its default of 3,000.
    expect(status).toBeLessThan(3 * TURBOFAN_INVOCATIONS);
  } finally {
    setFlagsFromString('--no-allow-natives-syntax');
    setFlagsFromString('--maglev');
    setFlagsFromString('--invocation-count-for-turbofan=3000');
  }
});

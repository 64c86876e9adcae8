import { expect, it } from 'vitest';
import { ftpdV8Flags } from '../src/v8-flags.js';

it('ftpd turns Maglev off by default', () => {
  expect(ftpdV8Flags([], undefined)).toEqual(['--no-maglev']);
  // Heap-size flags are the operator's business and do not change ftpd's choice.
  expect(ftpdV8Flags([], '--max-semi-space-size=2')).toEqual(['--no-maglev']);
});

it("the operator's own Maglev flag wins over ftpd's", () => {
  expect(ftpdV8Flags(['--maglev'], undefined)).toEqual([]);
  expect(ftpdV8Flags([], '--no-maglev')).toEqual([]);
});

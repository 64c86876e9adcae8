import { expect, it } from 'vitest';
import { ftpdV8Flags } from '../src/v8-flags.js';

it('ftpd turns Maglev off and keeps the young generation at its initial size by default', () => {
  expect(ftpdV8Flags([], undefined)).toEqual(['--no-maglev', '--semi-space-growth-factor=1']);
});

it("the operator's own V8 flags win over ftpd's", () => {
  expect(ftpdV8Flags(['--maglev'], undefined)).toEqual(['--semi-space-growth-factor=1']);
  expect(ftpdV8Flags([], '--max-semi-space-size=64')).toEqual(['--no-maglev']);
  expect(ftpdV8Flags(['--max_semi_space_size=32'], '--no-maglev')).toEqual([]);
});

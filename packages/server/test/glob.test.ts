import { describe, expect, it } from 'vitest';
import { globMatcher } from '../src/glob.js';

/** The shell-style meaning, as a regular expression (what the matcher replaced), for names it can judge quickly. */
const cases: Array<[pattern: string, name: string, expected: boolean]> = [
  ['*.csv', 'a.csv', true],
  ['*.csv', 'a.csv.bak', false],
  ['*', '', true],
  ['?', '', false],
  ['?', 'é', true],
  ['a?c', 'abc', true],
  ['a?c', 'ac', false],
  ['[ac].*', 'c.txt', true],
  ['[ac].*', 'b.txt', false],
  ['[!ac]*', 'b.txt', true],
  ['[^ac]*', 'a.txt', false],
  ['[a-c]x', 'bx', true],
  ['[a-c]x', 'dx', false],
  ['[]]', ']', true],
  ['[!]]', 'x', true],
  ['[!]]', ']', false],
  ['[a-]', '-', true],
  ['[--0]', '/', true],
  ['x[', 'x[', true],
  ['[z-a]', '[z-a]', true],
  ['[z-a]', 'z', false],
  ['?[z-a]', 'x[z-a]', true],
  ['*[z-a]*', 'a[z-a]b', true],
  ['a*b*c', 'aXbYc', true],
  ['a*b*c', 'aXcYb', false],
  ['**a', 'xxa', true],
  ['.*', '.hidden', true],
  ['*\\*', 'a\\b\\', true],
  ['line\nbreak*', 'line\nbreak here', true],
];

describe('glob matcher', () => {
  it.each(cases)('%j against %j is %s', (pattern, name, expected) => {
    expect(globMatcher(pattern)(name)).toBe(expected);
  });

  it('answers patterns built to make a backtracking matcher take exponential time, at once', () => {
    const name = 'a'.repeat(60);
    const started = performance.now();
    expect(globMatcher('*a*a*a*a*a*a*a*a*a*a*b')(name)).toBe(false);
    expect(globMatcher(`${'['.repeat(4000)}z-a]`)(name)).toBe(false);
    // A regular expression of the first pattern takes seconds here; the walk takes microseconds.
    expect(performance.now() - started).toBeLessThan(500);
  });
});

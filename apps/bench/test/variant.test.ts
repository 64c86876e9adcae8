import { expect, it } from 'vitest';
import { ours, parseVariant } from '../src/servers/ours.js';

it('--variant takes NAME=value words (a value may hold = and be empty)', () => {
  expect(parseVariant(' FTP_A=1  B_2=x=y  C= ')).toEqual({ FTP_A: '1', B_2: 'x=y', C: '' });
});

it('--variant refuses words that are not NAME=value, and an empty list', () => {
  expect(() => parseVariant('FTP_A=1 oops')).toThrow(/NAME=value.*"oops"/);
  expect(() => parseVariant('1X=2')).toThrow(/NAME=value/);
  expect(() => parseVariant('   ')).toThrow(/no NAME=value/);
});

it('the variant is a server of its own name, so its figures stand beside ours', () => {
  expect(ours('local', { variant: { A: '1' } }).name).toBe('ours (variant)');
  expect(ours('local').name).toBe('ours');
});

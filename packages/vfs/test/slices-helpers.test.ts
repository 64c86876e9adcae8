import { describe, expect, it } from 'vitest';
import { collectSlices, slicesFromGenerator, slicesOf } from '../src/index.js';
import type { DirEntry } from '../src/index.js';
import { VfsStats } from '../src/index.js';

const entry = (name: string): DirEntry => ({ name, stats: new VfsStats({ kind: 'file', size: 0, mode: 0o644, mtimeMs: 0 }) });

describe('slice helpers', () => {
  it('slicesOf and collectSlices: slices in hand, gathered in order', async () => {
    expect((await collectSlices(slicesOf([[entry('a')], [entry('b'), entry('c')]]))).map((e) => e.name)).toEqual(['a', 'b', 'c']);
  });

  it('slicesFromGenerator: return() without argument stops the generator; a throw ends it', async () => {
    let finallyRan = false;
    async function* pages(): AsyncGenerator<DirEntry[], undefined> {
      try {
        yield [entry('a')];
        yield [entry('b')];
      } finally {
        finallyRan = true;
      }
      return undefined;
    }
    const s = slicesFromGenerator(pages());
    expect((await s.next()).value?.[0]?.name).toBe('a');
    expect((await s.return()).done).toBe(true);
    expect(finallyRan).toBe(true);
    expect((await s.next()).done).toBe(true);

    async function* failing(): AsyncGenerator<DirEntry[], undefined> {
      yield [entry('a')];
      throw new Error('page failed');
    }
    const f = slicesFromGenerator(failing());
    await f.next();
    await expect(f.next()).rejects.toThrow('page failed');
    expect((await f.next()).done).toBe(true);
    expect((await collectSlices(slicesFromGenerator(pages()))).map((e) => e.name)).toEqual(['a', 'b']);
  });

  it('slicesFromGenerator: return() during a slice being read resolves at once; the generator ends after it', async () => {
    let release = (): void => undefined;
    let finallyRan = false;
    async function* slow(): AsyncGenerator<DirEntry[], undefined> {
      try {
        await new Promise<void>((r) => (release = r));
        yield [entry('late')];
        yield [entry('never')];
      } finally {
        finallyRan = true;
      }
      return undefined;
    }
    const s = slicesFromGenerator(slow());
    const reading = s.next();
    expect((await s.return()).done).toBe(true);
    expect(finallyRan).toBe(false);
    expect((await s.next()).done).toBe(true);
    release();
    expect((await reading).value?.[0]?.name).toBe('late');
    await new Promise((r) => setTimeout(r, 0));
    expect(finallyRan).toBe(true);
  });
});

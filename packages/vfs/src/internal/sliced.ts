import { toVfsError } from '../errors.js';
import type { DirSlices, NameSlices } from '../spec.js';

/** `DirSlices` or `NameSlices` (see `spec.ts`). */
export interface Sliced<T> extends AsyncIterableIterator<T[]> {
  return(): Promise<IteratorResult<T[]>>;
  readonly sorted?: boolean;
  readonly held?: number;
}

/** `slices` with the errors of its `next()` as `VfsError`s naming `path`. */
export function mapErrors<T>(slices: Sliced<T>, path: string): Sliced<T> {
  return {
    next: () => slices.next().catch((err: unknown) => Promise.reject(toVfsError(err, path))),
    return: () => slices.return(),
    // A getter: a provider may know only once its first slice has come. Unset stays unset: false says the provider
    // sorts but this folder was past its limit, unset that it does not sort at all (its caller may gather to sort).
    get sorted() {
      return slices.sorted;
    },
    get held() {
      return slices.held;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** `slicesFromGenerator` of `listing.ts`, for slices of any kind. */
export function fromGenerator<T>(pages: AsyncGenerator<T[], undefined>): Sliced<T> {
  let reading: Promise<unknown> | null = null;
  let ended = false;
  const done = (): IteratorResult<T[]> => ({ done: true, value: undefined });
  return {
    next: () => {
      if (ended) return Promise.resolve(done());
      const got = pages.next();
      const current = got.finally(() => {
        if (reading === current) reading = null;
      });
      current.catch(() => undefined);
      reading = current;
      return got;
    },
    return: () => {
      ended = true;
      const closing = pages.return(undefined);
      if (reading === null) return closing;
      closing.catch(() => undefined); // runs after the slice being read; nobody waits for it
      return Promise.resolve(done());
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** Slices already in hand (`slicesOf` of `listing.ts`, for slices of any kind). */
export function inHand<T>(slices: readonly T[][]): Sliced<T> {
  let i = 0;
  const done = (): IteratorResult<T[]> => ({ done: true, value: undefined });
  return {
    next: async () => (i < slices.length ? { done: false, value: slices[i++] as T[] } : done()),
    return: async () => {
      i = slices.length;
      return done();
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** The names of `slices`' entries. */
export function namesOf(slices: DirSlices): NameSlices {
  return {
    async next() {
      const got = await slices.next();
      return got.done === true ? got : { done: false, value: got.value.map((e) => e.name) };
    },
    async return() {
      await slices.return();
      return { done: true, value: undefined };
    },
    get sorted() {
      return slices.sorted;
    },
    get held() {
      return slices.held;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

// Bounded waits and descriptor counts the addon's tests share: no wait in them is unbounded.
import { readdirSync, readlinkSync } from 'node:fs';

/** Rejects after `ms` with a message naming what was awaited. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits until `check()` is true, polling; fails after `ms`. */
export async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** How many sockets this process has open (the addon's copies included). */
export function openSockets(): number {
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) count++;
    } catch {
      // closed meanwhile
    }
  }
  return count;
}

/** The rejection of `promise` (fails if it resolves, or after `ms`). */
export async function rejection<E = NodeJS.ErrnoException>(promise: Promise<unknown>, ms: number, what: string): Promise<E> {
  return within(
    promise.then(
      (value) => {
        throw new Error(`${what}: expected a rejection, got ${JSON.stringify(value)}`);
      },
      (err: E) => err,
    ),
    ms,
    what,
  );
}

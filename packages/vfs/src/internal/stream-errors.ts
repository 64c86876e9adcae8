import type { Stream } from 'node:stream';
import { toVfsError } from '../errors.js';

/**
 * Makes every `error` a stream emits a `VfsError` naming `path`, so neither a provider's own error class nor a host
 * path reaches a listener. Patches the instance's `emit` (nothing is added per chunk); a wrapper may patch again
 * with its own path.
 */
export function mapStreamErrors<T extends Stream>(stream: T, path: string): T {
  const emit = stream.emit;
  stream.emit = function (this: T, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'error') args[0] = toVfsError(args[0], path);
    return emit.call(this, event, ...args);
  } as T['emit'];
  return stream;
}

import { MemoryProvider, slicesOf, type DirEntry, type DirSlices, type FsProvider, type ListSlicesOptions } from '@ftp/vfs';
import { FtpServer, type ServerSettings } from '../src/index.js';
import { RawClient } from './helpers.js';

// A folder listed a slice at a time, made as it is asked for: for tests of listings sent as they are read.

/**
 * `count` slices of 100 entries made as asked for; counts them and whether the listing was ended. `sorted`: the
 * entries come in name order and the slices say so (as the local disk's do when asked), and `made.sortedUpTo`
 * records what the server asked for.
 */
export function countedFolder(count: number, failAt = -1, hold?: { at: number; gate: Promise<void> }, sorted?: boolean) {
  const made: { slices: number; ended: boolean; sortedUpTo?: number | undefined } = { slices: 0, ended: false };
  const p = new MemoryProvider() as MemoryProvider & { listSlices(path: string, options?: ListSlicesOptions): Promise<DirSlices> };
  p.listSlices = async (path: string, options?: ListSlicesOptions): Promise<DirSlices> => {
    if (path !== '/huge') return slicesOf([await p.list!(path)]);
    made.sortedUpTo = options?.sortedUpTo;
    const file = await p.stat('/seed');
    let i = 0;
    const slices: DirSlices = {
      async next(): Promise<IteratorResult<DirEntry[]>> {
        if (made.ended || i >= count) return { done: true, value: undefined };
        if (hold !== undefined && i === hold.at) await hold.gate;
        if (i === failAt) throw Object.assign(new Error('EIO: i/o error, lstat'), { code: 'EIO' });
        const slice = Array.from({ length: 100 }, (_, k) => ({ name: `s${String(i).padStart(6, '0')}-${'n'.repeat(60)}-${sorted ? String(k).padStart(3, '0') : k}`, stats: file }));
        i++;
        made.slices++;
        return { done: false, value: slice };
      },
      async return(): Promise<IteratorResult<DirEntry[]>> {
        made.ended = true;
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return slices;
      },
      sorted,
    };
    return slices;
  };
  return { p, made };
}

/** Makes the folder `/huge` that {@link countedFolder} lists, and the file whose stats its entries have. */
export async function seeded(p: MemoryProvider): Promise<void> {
  await p.mkdir('/huge');
  const w = await p.createWriteStream!('/seed');
  await new Promise<void>((r) => w.end('x', () => r()));
}

/** A client logged in to a server on `fsp`; both are closed by `cleanups`. */
export async function loggedIn(fsp: FsProvider, settings: Partial<ServerSettings>, cleanups: Array<() => unknown>): Promise<RawClient> {
  const server = new FtpServer({ settings: { failedLoginDelay: 0, ...settings }, driver: { authenticate: () => ({ fs: fsp }) } });
  const { port } = await server.listen(0, '127.0.0.1');
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close(), () => server.close());
  await c.login();
  return c;
}

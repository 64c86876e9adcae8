import { describe, expect, it } from 'vitest';
import { collectSlices, VfsStats } from '@ftp/vfs';
import type { DirEntry } from '@ftp/vfs';
import { pagedSlices, pageLimit } from '../src/list-slices.js';
import type { ListPage, PageReader } from '../src/list-slices.js';

// pagedSlices against scripted pages, for what a real Redis only does by chance: repeats, a scan that never ends.

function entry(name: string): DirEntry {
  return { name, stats: new VfsStats({ kind: 'file', size: 1, mode: 0o644, mtimeMs: 0, ino: 1 }) };
}

function page(cursor: string, names: string[], size = 10): ListPage {
  return { ino: '7', cursor, size, entries: names.map(entry) };
}

/** A reader answering `pages` in turn, recording the cursors it was asked for. */
function reader(pages: ListPage[]): PageReader & { asked: string[] } {
  const asked: string[] = [];
  const read = async (ino: string, cursor: string): Promise<ListPage> => {
    expect(ino).toBe('7');
    asked.push(cursor);
    const next = pages.shift();
    if (next === undefined) throw new Error('read past the last page');
    return next;
  };
  return Object.assign(read, { asked });
}

describe('pagedSlices', () => {
  it('sends each name once, though HSCAN repeats it within a page or in a later one', async () => {
    const read = reader([page('12', ['b', 'c', 'a']), page('0', ['d', 'b', 'e'])]);
    const slices = pagedSlices(page('4', ['a', 'b', 'a']), read, '/dir');
    const got: string[][] = [];
    for await (const slice of slices) got.push(slice.map((e) => e.name));
    expect(got).toEqual([['a', 'b'], ['c'], ['d', 'e']]);
    expect(read.asked).toEqual(['4', '12']);
  });

  it('gives no empty slice for pages with nothing new, and reads no page after the cursor came back to 0', async () => {
    const read = reader([page('9', []), page('3', ['a']), page('0', [])]);
    expect((await collectSlices(pagedSlices(page('5', ['a']), read, '/dir'))).map((e) => e.name)).toEqual(['a']);
    expect(read.asked).toEqual(['5', '9', '3']);
  });

  it('gives a scan that never ends up with EIO after a bounded number of pages, and then has ended', async () => {
    let reads = 0;
    const endless: PageReader = async (_ino, cursor) => {
      reads++;
      return page(String(Number(cursor) + 1), [`n${reads}`], 1_200);
    };
    const slices = pagedSlices(page('1', ['first'], 1_200), endless, '/dir');
    await expect(collectSlices(slices)).rejects.toMatchObject({ code: 'EIO', syscall: 'scandir', path: '/dir' });
    expect(reads).toBe(pageLimit(1_200) - 1);
    expect((await slices.next()).done).toBe(true);
    expect((await slices.return()).done).toBe(true);
  });

  it('a failed page rejects next() with its error, ends the listing, and return() still resolves', async () => {
    const failure = Object.assign(new Error('EIO: redis: Connection is closed., scandir'), { code: 'EIO' });
    const slices = pagedSlices(page('4', ['a']), async () => Promise.reject(failure), '/dir');
    expect((await slices.next()).value).toHaveLength(1);
    await expect(slices.next()).rejects.toBe(failure);
    expect((await slices.next()).done).toBe(true);
    expect((await slices.return()).done).toBe(true);
  });

  it('return() before or between slices reads no further page', async () => {
    const read = reader([page('0', ['b'])]);
    const unstarted = pagedSlices(page('4', ['a']), read, '/dir');
    expect(await unstarted.return()).toEqual({ done: true, value: undefined });
    expect((await unstarted.next()).done).toBe(true);
    const started = pagedSlices(page('4', ['a']), read, '/dir');
    expect((await started.next()).done).toBe(false);
    await started.return();
    expect((await started.next()).done).toBe(true);
    expect(read.asked).toEqual([]);
  });
});

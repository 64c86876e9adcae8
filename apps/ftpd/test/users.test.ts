import { MemoryProvider, type FsProvider } from '@ftp/vfs';
import { describe, expect, it } from 'vitest';
import { homeMaker } from '../src/users.js';

describe("a user's homes", () => {
  it('are made at a login; a backend that failed (down at the first login) is asked again at the next one, then no more', async () => {
    const memory = new MemoryProvider();
    const asked: string[] = [];
    let down = true;
    const backend = Object.assign(Object.create(memory) as FsProvider, {
      mkdir: async (path: string, options?: { recursive?: boolean }) => {
        asked.push(path);
        if (down) throw Object.assign(new Error('EIO: backend unreachable'), { code: 'EIO' });
        return memory.mkdir(path, options);
      },
    });
    const ensure = homeMaker(new Map([['b', backend]]), [{ backend: 'b', home: '/alice' }]);
    await ensure(); // the login goes on: the commands will say what is wrong
    down = false;
    await ensure();
    expect((await memory.stat('/alice')).isDirectory()).toBe(true);
    await ensure();
    expect(asked).toEqual(['/alice', '/alice']);
  });

  it('a backend that refuses for good (read-only) is not asked again at every login', async () => {
    const asked: string[] = [];
    const backend = Object.assign(Object.create(new MemoryProvider()) as FsProvider, {
      mkdir: async (path: string) => {
        asked.push(path);
        throw Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' });
      },
    });
    const ensure = homeMaker(new Map([['b', backend]]), [{ backend: 'b', home: '/bob' }]);
    for (let i = 0; i < 3; i++) await ensure();
    expect(asked).toEqual(['/bob']);
  });
});

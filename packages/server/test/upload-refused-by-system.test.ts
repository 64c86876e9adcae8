// An upload the file system refuses (no write permission for the server's user, an immutable file or folder, a
// read-only mount or backend) is refused before the 150 (STOR and STOU 553, APPE 550: RFC 959 §5.4), not after it with
// a 551 once the client has begun sending, and the data connection set up is still there for the next command. As
// root, which passes permission bits, the local-disk case needs immutable entries (chattr +i).
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvider, MemoryProvider, readOnly, type FsProvider } from '@ftp/vfs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { RawClient, readAll, startServer, writeAndClose } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function session(fs: FsProvider): Promise<RawClient> {
  const ctx = await startServer({ fs });
  cleanups.push(() => ctx.close());
  return RawClient.binarySession(ctx.port, cleanups);
}

/**
 * STOR, APPE and STOU of each of `names` (STOU not in `open/`, a folder that takes new names), and REST + STOR of those
 * that exist (not named new…), are refused before any 150, with `text`; returns the data connection set up before
 * them, still unused.
 */
async function refusedBefore150(c: RawClient, names: string[], text: string): Promise<Socket> {
  const socket = await c.passive();
  for (const name of names) {
    for (const [command, code] of [['STOR', 553], ['APPE', 550], ['STOU', 553]] as const) {
      // STOU makes a new name beside one that exists: refused only where the folder refuses new names.
      if (command === 'STOU' && name.startsWith('open/')) continue;
      expect(await c.cmd(`${command} ${name}`), `${command} ${name}`).toMatchObject({ code, text });
    }
    // A restart point inside a file that exists (past the end of a new one it is 554 whatever the system says).
    if (name.split('/').pop()!.startsWith('new')) continue;
    expect((await c.cmd('REST 1')).code).toBe(350);
    expect(await c.cmd(`STOR ${name}`), `REST + STOR ${name}`).toMatchObject({ code: 553, text });
  }
  return socket;
}

describe('a read-only backend', () => {
  it('refuses every upload before its 150, and keeps the data connection for what it can serve', async () => {
    const inner = new MemoryProvider();
    await inner.writeFile('/old.txt', 'old');
    const c = await session(readOnly(inner));
    const socket = await refusedBefore150(c, ['old.txt', 'new.txt'], 'Read-only file system.');
    c.send('RETR old.txt');
    expect((await c.next()).code).toBe(150);
    expect((await readAll(socket)).toString()).toBe('old');
    expect((await c.next()).code).toBe(226);
  });
});

const root = process.getuid?.() === 0;
const base = mkdtempSync(join(tmpdir(), 'upload-refused-'));
const frozen = [join(base, 'frozen'), join(base, 'frozen/old.txt'), join(base, 'open/frozen.txt')];
mkdirSync(join(base, 'frozen'));
mkdirSync(join(base, 'open'));
writeFileSync(join(base, 'frozen/old.txt'), 'old');
writeFileSync(join(base, 'open/frozen.txt'), 'kept');

/** Makes the `frozen` entries refuse writes to this process; the reason it cannot, or null. */
function freeze(): string | null {
  if (!root) {
    for (const p of frozen) chmodSync(p, p.endsWith('.txt') ? 0o444 : 0o555);
    return null;
  }
  try {
    execFileSync('chattr', ['+i', ...frozen], { stdio: 'pipe' });
    return null;
  } catch (err) {
    return `chattr +i failed here (${(err as Error).message.split('\n')[0]}): root passes permission bits, and this file system cannot make a file immutable`;
  }
}
const whyNot = freeze();
if (whyNot !== null) console.warn(`upload-refused-by-system: local disk SKIPPED — ${whyNot}`);
afterAll(() => {
  if (whyNot === null) {
    if (root) execFileSync('chattr', ['-i', ...frozen], { stdio: 'pipe' });
    else for (const p of frozen) chmodSync(p, 0o755);
  }
  rmSync(base, { recursive: true, force: true });
});

describe.skipIf(whyNot !== null)(`the local disk${whyNot ? ` — SKIPPED: ${whyNot}` : ''}`, () => {
  for (const syncMetadata of [true, false]) {
    it(`refuses before its 150 an upload the system would refuse (syncMetadata: ${syncMetadata}); the files stay as they were`, async () => {
      cleanups.push(() => rmSync(join(base, 'open/new.txt'), { force: true }));
      const c = await session(new LocalProvider(base, { syncMetadata }));
      const text = root ? 'Operation not permitted.' : 'Permission denied.';
      const socket = await refusedBefore150(c, ['frozen/old.txt', 'frozen/new.txt', 'open/frozen.txt'], text);
      c.send('STOR open/new.txt');
      expect((await c.next()).code).toBe(150);
      await writeAndClose(socket, 'ok');
      expect((await c.next()).code).toBe(226);
      expect(readFileSync(join(base, 'frozen/old.txt'), 'utf8')).toBe('old');
      expect(readFileSync(join(base, 'open/frozen.txt'), 'utf8')).toBe('kept');
      expect(existsSync(join(base, 'frozen/new.txt'))).toBe(false);
      expect(readFileSync(join(base, 'open/new.txt'), 'utf8')).toBe('ok');
    });
  }
});

// What the system will refuse the server's user is said before anything is opened: an upload it may not write
// (`checkUpload`: no write permission, an immutable file or folder, a read-only mount), so that the server refuses it
// before its 150 rather than with a 551 after it; a folder it may not search (`checkEnter`), refused at CWD. Root
// passes permission bits, so as root the upload's refusal comes from immutable entries (chattr +i, which ext4, XFS and
// btrfs support) and a folder's cannot be shown at all; as any other user, from modes.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDirectory, LocalProvider, MemoryProvider, mounts, openWriteStream, quota, readOnly, scoped, toVfsError, type FsProvider } from '../src/index.js';

const base = fs.mkdtempSync(join(tmpdir(), 'check-upload-'));
const frozen = [join(base, 'frozen'), join(base, 'frozen/old.txt'), join(base, 'open/frozen.txt')];
fs.mkdirSync(join(base, 'frozen'));
fs.mkdirSync(join(base, 'open'));
fs.writeFileSync(join(base, 'frozen/old.txt'), 'old');
fs.writeFileSync(join(base, 'open/frozen.txt'), 'kept');
fs.writeFileSync(join(base, 'open/free.txt'), 'free');
// A dangling link in the folder that refuses new names, to a file the open would create in one that takes them.
fs.symlinkSync('../open/through-link.txt', join(base, 'frozen/link'));

/** Makes the `frozen` entries refuse writes to this process; the reason it cannot, or null. */
function freeze(): string | null {
  if (process.getuid?.() !== 0) {
    for (const p of frozen) fs.chmodSync(p, fs.statSync(p).isDirectory() ? 0o555 : 0o444);
    return null;
  }
  try {
    execFileSync('chattr', ['+i', ...frozen], { stdio: 'pipe' });
    return null;
  } catch (err) {
    return `chattr +i failed here (${(err as Error).message.split('\n')[0]}): this file system or container cannot make a file immutable, and root passes permission bits`;
  }
}

function thaw(): void {
  if (process.getuid?.() === 0) execFileSync('chattr', ['-i', ...frozen], { stdio: 'pipe' });
  else for (const p of frozen) fs.chmodSync(p, 0o755);
}

const whyNot = freeze();
if (whyNot !== null) console.warn(`local-access-checks: SKIPPED — ${whyNot}`);
afterAll(() => {
  if (whyNot === null) thaw();
  fs.rmSync(base, { recursive: true, force: true });
});

async function code(promise: Promise<unknown> | undefined): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return toVfsError(err).code;
  }
}

const refused = process.getuid?.() === 0 ? 'EPERM' : 'EACCES';

describe.skipIf(whyNot !== null)(`checkUpload says before any open what the upload's open would refuse${whyNot ? ` — SKIPPED: ${whyNot}` : ''}`, () => {
  for (const syncMetadata of [true, false]) {
    describe(`local disk (syncMetadata: ${syncMetadata})`, () => {
      let p: LocalProvider;
      beforeAll(() => {
        p = new LocalProvider(base, { syncMetadata });
      });

      it('refuses a new file in a folder it cannot add to, and an existing file it cannot write, as the open does', async () => {
        for (const path of ['/frozen/new.txt', '/frozen/old.txt', '/open/frozen.txt']) {
          expect(await code(p.checkUpload(path)), path).toBe(refused);
          expect(await code(openWriteStream(p, path).then((s) => s.destroy())), `${path}: the open agrees`).toBe(refused);
        }
        // What the caller's own lookup said is used instead of looking again, and says the same.
        expect(await code(p.checkUpload('/frozen/old.txt', {}, await p.stat('/frozen/old.txt')))).toBe(refused);
        expect(await code(p.checkUpload('/frozen/new.txt', {}, null))).toBe(refused);
        expect(fs.existsSync(join(base, 'frozen/new.txt')), 'nothing was created').toBe(false);
      });

      it('names the upload in its refusal, not the folder', async () => {
        const err = await p.checkUpload('/frozen/new.txt').then(() => null, (e: unknown) => toVfsError(e));
        expect(err?.message).toContain('/frozen/new.txt');
      });

      it('passes what the open would take: a new file in a writable folder, a writable file, and changes nothing', async () => {
        expect(await code(p.checkUpload('/open/new.txt'))).toBe('resolved');
        expect(await code(p.checkUpload('/open/free.txt', { append: true }))).toBe('resolved');
        expect(await code(p.checkUpload('/new-at-root.txt', {}, null))).toBe('resolved');
        expect(fs.existsSync(join(base, 'open/new.txt'))).toBe(false);
        expect(fs.readFileSync(join(base, 'open/free.txt'), 'utf8')).toBe('free');
      });

      it('leaves an upload through a dangling link to the open, which creates the target where the link leads', async () => {
        expect(await code(p.checkUpload('/frozen/link', {}, null))).toBe('resolved');
        expect(await code(p.checkUpload('/frozen/link'))).toBe('resolved');
        const ws = await openWriteStream(p, '/frozen/link');
        await new Promise<void>((resolve, reject) => ws.end(Buffer.from('via link'), () => resolve()).on('error', reject));
        expect(fs.readFileSync(join(base, 'open/through-link.txt'), 'utf8')).toBe('via link');
        fs.rmSync(join(base, 'open/through-link.txt'));
      });

      it('says ENOENT for a folder that is not there', async () => {
        expect(await code(p.checkUpload('/missing/new.txt', {}, null))).toBe('ENOENT');
      });
    });
  }

  it('is forwarded by the wrappers, with their paths mapped to the provider', async () => {
    const p = new LocalProvider(base, { syncMetadata: true });
    const wrapped: Array<[string, FsProvider, string, string]> = [
      ['scoped', scoped(p, '/open'), '/frozen.txt', '/new.txt'],
      ['mounts', mounts(new MemoryProvider(), { '/disk': p }), '/disk/frozen/new.txt', '/disk/open/new.txt'],
      ['quota', quota(p, { bytes: 1 << 20 }), '/frozen/new.txt', '/open/new.txt'],
    ];
    for (const [name, w, bad, good] of wrapped) {
      expect(await code(w.checkUpload?.(bad)), `${name} ${bad}`).toBe(refused);
      expect(await code(w.checkUpload?.(good)), `${name} ${good}`).toBe('resolved');
    }
    // A mount without it (memory) has nothing to say.
    const m = mounts(new MemoryProvider(), { '/disk': p });
    expect(await code(m.checkUpload?.('/elsewhere.txt'))).toBe('resolved');
  });
});

describe('readOnly', () => {
  it('refuses every upload in checkUpload, with EROFS, whatever the provider under it', async () => {
    expect(await code(readOnly(new MemoryProvider()).checkUpload?.('/any.txt'))).toBe('EROFS');
  });
});

const asRoot = process.getuid?.() === 0;

describe.skipIf(asRoot)(`checkEnter refuses a folder the server's user may not search${asRoot ? ' — SKIPPED: run as root, which searches any folder (apps/ftpd\'s non-root test runs the server as nobody and checks CWD there)' : ''}`, () => {
  for (const syncMetadata of [true, false]) {
    it(`(syncMetadata: ${syncMetadata})`, async () => {
      const p = new LocalProvider(base, { syncMetadata });
      fs.mkdirSync(join(base, 'unsearchable'), { recursive: true });
      fs.chmodSync(join(base, 'unsearchable'), 0o644);
      try {
        expect(await code(p.checkEnter('/unsearchable'))).toBe('EACCES');
        expect(await code(p.checkEnter('/open'))).toBe('resolved');
        expect(await code(p.checkEnter('/'))).toBe('resolved');
      } finally {
        fs.chmodSync(join(base, 'unsearchable'), 0o755);
      }
    });
  }
});

describe('the wrappers forward checkUpload and checkEnter with their paths mapped, and only where the provider has them', () => {
  /** A provider that records what it is asked, refusing paths under /no. */
  function recorder(): { p: FsProvider; asked: string[] } {
    const asked: string[] = [];
    const p = new MemoryProvider() as unknown as FsProvider & { checkEnter(path: string): Promise<void>; checkUpload(path: string): Promise<void> };
    const answer = async (what: string, path: string): Promise<void> => {
      asked.push(`${what} ${path}`);
      if (path.startsWith('/no')) throw Object.assign(new Error(`EACCES: ${path}`), { code: 'EACCES' });
    };
    p.checkEnter = (path) => answer('enter', path);
    p.checkUpload = (path) => answer('upload', path);
    return { p, asked };
  }

  it('scoped, mounts, quota and readOnly', async () => {
    const scope = recorder();
    const s = scoped(scope.p, '/home/alice');
    await s.checkEnter?.('/docs');
    await s.checkUpload?.('/docs/a.txt');
    expect(scope.asked).toEqual(['enter /home/alice/docs', 'upload /home/alice/docs/a.txt']);

    const mount = recorder();
    const m = mounts(new MemoryProvider(), { '/disk': mount.p });
    expect(await code(m.checkEnter?.('/disk/no'))).toBe('EACCES');
    await m.checkUpload?.('/disk/f.txt');
    await m.checkEnter?.('/elsewhere');
    expect(mount.asked).toEqual(['enter /no', 'upload /f.txt']);

    const q = recorder();
    const limited = quota(q.p, { bytes: 1 << 20 });
    await limited.checkEnter?.('/x');
    await limited.checkUpload?.('/x/y');
    expect(q.asked).toEqual(['enter /x', 'upload /x/y']);

    const ro = recorder();
    const r = readOnly(ro.p);
    await r.checkEnter?.('/x');
    expect(await code(r.checkUpload?.('/x/y'))).toBe('EROFS');
    expect(ro.asked).toEqual(['enter /x']);

    // A folder that only leads to a mount point is not in the root provider, and is entered all the same.
    const disk = mounts(new LocalProvider(base, { syncMetadata: true }), { '/virtual/inner': new MemoryProvider() });
    expect(await code(disk.checkEnter?.('/virtual'))).toBe('resolved');
    expect(await code(disk.checkEnter?.('/virtual/inner'))).toBe('resolved');
    expect(await code(disk.checkEnter?.('/absent'))).toBe('ENOENT');

    // A folder on the way to a mount point that the root provider refuses to enter is entered all the same (the mount
    // below it stays reachable), and lists the mount points.
    const refusing = recorder();
    const over = mounts(refusing.p, { '/no/inner': new MemoryProvider() });
    expect(await code(over.checkEnter?.('/no'))).toBe('resolved');
    expect(await code(over.checkEnter?.('/no-mount'))).toBe('EACCES');
    const unlisted = new MemoryProvider();
    await unlisted.mkdir('/no');
    for (const method of ['list', 'listSlices', 'listNameSlices', 'readdir'] as const) {
      (unlisted as unknown as Record<string, unknown>)[method] = async () => {
        throw Object.assign(new Error('EACCES: /no'), { code: 'EACCES' });
      };
    }
    expect((await listDirectory(mounts(unlisted, { '/no/inner': new MemoryProvider() }), '/no')).map((e) => e.name)).toEqual(['inner']);

    // A provider without them: nothing to forward.
    expect(scoped(new MemoryProvider(), '/a').checkEnter).toBeUndefined();
    expect(mounts(new MemoryProvider(), { '/b': new MemoryProvider() }).checkUpload).toBeUndefined();
  });
});

/** Why a process cannot be run here without /proc (a mount namespace needs root and unshare(1)), or null. */
function noProcUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root, for a mount namespace with no /proc';
  const probe = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none /proc && test ! -e /proc/self'], { stdio: 'pipe' });
  return probe.status === 0 ? null : `unshare -m cannot hide /proc here: ${String(probe.stderr).trim() || probe.error?.message}`;
}
const noProc = noProcUnavailable();
if (noProc !== null) console.warn(`local-access-checks: the no-/proc test SKIPPED — ${noProc}`);

it.skipIf(noProc !== null)(`without /proc (a chroot, a sandbox), the checks answer through the careful path${noProc ? ` — SKIPPED: ${noProc}` : ''}`, () => {
  // The bug: with /proc missing, the access(2) through /proc/self/fd said ENOENT, and CWD into any folder and uploads
  // into any but the root were refused. The built package is what a process without /proc runs.
  const dist = new URL('../dist/index.js', import.meta.url).pathname;
  expect(fs.existsSync(dist), `${dist} is built before the tests (turbo's test depends on build)`).toBe(true);
  const script = join(base, 'no-proc.mjs');
  fs.writeFileSync(
    script,
    `import { LocalProvider } from ${JSON.stringify(dist)};
const p = new LocalProvider(${JSON.stringify(base)}, { syncMetadata: true });
const out = {};
for (const [k, f] of [['enter', () => p.checkEnter('/open')], ['upload new', () => p.checkUpload('/open/new.txt', {}, null)], ['upload', () => p.checkUpload('/open/free.txt')], ['frozen', () => p.checkUpload('/frozen/new.txt', {}, null)]]) {
  try { await f(); out[k] = 'resolved'; } catch (e) { out[k] = e.code; }
}
console.log(JSON.stringify(out));
`,
  );
  const run = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs none /proc && exec "${process.execPath}" "${script}"`], { stdio: 'pipe', timeout: 30_000 });
  expect(run.status, String(run.stderr)).toBe(0);
  expect(JSON.parse(String(run.stdout))).toEqual({ enter: 'resolved', 'upload new': 'resolved', upload: 'resolved', frozen: whyNot === null ? refused : 'resolved' });
});

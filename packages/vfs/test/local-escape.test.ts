import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, RealFSProvider } from '@platformatic/vfs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDirectory, LocalProvider, openReadStream, openWriteStream, toVfsError } from '../src/index.js';
import type { VfsErrorCode } from '../src/index.js';

let base: string;
let root: string;
let outside: string;
let p: LocalProvider;

async function code(promise: Promise<unknown> | (() => unknown)): Promise<VfsErrorCode | 'resolved'> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
    return 'resolved';
  } catch (err) {
    return toVfsError(err).code;
  }
}

/** The error code a synchronous call throws, or 'resolved'. */
function sync(fn: () => unknown): string {
  try {
    fn();
    return 'resolved';
  } catch (err) {
    return toVfsError(err).code;
  }
}

async function upload(path: string, data: string, options?: { start?: number; append?: boolean }): Promise<void> {
  const ws = await openWriteStream(p, path, options);
  await new Promise<void>((resolve, reject) => {
    ws.on('error', reject);
    ws.end(Buffer.from(data), () => resolve());
  });
}

async function download(path: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of await openReadStream(p, path)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

beforeAll(() => {
  base = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), 'ftp-vfs-escape-')));
  root = join(base, 'root');
  outside = join(base, 'outside');
  fs.mkdirSync(join(root, 'sub'), { recursive: true });
  fs.mkdirSync(join(outside, 'outdir'), { recursive: true });
  fs.writeFileSync(join(outside, 'secret.txt'), 'secret');
  fs.writeFileSync(join(root, 'inside.txt'), 'inside');
  fs.symlinkSync('/etc', join(root, 'etc')); // absolute, outside
  fs.symlinkSync('../..', join(root, 'up')); // relative, climbs out
  fs.symlinkSync('../outside', join(root, 'out')); // a directory outside
  fs.symlinkSync('../outside/secret.txt', join(root, 'secretlink')); // a file outside
  fs.symlinkSync('../outside/newfile', join(root, 'dangling-out')); // dangling, outside
  fs.symlinkSync('inside.txt', join(root, 'inlink')); // legit
  fs.symlinkSync('..', join(root, 'sub', 'uplink')); // legit: back to the root
  fs.symlinkSync('/../../..', join(root, 'sub', 'abs-up')); // absolute, resolves to the host's /
});

afterAll(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

// Both modes of the provider: every check must hold whether metadata calls run synchronously or in the pool.
for (const syncMetadata of [true, false]) {
  describe(`syncMetadata: ${syncMetadata}`, () => {
    beforeAll(() => {
      p = new LocalProvider(root, { syncMetadata });
    });

  describe('LocalProvider: symlinks planted inside the root are not followed out (EACCES)', () => {
    it('a link to /etc: stat, readdir, list, open, streams', async () => {
      expect(await code(p.stat('/etc'))).toBe('EACCES');
      expect(await code(p.stat('/etc/passwd'))).toBe('EACCES');
      expect(await code(p.readdir('/etc'))).toBe('EACCES');
      expect(await code(p.list('/etc'))).toBe('EACCES');
      expect(await code(listDirectory(p, '/etc'))).toBe('EACCES');
      expect(await code(p.open('/etc/passwd', 'r'))).toBe('EACCES');
      expect(await code(openReadStream(p, '/etc/passwd'))).toBe('EACCES');
      expect(await code(p.realpath('/etc'))).toBe('EACCES');
      expect(await code(p.access('/etc/passwd'))).toBe('EACCES');
      expect(await code(p.availableSpace('/etc'))).toBe('EACCES');
    });

    it('a path through a link to outside fails with EACCES whatever lies behind it (no ENOTDIR oracle)', async () => {
      // root/out -> ../outside, where secret.txt is a file: /out/secret.txt/x must not say "not a directory".
      expect(await code(p.stat('/out/secret.txt/x'))).toBe('EACCES');
      expect(await code(p.stat('/out/missing/x'))).toBe('EACCES');
      expect(await code(p.open('/out/secret.txt/x', 'r'))).toBe('EACCES');
      expect(await code(p.mkdir('/out/secret.txt/y'))).toBe('EACCES');
      expect(await code(p.list('/out/secret.txt/x'))).toBe('EACCES');
      expect(await code(openWriteStream(p, '/out/secret.txt/x'))).toBe('EACCES');
      expect(await code(p.unlink('/out/secret.txt/x'))).toBe('EACCES');
    });

    it('a link to ../.. and an absolute link to the host root', async () => {
      expect(await code(p.stat('/up'))).toBe('EACCES');
      expect(await code(p.readdir('/up'))).toBe('EACCES');
      expect(await code(p.stat('/up/outside/secret.txt'))).toBe('EACCES');
      expect(await code(p.readdir('/sub/abs-up'))).toBe('EACCES');
    });

    it('a link to a directory outside: no reading, writing, creating, renaming or deleting through it', async () => {
      expect(await code(p.readdir('/out'))).toBe('EACCES');
      expect(await code(download('/out/secret.txt'))).toBe('EACCES');
      expect(await code(upload('/out/planted.txt', 'x'))).toBe('EACCES');
      expect(fs.existsSync(join(outside, 'planted.txt'))).toBe(false);
      expect(await code(p.mkdir('/out/newdir'))).toBe('EACCES');
      expect(await code(p.mkdir('/out/a/b', { recursive: true }))).toBe('EACCES');
      expect(fs.existsSync(join(outside, 'newdir'))).toBe(false);
      expect(fs.existsSync(join(outside, 'a'))).toBe(false);
      expect(await code(p.rename('/inside.txt', '/out/moved.txt'))).toBe('EACCES');
      // The error names the target (RNTO's path), not the source.
      await expect(p.rename('/inside.txt', '/out/moved.txt')).rejects.toMatchObject({ code: 'EACCES', path: '/out/moved.txt' });
      await expect(p.rename('/out/secret.txt', '/stolen.txt')).rejects.toMatchObject({ code: 'EACCES', path: '/out/secret.txt' });
      expect(await code(p.rename('/out/secret.txt', '/stolen.txt'))).toBe('EACCES');
      expect(await code(p.unlink('/out/secret.txt'))).toBe('EACCES');
      expect(await code(p.rmdir('/out/outdir'))).toBe('EACCES');
      expect(await code(p.symlink('/inside.txt', '/out/l'))).toBe('EACCES');
      expect(fs.readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('secret');
      expect(fs.existsSync(join(outside, 'outdir'))).toBe(true);
      expect(fs.readFileSync(join(root, 'inside.txt'), 'utf8')).toBe('inside');
    });

    it('a link to a file outside: no read, write, truncate, append, REST, setTimes, chmod', async () => {
      expect(await code(download('/secretlink'))).toBe('EACCES');
      expect(await code(upload('/secretlink', 'pwned'))).toBe('EACCES');
      expect(await code(upload('/secretlink', 'pwned', { append: true }))).toBe('EACCES');
      expect(await code(upload('/secretlink', 'pwned', { start: 2 }))).toBe('EACCES');
      expect(await code(p.open('/secretlink', 'w'))).toBe('EACCES');
      expect(await code(p.open('/secretlink', 'r+'))).toBe('EACCES');
      expect(await code(p.setTimes('/secretlink', new Date(0)))).toBe('EACCES');
      expect(await code(p.chmod('/secretlink', 0o777))).toBe('EACCES');
      expect(fs.readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('secret');
      expect(fs.statSync(join(outside, 'secret.txt')).mtimeMs).toBeGreaterThan(0);
    });

    it('a dangling link to outside: writing through it does not create the target', async () => {
      expect(await code(upload('/dangling-out', 'x'))).toBe('EACCES');
      expect(await code(p.open('/dangling-out', 'w'))).toBe('EACCES');
      expect(await code(p.mkdir('/dangling-out', { recursive: true }))).toBe('EACCES');
      expect(fs.existsSync(join(outside, 'newfile'))).toBe(false);
    });

    it("a dangling link's `..` climb from the folder it really is in, not from the path that led to it", async () => {
      // Planted: sub/dd -> ../../outside/dd.txt, and sub/dx -> x/../outside/dx.txt with sub/x -> .. (the root). A
      // client makes /<d>/b/d -> / (allowed: it leads inside), then writes through /<d>/b/d/sub/dd. Taken from the
      // path's <d>/b/d/sub, the target looked like <d>/b/outside/dd.txt, inside; the kernel takes it from sub, the
      // link's real folder, and created outside/dd.txt. And `x/..` is a climb from where x leads, not a no-op.
      for (const name of ['dd.txt', 'dx.txt']) fs.rmSync(join(outside, name), { force: true });
      fs.rmSync(join(root, 'sub', 'dd'), { force: true });
      fs.symlinkSync('../../outside/dd.txt', join(root, 'sub', 'dd'));
      fs.rmSync(join(root, 'sub', 'x'), { force: true });
      fs.symlinkSync('..', join(root, 'sub', 'x'));
      fs.rmSync(join(root, 'sub', 'dx'), { force: true });
      fs.symlinkSync('x/../outside/dx.txt', join(root, 'sub', 'dx'));
      const d = `/dd-${syncMetadata}`;
      await p.mkdir(`${d}/b`, { recursive: true });
      await p.symlink('/', `${d}/b/d`);
      for (const path of [`${d}/b/d/sub/dd`, '/sub/dx', `${d}/b/d/sub/dx`]) {
        expect(await code(p.open(path, 'w')), path).toBe('EACCES');
        expect(await code(p.open(path, 'wx')), path).toBe('EACCES');
        expect(await code(upload(path, 'x')), path).toBe('EACCES');
        expect(await code(upload(path, 'x', { start: 0 })), path).toBe('EACCES');
        expect(sync(() => p.openSync(path, 'w')), path).toBe('EACCES');
        expect(sync(() => p.writeFileSync(path, 'x')), path).toBe('EACCES');
        expect(fs.existsSync(join(outside, 'dd.txt')), path).toBe(false);
        expect(fs.existsSync(join(outside, 'dx.txt')), path).toBe(false);
      }
      // A dangling link that stays inside still works through the same folder link.
      fs.rmSync(join(root, 'sub', 'din'), { force: true });
      fs.symlinkSync('../sub/din.txt', join(root, 'sub', 'din'));
      await upload(`${d}/b/d/sub/din`, 'in');
      expect(fs.readFileSync(join(root, 'sub', 'din.txt'), 'utf8')).toBe('in');
      for (const name of ['dd', 'x', 'dx', 'din', 'din.txt']) fs.rmSync(join(root, 'sub', name));
      await p.unlink(`${d}/b/d`);
    });

    it('the links themselves are visible: lstat, readlink, listing; unlinking a link is allowed', async () => {
      expect((await p.lstat('/etc')).isSymbolicLink()).toBe(true);
      expect(await p.readlink('/etc')).toBe('/etc');
      expect(await p.readlink('/secretlink')).toBe('../outside/secret.txt');
      const list = await p.list('/');
      expect(list.find((e) => e.name === 'etc')?.stats.isSymbolicLink()).toBe(true);
      fs.symlinkSync('/etc', join(root, 'etc2'));
      await p.unlink('/etc2');
      expect(fs.existsSync('/etc')).toBe(true);
    });

    it('links inside the root work', async () => {
      expect(await download('/inlink')).toBe('inside');
      expect((await p.readdir('/sub/uplink')).sort()).toContain('inside.txt');
      expect(await download('/sub/uplink/inside.txt')).toBe('inside');
    });

    it('symlink() refuses targets that leave the root', async () => {
      expect(await code(p.symlink('../../outside/secret.txt', '/l1'))).toBe('EACCES');
      expect(await code(p.symlink('../x', '/l2'))).toBe('EACCES');
      expect(await code(p.symlink('/etc/passwd', '/l3'))).toBe('EACCES'); // through the planted /etc link
      expect(await code(p.symlink('/out/secret.txt', '/l4'))).toBe('EACCES');
      expect(fs.existsSync(join(root, 'l1'))).toBe(false);
      // An absolute virtual target is stored as the absolute host path (no rename can change where it leads), and
      // read back as the virtual path.
      await p.symlink('/inside.txt', '/sub/ok');
      expect(fs.readlinkSync(join(root, 'sub', 'ok'))).toBe(join(fs.realpathSync(root), 'inside.txt'));
      expect(await p.readlink('/sub/ok')).toBe('/inside.txt');
      expect(await download('/sub/ok')).toBe('inside');
      await p.unlink('/sub/ok');
    });

    it('a link made with a climbing target leads to the same file wherever it, or its folder, is moved', async () => {
      const d = `/moved-${syncMetadata}`; // a folder per mode: the fixtures are shared
      await p.mkdir(d);
      await p.symlink('../inside.txt', `${d}/rel`); // root/inside.txt
      expect(await download(`${d}/rel`)).toBe('inside');
      await p.mkdir(`${d}/d2`);
      await p.rename(`${d}/rel`, `${d}/d2/rel`);
      expect(await download(`${d}/d2/rel`)).toBe('inside');
      await p.rename(`${d}/d2/rel`, '/rel'); // stored relative, it would now lead to base/inside.txt: outside
      expect(await download('/rel')).toBe('inside');
      await p.rename(`${d}/d2`, `/d2-${syncMetadata}`);
      await p.unlink('/rel');
      await p.rmdir(`/d2-${syncMetadata}`);
    });

    it('a link placed on disk that would lead out from its new place cannot be moved there (EACCES)', async () => {
      const d = `/placed-${syncMetadata}`;
      await p.mkdir(d);
      await p.mkdir(`${d}/d2`);
      fs.symlinkSync('../inside.txt', join(root, d, 'rel')); // as an older version stored it: root/inside.txt
      expect(await download(`${d}/rel`)).toBe('inside');
      expect(await code(p.rename(`${d}/rel`, '/rel'))).toBe('EACCES'); // would lead to base/inside.txt
      expect(fs.existsSync(join(root, 'rel'))).toBe(false);
      await p.rename(`${d}/rel`, `${d}/d2/rel`); // inside still (a missing file): allowed
      expect(await code(download(`${d}/d2/rel`))).toBe('ENOENT');
      expect(await code(p.rename('/etc', '/etc2'))).toBe('EACCES'); // the planted absolute link to /etc
      expect(await code(() => p.renameSync(`${d}/d2/rel`, '/rel'))).toBe('EACCES');
      await p.unlink(`${d}/d2/rel`);
    });

    it('nor a link that would lead out through another link: the check follows links on the way, as the kernel will', async () => {
      const d = `/chain-${syncMetadata}`;
      await p.mkdir(d);
      expect(await code(p.symlink('etc', '/l0'))).toBe('EACCES'); // /etc is the planted link to the host's /etc
      await p.symlink('etc', `${d}/l`); // dangling where it is made: <d>/etc does not exist
      expect(await code(p.rename(`${d}/l`, '/l'))).toBe('EACCES'); // at the top it would lead through /etc
      expect(await code(() => p.renameSync(`${d}/l`, '/l'))).toBe('EACCES');
      expect(fs.existsSync(join(root, 'l'))).toBe(false);
      await p.unlink(`${d}/l`);
    });

    it('the sync API is confined as well', () => {
      expect(sync(() => p.statSync('/etc/passwd'))).toBe('EACCES');
      expect(sync(() => p.readdirSync('/out'))).toBe('EACCES');
      expect(sync(() => p.openSync('/secretlink', 'r'))).toBe('EACCES');
      expect(sync(() => p.openSync('/dangling-out', 'w'))).toBe('EACCES');
      expect(sync(() => p.mkdirSync('/out/x'))).toBe('EACCES');
      expect(sync(() => p.symlinkSync('../..', '/l5'))).toBe('EACCES');
      expect(fs.existsSync(join(outside, 'newfile'))).toBe(false);
      expect(p.lstatSync('/etc').isSymbolicLink()).toBe(true);
    });

    it("@platformatic/vfs's RealFSProvider, for comparison, follows the planted link out", () => {
      const real = new RealFSProvider(root);
      expect(real.readFileSync('/secretlink', 'utf8')).toBe('secret');
    });
  });

  describe('LocalProvider: paths cannot leave the root', () => {
    let clean: string;
    let q: LocalProvider;
    beforeAll(() => {
      clean = fs.mkdtempSync(join(tmpdir(), 'ftp-vfs-clean-'));
      fs.writeFileSync(join(clean, 'a.txt'), 'a');
      q = new LocalProvider(clean);
    });
    afterAll(() => fs.rmSync(clean, { recursive: true, force: true }));

    it('.. never climbs above the root', async () => {
      expect(await code(q.stat('/../../../../etc/passwd'))).toBe('ENOENT');
      expect(await code(q.stat('../../etc/passwd'))).toBe('ENOENT');
      expect((await q.readdir('/../..')).sort()).toEqual(['a.txt']);
      expect((await q.stat('/../a.txt')).size).toBe(1);
      await q.mkdir('/../../made');
      expect(fs.existsSync(join(clean, 'made'))).toBe(true);
    });

    it('absolute host paths resolve under the root', async () => {
      expect(await code(q.stat('/etc/passwd'))).toBe('ENOENT');
      expect(await code(q.open('/etc/passwd', 'r'))).toBe('ENOENT');
      // The root's own host path is just a path under the root (RealFSProvider accepts it as a host path).
      expect(await code(q.stat(join(clean, 'a.txt')))).toBe('ENOENT');
      expect(await code(q.readdir(clean))).toBe('ENOENT');
    });

    it('cannot remove or rename the root: EPERM, for good (EBUSY would be the server\'s 450 "try again later")', async () => {
      expect(await code(q.rmdir('/'))).toBe('EPERM');
      expect(await code(q.unlink('/'))).toBe('EISDIR');
      expect(await code(q.rename('/', '/x'))).toBe('EPERM');
      expect(await code(q.rename('/a.txt', '/'))).toBe('EPERM');
      expect(fs.existsSync(clean)).toBe(true);
    });

    it('error messages name the virtual path, not the host path', async () => {
      const err = await q.stat('/missing').catch((e: unknown) => e);
      expect(toVfsError(err).message).toBe("ENOENT: no such file or directory, stat '/missing'");
      expect(String((err as Error).message)).not.toContain(clean);
    });

    it('a missing root throws ENOENT unless create is set; realpath of the root is used', () => {
      const missing = join(clean, 'nope', 'deeper');
      expect(() => new LocalProvider(missing)).toThrowError(expect.objectContaining({ code: 'ENOENT' }));
      const made = new LocalProvider(missing, { create: true });
      expect(made.rootDir).toBe(fs.realpathSync(missing));
      expect(() => new LocalProvider(join(clean, 'a.txt'))).toThrowError(expect.objectContaining({ code: 'ENOTDIR' }));
    });

    it('a root removed while served: what lies below it is missing (ENOENT), not forbidden; served again once back', async () => {
      const gone = join(clean, 'served');
      fs.mkdirSync(join(gone, 'sub'), { recursive: true });
      const r = new LocalProvider(gone, { syncMetadata });
      fs.rmSync(gone, { recursive: true });
      expect(await code(r.stat('/sub'))).toBe('ENOENT');
      expect(await code(r.stat('/a/b/c.txt'))).toBe('ENOENT');
      expect(await code(r.mkdir('/new'))).toBe('ENOENT');
      expect(await code(openWriteStream(r, '/up.txt'))).toBe('ENOENT');
      expect(await code(listDirectory(r, '/sub'))).toBe('ENOENT');
      expect(sync(() => r.statSync('/sub'))).toBe('ENOENT');
      fs.mkdirSync(join(gone, 'sub'), { recursive: true });
      expect((await r.stat('/sub')).isDirectory()).toBe(true);
    });

    it('can be mounted with @platformatic/vfs create()', () => {
      const vfs = create(q, { moduleHooks: false });
      expect(vfs.readFileSync('/a.txt', 'utf8')).toBe('a');
      vfs.writeFileSync('/b.txt', 'bee');
      expect(fs.readFileSync(join(clean, 'b.txt'), 'utf8')).toBe('bee');
      expect(vfs.readdirSync('/').sort()).toContain('b.txt');
    });
  });
  });
}

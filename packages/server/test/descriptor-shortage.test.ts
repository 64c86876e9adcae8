/**
 * The server out of file descriptors (EMFILE, ENFILE): the client is told so (not "file busy"), a passive port is
 * refused at once (not after trying the whole range), and the operator gets a warning.
 */
import { Server } from 'node:net';
import { afterEach, expect, it, vi } from 'vitest';
import { MemoryProvider, type FsProvider, type ReadStreamOptions } from '@ftp/vfs';
import { PassivePorts } from '../src/data/passive.js';
import { RawClient, serverLogging } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

const emfile = (): Error => Object.assign(new Error('EMFILE: too many open files, open'), { code: 'EMFILE', syscall: 'open' });

/** A logged-in session on a server over `fs`, and the server's log lines. */
async function loggedIn(fs: FsProvider): Promise<{ c: RawClient; lines: Array<Record<string, unknown>> }> {
  const logging = await serverLogging('info', fs);
  cleanups.push(() => logging.close());
  const c = await RawClient.connect(logging.port);
  cleanups.push(() => c.close());
  await c.login();
  return { c, lines: logging.lines };
}

class OutOfDescriptors extends MemoryProvider {
  override createReadStream(_path: string, _options?: ReadStreamOptions): never {
    throw emfile();
  }
}

it('a download refused for want of descriptors says so, and warns the operator', async () => {
  const fs = new OutOfDescriptors();
  fs.writeFileSync('/f.txt', 'x');
  const { c, lines } = await loggedIn(fs);
  await c.passive();
  const reply = await c.cmd('RETR f.txt');
  // Still EBUSY's transient 450 (worth retrying), with the real reason.
  expect(reply).toMatchObject({ code: 450, text: 'Too many open files on the server, try again later.' });
  await new Promise((r) => setTimeout(r, 50));
  expect(lines.find((l) => (l.level as number) === 40)).toMatchObject({ cmd: 'RETR', msg: 'command refused by the system' });
});

class ReadOnlyDeletes extends MemoryProvider {
  override unlinkSync(): void {
    throw Object.assign(new Error('EROFS: read-only file system, unlink'), { code: 'EROFS', syscall: 'unlink' });
  }
  // What the root's confinement says to a client reaching outside: the client's doing, as often as it likes.
  override rmdirSync(path: string): void {
    if (path === '/out') throw Object.assign(new Error('EACCES: permission denied, rmdir'), { code: 'EACCES', syscall: 'rmdir' });
    super.rmdirSync(path);
  }
}

it('a command the system refuses (a read-only file system) is a warning; a missing file or a denied path is not', async () => {
  const fs = new ReadOnlyDeletes();
  fs.writeFileSync('/f.txt', 'x');
  const { c, lines } = await loggedIn(fs);
  expect((await c.cmd('DELE f.txt')).code).toBe(550);
  expect((await c.cmd('RMD missing')).code).toBe(550);
  fs.mkdirSync('/out');
  expect((await c.cmd('RMD out')).code).toBe(550);
  await new Promise((r) => setTimeout(r, 50));
  expect(lines.filter((l) => (l.level as number) === 40).map((l) => l.cmd)).toEqual(['DELE']);
});

it('PASV out of descriptors is refused at once, not after trying every port of the range', async () => {
  const ports = new PassivePorts(40000, 40999);
  cleanups.push(() => ports.closeAll());
  const listen = vi.spyOn(Server.prototype, 'listen').mockImplementation(function (this: Server) {
    queueMicrotask(() => this.emit('error', emfile()));
    return this;
  });
  await expect(ports.reserve({ host: '127.0.0.1', expectedPeer: '127.0.0.1' })).rejects.toMatchObject({ replyCode: 425, message: 'Too many open files on the server, try again later.' });
  expect(listen).toHaveBeenCalledTimes(1);
});

it('PASV out of descriptors, in a session: 425 with the reason, and a warning', async () => {
  const { c, lines } = await loggedIn(new MemoryProvider());
  vi.spyOn(Server.prototype, 'listen').mockImplementation(function (this: Server) {
    queueMicrotask(() => this.emit('error', emfile()));
    return this;
  });
  expect(await c.cmd('EPSV')).toMatchObject({ code: 425, text: 'Too many open files on the server, try again later.' });
  await new Promise((r) => setTimeout(r, 50));
  expect(lines.find((l) => (l.level as number) === 40)).toMatchObject({ cmd: 'EPSV', msg: 'command refused by the system' });
});

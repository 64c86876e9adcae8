// Claims shared between processes (ftpd --workers): a download in one process and an upload rewriting the file in
// another must not meet, as they cannot within one process (local-writers.test.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalProvider, openReadStream, openWriteStream, releaseClaimsOf, shareFileClaims, startFileClaimsFolder, toVfsError } from '../src/index.js';
import { WRITER_TAKEOVER_IDLE_MS } from '../src/providers/local-writers.js';
import { RENEWAL_GRACE_MS } from '../src/providers/shared-claims.js';

const dist = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/index.js');

let base: string;
let root: string;
let claims: string;
const children: ChildProcess[] = [];

beforeEach(() => {
  base = fs.mkdtempSync(join(tmpdir(), 'ftp-vfs-shared-'));
  root = join(base, 'root');
  claims = join(base, 'claims');
  fs.mkdirSync(root);
  fs.mkdirSync(claims);
  startFileClaimsFolder(claims);
  fs.writeFileSync(join(root, 'f.bin'), 'old version');
  shareFileClaims(claims);
});

afterEach(() => {
  shareFileClaims(null);
  if (fs.existsSync(claims) && !fs.statSync(claims).isDirectory()) fs.rmSync(claims);
  for (const c of children.splice(0)) c.kill('SIGKILL');
  fs.rmSync(base, { recursive: true, force: true });
});

/**
 * Another process with the same shared folder: it opens `/f.bin` to write (`write`) or to read (`read`), says
 * `open` or the error code, and closes the file when it reads a line.
 */
async function otherProcess(mode: 'write' | 'read'): Promise<{ child: ChildProcess; said: string }> {
  const script = `
    import { LocalProvider, openReadStream, openWriteStream, shareFileClaims } from ${JSON.stringify(dist)};
    shareFileClaims(${JSON.stringify(claims)});
    const p = new LocalProvider(${JSON.stringify(root)});
    try {
      const s = ${mode === 'write' ? `await openWriteStream(p, '/f.bin'); s.write(Buffer.from('new ver'));` : `await openReadStream(p, '/f.bin'); s.pause();`}
      process.stdout.write('open\\n');
      process.stdin.once('data', () => { ${mode === 'write' ? `s.end('sion', () => process.exit(0));` : `s.destroy(); s.on('close', () => process.exit(0));`} });
    } catch (err) {
      process.stdout.write((err.code ?? String(err)) + '\\n');
      process.exit(0);
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { child, said: line.toString().trim() };
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    const s = (await promise) as NodeJS.ReadableStream & { destroy(): void };
    // Closed before the answer: the claim goes with the descriptor.
    const closed = once(s as unknown as NodeJS.EventEmitter, 'close');
    s.destroy();
    await closed;
    return 'open';
  } catch (err) {
    return toVfsError(err).code;
  }
}

async function finish(child: ChildProcess): Promise<void> {
  child.stdin!.write('\n');
  await once(child, 'exit');
}

describe('file claims shared between processes', () => {
  it("a download is refused while another process's upload writes the file, and reads the new version after", async () => {
    const p = new LocalProvider(root);
    const { child, said } = await otherProcess('write');
    expect(said).toBe('open');
    expect(await code(openReadStream(p, '/f.bin'))).toBe('EBUSY');
    expect(await code(openWriteStream(p, '/f.bin'))).toBe('EBUSY');
    await finish(child);
    const chunks: Buffer[] = [];
    for await (const c of await openReadStream(p, '/f.bin')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('new version');
    expect(fs.readdirSync(claims)).toEqual(['epoch']);
  });

  it("an upload is refused while another process reads the file; readers do not block each other", async () => {
    const p = new LocalProvider(root);
    const { child, said } = await otherProcess('read');
    expect(said).toBe('open');
    expect(await code(openWriteStream(p, '/f.bin'))).toBe('EBUSY');
    expect(await code(openReadStream(p, '/f.bin'))).toBe('open');
    await finish(child);
    expect(await code(openWriteStream(p, '/f.bin'))).toBe('open');
  });

  it('this process refuses the other one as well', async () => {
    const p = new LocalProvider(root);
    const upload = await openWriteStream(p, '/f.bin');
    expect((await otherProcess('read')).said).toBe('EBUSY');
    expect((await otherProcess('write')).said).toBe('EBUSY');
    upload.end();
    await once(upload, 'close');
    expect((await otherProcess('read')).said).toBe('open');
  });

  it("a dead process's claims hold until releaseClaimsOf removes them (no process removes another's)", async () => {
    const p = new LocalProvider(root);
    const { child, said } = await otherProcess('write');
    expect(said).toBe('open');
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(await code(openReadStream(p, '/f.bin'))).toBe('EBUSY');
    expect(releaseClaimsOf(claims, child.pid!)).toBe(1);
    expect(await code(openReadStream(p, '/f.bin'))).toBe('open');
    expect(await code(openWriteStream(p, '/f.bin'))).toBe('open');
  });

  it('a claims folder that vanished is made again, its first claims wait; one that cannot be used fails as EIO, not as the file', { timeout: 20000 }, async () => {
    const p = new LocalProvider(root);
    expect(await code(openReadStream(p, '/f.bin'))).toBe('open');
    fs.rmSync(claims, { recursive: true });
    // Made again, and busy for a moment: the other processes' claims are not back in it yet.
    expect(await code(openReadStream(p, '/f.bin'))).toBe('EBUSY');
    expect(await code(openWriteStream(p, '/f.bin'))).toBe('EBUSY');
    expect(fs.existsSync(claims)).toBe(true);
    await sleep(RENEWAL_GRACE_MS + 100);
    expect(await code(openReadStream(p, '/f.bin'))).toBe('open');
    expect(await code(openWriteStream(p, '/f.bin'))).toBe('open');
    // A file where the folder should be: nothing can be made in it.
    fs.rmSync(claims, { recursive: true });
    fs.writeFileSync(claims, '');
    expect(await code(openReadStream(p, '/f.bin'))).toBe('EIO');
    expect(await code(openWriteStream(p, '/f.bin'))).toBe('EIO');
    fs.rmSync(claims);
  });

  it("a claims folder removed under another process's upload: its claim is made again, and neither a download here nor a third process's gets in", { timeout: 30000 }, async () => {
    // helper-109: the folder removed (a /dev/shm clean-up) during an upload in one worker, downloads in the other
    // read the half-rewritten file and got 226.
    const p = new LocalProvider(root);
    const { child, said } = await otherProcess('write');
    expect(said).toBe('open');
    fs.rmSync(claims, { recursive: true });
    // A third process makes the folder again (its claim is refused: the folder is new) ...
    expect((await otherProcess('read')).said).toBe('EBUSY');
    // ... and this one, which has not looked since, is refused too, before the writer's process has looked.
    expect(await code(openReadStream(p, '/f.bin'))).toBe('EBUSY');
    expect(await code(openWriteStream(p, '/f.bin'))).toBe('EBUSY');
    await sleep(RENEWAL_GRACE_MS + 100);
    // The writer's process has made its claim again: refused for it, not for the folder's age.
    expect(fs.readdirSync(claims).some((n) => n.endsWith('.w'))).toBe(true);
    expect(await code(openReadStream(p, '/f.bin'))).toBe('EBUSY');
    expect((await otherProcess('read')).said).toBe('EBUSY');
    // Removed again, nobody else claiming: the writer's process makes it again by itself.
    fs.rmSync(claims, { recursive: true });
    await sleep(600);
    expect(fs.readdirSync(claims).some((n) => n.endsWith('.w'))).toBe(true);
    await sleep(RENEWAL_GRACE_MS);
    expect(await code(openReadStream(p, '/f.bin'))).toBe('EBUSY');
    await finish(child);
    const chunks: Buffer[] = [];
    for await (const c of await openReadStream(p, '/f.bin')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('new version');
  });

  it("a claims folder removed under another process's download: an upload here waits for its claim", { timeout: 20000 }, async () => {
    const p = new LocalProvider(root);
    const { child, said } = await otherProcess('read');
    expect(said).toBe('open');
    fs.rmSync(claims, { recursive: true });
    expect(await code(openWriteStream(p, '/f.bin'))).toBe('EBUSY');
    await sleep(RENEWAL_GRACE_MS + 100);
    expect(await code(openWriteStream(p, '/f.bin'))).toBe('EBUSY');
    await finish(child);
    expect(await code(openWriteStream(p, '/f.bin'))).toBe('open');
  });

  it("an idle upload's takeover refused for another process's reader leaves the idle upload claimed", { timeout: 20000 }, async () => {
    // helper-110: the refused newcomer removed the `.w` entry of the upload it had not taken over, which then ran on
    // unclaimed.
    const p = new LocalProvider(root);
    const idle = await openWriteStream(p, '/f.bin');
    idle.on('error', () => {});
    await new Promise<void>((r) => idle.write(Buffer.from('x'), () => r()));
    await sleep(WRITER_TAKEOVER_IDLE_MS + 200);
    const writerEntry = fs.readdirSync(claims).find((n) => n.endsWith('.w')) as string;
    expect(writerEntry).toBeDefined();
    // Another process's reader entry, as one racing this upload makes for a moment before it backs off.
    const otherReader = join(claims, `${writerEntry.slice(0, -2)}.r.999999999.1`);
    fs.symlinkSync('999999999.1', otherReader);
    expect(await code(openWriteStream(p, '/f.bin'))).toBe('EBUSY');
    fs.unlinkSync(otherReader);
    expect(fs.readlinkSync(join(claims, writerEntry))).toMatch(new RegExp(`^${process.pid}\\.`));
    expect((await otherProcess('read')).said).toBe('EBUSY');
    idle.destroy();
    await once(idle, 'close');
  });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Claims shared between processes (ftpd --workers): a download in one process and an upload rewriting the file in
// another must not meet, as they cannot within one process (local-writers.test.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalProvider, openReadStream, openWriteStream, releaseClaimsOf, shareFileClaims, toVfsError } from '../src/index.js';

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
    expect(fs.readdirSync(claims)).toEqual([]);
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

  it('a claims folder that vanished is made again; one that cannot be used fails as EIO, not as the file', async () => {
    const p = new LocalProvider(root);
    fs.rmSync(claims, { recursive: true });
    expect(await code(openReadStream(p, '/f.bin'))).toBe('open');
    expect(fs.existsSync(claims)).toBe(true);
    // A file where the folder should be: nothing can be made in it.
    fs.rmSync(claims, { recursive: true });
    fs.writeFileSync(claims, '');
    expect(await code(openReadStream(p, '/f.bin'))).toBe('EIO');
    expect(await code(openWriteStream(p, '/f.bin'))).toBe('EIO');
    fs.rmSync(claims);
  });
});

// Claims shared between processes (ftpd --workers): a download in one process and an upload rewriting the file in
// another must not meet, as they cannot within one process (local-writers.test.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chunkReaderOf, fileDescriptorOf, LocalProvider, openReadStream, openWriteStream, releaseClaimsOf, shareFileClaims, startFileClaimsFolder, toVfsError } from '../src/index.js';
import { WRITER_TAKEOVER_IDLE_MS } from '../src/providers/local-writers.js';
import { UPLOAD_HOLD_MS } from '../src/upload-holds.js';
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
async function otherProcess(mode: 'write' | 'read' | 'read-retry' | 'write-retry' | 'write-rest'): Promise<{ child: ChildProcess; said: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', otherProcessScript(mode)], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { child, said: line.toString().trim() };
}

/**
 * {@link otherProcess} run to its end with this process's event loop held meanwhile (its claims timer cannot look):
 * for a mode that ends by itself, as a refused open does. What it said (bounded: 10 s).
 */
function otherProcessHoldingThisOne(mode: 'write' | 'read'): string {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', otherProcessScript(mode)], { input: '', timeout: 10_000, encoding: 'utf8', stdio: ['pipe', 'pipe', 'inherit'] });
  // A child that did not run, crashed or hit the bound says so, rather than as an empty answer.
  if (run.error || run.signal) return `(the other process: ${run.error?.message ?? `killed by ${run.signal}`})`;
  return run.stdout.trim();
}

function otherProcessScript(mode: 'write' | 'read' | 'read-retry' | 'write-retry' | 'write-rest'): string {
  return `
    import { chunkReaderOf, LocalProvider, openReadStream, openWriteStream, shareFileClaims } from ${JSON.stringify(dist)};
    shareFileClaims(${JSON.stringify(claims)});
    const p = new LocalProvider(${JSON.stringify(root)});
    try {
      // -retry: until the folder made anew lets it (5 s at most), then as the plain mode; a reader then reads the
      // rest when told, and says 'sent' or the error's code.
      ${mode.endsWith('-retry') ? `for (let i = 0; i < 50; i++) { try { await ${mode === 'read-retry' ? 'openReadStream' : 'openWriteStream'}(p, '/f.bin').then((s) => s.destroy()); break; } catch { await new Promise((r) => setTimeout(r, 100)); } }` : ''}
      const s = ${mode.startsWith('write') ? `await openWriteStream(p, '/f.bin'${mode === 'write-rest' ? ', { start: 0 }' : ''}); s.write(Buffer.from('new ver'));` : `await openReadStream(p, '/f.bin'); s.pause();`}
      process.stdout.write('open\\n');
      process.stdin.once('data', () => { ${
        mode.startsWith('write')
          ? `s.end('sion', () => process.exit(0));`
          : mode === 'read-retry'
            ? `s.on('error', (e) => { process.stdout.write((e.code ?? String(e)) + '\\n'); process.exit(0); }); s.on('end', () => { process.stdout.write('sent\\n'); process.exit(0); }); s.resume();`
            : `s.destroy(); s.on('close', () => process.exit(0));`
      } });
    } catch (err) {
      process.stdout.write((err.code ?? String(err)) + '\\n');
      process.exit(0);
    }`;
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
    // Asked before the server's 150, as the open would answer.
    expect(await p.uploadBusy('/f.bin')).toBe(true);
    await finish(child);
    expect(await p.uploadBusy('/f.bin')).toBe(false);
    const chunks: Buffer[] = [];
    for await (const c of await openReadStream(p, '/f.bin')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('new version');
    expect(fs.readdirSync(claims)).toEqual(['epoch']);
  });

  it("another process's upload cannot be deleted, renamed away or renamed over (EBUSY); the file is free after", async () => {
    const p = new LocalProvider(root);
    fs.writeFileSync(join(root, 'other.bin'), 'other');
    const { child, said } = await otherProcess('write');
    expect(said).toBe('open');
    const outcome = (done: Promise<unknown>): Promise<string> => done.then(() => 'done', (err: unknown) => toVfsError(err).code);
    expect(await outcome(p.unlink('/f.bin'))).toBe('EBUSY');
    expect(await outcome(p.rename('/f.bin', '/moved.bin'))).toBe('EBUSY');
    expect(await outcome(p.rename('/other.bin', '/f.bin'))).toBe('EBUSY');
    await finish(child);
    expect(await outcome(p.rename('/f.bin', '/moved.bin'))).toBe('done');
    expect(fs.readFileSync(join(root, 'moved.bin'), 'utf8')).toBe('new version');
  });

  it("an upload is refused while another process reads the file; readers do not block each other", async () => {
    const p = new LocalProvider(root);
    const { child, said } = await otherProcess('read');
    expect(said).toBe('open');
    expect(await p.uploadBusy('/f.bin')).toBe(true);
    expect(await code(openWriteStream(p, '/f.bin'))).toBe('EBUSY');
    expect(await code(openReadStream(p, '/f.bin'))).toBe('open');
    await finish(child);
    expect(await p.uploadBusy('/f.bin')).toBe(false);
    expect(await code(openWriteStream(p, '/f.bin'))).toBe('open');
  });

  it('a file held for an announced upload is refused to the other processes too, until the upload has it and ends, or the hold ends', async () => {
    // Two workers each told a client 150 for one file (the second refused at its open, after its 150: 451, and
    // clients resume onto the other upload's file); and a download in the other worker refused the announced upload.
    const p = new LocalProvider(root);
    expect(await p.uploadBusy('/f.bin', {}, true)).toBe(false);
    expect((await otherProcess('write')).said).toBe('EBUSY');
    expect((await otherProcess('read')).said).toBe('EBUSY');
    // The announced upload opens: it has the file's claim, and the others are still kept out until it ends.
    const upload = await openWriteStream(p, '/f.bin');
    expect((await otherProcess('read')).said).toBe('EBUSY');
    upload.end('held upload');
    await once(upload, 'close');
    const reader = await otherProcess('read');
    expect(reader.said).toBe('open');
    await finish(reader.child);
    // A hold whose upload never opens keeps them out no longer than UPLOAD_HOLD_MS.
    expect(await p.uploadBusy('/f.bin', {}, true)).toBe(false);
    expect((await otherProcess('write')).said).toBe('EBUSY');
    await new Promise((r) => setTimeout(r, UPLOAD_HOLD_MS + 300));
    const writer = await otherProcess('write');
    expect(writer.said).toBe('open');
    await finish(writer.child);
    // Held elsewhere: this process's ask says busy (and holds nothing).
    const other = await otherProcess('read');
    expect(await p.uploadBusy('/f.bin', {}, true)).toBe(true);
    await finish(other.child);
    expect(fs.readFileSync(join(root, 'f.bin'), 'utf8')).toBe('new version');
  }, 20_000);

  it("pages lent to a finished download's socket here refuse another process's upload that would rewrite them in place, until given back", async () => {
    fs.writeFileSync(join(root, 'f.bin'), Buffer.alloc(200_000, 'A'));
    const p = new LocalProvider(root);
    const download = await openReadStream(p, '/f.bin');
    const socket = new EventEmitter();
    fileDescriptorOf(download)!.lendPages!(socket);
    download.destroy();
    await once(download, 'close');
    // A restart point inside the file: refused; a plain upload (the file is emptied first) is not.
    expect((await otherProcess('write-rest')).said).toBe('EBUSY');
    const plain = await otherProcess('write');
    expect(plain.said).toBe('open');
    await finish(plain.child);
    socket.emit('close');
    const rest = await otherProcess('write-rest');
    expect(rest.said).toBe('open');
    await finish(rest.child);
  }, 20_000);

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

  it("entries removed one by one under another process's upload, the marker last: that process makes a new marker and its claim again", { timeout: 20000 }, async () => {
    // helper-111: rm -rf removes a folder's entries newest first, so the marker (the oldest) stood while the claims
    // were gone, and a download here read the file being rewritten.
    const p = new LocalProvider(root);
    const { child, said } = await otherProcess('write');
    expect(said).toBe('open');
    const marker = fs.readlinkSync(join(claims, 'epoch'));
    const writer = fs.readdirSync(claims).find((n) => n.endsWith('.w')) as string;
    fs.unlinkSync(join(claims, writer));
    await sleep(600);
    expect(fs.readlinkSync(join(claims, 'epoch'))).not.toBe(marker);
    expect(fs.readdirSync(claims)).toContain(writer);
    expect(await code(openReadStream(p, '/f.bin'))).toBe('EBUSY');
    await sleep(RENEWAL_GRACE_MS);
    expect(await code(openReadStream(p, '/f.bin'))).toBe('EBUSY');
    await finish(child);
    expect(await code(openReadStream(p, '/f.bin'))).toBe('open');
  });

  it('while the folder is new, a refused upload makes no entry (it could stand in the way of one being made again)', { timeout: 20000 }, async () => {
    const p = new LocalProvider(root);
    fs.rmSync(join(claims, 'epoch'));
    expect(await code(openReadStream(p, '/f.bin'))).toBe('EBUSY'); // makes a new marker: the folder is new
    const seen: string[] = [];
    const watcher = fs.watch(claims, (_event, name) => seen.push(String(name)));
    try {
      expect(await code(openWriteStream(p, '/f.bin'))).toBe('EBUSY');
      await sleep(100);
    } finally {
      watcher.close();
    }
    expect(seen.filter((n) => n.endsWith('.w'))).toEqual([]);
  });

  it('a marker that is not a link is replaced (the folder counts as new), not EIO for ever', { timeout: 20000 }, async () => {
    const p = new LocalProvider(root);
    fs.rmSync(join(claims, 'epoch'));
    fs.mkdirSync(join(claims, 'epoch'));
    expect(await code(openReadStream(p, '/f.bin'))).toBe('EBUSY');
    expect(fs.lstatSync(join(claims, 'epoch')).isSymbolicLink()).toBe(true);
    await sleep(RENEWAL_GRACE_MS + 100);
    expect(await code(openReadStream(p, '/f.bin'))).toBe('open');
  });

  it.skipIf(process.getuid?.() !== 0)('a folder made again by another user is refused (EIO; SKIPPED unless root: it needs a folder of another user)', async () => {
    const p = new LocalProvider(root);
    fs.rmSync(claims, { recursive: true });
    fs.mkdirSync(claims);
    fs.chownSync(claims, 65534, 65534);
    expect(await code(openReadStream(p, '/f.bin'))).toBe('EIO');
    expect(await code(openWriteStream(p, '/f.bin'))).toBe('EIO');
  });

  it("an embedder's folder open to its group works, its marker removed too (the owner decides who else writes it)", { timeout: 20000 }, async () => {
    const p = new LocalProvider(root);
    fs.chmodSync(claims, 0o775);
    expect(await code(openReadStream(p, '/f.bin'))).toBe('open');
    fs.rmSync(join(claims, 'epoch'));
    expect(await code(openReadStream(p, '/f.bin'))).toBe('EBUSY');
    await sleep(RENEWAL_GRACE_MS + 100);
    expect(await code(openReadStream(p, '/f.bin'))).toBe('open');
  });

  it("says through `warn` how many claims it made again, and when it was held up past the grace", { timeout: 20000 }, async () => {
    const warnings: string[] = [];
    shareFileClaims(claims, { warn: (m) => warnings.push(m) });
    const p = new LocalProvider(root);
    const reading = await openReadStream(p, '/f.bin');
    reading.pause();
    try {
      fs.rmSync(claims, { recursive: true });
      await sleep(600);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/made anew .*: 1 claim\(s\) of this process made again; new claims wait/);
      // Removed again while this process cannot look: another process makes it anew, and this one looks too late. (The
      // other process runs while this one's event loop is held: awaited, this process's claims timer could look
      // before the hold-up below, find the folder young, and never be late: a race that failed under CI's load.)
      fs.rmSync(claims, { recursive: true });
      expect(otherProcessHoldingThisOne('write')).toBe('EBUSY');
      holdUp(RENEWAL_GRACE_MS + 200);
      await sleep(400);
      expect(warnings[1]).toMatch(/held up/);
    } finally {
      reading.destroy();
      await once(reading, 'close');
    }
  });

  it('a download whose claim was lost (the folder cleaned) fails at its end if the file changed meanwhile, not otherwise', { timeout: 30000 }, async () => {
    const p = new LocalProvider(root);
    const whole = async (s: Readable): Promise<string> => {
      const chunks: Buffer[] = [];
      for await (const c of s) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString();
    };
    const viaChunks = async (s: Readable): Promise<string> => {
      const read = chunkReaderOf(s)!;
      const chunks: Buffer[] = [];
      try {
        for (let n = -1; n !== 0; ) {
          const into = Buffer.alloc(4);
          n = await read(into);
          chunks.push(into.subarray(0, n));
        }
        return Buffer.concat(chunks).toString();
      } finally {
        s.destroy();
      }
    };
    // The folder made anew by a first claim (refused), then old enough for claims to go through.
    const settle = async (): Promise<void> => {
      expect(await code(openReadStream(p, '/f.bin'))).toBe('EBUSY');
      await sleep(RENEWAL_GRACE_MS + 100);
    };
    for (const consume of [whole, viaChunks]) {
      // Lost, and the file rewritten meanwhile (as an upload of another process that got in would): an error.
      const changed = await openReadStream(p, '/f.bin');
      fs.rmSync(claims, { recursive: true });
      fs.writeFileSync(join(root, 'f.bin'), 'new version');
      expect(await consume(changed).then(() => 'sent', (err: unknown) => toVfsError(err).code)).toBe('EIO');
      await settle();
      // Lost, the file untouched: sent whole.
      const untouched = await openReadStream(p, '/f.bin');
      fs.rmSync(claims, { recursive: true });
      expect(await consume(untouched)).toBe('new version');
      await settle();
      // Lost, the file renamed and its mode changed (its ctime moves, its contents do not): sent whole.
      const moved = await openReadStream(p, '/f.bin');
      fs.rmSync(claims, { recursive: true });
      fs.chmodSync(join(root, 'f.bin'), 0o600);
      fs.renameSync(join(root, 'f.bin'), join(root, 'g.bin'));
      fs.renameSync(join(root, 'g.bin'), join(root, 'f.bin'));
      expect(await consume(moved)).toBe('new version');
      await settle();
      // Kept, and the file changed by a program that does not claim: sent as before (no check without a loss).
      const kept = await openReadStream(p, '/f.bin');
      fs.appendFileSync(join(root, 'f.bin'), '!');
      expect(await consume(kept)).toBe('new version!');
      fs.writeFileSync(join(root, 'f.bin'), 'old version');
    }
  });

  it("an upload whose process made its claim again too late, another process reading the file by then, is ended, and that download fails if it changed", { timeout: 20000 }, async () => {
    const warnings: string[] = [];
    shareFileClaims(claims, { warn: (m) => warnings.push(m) });
    // Another process downloads as soon as the folder made anew lets it, while this one is held up past the grace.
    const { failed, other: reader } = await uploadCleanedUpHeldUp('new ver', 'read-retry');
    const { child, said } = await reader;
    expect(said).toBe('open');
    // Back, it ends its upload (which the download read a part of: helper-112) and sets the file's mtime to now.
    expect(await failed).toBe('EIO');
    expect(warnings.at(-1)).toMatch(/held up.*1 upload\(s\) ended/);
    // The download that began meanwhile counts as lost (a new marker), and its file changed (its mtime): not complete.
    child.stdin!.write('\n');
    const [end] = (await once(child.stdout!, 'data')) as [Buffer];
    expect(end.toString().trim()).toBe('EIO');
  });

  it("an upload whose process made its claim again too late, another process's upload holding the file by then, is ended", { timeout: 20000 }, async () => {
    shareFileClaims(claims, { warn: () => {} });
    const { failed, other: writer } = await uploadCleanedUpHeldUp('mine', 'write-retry');
    // What the other upload has written by the time this process is back (before this one looks).
    fs.writeFileSync(join(root, 'f.bin'), 'the other upload');
    const { child, said } = await writer;
    expect(said).toBe('open');
    // Its `.w` is the other upload's now: never made again, so ended rather than write the file with it; and ended
    // without touching the file (its held bytes not written, nothing cut: before, 'mine' and a cut at 4 bytes).
    expect(await failed).toBe('EIO');
    expect(fs.readFileSync(join(root, 'f.bin'), 'utf8')).toBe('the other upload');
    await finish(child);
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
    // A download here takes the idle upload over (it writes out what it held and cuts the file as it ends), then the
    // folder is cleaned: its end-of-file check compares with the file after the takeover, not before (helper-112: a
    // false EIO).
    const download = await openReadStream(p, '/f.bin');
    fs.rmSync(claims, { recursive: true });
    const chunks: Buffer[] = [];
    for await (const c of download) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('x');
    expect(idle.destroyed).toBe(true);
  });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Holds this process's event loop for `ms`, as a stopped process or a hung call would. */
const holdUp = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * An upload here writing `data`, the claims folder removed under it, another process started in `mode` (it claims
 * as soon as the folder made anew lets it), and this process held up past the grace meanwhile. `failed`: the
 * upload's error code once it ends.
 */
async function uploadCleanedUpHeldUp(data: string, mode: 'read-retry' | 'write-retry') {
  const upload = await openWriteStream(new LocalProvider(root), '/f.bin');
  const failed = new Promise<string>((resolve) => upload.on('error', (err) => resolve(toVfsError(err).code)));
  upload.write(Buffer.from(data));
  fs.rmSync(claims, { recursive: true });
  const other = otherProcess(mode);
  holdUp(RENEWAL_GRACE_MS + 1500);
  return { failed, other };
}

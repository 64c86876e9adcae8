import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { logOutput } from '../src/log-output.js';

const dirs: string[] = [];
const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) closeSync(fd);
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempFile(): { path: string; fd: number } {
  const dir = mkdtempSync(join(tmpdir(), 'log-output-'));
  dirs.push(dir);
  const path = join(dir, 'log');
  const fd = openSync(path, 'w');
  fds.push(fd);
  return { path, fd };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const linesIn = (path: string) => readFileSync(path, 'utf8').split('\n').filter(Boolean);

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await sleep(5);
  }
  return check();
}

/**
 * A FIFO and a descriptor to write to it, opened with `flags`; nobody reads it yet. Read-write opens of a FIFO do
 * not wait for the other end; the kernel's pipe holds 64 KiB.
 */
function fifoNobodyReads(flags: number | string): { fifo: string; writeFd: number } {
  const dir = mkdtempSync(join(tmpdir(), 'log-output-'));
  dirs.push(dir);
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const writeFd = openSync(fifo, flags);
  fds.push(writeFd);
  return { fifo, writeFd };
}

/**
 * Reads a non-blocking FIFO until `enough` of what came (an empty FIFO with a writer, this process, would block a
 * plain read for ever). `enough` sees the last 64 KiB and the count of lines so far: a test over megabytes must not
 * go over all of it at each read.
 */
async function readUntil(fd: number, enough: (tail: string, lines: number) => boolean, ms: number, pauseMs = 20): Promise<string> {
  const chunk = Buffer.alloc(1 << 20);
  const parts: string[] = [];
  let tail = '';
  let lines = 0;
  const end = Date.now() + ms;
  while (Date.now() < end && !enough(tail, lines)) {
    await sleep(pauseMs);
    try {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      const piece = chunk.subarray(0, n).toString();
      parts.push(piece);
      tail = (tail + piece).slice(-65536);
      for (let i = piece.indexOf('\n'); i !== -1; i = piece.indexOf('\n', i + 1)) lines++;
    } catch {
      // EAGAIN: nothing yet
    }
  }
  return parts.join('');
}

describe('logOutput', () => {
  it('writes the first line after a quiet window at once, not at the end of the window', async () => {
    const { path, fd } = tempFile();
    const logger = pino({ level: 'info' }, logOutput(fd, { windowMs: 60_000 }));
    logger.info('first');
    expect(await until(() => linesIn(path).length === 1, 2000)).toBe(true);
    expect(JSON.parse(linesIn(path)[0]!).msg).toBe('first');
  });

  it('holds lines logged within the window and writes them together when it ends', async () => {
    const { path, fd } = tempFile();
    const logger = pino({ level: 'info' }, logOutput(fd, { windowMs: 1000 }));
    logger.info('opens the window');
    expect(await until(() => linesIn(path).length === 1, 2000)).toBe(true);
    for (let i = 0; i < 10; i++) logger.info({ i }, 'burst');
    await sleep(300);
    // pino's own output writes each line as it comes: all eleven would be there by now.
    expect(linesIn(path)).toHaveLength(1);
    expect(await until(() => linesIn(path).length === 11, 3000)).toBe(true);
    expect(linesIn(path).map((l) => JSON.parse(l).i)).toEqual([undefined, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('writes 4 KiB of waiting lines without waiting for the window, whole lines only', async () => {
    const { path, fd } = tempFile();
    const logger = pino({ level: 'info' }, logOutput(fd, { windowMs: 60_000 }));
    logger.info('opens the window');
    expect(await until(() => linesIn(path).length === 1, 2000)).toBe(true);
    const pad = 'x'.repeat(200);
    for (let i = 0; i < 100; i++) logger.info({ i, pad }, 'busy');
    // ~25 KiB waiting: every full 4 KiB batch goes out; only the last part waits for the window.
    expect(await until(() => linesIn(path).length >= 80, 3000)).toBe(true);
    const text = readFileSync(path, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    for (const line of text.split('\n').filter(Boolean)) expect(() => JSON.parse(line)).not.toThrow();
    expect(linesIn(path).length).toBeLessThan(101);
  });

  it('starts a new window once the output has been quiet: a later line is again written at once', async () => {
    const { path, fd } = tempFile();
    const logger = pino({ level: 'info' }, logOutput(fd, { windowMs: 100 }));
    logger.info('one');
    logger.info('two');
    expect(await until(() => linesIn(path).length === 2, 2000)).toBe(true);
    await sleep(400); // two windows pass: the second closes with nothing waiting
    logger.info('three');
    expect(await until(() => linesIn(path).length === 3, 60)).toBe(true);
  });

  it('writes what waits when the process exits, whether it ends on its own or by process.exit()', () => {
    const dir = mkdtempSync(join(tmpdir(), 'log-output-'));
    dirs.push(dir);
    const source = new URL('../src/log-output.ts', import.meta.url).pathname;
    const run = (path: string, ending: string): void => {
      const script = `
        import { openSync } from 'node:fs';
        import { pino } from 'pino';
        import { logOutput } from ${JSON.stringify(source)};
        const logger = pino({ level: 'info' }, logOutput(openSync(${JSON.stringify(path)}, 'w'), { windowMs: 60_000 }));
        logger.info({ i: 0 }, 'line'); // written at once; the rest wait for a window that would end in a minute
        setTimeout(() => {
          for (let i = 1; i < 50; i++) logger.info({ i }, 'line');
          ${ending}
        }, 50);
      `;
      execFileSync(process.execPath, ['--no-warnings', '--input-type=module', '-e', script], { cwd: new URL('..', import.meta.url).pathname, timeout: 20_000 });
    };
    const expected = Array.from({ length: 50 }, (_, i) => i);
    run(join(dir, 'natural'), '');
    expect(linesIn(join(dir, 'natural')).map((l) => JSON.parse(l).i)).toEqual(expected);
    run(join(dir, 'exit'), 'process.exit(0);');
    expect(linesIn(join(dir, 'exit')).map((l) => JSON.parse(l).i)).toEqual(expected);
  });

  it('keeps lines a non-blocking pipe refuses (EAGAIN) and writes them, in order, once it is read', async () => {
    const { fifo, writeFd } = fifoNobodyReads(constants.O_RDWR | constants.O_NONBLOCK);
    const logger = pino({ level: 'info' }, logOutput(writeFd, { windowMs: 50 }));
    const pad = 'z'.repeat(100);
    for (let i = 0; i < 2000; i++) logger.info({ i, pad }, 'kept'); // ~330 KiB: five times what the pipe holds
    await sleep(300);
    const readFd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    fds.push(readFd);
    const text = await readUntil(readFd, (_tail, lines) => lines >= 2000, 10_000);
    const kept = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { i: number });
    expect(kept.map((l) => l.i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
  });

  it('an output that fails (a full disk) loses lines, never the process: no throw, and the exit is not held up', () => {
    const script = `
      import { openSync } from 'node:fs';
      import { pino } from 'pino';
      import { logOutput } from ${JSON.stringify(new URL('../src/log-output.ts', import.meta.url).pathname)};
      const logger = pino({ level: 'info' }, logOutput(openSync('/dev/full', 'w'), { windowMs: 20 }));
      for (let i = 0; i < 100; i++) logger.info({ i }, 'line');
      setTimeout(() => { for (let i = 0; i < 100; i++) logger.info({ i }, 'later'); }, 100);
      setTimeout(() => process.exit(7), 300);
    `;
    const started = Date.now();
    // pino's own output threw ENOSPC at the process, whose exit then retried the write every 100 ms for ever.
    const outcome = spawnSync(process.execPath, ['--no-warnings', '--input-type=module', '-e', script], { cwd: new URL('..', import.meta.url).pathname, timeout: 20_000 });
    expect(outcome.signal).toBeNull();
    expect(outcome.status).toBe(7);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('empties a 16 MiB backlog in linear time (taking from the front of the queue copied the rest: 7 s of CPU)', { timeout: 30000 }, async () => {
    const { fifo, writeFd } = fifoNobodyReads(constants.O_RDWR | constants.O_NONBLOCK);
    const logger = pino({ level: 'info' }, logOutput(writeFd, { windowMs: 20 }));
    const pad = 'w'.repeat(100);
    const count = 70_000; // ~14 MiB, all of it held while nothing reads (16 MiB at most)
    for (let i = 0; i < count; i++) logger.info({ i, pad }, 'backlog');
    const readFd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    fds.push(readFd);
    const cpu = process.cpuUsage();
    const text = await readUntil(readFd, (_tail, lines) => lines >= count, 25_000, 1);
    const used = process.cpuUsage(cpu);
    expect(text.split('\n').filter(Boolean)).toHaveLength(count);
    // CPU, not time (the pace is the reader's): 0.45 s here, reading included; 5 s when it was quadratic.
    expect((used.user + used.system) / 1000).toBeLessThan(2500);
  });

  it('drops lines past its bound while the output is not read, and says how many after the lines it kept', async () => {
    const { fifo, writeFd } = fifoNobodyReads('r+');
    const output = logOutput(writeFd, { windowMs: 50, maxHeld: 64 * 1024 });
    const logger = pino({ level: 'info' }, output);
    const dropped: number[] = [];
    output.onDropped = (count) => {
      dropped.push(count);
      logger.warn({ dropped: count }, 'dropped');
    };
    const pad = 'y'.repeat(100);
    // ~500 KiB in one turn: 64 KiB are held, the rest dropped; the held part then fills the kernel's pipe.
    for (let i = 0; i < 3000; i++) logger.info({ i, pad }, 'unread');
    await sleep(300);
    const readFd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    fds.push(readFd);
    const text = await readUntil(readFd, (tail) => tail.includes('"msg":"dropped"'), 5000);
    const lines = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { i?: number; msg: string; dropped?: number });
    const kept = lines.filter((l) => l.msg === 'unread');
    expect(dropped).toHaveLength(1);
    expect(kept.length + dropped[0]!).toBe(3000);
    expect(kept.length).toBeLessThan(1500);
    expect(lines.at(-1)).toMatchObject({ msg: 'dropped', dropped: dropped[0] });
    // What was kept is the oldest lines, in order.
    expect(kept.map((l) => l.i)).toEqual(Array.from({ length: kept.length }, (_, i) => i));
  });
});

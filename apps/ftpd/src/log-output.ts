import { constants, fstatSync, openSync, write as fsWrite, writeSync } from 'node:fs';
import type { DestinationStream } from 'pino';

/** How long lines logged while others are being written may wait to be written together (ms). */
export const LOG_WINDOW_MS = 100;

/**
 * The most one write carries: Linux writes up to this much to a pipe at once, so the lines of several worker
 * processes sharing one pipe (journald, docker) never interleave inside a line.
 */
const PIPE_ATOMIC = 4096;

/** What may wait while the output is not being written (not read, or its disk full); past it lines are dropped. */
export const LOG_MAX_HELD = 16 * 1024 * 1024;

/** How long the exit may spend writing what waits before it gives up (ms). */
const EXIT_FLUSH_MS = 1000;

/** ftpd's JSON log output: {@link logOutput}. */
export interface LogOutput extends DestinationStream {
  /** Starts writing what waits (pino's `logger.flush()`); `done` once nothing does, or the output failed. */
  flush(done?: (err?: Error) => void): void;
  /** Writes what waits, synchronously, for a second at most (also run when the process exits). */
  flushSync(): void;
  /** Called once lines were dropped, when the output takes lines again: how many. */
  onDropped: ((count: number) => void) | null;
}

/**
 * pino's output for ftpd: asynchronous, in batches, and never in the server's way.
 * - A line logged when nothing was for a {@link LOG_WINDOW_MS} window is written at once; lines logged within the
 *   window wait and go out together, when 4 KiB have gathered or the window ends. pino's own output writes every line
 *   through the thread pool on its own: at the default level (`info`, three lines a login) that was a third of a
 *   login's CPU (`pnpm bench`: 0.27 ms of server CPU against 0.17 at `warn`).
 * - A write carries whole lines, at most 4 KiB of them (a longer line alone).
 * - An output that fails (a full disk: ENOSPC, EIO) or is not read keeps up to {@link LOG_MAX_HELD} waiting, tried
 *   again at each window's end, and drops what comes past it, counted ({@link LogOutput.onDropped}). pino's output
 *   threw the error at the server, and at exit retried the write every 100 ms for ever: with its log on a full disk
 *   ftpd stopped answering, even SIGTERM. A broken pipe (EPIPE: the reader is gone) ends the output for good.
 * - At exit, what waits is written synchronously, for a second at most.
 */
export function logOutput(fd = 1, options: { windowMs?: number; maxHeld?: number } = {}): LogOutput {
  const windowMs = options.windowMs ?? LOG_WINDOW_MS;
  const maxHeld = options.maxHeld ?? LOG_MAX_HELD;
  const out = ownDescriptor(fd);
  let lines: string[] = []; // waiting, oldest first from `head` on (a queue: taking from its front copies nothing)
  let sizes: number[] = []; // their bytes, measured once as they come
  let head = 0;
  let held = 0; // their bytes, and those of `unwritten`
  let unwritten: Buffer | null = null; // the rest of a write the output took only part of, or that failed
  let writing = false;
  let failing = false; // the last write failed: wait for the window's end before trying again
  let broken = false;
  let dropped = 0;
  let timer: NodeJS.Timeout | null = null;
  let waiters: Array<(err?: Error) => void> = [];
  let exiting = false; // in flushSync: lines are only queued, for it to write

  /** What goes out next, taken off the queue: the unwritten rest, else whole lines of at most 4 KiB (one longer alone). */
  function nextChunk(): Buffer | null {
    if (unwritten !== null) {
      const rest = unwritten;
      unwritten = null;
      return rest;
    }
    if (head === lines.length) return null;
    let bytes = sizes[head]!;
    let end = head + 1;
    while (end < lines.length && bytes + sizes[end]! <= PIPE_ATOMIC) bytes += sizes[end++]!;
    const chunk = Buffer.from(end === head + 1 ? lines[head]! : lines.slice(head, end).join(''));
    // Slicing the rest off each time made emptying a 16 MiB backlog quadratic (7 s of CPU, helper-108): an index
    // moves instead, and the taken lines are cut off once they are most of the array.
    head = end;
    if (head === lines.length) {
      lines = [];
      sizes = [];
      head = 0;
    } else if (head >= 1024 && head * 2 >= lines.length) {
      lines = lines.slice(head);
      sizes = sizes.slice(head);
      head = 0;
    }
    return chunk;
  }

  function written(chunk: Buffer, n: number): void {
    held -= n;
    unwritten = n < chunk.length ? chunk.subarray(n) : null;
  }

  function settle(err?: Error): void {
    const list = waiters;
    waiters = [];
    for (const done of list) done(err);
  }

  /** Starts the next write unless one is on its way; `all`: also when less than a full batch waits. */
  function pump(all: boolean): void {
    if (writing || broken || (failing && !all)) return;
    if (!all && held < PIPE_ATOMIC - 1) return;
    const chunk = nextChunk();
    if (chunk === null) return settle();
    writing = true;
    fsWrite(out, chunk, 0, chunk.length, null, (err, n) => {
      writing = false;
      if (err) {
        unwritten = chunk;
        if ((err as NodeJS.ErrnoException).code === 'EPIPE') return end(err);
        // EAGAIN (a non-blocking pipe that is full), ENOSPC, EIO…: kept, tried again when the window ends.
        failing = true;
        ensureTimer();
        return settle(err);
      }
      failing = false;
      written(chunk, n);
      pump(waiters.length > 0 || unwritten !== null);
    });
  }

  function end(err: Error): void {
    broken = true;
    lines = [];
    sizes = [];
    head = 0;
    unwritten = null;
    held = 0;
    settle(err);
  }

  function reportDropped(): void {
    const count = dropped;
    dropped = 0;
    output.onDropped?.(count);
  }

  function ensureTimer(): void {
    timer ??= setTimeout(endOfWindow, windowMs).unref();
  }

  function endOfWindow(): void {
    timer = null;
    if (broken) return;
    if (dropped > 0 && !failing && held < maxHeld / 2) reportDropped();
    if (held === 0) return;
    pump(true);
    ensureTimer();
  }

  const output: LogOutput = {
    onDropped: null,
    write(line: string): void {
      if (broken) return;
      const bytes = Buffer.byteLength(line);
      // At exit the count of what was dropped still goes in (see flushSync).
      if (held + bytes > maxHeld && !exiting) {
        dropped++;
        return;
      }
      lines.push(line);
      sizes.push(bytes);
      held += bytes;
      if (exiting) return;
      if (timer === null) {
        pump(true);
        ensureTimer();
      } else pump(false);
    },
    flush(done?: (err?: Error) => void): void {
      if (done) {
        if (held === 0 || broken) return void done();
        waiters.push(done);
      }
      pump(true);
    },
    flushSync(): void {
      const deadline = performance.now() + EXIT_FLUSH_MS;
      exiting = true;
      try {
        // Said before the end, where the lines lost are the last ones (a full queue keeps the oldest).
        if (dropped > 0) reportDropped();
        // A write on its way in the thread pool keeps its bytes (taken off the queue); the rest is written here,
        // after it if it has run by then, else before it (an exit during a write may put its lines last).
        while (!broken && performance.now() < deadline) {
          const chunk = nextChunk();
          if (chunk === null) return;
          try {
            written(chunk, writeSync(out, chunk));
          } catch (err) {
            unwritten = chunk;
            if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
          }
        }
      } finally {
        exiting = false;
      }
    },
  };
  process.on('exit', () => output.flushSync());
  return output;
}

/**
 * What the output writes to: for a pipe, the same pipe opened again, non-blocking and ours alone. A pipe's blocking
 * mode belongs to everyone sharing it (Node makes it blocking for its own stdout, the workers' exits switch it), and
 * a blocking write to a pipe whose reader has stopped holds a thread-pool thread for ever — and with it the exit,
 * which waits for that thread (helper-108: a supervisor ignored every SIGTERM until its reader resumed). Non-blocking,
 * a full pipe answers EAGAIN and the lines wait (a write of at most 4 KiB goes in whole or not at all). Anything else,
 * or where /proc is missing: `fd` itself.
 */
function ownDescriptor(fd: number): number {
  try {
    if (fstatSync(fd).isFIFO()) return openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    // not reopenable (no reader left, no /proc): written as it is
  }
  return fd;
}

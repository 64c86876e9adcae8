import { pino, type DestinationStream } from 'pino';

/** How long lines logged while others are being written may wait to be written together (ms). */
export const LOG_WINDOW_MS = 100;

/**
 * The most one write carries: Linux writes up to this much to a pipe at once, so the lines of several worker
 * processes sharing one pipe (journald, docker) never interleave inside a line.
 */
const PIPE_ATOMIC = 4096;

/** What may wait while the output is not being read; lines past it are dropped and counted, never kept. */
export const LOG_MAX_HELD = 16 * 1024 * 1024;

/** ftpd's JSON log output: {@link logOutput}. */
export interface LogOutput extends DestinationStream {
  /** Writes what waits, synchronously (pino calls it at exit too). */
  flushSync(): void;
  /** Called once lines were dropped because the output was not read, when there is room again. */
  onDropped: ((count: number) => void) | null;
}

/**
 * pino's output for ftpd: asynchronous, in batches. A line logged when nothing was logged for a
 * {@link LOG_WINDOW_MS} window is written at once; lines logged within the window wait and go out together, when
 * 4 KiB have gathered or the window ends. The reason is cost: pino's default output writes every line through the
 * thread pool on its own, and at the default level (`info`, four lines a session) that was a third of a login's
 * CPU and of a small download's (`pnpm bench` logins 0.17 → 0.27 ms of server CPU each, downloads 0.28 → 0.41).
 * A busy server's lines are at most one window late; a quiet server's, not at all.
 */
export function logOutput(fd = 1, options: { windowMs?: number; maxHeld?: number } = {}): LogOutput {
  const windowMs = options.windowMs ?? LOG_WINDOW_MS;
  // minLength below maxWrite (sonic-boom's rule): a batch is written once it nearly fills one write.
  const boom = pino.destination({ dest: fd, sync: false, minLength: PIPE_ATOMIC - 1, maxWrite: PIPE_ATOMIC, maxLength: options.maxHeld ?? LOG_MAX_HELD });
  const write = boom.write;
  let waiting = 0; // bytes given to sonic-boom and not yet written
  let dropped = 0;
  let timer: NodeJS.Timeout | null = null;
  boom.on('write', (n: number) => (waiting -= n));
  boom.on('drop', (line: string) => {
    waiting -= Buffer.byteLength(line);
    dropped++;
  });

  const output: LogOutput = {
    onDropped: null,
    write(line: string): void {
      waiting += Buffer.byteLength(line);
      boom.write(line);
      if (timer !== null) return;
      boom.flush();
      timer = setTimeout(endOfWindow, windowMs).unref();
    },
    flushSync: () => boom.flushSync(),
  };

  function endOfWindow(): void {
    // After a broken pipe pino replaces the output's write with a no-op: nothing will be written again.
    if (boom.write !== write) waiting = 0;
    if (dropped > 0 && waiting < (options.maxHeld ?? LOG_MAX_HELD) / 2) {
      const count = dropped;
      dropped = 0;
      output.onDropped?.(count);
    }
    if (waiting <= 0) {
      timer = null;
      return;
    }
    // A no-op while a write is on its way; the next window's end takes what is left.
    boom.flush();
    timer = setTimeout(endOfWindow, windowMs).unref();
  }
  return output;
}

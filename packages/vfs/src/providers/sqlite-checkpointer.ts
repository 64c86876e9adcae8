import { Worker } from 'node:worker_threads';

/**
 * Writes that may sit in the WAL, not yet copied into the database file, before uploads wait for the checkpointer:
 * the bound of the WAL file's size while uploads run.
 */
export const WAL_HOLD_BYTES = 32 * 1024 * 1024;
/** Bytes committed since the last request after which the checkpointer is asked again (SQLite's own default, 1,000 pages). */
const CHECKPOINT_EVERY_BYTES = 4 * 1024 * 1024;
/** While writes go on, the worker also checkpoints this often, for writes made outside the provider's transactions. */
const POLL_MS = 1000;
/** How long `close()` waits for the worker to close its connection (it may be in the middle of a checkpoint). */
const CLOSE_WAIT_MS = 10_000;
/** Rounds a wait for a complete checkpoint may take (other writes keep landing) before writers go on anyway. */
const MAX_WAIT_ROUNDS = 50;

/** A checkpoint's outcome: frames in the WAL, and how many of them are in the database file. */
interface Outcome {
  busy: number;
  log: number;
  checkpointed: number;
}

/**
 * The worker: its own connection to the database file, running `PRAGMA wal_checkpoint(PASSIVE)` when asked and
 * every {@link POLL_MS} while the WAL keeps growing. A passive checkpoint never waits for the writer, whose commits
 * go on meanwhile; its fsyncs of the WAL and of the database file are what used to hold the event loop.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { DatabaseSync } = process.getBuiltinModule('node:sqlite');
let db;
let timer;
let last = -1;
try {
  db = new DatabaseSync(workerData.filename, { timeout: workerData.busyTimeout });
  db.exec('PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0');
} catch (err) {
  parentPort.postMessage({ error: String(err && err.message || err) });
  process.exit(0);
}
const passive = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
function run(reply) {
  clearTimeout(timer);
  let r;
  try {
    r = passive.get();
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) });
    return;
  }
  if (reply) parentPort.postMessage({ busy: r.busy, log: r.log, checkpointed: r.checkpointed });
  // Keep looking while the WAL changes: writes the provider did not report are checkpointed too.
  if (r.log !== last) timer = setTimeout(run, ${POLL_MS}, false);
  last = r.log;
}
parentPort.on('message', (m) => {
  if (m === 'close') {
    clearTimeout(timer);
    try { db.close(); } catch {}
    // The provider's close() waits for this: nothing touches the files once it returns.
    Atomics.store(workerData.closed, 0, 1);
    Atomics.notify(workerData.closed, 0);
    parentPort.close();
    return;
  }
  run(true);
});
`;

/**
 * Takes SQLite's WAL checkpoints off the event loop's thread. A connection checkpoints by itself every ~4 MB of WAL
 * (`wal_autocheckpoint`), in the commit that crosses the mark: it copies the pages into the database file and fsyncs
 * both files, and with node:sqlite that commit runs on the event loop's thread. During an upload that was most of
 * the thread's time (a 1 GiB STOR left a second session's NOOPs unanswered for up to 0.6 s, 17 times over 100 ms).
 *
 * The provider's connection turns automatic checkpoints off and reports its commits here; a worker thread with its
 * own connection checkpoints passively (writers are never blocked by it). The WAL can only start over from its
 * beginning once everything in it is in the database file, so when more than {@link WAL_HOLD_BYTES} were written
 * since it last could, uploads wait ({@link room}) until a checkpoint has caught up with no write in between: the
 * WAL stays bounded, and the wait is a promise, not a held thread.
 *
 * The worker starts with the first reported commit (a database only read never starts one). If it cannot start or
 * fails, the connection's automatic checkpoints come back (`onFailure`) and nothing waits any more.
 */
export class WalCheckpointer {
  readonly #filename: string;
  readonly #busyTimeout: number;
  readonly #onFailure: (reason: string) => void;
  #worker: Worker | undefined;
  /** Set to 1 by the worker once its connection is closed. */
  readonly #closedFlag = new Int32Array(new SharedArrayBuffer(4));
  #failed = false;
  #closed = false;
  /** A request is out (its reply not yet in). */
  #asking = false;
  /** Commits reported so far; a checkpoint that ends with the same count saw no write land during it. */
  #commits = 0;
  #commitsAtAsk = 0;
  #sinceAsk = 0;
  /** Bytes written since the WAL last could start over. */
  #held = 0;
  #waiters: (() => void)[] = [];
  #waitRounds = 0;
  #checkpoints = 0;

  /**
   * @param filename the database file (not `:memory:`: an in-memory database has no WAL).
   * @param onFailure called once if the worker cannot run: the caller turns automatic checkpoints back on.
   */
  constructor(filename: string, busyTimeout: number, onFailure: (reason: string) => void) {
    this.#filename = filename;
    this.#busyTimeout = busyTimeout;
    this.#onFailure = onFailure;
  }

  /** Checkpoints the worker has run. */
  get checkpoints(): number {
    return this.#checkpoints;
  }

  /** Whether writers are asked to wait: more than {@link WAL_HOLD_BYTES} held, and the worker working. */
  get holding(): boolean {
    return this.#held >= WAL_HOLD_BYTES && !this.#failed && !this.#closed;
  }

  /** After a commit that wrote about `bytes` into the WAL. */
  committed(bytes: number): void {
    if (this.#failed || this.#closed) return;
    this.#commits++;
    this.#held += bytes;
    this.#sinceAsk += bytes;
    if (!this.#asking && (this.#sinceAsk >= CHECKPOINT_EVERY_BYTES || this.holding)) this.#ask();
  }

  /** Undefined when writers may go on now; else a promise that resolves when they may. Never rejects. */
  room(): Promise<void> | undefined {
    if (!this.holding) return undefined;
    if (!this.#asking) this.#ask();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * Stops the worker and lets every waiter go. Returns once the worker's connection is closed (after a checkpoint it
   * was running, at most {@link CLOSE_WAIT_MS}), so that the caller may close its own, and move or delete the files.
   */
  close(): void {
    this.#closed = true;
    this.#release();
    const w = this.#worker;
    this.#worker = undefined;
    if (w === undefined) return;
    w.postMessage('close');
    Atomics.wait(this.#closedFlag, 0, 0, CLOSE_WAIT_MS);
    void w.terminate();
  }

  #ask(): void {
    const w = this.#worker ?? this.#start();
    if (w === undefined) return;
    this.#asking = true;
    this.#commitsAtAsk = this.#commits;
    this.#sinceAsk = 0;
    w.postMessage('go');
  }

  #start(): Worker | undefined {
    try {
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { filename: this.#filename, busyTimeout: this.#busyTimeout, closed: this.#closedFlag },
        // A checkpointer needs little: a small heap, no stdin.
        resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
      });
      w.unref();
      w.on('message', (m: Outcome | { error: string }) => this.#onMessage(m));
      w.on('error', (err) => this.#fail(err.message));
      w.on('exit', () => {
        if (!this.#closed) this.#fail('the checkpoint worker exited');
      });
      this.#worker = w;
      return w;
    } catch (err) {
      this.#fail((err as Error).message);
      return undefined;
    }
  }

  #onMessage(m: Outcome | { error: string }): void {
    if ('error' in m) return this.#fail(m.error);
    this.#asking = false;
    this.#checkpoints++;
    // Everything in the WAL is in the database file and nothing was written since: the next write starts it over.
    if (m.busy === 0 && m.log === m.checkpointed && this.#commits === this.#commitsAtAsk) this.#held = this.#sinceAsk = 0;
    if (!this.holding) {
      this.#waitRounds = 0;
      this.#release();
    } else if (++this.#waitRounds >= MAX_WAIT_ROUNDS) {
      // Writes keep landing between checkpoints (or a reader holds old frames): let writers go rather than stall
      // them for ever; the WAL grows until a quieter moment.
      this.#waitRounds = 0;
      this.#held = 0;
      this.#release();
    }
    if (this.#closed) return;
    if (this.holding || this.#sinceAsk >= CHECKPOINT_EVERY_BYTES) this.#ask();
  }

  #fail(reason: string): void {
    if (this.#failed || this.#closed) return;
    this.#failed = true;
    this.#asking = false;
    const w = this.#worker;
    this.#worker = undefined;
    void w?.terminate();
    this.#release();
    this.#onFailure(reason);
  }

  #release(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }
}

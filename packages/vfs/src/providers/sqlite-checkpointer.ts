import type { DatabaseSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';

/**
 * Writes that may sit in the WAL, not yet copied into the database file, before uploads wait for the checkpointer:
 * the bound of the WAL file's size while uploads run.
 */
export const WAL_HOLD_BYTES = 32 * 1024 * 1024;
/** Bytes committed since the last request after which the checkpointer is asked again (SQLite's own default, 1,000 pages). */
const CHECKPOINT_EVERY_BYTES = 4 * 1024 * 1024;
/** Or this many commits, whatever their reported size (small changes add a few pages each). */
const CHECKPOINT_EVERY_COMMITS = 256;
/** While writes go on, the worker also checkpoints this often, for writes made outside the provider's transactions. */
const POLL_MS = 1000;
/** How long `close()` waits for the worker to close its connection (it may be in the middle of a checkpoint). */
const CLOSE_WAIT_MS = 10_000;
/** Rounds a wait for a complete checkpoint may take (other writes keep landing) before writers go on anyway. */
const MAX_WAIT_ROUNDS = 50;

/** A checkpoint's outcome (`PRAGMA wal_checkpoint`): frames in the WAL, and how many of them are in the database file. */
export interface CheckpointOutcome {
  busy: number;
  log: number;
  checkpointed: number;
}

/** What the owner of the database's connection does for a {@link WalCheckpointer}. */
export interface WalCheckpointerHooks {
  /** Called once if the worker cannot run: turn the connection's automatic checkpoints back on. */
  onFailure: (reason: string) => void;
  /**
   * Runs `PRAGMA wal_checkpoint(PASSIVE)` on the connection that writes. Asked only when the worker has just copied
   * all it saw and the WAL is past {@link WAL_HOLD_BYTES}: it copies the few frames committed since (and fsyncs), so
   * that the next write starts the WAL over, which commits that never wait (small changes) would otherwise put off.
   */
  catchUp: () => CheckpointOutcome;
}

interface Reply extends CheckpointOutcome {
  pageSize: number;
}

/**
 * The worker: its own connection to the database file, running `PRAGMA wal_checkpoint(PASSIVE)` when asked and
 * every {@link POLL_MS} while the WAL keeps growing. A passive checkpoint never waits for the writer, whose commits
 * go on meanwhile; its fsyncs of the WAL and of the database file are what used to hold the event loop.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { DatabaseSync } = process.getBuiltinModule('node:sqlite');
// Node 22 calls node:sqlite experimental: the warning once in the main thread is enough.
process.removeAllListeners('warning');
// close() in the main thread waits for this flag: set on every way out.
const closed = () => { Atomics.store(workerData.closed, 0, 1); Atomics.notify(workerData.closed, 0); };
process.on('exit', closed);
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
const pageSize = db.prepare('PRAGMA page_size').get().page_size;
function run(reply) {
  clearTimeout(timer);
  let r;
  try {
    r = passive.get();
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) });
    return;
  }
  if (reply) parentPort.postMessage({ busy: r.busy, log: r.log, checkpointed: r.checkpointed, pageSize });
  // Keep looking while the WAL changes: writes the provider did not report are checkpointed too.
  if (r.log !== last) timer = setTimeout(run, ${POLL_MS}, false);
  last = r.log;
}
parentPort.on('message', (m) => {
  if (m === 'close') {
    clearTimeout(timer);
    try { db.close(); } catch {}
    // The provider's close() waits for this: nothing touches the files once it returns.
    closed();
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
 * own connection checkpoints passively (writers are never blocked by it) and reports the WAL's length. The WAL can
 * only start over from its beginning once everything in it is in the database file, so past {@link WAL_HOLD_BYTES}
 * uploads wait ({@link room}) until a checkpoint has caught up with no write in between: the wait is a promise, not
 * a held thread. Writers that never wait (small changes) can land during every checkpoint: after two such rounds
 * the writing connection copies the few frames since itself (`catchUp`), so its next write starts the WAL over. A
 * reader holding old frames lets nothing complete: writers go on after {@link MAX_WAIT_ROUNDS} tries.
 *
 * The worker starts with the first reported commit (a database only read never starts one). If it cannot start or
 * fails, the connection's automatic checkpoints come back (`onFailure`) and nothing waits any more.
 */
export class WalCheckpointer {
  readonly #filename: string;
  readonly #busyTimeout: number;
  readonly #hooks: WalCheckpointerHooks;
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
  /** Of those, what writers were let go with after {@link MAX_WAIT_ROUNDS} (a reader holds old frames): not held again. */
  #floor = 0;
  #waiters: (() => void)[] = [];
  #waitRounds = 0;
  /** Complete checkpoints in a row, past the hold, with commits landing during each (see {@link #onMessage}). */
  #writtenRounds = 0;
  #checkpoints = 0;

  /**
   * @param filename the database file (not `:memory:`: an in-memory database has no WAL).
   * @param busyTimeout the worker connection's busy timeout (ms).
   */
  constructor(filename: string, busyTimeout: number, hooks: WalCheckpointerHooks) {
    this.#filename = filename;
    this.#busyTimeout = busyTimeout;
    this.#hooks = hooks;
  }

  /**
   * Puts a connection in WAL mode (`synchronous = NORMAL`: readers do not block the writer) and, for a database file,
   * its checkpoints on a worker: the connection's automatic checkpoints off, back on should the worker fail, and
   * its catch-ups run on it. Undefined for an in-memory database (no WAL), or a file that cannot be in WAL mode:
   * SQLite's own checkpoints then, as before.
   */
  static forConnection(db: DatabaseSync, filename: string, busyTimeout: number): WalCheckpointer | undefined {
    const mode = db.prepare('PRAGMA journal_mode = WAL').get() as { journal_mode: string } | undefined;
    db.exec('PRAGMA synchronous = NORMAL');
    if (mode?.journal_mode !== 'wal' || filename === ':memory:' || filename === '') return undefined;
    const wal = new WalCheckpointer(filename, busyTimeout, {
      onFailure: () => {
        if (db.isOpen) db.exec('PRAGMA wal_autocheckpoint = 1000');
      },
      catchUp: () => db.prepare('PRAGMA wal_checkpoint(PASSIVE)').get() as unknown as CheckpointOutcome,
    });
    db.exec('PRAGMA wal_autocheckpoint = 0');
    return wal;
  }

  /** Checkpoints the worker has run. */
  get checkpoints(): number {
    return this.#checkpoints;
  }

  /** Whether writers are asked to wait: more than {@link WAL_HOLD_BYTES} held, and the worker working. */
  get holding(): boolean {
    return this.#held - this.#floor >= WAL_HOLD_BYTES && !this.#failed && !this.#closed;
  }

  /** After a commit that wrote about `bytes` into the WAL. */
  committed(bytes: number): void {
    if (this.#failed || this.#closed) return;
    this.#commits++;
    this.#held += bytes;
    this.#sinceAsk += bytes;
    if (!this.#asking && (this.#sinceAsk >= CHECKPOINT_EVERY_BYTES || this.#commits - this.#commitsAtAsk >= CHECKPOINT_EVERY_COMMITS || this.holding)) this.#ask();
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
      w.on('message', (m: Reply | { error: string }) => this.#onMessage(m));
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

  #onMessage(m: Reply | { error: string }): void {
    if ('error' in m) return this.#fail(m.error);
    this.#asking = false;
    this.#checkpoints++;
    if (this.#closed) return;
    // The WAL's length as the worker saw it counts whatever was written, reported or not (changes made outside
    // transactions, estimates short of the truth), and what was committed since comes on top.
    this.#held = Math.max(this.#held, m.log * (m.pageSize + 24) + this.#sinceAsk);
    if (m.busy === 0 && m.log === m.checkpointed) {
      if (this.#commits === this.#commitsAtAsk) {
        // Everything in the WAL is in the database file and nothing was written since: the next write starts it over.
        this.#held = this.#sinceAsk = this.#floor = this.#writtenRounds = 0;
      } else if (this.#held >= WAL_HOLD_BYTES && ++this.#writtenRounds >= 2) {
        // Commits landed during this checkpoint and the one before, while uploads already waited: writers that
        // never wait (small changes) can keep that up for ever. The writing connection copies those few frames
        // itself (its fsyncs are the cost, once per 32 MiB at most), so its next write starts the WAL over.
        try {
          const r = this.#hooks.catchUp();
          if (r.busy === 0 && r.log === r.checkpointed) this.#held = this.#sinceAsk = this.#floor = this.#writtenRounds = 0;
        } catch {
          // Busy or closing: the next round tries again.
        }
      }
    }
    if (!this.holding) {
      this.#waitRounds = 0;
      this.#release();
    } else if (++this.#waitRounds >= MAX_WAIT_ROUNDS) {
      // A reader holds old frames, so no checkpoint can complete: let writers go rather than stall them for ever
      // (nor ask the worker round after round); the WAL grows until the reader is done, held again past a new hold.
      this.#waitRounds = 0;
      this.#floor = this.#held;
      this.#release();
    }
    if (this.holding || this.#sinceAsk >= CHECKPOINT_EVERY_BYTES || this.#commits - this.#commitsAtAsk >= CHECKPOINT_EVERY_COMMITS) this.#ask();
  }

  #fail(reason: string): void {
    if (this.#failed || this.#closed) return;
    this.#failed = true;
    this.#asking = false;
    const w = this.#worker;
    this.#worker = undefined;
    void w?.terminate();
    this.#release();
    this.#hooks.onFailure(reason);
  }

  #release(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }
}

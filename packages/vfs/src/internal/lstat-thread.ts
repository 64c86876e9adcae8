import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { packLstats, STAT_FIELD_NAMES } from './packed-stats.js';

/**
 * Slices a listing may have queued in the thread at once, across all listings: two keep it busy back to back,
 * and a listing never waits at its end for more than two slices of another session's work.
 */
const MAX_QUEUED = 2;

/** An unused thread ends after this long: it holds a few MiB that a server which rarely lists should not keep. */
const IDLE_MS = 30_000;

// The thread runs packLstats' own source, so the two can never disagree on the row layout. It looks entries up
// with @ftp/native's lstatRows where that works (the same rows, in about half the time), as the main thread does.
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { lstatSync } = require('node:fs');
const packLstats = ${packLstats.toString()};
const FIELDS = ${JSON.stringify(STAT_FIELD_NAMES)};
let lstatRows = () => null;
// Until @ftp/native has loaded (or failed to), slices wait for it; after, they are answered at once.
let loading = workerData.native === null ? null : import(workerData.native).then((m) => { lstatRows = m.lstatRows; }, () => {}).finally(() => { loading = null; });
const answer = ({ id, prefix, names, folder }) => {
  try {
    const rows = lstatRows(prefix, names, folder) ?? packLstats(lstatSync, prefix, names, FIELDS);
    parentPort.postMessage({ id, rows }, [rows.buffer]);
  } catch (err) {
    parentPort.postMessage({ id, error: { message: String(err && err.message), code: err && err.code, errno: err && err.errno, syscall: err && err.syscall, path: err && err.path } });
  }
};
parentPort.on('message', (message) => (loading === null ? answer(message) : loading.then(() => answer(message))));
`;

/** @ftp/native's module, as a URL the thread can import; null where it cannot be found (the thread uses lstatSync). */
function nativeModuleUrl(): string | null {
  try {
    return pathToFileURL(createRequire(import.meta.url).resolve('@ftp/native')).href;
  } catch {
    return null;
  }
}

/** The thread went away (crashed, was ended) before it answered: the caller does the slice itself. */
export class LstatThreadGone extends Error {}

interface Pending {
  resolve(rows: Float64Array): void;
  reject(err: Error): void;
}

type Reply = { id: number; rows: Float64Array; error?: undefined } | { id: number; rows?: undefined; error: { message: string; code?: string; errno?: number; syscall?: string; path?: string } };

/**
 * A worker thread that looks up slices of a big listing while the main thread does the others: on a local disk an
 * `lstat` costs a few microseconds of kernel time, so a 10,000-entry folder is tens of milliseconds of lookups
 * that a second core halves. Shared by every {@link LocalProvider}; started by the first listing that needs it,
 * ended when unused for a while, never holding the process open.
 */
export class LstatThread {
  static #shared: LstatThread | null = null;
  static #disabled = availableParallelism() < 2;

  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #ready = false;
  #gone = false;
  /** It has answered a slice: it works here. */
  #answered = false;
  /** {@link stop} was called: the end is wanted, not a failure. */
  #stopping = false;
  #nextId = 1;
  #idleTimer: NodeJS.Timeout | null = null;

  private constructor() {
    // execArgv []: none of the process's own flags (--input-type=module would make the CommonJS source fail, and a
    // --require preload, such as an APM agent, would load again inside the thread).
    this.#worker = new Worker(SOURCE, { eval: true, execArgv: [], workerData: { native: nativeModuleUrl() }, resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 } });
    this.#worker.on('online', () => {
      this.#ready = true;
      this.#armIdle();
    });
    this.#worker.on('message', (reply: Reply) => this.#settle(reply));
    this.#worker.on('error', (err) => this.#end(err));
    this.#worker.on('exit', () => this.#end(new LstatThreadGone('the listing thread exited')));
    // After the listeners: adding a 'message' listener refs the worker again, and it would hold the process open.
    this.#worker.unref();
  }

  /**
   * The shared thread when it can take a slice now; otherwise null, after starting it if there is none (a
   * listing goes on alone rather than wait for a thread to boot).
   */
  static available(): LstatThread | null {
    if (LstatThread.#disabled) return null;
    const t = LstatThread.#shared;
    if (t === null) {
      try {
        LstatThread.#shared = new LstatThread();
      } catch {
        // No thread can be had (a resource limit): listings stay on the main thread.
        LstatThread.#disabled = true;
      }
      return null;
    }
    return t.#ready && t.#pending.size < MAX_QUEUED ? t : null;
  }

  /** Whether listings may use a thread (for tests: `false` keeps every lookup on the main thread). */
  static setEnabled(enabled: boolean): void {
    LstatThread.#disabled = !enabled;
    if (!enabled) void LstatThread.#shared?.stop();
  }

  /** Ends the shared thread, if any (the next big listing starts another). */
  static async stopShared(): Promise<void> {
    await LstatThread.#shared?.stop();
  }

  /**
   * The packed lstat rows of `names` in `prefix` (see {@link packLstats}), the folder there being `folder` (else the
   * lookups reject with code ESTALE, where @ftp/native does them); rejects with {@link LstatThreadGone} if the
   * thread ends first.
   */
  lstat(prefix: string, names: string[], folder: { dev: number; ino: number }): Promise<Float64Array> {
    if (this.#gone) return Promise.reject(new LstatThreadGone('the listing thread has ended'));
    const id = this.#nextId++;
    if (this.#idleTimer) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = null;
    }
    // Held open while it owes an answer (a script's last await may be on it); unref'd again when idle.
    if (this.#pending.size === 0) this.#worker.ref();
    return new Promise((resolve, reject) => {
      try {
        this.#worker.postMessage({ id, prefix, names, folder: { dev: folder.dev, ino: folder.ino } });
      } catch (err) {
        if (this.#pending.size === 0) this.#worker.unref();
        return reject(new LstatThreadGone(`the listing thread took no slice: ${(err as Error).message}`));
      }
      this.#pending.set(id, { resolve, reject });
    });
  }

  /** Ends the thread; slices still queued reject with {@link LstatThreadGone}. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#end(new LstatThreadGone('the listing thread was stopped'));
    await this.#worker.terminate();
  }

  #settle(reply: Reply): void {
    const p = this.#pending.get(reply.id);
    if (!p) return;
    this.#pending.delete(reply.id);
    this.#answered = true;
    if (reply.error) p.reject(Object.assign(new Error(reply.error.message), reply.error));
    else p.resolve(reply.rows as Float64Array);
    this.#armIdle();
  }

  #armIdle(): void {
    if (this.#pending.size > 0 || this.#gone) return;
    this.#worker.unref();
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => void this.stop(), IDLE_MS);
    this.#idleTimer.unref();
  }

  #end(err: Error): void {
    if (this.#gone) return;
    // A thread that fails before it ever answered would fail again: listings stay on the main thread from then on,
    // rather than start a thread (and pay for its start) for every big listing.
    if (!this.#answered && !this.#stopping) LstatThread.#disabled = true;
    this.#gone = true;
    this.#ready = false;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    if (LstatThread.#shared === this) LstatThread.#shared = null;
    const gone = err instanceof LstatThreadGone ? err : new LstatThreadGone(`the listing thread failed: ${err.message}`);
    for (const p of this.#pending.values()) p.reject(gone);
    this.#pending.clear();
  }
}

import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { Readable, type Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { isMainThread } from 'node:worker_threads';
import { openReadStream, openWriteStream, toVfsError, VfsError } from '@ftp/vfs';
import type { FsProvider, ReadStreamOptions, VfsErrorCode, WriteStreamOptions } from '@ftp/vfs';

/** What {@link writeAll} accepts: bytes, a string (UTF-8), or an (async) iterable of chunks. */
export type DataSource = string | Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/**
 * Uploads `data` to `path` through {@link openWriteStream} (the provider's stream, or its file handles), with
 * backpressure, and resolves once the upload is complete (`finish`).
 */
export async function writeAll(p: FsProvider, path: string, data: DataSource, options?: WriteStreamOptions): Promise<void> {
  const ws = await openWriteStream(p, path, options);
  let source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
  if (typeof data === 'string') source = data.length === 0 ? [] : [Buffer.from(data, 'utf8')];
  else if (data instanceof Uint8Array) source = data.length === 0 ? [] : [data];
  else source = data;
  await pipeline(Readable.from(source), ws);
}

/** Downloads a file (or a range of it, `end` inclusive) through {@link openReadStream} into one buffer. */
export async function readAll(p: FsProvider, path: string, options?: ReadStreamOptions): Promise<Buffer> {
  const rs = await openReadStream(p, path, options);
  const chunks: Buffer[] = [];
  for await (const chunk of rs) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** {@link readAll} as a UTF-8 string. */
export async function readText(p: FsProvider, path: string, options?: ReadStreamOptions): Promise<string> {
  return (await readAll(p, path, options)).toString('utf8');
}

/** The hex SHA-256 of everything a stream yields (consumed chunk by chunk, never held whole). */
export async function sha256Stream(stream: AsyncIterable<Uint8Array | string>): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of stream) h.update(chunk);
  return h.digest('hex');
}

/** Options of {@link deterministicChunks}. */
export interface DeterministicOptions {
  /** Bytes per chunk (the last may be shorter). Default 64 KiB. */
  chunkSize?: number;
  /** Seed of the generator; the same seed yields the same bytes. Default 1. */
  seed?: number;
}

/**
 * Yields `totalBytes` of pseudo-random bytes (xorshift32), chunk by chunk, each chunk a fresh buffer: a large file can
 * be produced without ever being held whole, and reproduced later for comparison.
 */
export function* deterministicChunks(totalBytes: number, options: DeterministicOptions = {}): Generator<Buffer> {
  const chunkSize = options.chunkSize ?? 64 * 1024;
  let x = (options.seed ?? 1) >>> 0 || 0x9e3779b9;
  let left = totalBytes;
  while (left > 0) {
    const n = Math.min(chunkSize, left);
    const words = Math.ceil(n / 4);
    const buf = Buffer.allocUnsafeSlow(words * 4);
    const u32 = new Uint32Array(buf.buffer, buf.byteOffset, words);
    for (let i = 0; i < words; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      u32[i] = x >>> 0;
    }
    left -= n;
    yield n === buf.length ? buf : buf.subarray(0, n);
  }
}

/** `n` deterministic bytes in one buffer (for small files). */
export function deterministicBytes(n: number, seed = 1): Buffer {
  return Buffer.concat([...deterministicChunks(n, { seed, chunkSize: Math.max(1, n) })], n);
}

/**
 * Awaits `promise` and checks that it rejects with one of `codes` once normalised by `toVfsError`; returns the
 * normalised error. Throws an assertion error when it resolves or fails otherwise.
 */
export async function rejectsWithCode(promise: Promise<unknown> | (() => Promise<unknown>), codes: VfsErrorCode | readonly VfsErrorCode[]): Promise<VfsError> {
  const expected: readonly VfsErrorCode[] = typeof codes === 'string' ? [codes] : codes;
  let value: unknown;
  try {
    value = await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    const e = toVfsError(err);
    if (!expected.includes(e.code)) {
      throw new Error(`expected a rejection with ${expected.join(' or ')}, got ${e.code} (${e.message})`, { cause: err });
    }
    return e;
  }
  throw new Error(`expected a rejection with ${expected.join(' or ')}, but it resolved${value === undefined ? '' : ` with ${String(value)}`}`);
}

/**
 * Writes `chunk` and waits for `drain` when the stream asks for it. Rejects with the stream's error when it has
 * already failed (a write to it would never drain) or fails while waiting.
 */
export async function writeChunk(ws: NodeJS.WritableStream, chunk: Uint8Array): Promise<void> {
  const failed = (ws as Partial<Writable>).errored;
  if (failed) throw failed;
  if (!ws.write(chunk)) await once(ws as unknown as NodeJS.EventEmitter, 'drain');
}

/**
 * An upload opened through {@link openWriteStream} and given `first`, then left open: what a slow client's STOR,
 * APPE or REST + STOR is while another write to the file happens (finish it with {@link endStream}).
 *
 * The stream may fail while it waits, before anyone ends it (a racing write can make a backend refuse it early:
 * S3 reading the prefix a REST keeps): its failure is then what {@link writeChunk} and {@link endStream} report,
 * not an `error` event nobody listens to, which would be an uncaught exception.
 */
export async function startUpload(p: FsProvider, path: string, options: WriteStreamOptions, first: Uint8Array): Promise<NodeJS.WritableStream> {
  const ws = await openWriteStream(p, path, options);
  ws.on('error', reportedByEndStream);
  await writeChunk(ws, first);
  return ws;
}

/** The `error` listener of {@link startUpload}'s streams: `finished()` in {@link endStream} rejects with the error. */
function reportedByEndStream(): void {}

/** Ends a writable stream and waits until it has finished (the upload is complete). */
export async function endStream(ws: NodeJS.WritableStream): Promise<void> {
  ws.end();
  await finished(ws as unknown as NodeJS.WritableStream);
}

let gcFn: (() => void) | null | undefined;

/**
 * `global.gc`, exposed at run time when the process was not started with `--expose-gc` (through
 * `v8.setFlagsFromString` and a fresh context); null when that is impossible.
 */
export function exposeGc(): (() => void) | null {
  if (gcFn !== undefined) return gcFn;
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === 'function') return (gcFn = existing);
  try {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  } catch {
    gcFn = null;
  }
  return gcFn;
}

/**
 * Measures memory growth during a transfer: `sample()` (call it every few MiB) collects garbage when possible and
 * records the peak above the baseline. In the main thread of a process it measures RSS (everything: JS, buffers,
 * native allocations such as SQLite's); in a worker thread, where RSS is shared with other workers, this isolate's
 * `heapUsed + external`.
 */
export class MemoryProbe {
  /** What is measured: `'rss'` or `'heap+external'`. */
  readonly metric = isMainThread ? 'rss' : 'heap+external';
  /** Whether garbage is collected before each sample (else garbage inflates the figures). */
  readonly collects = exposeGc() !== null;
  #baseline = 0;
  #peak = 0;

  #read(): number {
    exposeGc()?.();
    if (isMainThread) return process.memoryUsage.rss();
    const m = process.memoryUsage();
    return m.heapUsed + m.external;
  }

  /** Resets the baseline to the current usage. */
  start(): this {
    this.#baseline = this.#read();
    this.#peak = 0;
    return this;
  }

  /** Records the current growth; returns it. */
  sample(): number {
    const growth = this.#read() - this.#baseline;
    if (growth > this.#peak) this.#peak = growth;
    return growth;
  }

  /** The largest growth sampled since `start()`. */
  get peak(): number {
    return this.#peak;
  }
}

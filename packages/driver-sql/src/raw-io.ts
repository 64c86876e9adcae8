import type { ExecuteValues, Pool as MysqlPool } from 'mysql2';
import type pg from 'pg';
import type { CompiledQuery } from 'kysely';

/**
 * The pool under the Kysely instance, when the driver knows it (a URL, or a pool the caller passed): the two hot
 * statements of a transfer bypass Kysely's text protocol there (see {@link executeMysql}, {@link copyChunksOut}).
 * A Kysely instance the caller built keeps the plain path.
 */
export type RawPool = { dialect: 'postgres'; pool: pg.Pool } | { dialect: 'mysql'; pool: MysqlPool };

/**
 * Runs a compiled statement as a mysql2 prepared statement (binary protocol): Buffer parameters go to the server as
 * bytes. Through `query()` (what Kysely's MysqlDriver uses) mysql2 builds the SQL text on the event loop instead:
 * a 1 MiB chunk INSERT was hex-encoded, then ~2 MiB of text measured and written, holding every other session of the
 * process 70–170 ms at a time during a fast upload.
 */
export function executeMysql(pool: MysqlPool, q: CompiledQuery): Promise<void> {
  return new Promise((resolve, reject) => {
    pool.execute(q.sql, q.parameters as ExecuteValues[], (err) => (err ? reject(err) : resolve()));
  });
}

/** The signature, flags and header-extension length that open a binary COPY. */
const COPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/** One chunk row of a {@link copyChunksOut}. */
export interface ChunkRow {
  seq: number;
  bytes: Buffer;
}

/**
 * A pg "submittable" (what `client.query()` accepts besides a Query): sends one simple-protocol statement, a
 * `COPY … TO STDOUT (FORMAT binary)`, and collects its CopyData messages. pg-protocol hands those over as the bytes
 * they are; a bytea column of a SELECT comes in text format instead (hex: a 512 KiB string per 256 KiB chunk, made
 * and decoded on the event loop), and pg's `binary: true` result format does not help: pg-protocol still decodes every
 * DataRow field as a UTF-8 string.
 */
class CopyOut {
  readonly #text: string;
  /** Where the CopyData goes: one buffer of the expected size (grown, should a COPY be longer). */
  #data: Buffer;
  #used = 0;
  #settled = false;
  readonly #resolve: (data: Buffer) => void;
  readonly #reject: (err: Error) => void;
  readonly done: Promise<Buffer>;
  /** pg sets this when given a callback (we give none). */
  callback: unknown;

  /** @param capacity the expected size of the whole COPY (one allocation, one copy of each message). */
  constructor(text: string, capacity: number) {
    this.#text = text;
    this.#data = Buffer.allocUnsafeSlow(capacity);
    let resolve!: (data: Buffer) => void;
    let reject!: (err: Error) => void;
    this.done = new Promise<Buffer>((a, b) => {
      resolve = a;
      reject = b;
    });
    this.#resolve = resolve;
    this.#reject = reject;
  }

  submit(connection: { query(text: string): void }): void {
    connection.query(this.#text);
  }

  handleCopyData(msg: { chunk: Buffer }): void {
    // A view into pg-protocol's read buffer, which later reads may reuse: copied.
    const { chunk } = msg;
    if (this.#used + chunk.length > this.#data.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(this.#data.length * 2, this.#used + chunk.length));
      this.#data.copy(bigger, 0, 0, this.#used);
      this.#data = bigger;
    }
    this.#used += chunk.copy(this.#data, this.#used);
  }

  handleCopyInResponse(connection: { sendCopyFail(msg: string): void }): void {
    connection.sendCopyFail('@ftp/driver-sql: unexpected COPY FROM');
  }

  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}

  handleError(err: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#done(err);
    this.#reject(err);
  }

  handleReadyForQuery(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#done(null);
    this.#resolve(this.#data.subarray(0, this.#used));
  }

  /** Tells pg the statement is over, as its own queries do: it clears the statement's `query_timeout` timer then. */
  #done(err: Error | null): void {
    if (typeof this.callback === 'function') (this.callback as (err: Error | null) => void)(err);
  }
}

/** Parses a binary COPY of (seq integer or bigint, bytes bytea) rows; the rows' bytes are views into `data`. */
export function parseChunkCopy(data: Buffer): ChunkRow[] {
  const bad = (): Error => new Error('@ftp/driver-sql: malformed binary COPY data');
  if (data.length < 19 || !data.subarray(0, 11).equals(COPY_SIGNATURE)) throw bad();
  let off = 15 + 4 + data.readUInt32BE(15);
  const rows: ChunkRow[] = [];
  for (;;) {
    if (off + 2 > data.length) throw bad();
    const fields = data.readInt16BE(off);
    off += 2;
    if (fields === -1) break;
    if (fields !== 2 || off + 4 > data.length) throw bad();
    const seqLen = data.readInt32BE(off);
    off += 4;
    if ((seqLen !== 4 && seqLen !== 8) || off + seqLen + 4 > data.length) throw bad();
    const seq = seqLen === 4 ? data.readInt32BE(off) : Number(data.readBigInt64BE(off));
    off += seqLen;
    const len = data.readInt32BE(off);
    off += 4;
    if (len < 0 || off + len > data.length) throw bad();
    rows.push({ seq, bytes: data.subarray(off, off + len) });
    off += len;
  }
  return rows;
}

/**
 * Reads chunk rows through `COPY (select seq, bytes …) TO STDOUT (FORMAT binary)` on a pooled connection: the SELECT
 * compiled by Kysely, its parameters (integers only) written into the text (COPY takes no parameters). `rows` chunks
 * of at most `rowBytes` are expected (they are received into one buffer of that size); the rows' bytes are views of it.
 */
export async function copyChunksOut(pool: pg.Pool, select: CompiledQuery, rows: number, rowBytes: number): Promise<ChunkRow[]> {
  const inner = select.sql.replace(/\$(\d+)/g, (_, n: string) => {
    const v = select.parameters[Number(n) - 1];
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new TypeError('@ftp/driver-sql: COPY of chunks takes integer parameters only');
    return String(v);
  });
  // Header 19 bytes, trailer 2, per row a field count (2), two lengths (8) and a seq of at most 8 bytes.
  const copy = new CopyOut(`copy (${inner}) to stdout (format binary)`, 21 + rows * (18 + rowBytes));
  const client = await pool.connect();
  let failed: Error | undefined;
  try {
    client.query(copy);
    return parseChunkCopy(await copy.done);
  } catch (err) {
    failed = err as Error;
    throw err;
  } finally {
    // A connection whose statement failed for a reason other than the database's answer is not reused.
    client.release(failed !== undefined && !('severity' in failed) ? failed : undefined);
  }
}

// How a transfer's chunks travel on the wire. Every session of the server shares one event loop: MySQL chunk INSERTs
// go as prepared statements (through mysql2's query() the chunks were hex-encoded into the SQL text on the event
// loop, ~2 MiB of string work per MiB uploaded: 70–170 ms stalls during a fast upload), and PostgreSQL chunk reads as
// a binary COPY (a SELECT's bytea comes as hex text: a 512 KiB string made and decoded per 256 KiB chunk).
import { Readable } from 'node:stream';
import mysql from 'mysql2';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { SqlProvider } from '../src/index.js';
import { parseChunkCopy } from '../src/raw-io.js';
import { bytes, get, put } from './helpers.js';
import { mysqlUrl, postgresUrl, randomPrefix } from './services.js';

const MiB = 1024 * 1024;

/** Reads `path` from byte `start` to `end` (inclusive). */
async function range(p: SqlProvider, path: string, start: number, end?: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of (await p.createReadStream(path, { start, ...(end === undefined ? {} : { end }) })) as Readable) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('MySQL: chunk INSERTs are prepared statements', () => {
  it('an upload sends its chunks as bytes (execute), never inside the SQL text of query()', async () => {
    const pool = mysql.createPool({ uri: await mysqlUrl(), connectionLimit: 4, charset: 'utf8mb4' });
    // The biggest parameter that any query() (text protocol) of the pool carried, and the chunk INSERTs executed.
    let biggestQueryParam = 0;
    let executedInserts = 0;
    pool.on('connection', (conn) => {
      const c = conn as unknown as Record<'query' | 'execute', (...args: unknown[]) => unknown>;
      const query = c.query.bind(conn);
      const execute = c.execute.bind(conn);
      c.query = (...args: unknown[]) => {
        const values = args[1];
        if (Array.isArray(values)) for (const v of values) if (Buffer.isBuffer(v)) biggestQueryParam = Math.max(biggestQueryParam, v.length);
        return query(...args);
      };
      c.execute = (...args: unknown[]) => {
        if (typeof args[0] === 'string' && /^insert into `\w*chunks`/.test(args[0])) executedInserts++;
        return execute(...args);
      };
    });
    const p = new SqlProvider({ connection: { dialect: 'mysql', pool }, tablePrefix: randomPrefix() });
    try {
      const data = bytes(5 * MiB + 12_345, 7);
      await put(p, '/big.bin', data);
      expect(biggestQueryParam).toBe(0);
      // 21 chunks, four per INSERT.
      expect(executedInserts).toBe(6);
      expect((await get(p, '/big.bin')).equals(data)).toBe(true);
      expect((await p.stat('/big.bin')).size).toBe(data.length);
      await p.dropTables();
    } finally {
      await p.close();
      await new Promise<void>((resolve) => pool.end(() => resolve()));
    }
  });
});

describe('PostgreSQL: chunk reads are binary COPY', () => {
  it('a COPY tells pg it is over, so a pool with query_timeout keeps no timer per download', async () => {
    // pg clears a statement's query_timeout timer through its callback: one left running per download kept a
    // process alive for query_timeout after its last download, and fired on a client serving someone else.
    const pool = new pg.Pool({ connectionString: await postgresUrl(), max: 2, idleTimeoutMillis: 0, query_timeout: 60_000 });
    const p = new SqlProvider({ connection: { dialect: 'postgres', pool }, tablePrefix: randomPrefix() });
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    try {
      const data = bytes(300_000, 3);
      await put(p, '/t.bin', data);
      await get(p, '/t.bin');
      await new Promise((r) => setImmediate(r));
      const before = timers();
      const downloads = 6;
      for (let i = 0; i < downloads; i++) expect((await get(p, '/t.bin')).equals(data)).toBe(true);
      await new Promise((r) => setImmediate(r));
      // One left per download on the old code (6); another timer of the process may come and go meanwhile.
      expect(timers() - before).toBeLessThanOrEqual(1);
      await p.dropTables();
    } finally {
      await p.close();
      await pool.end();
    }
  });

  it('a download reads its chunks through COPY … (format binary), never a SELECT of the bytea column', async () => {
    const pool = new pg.Pool({ connectionString: await postgresUrl(), max: 4 });
    const texts: string[] = [];
    pool.on('connect', (client) => {
      const c = client as unknown as { query: (...args: unknown[]) => unknown };
      const query = c.query.bind(client);
      c.query = (...args: unknown[]) => {
        const q = args[0] as string | { text?: string } | { submit: unknown };
        texts.push(typeof q === 'string' ? q : 'text' in q && typeof q.text === 'string' ? q.text : `submittable: ${(q as { constructor: { name: string } }).constructor.name}`);
        return query(...args);
      };
    });
    const p = new SqlProvider({ connection: { dialect: 'postgres', pool }, tablePrefix: randomPrefix() });
    try {
      const data = bytes(5 * MiB + 12_345, 9);
      await put(p, '/big.bin', data);
      texts.length = 0;
      expect((await get(p, '/big.bin')).equals(data)).toBe(true);
      const chunkSelects = texts.filter((t) => /"bytes"/.test(t) && !/^copy/i.test(t));
      expect(chunkSelects).toEqual([]);
      // 21 chunks, four per read: six reads.
      expect(texts.filter((t) => t === 'submittable: CopyOut')).toHaveLength(6);
      // Ranges across chunk boundaries, and an empty file.
      expect((await range(p, '/big.bin', 262_140, 3 * 262_144 + 5)).equals(data.subarray(262_140, 3 * 262_144 + 6))).toBe(true);
      expect((await range(p, '/big.bin', data.length - 100)).equals(data.subarray(data.length - 100))).toBe(true);
      await put(p, '/empty', Buffer.alloc(0));
      expect((await get(p, '/empty')).length).toBe(0);
      await p.dropTables();
    } finally {
      await p.close();
      await pool.end();
    }
  });

  it('a failing COPY fails the download and leaves the pool usable', async () => {
    const pool = new pg.Pool({ connectionString: await postgresUrl(), max: 1 });
    const p = new SqlProvider({ connection: { dialect: 'postgres', pool }, tablePrefix: randomPrefix() });
    try {
      const data = bytes(3 * MiB, 3);
      await put(p, '/f', data);
      const rs = await p.createReadStream('/f');
      // The chunks table goes away under the open download: its next COPY fails.
      await p.dropTables();
      await expect(
        (async () => {
          for await (const _ of rs as Readable) void _;
        })(),
      ).rejects.toMatchObject({ code: 'EIO' });
      expect((await pool.query('select 1 as one')).rows[0].one).toBe(1);
    } finally {
      await p.close();
      await pool.end();
    }
  });

  it('parses binary COPY data: int4 or int8 seq, empty bytes; rejects malformed data', () => {
    const header = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
    const row = (seq: Buffer, b: Buffer): Buffer => {
      const h = Buffer.alloc(2 + 4);
      h.writeInt16BE(2, 0);
      h.writeInt32BE(seq.length, 2);
      const l = Buffer.alloc(4);
      l.writeInt32BE(b.length, 0);
      return Buffer.concat([h, seq, l, b]);
    };
    const i4 = Buffer.alloc(4);
    i4.writeInt32BE(7, 0);
    const i8 = Buffer.alloc(8);
    i8.writeBigInt64BE(8n, 0);
    const trailer = Buffer.from([0xff, 0xff]);
    const rows = parseChunkCopy(Buffer.concat([header, row(i4, Buffer.from('abc')), row(i8, Buffer.alloc(0)), trailer]));
    expect(rows.map((r) => [r.seq, r.bytes.toString()])).toEqual([
      [7, 'abc'],
      [8, ''],
    ]);
    expect(() => parseChunkCopy(Buffer.concat([header, row(i4, Buffer.from('abc'))]))).toThrow(/malformed/);
    expect(() => parseChunkCopy(Buffer.from('not a copy at all, really'))).toThrow(/malformed/);
  });
});

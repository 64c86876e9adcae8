/**
 * Reads a TCP or TLS socket into buffers the caller hands out and takes back, instead of a fresh one per read.
 *
 * Node reads an accepted socket into a new 64 KiB buffer each time: an allocation, page faults on cache-cold
 * memory and garbage for every read. On a 2-core VM a sink that only counts 1 GiB costs 0.78 s of CPU that way
 * and 0.14 s reading into reused buffers; a whole upload to disk 1.6–2.1 s against 0.42–0.79 s. Node has the
 * mechanism (`onread` with a buffer) but offers it only for sockets it connects itself. For accepted ones the
 * same fields are set here, found by their names; a Node without them gets ordinary reads.
 */
import { Socket } from 'node:net';

/** The socket's fields behind `onread` (net.js): the buffer read into, the callback, the next-buffer function. */
interface OnreadFields {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

let fields: OnreadFields | null | undefined;

function onreadFields(): OnreadFields | null {
  if (fields !== undefined) return fields;
  const probe = new Socket();
  const find = (name: string): symbol | undefined => Object.getOwnPropertySymbols(probe).find((s) => s.description === name);
  const buffer = find('kBuffer');
  const callback = find('kBufferCb');
  const generator = find('kBufferGen');
  fields = buffer && callback && generator ? { buffer, callback, generator } : null;
  probe.destroy();
  return fields;
}

/** Whether this Node lets {@link readIntoBuffers} take over a socket's reads (else uploads use ordinary reads). */
export function pooledReadsAvailable(): boolean {
  return onreadFields() !== null;
}

interface HandleWithUserBuffer {
  useUserBuffer?: (buffer: Uint8Array) => void;
}

/**
 * Makes `socket` read into `first`, then into whatever `next` returns after each read. `onRead` gets how many
 * bytes landed at the start of the buffer read into; `next` is asked for the following one right after (it must
 * not be empty). Returning false pauses the socket (`resume()` goes on). A TLS socket hands over its clear text
 * the same way, a record at most per read.
 *
 * Data the socket had already buffered is returned, to be handled before anything `onRead` gets (it arrived
 * first). Returns null, changing nothing, when the socket cannot be taken over: a Node without the fields, or a
 * socket that already reads into a buffer of its own. 'end', 'error' and 'close' are emitted as usual; no 'data'
 * events are.
 */
export function readIntoBuffers(socket: Socket, first: Buffer, next: () => Buffer, onRead: (length: number) => boolean): Buffer[] | null {
  const f = onreadFields();
  if (f === null || !(socket instanceof Socket) || socket.destroyed) return null;
  const handle = (socket as unknown as { _handle: HandleWithUserBuffer | null })._handle;
  const own = socket as unknown as Record<symbol, unknown>;
  if (typeof handle?.useUserBuffer !== 'function' || own[f.buffer] !== null || own[f.callback] !== null || own[f.generator] !== null) return null;
  // Whatever the socket read before now sits in its readable buffer: drained first, it comes first.
  socket.pause();
  own[f.buffer] = first;
  own[f.generator] = next;
  own[f.callback] = onRead;
  handle.useUserBuffer(first);
  const earlier: Buffer[] = [];
  for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null; ) earlier.push(chunk);
  return earlier;
}

/** Where a socket's reads go once nothing wants them (see {@link discardReads}): never handed to anyone. */
let scratch: Buffer | null = null;

/**
 * Points the reads of a socket taken over by {@link readIntoBuffers} at a scratch buffer of this module's own, each
 * read reported to `onRead` and dropped: for a data connection whose bytes nobody wants any more, read on so that
 * its client can finish sending (a buffer of the pool must not be read into once it went back). Returns false for
 * a socket not taken over (its 'data' events then carry the reads).
 */
export function discardReads(socket: Socket, onRead: (length: number) => void): boolean {
  const f = onreadFields();
  const own = socket as unknown as Record<symbol, unknown>;
  const handle = (socket as unknown as { _handle: HandleWithUserBuffer | null })._handle;
  if (f === null || own[f.buffer] === null || own[f.buffer] === undefined || typeof handle?.useUserBuffer !== 'function') return false;
  scratch ??= Buffer.allocUnsafe(64 * 1024);
  const into = scratch;
  own[f.buffer] = into;
  own[f.generator] = () => into;
  own[f.callback] = (length: number): boolean => {
    onRead(length);
    return true;
  };
  handle.useUserBuffer(into);
  return true;
}

/**
 * Bytes a read stream whose reads are synchronous (memory, SQLite) produces before it gives the event loop a turn.
 * A consumer that takes each chunk at once (a socket with room) asks for the next in the same turn, so without
 * turns a 1 GiB RETR held every other session of the server for 100–440 ms at a time.
 */
export const READ_TURN_BYTES = 1024 * 1024;

/**
 * The turns of one such stream: `_read` returns while {@link waiting}, counts what it pushes, and stops when
 * {@link due} says a turn has begun (it is called again after it). One wait at a time: a consumer that reads again
 * inside `push` must not start a second one, or the waits pile up (measured: each turn 20 → 278 ms late).
 */
export class ReadTurns {
  #since = 0;
  #waiting = false;

  /** A turn is awaited: reads wait with it. */
  get waiting(): boolean {
    return this.#waiting;
  }

  /** Counts bytes pushed. */
  count(bytes: number): void {
    this.#since += bytes;
  }

  /** When {@link READ_TURN_BYTES} were read since the last turn: begins one, calls `resume` after it, answers true. */
  due(resume: () => void): boolean {
    if (this.#since < READ_TURN_BYTES) return false;
    this.#since = 0;
    this.#waiting = true;
    setImmediate(() => {
      this.#waiting = false;
      resume();
    });
    return true;
  }
}

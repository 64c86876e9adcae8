import { EventEmitter } from 'node:events';

/** Sessions kept per TLS context: its control connection's (TLS 1.3 issues two tickets a handshake). */
const KEPT = 8;

/**
 * The TLS 1.2 sessions of one TLS context (so of one FTP session: see `TlsContexts`), for data connections that
 * resume by session ID. TLS 1.3 and TLS 1.2 clients that take tickets resume from the ticket alone; a TLS 1.2 client
 * that sends no ticket extension (curl with OpenSSL) can only resume by ID, which needs the server to keep the
 * session. Without this store such a client could not open a single protected data connection while session
 * reuse is required.
 *
 * Node asks for stored sessions through the `newSession` and `resumeSession` events of a TLS socket's `server`
 * option; an object of its own per context, rather than a server shared by all, keeps one FTP session's data
 * connections from resuming another's session (the point of requiring reuse). Only the control connection's
 * handshakes are stored ({@link control}); data connections may resume them but add nothing ({@link data}): a data
 * connection refused for not resuming (522) must not leave a session that the next attempt could resume, which
 * would let whoever wins the race to the data port twice in a row in. Entries are small (~130 bytes) and bounded;
 * {@link clear} drops them when the context is recycled for another FTP session.
 */
export class TlsSessionIds {
  readonly #sessions = new Map<string, Buffer>();
  /** For the control connection's handshakes: stores the sessions they make, resumes stored ones. */
  readonly control = new EventEmitter();
  /** For data connections' handshakes: resumes stored sessions, stores nothing (Node then ends its wait itself). */
  readonly data = new EventEmitter();

  constructor() {
    this.control.on('newSession', (id: Buffer, session: Buffer, done: () => void) => {
      const key = id.toString('hex');
      this.#sessions.delete(key);
      this.#sessions.set(key, session);
      if (this.#sessions.size > KEPT) this.#sessions.delete(this.#sessions.keys().next().value!);
      done();
    });
    const resume = (id: Buffer, answer: (err: Error | null, session: Buffer | null) => void): void => {
      answer(null, this.#sessions.get(id.toString('hex')) ?? null);
    };
    this.control.on('resumeSession', resume);
    this.data.on('resumeSession', resume);
  }

  /** How many sessions are kept. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Forgets every session: none of them can be resumed any more. */
  clear(): void {
    this.#sessions.clear();
  }
}

import { expect, it } from 'vitest';
import { TlsSessionIds } from '../src/tls-session-ids.js';

/** What Node does with a socket's `server`: emits newSession (waiting for `done` if anyone listens), and resumeSession. */
function newSession(emitter: import('node:events').EventEmitter, id: string): boolean {
  let done = false;
  const listened = emitter.emit('newSession', Buffer.from(id), Buffer.from(`session ${id}`), () => (done = true));
  return listened && done;
}
function resume(emitter: import('node:events').EventEmitter, id: string): string | null {
  let found: Buffer | null = null;
  emitter.emit('resumeSession', Buffer.from(id), (_err: Error | null, session: Buffer | null) => (found = session));
  return found === null ? null : (found as Buffer).toString();
}

it("keeps the control connection's sessions for data connections to resume, and none that a data connection makes", () => {
  const ids = new TlsSessionIds();
  expect(newSession(ids.control, 'ctl')).toBe(true);
  expect(resume(ids.data, 'ctl')).toBe('session ctl');
  // A data connection's full handshake (one that will be refused for not resuming) leaves nothing to resume later.
  expect(newSession(ids.data, 'racer')).toBe(false);
  expect(resume(ids.data, 'racer')).toBeNull();
  expect(ids.size).toBe(1);
});

it('keeps at most 8, the newest, and forgets them all when cleared', () => {
  const ids = new TlsSessionIds();
  for (let i = 0; i < 10; i++) newSession(ids.control, `s${i}`);
  expect(ids.size).toBe(8);
  expect(resume(ids.data, 's0')).toBeNull();
  expect(resume(ids.data, 's9')).toBe('session s9');
  ids.clear();
  expect(resume(ids.control, 's9')).toBeNull();
});

import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, expect, it } from 'vitest';
import { RawClient, startServer } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** V8's collector, without starting the test process with --expose-gc. */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as () => void;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

it('a session is let go as soon as its connection closes, not kept for the 2 s close timer', async () => {
  const gc = collector();
  const { server, port } = await startServer();
  cleanups.push(() => server.close());
  const c = await RawClient.connect(port);
  await c.login();
  const sessions = (server as unknown as { sessions: Set<object> }).sessions;
  expect(sessions.size).toBe(1);
  const ref = new WeakRef([...sessions][0] as object);
  expect((await c.cmd('QUIT')).code).toBe(221);
  if (!c.closed) await once(c.socket, 'close');
  // The server's side has closed too once the client's has, and nothing of the session is pending.
  for (let i = 0; i < 50 && sessions.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 50));
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
  expect(ref.deref()).toBeUndefined();
});

/** Starting and stopping server processes, and waiting for their greeting. */
import { spawn, type SpawnOptions } from 'node:child_process';
import net from 'node:net';
import type { RunningServer } from './types.js';

/**
 * Spawns a server in its own process group (so stopping it also stops the session processes forking servers
 * leave behind) and resolves once it greets on `port`.
 */
export async function spawnServer(command: string, args: readonly string[], port: number, options: SpawnOptions = {}): Promise<RunningServer> {
  // Another server on the port (a second `pnpm bench`, a left-over process) would greet in its place, and its
  // figures would be reported as this server's.
  if (await accepts(port)) throw new Error(`port ${port} is already in use (is another pnpm bench running?)`);
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true, ...options });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 4000) stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const stop = async (): Promise<void> => {
    if (gone || child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 3000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitForGreeting(port, 15_000, () => gone);
  } catch (e) {
    await stop();
    throw new Error(`${command} did not start: ${(e as Error).message}${stderr ? `; stderr: ${stderr.trim().slice(0, 600)}` : ''}`);
  }
  return { pid: child.pid!, stop };
}

/** Whether something accepts connections on 127.0.0.1:`port`. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (yes: boolean): void => {
      socket.destroy();
      resolve(yes);
    };
    socket.setTimeout(2000, () => done(true));
    socket.once('connect', () => done(true));
    socket.on('error', () => done(false));
  });
}

/** Polls until something on 127.0.0.1:`port` sends an FTP 220 greeting. */
export async function waitForGreeting(port: number, timeoutMs: number, gone: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (gone()) throw new Error('the process exited');
    if (await greets(port)) return;
    if (Date.now() > deadline) throw new Error(`no 220 greeting on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let text = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      if (/^220[ ]/m.test(text)) {
        socket.end('QUIT\r\n');
        done(true);
      }
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
}

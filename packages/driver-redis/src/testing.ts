import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

/**
 * For tests (`@ftp/driver-redis/testing`): the Redis of the machine on 127.0.0.1:6379, started with
 * `redis-server --daemonize yes` when it is down. A Redis that can be neither reached nor started throws, in CI and
 * elsewhere: tests that need Redis never skip silently.
 */
export async function ensureLocalRedis(port = 6379): Promise<void> {
  if (await redisAnswers(port)) return;
  try {
    await promisify(execFile)('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '-::1', '--port', String(port), '--save', '', '--appendonly', 'no']);
  } catch (err) {
    throw new Error(`Redis is down on 127.0.0.1:${port} and redis-server could not be started${process.env.CI === 'true' ? ' (CI)' : ''}: ${String(err)}`);
  }
  const deadline = Date.now() + 10_000;
  while (!(await redisAnswers(port))) {
    if (Date.now() > deadline) throw new Error(`redis-server started but 127.0.0.1:${port} does not answer PING within 10 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether a Redis answers PING on a loopback port (within about a second). */
export async function redisAnswers(port: number): Promise<boolean> {
  const probe = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

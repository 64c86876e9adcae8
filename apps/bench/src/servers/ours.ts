/**
 * Our reference server, apps/ftpd: the command line for the local-disk backend (plain password check), a
 * config file for the other backends and for scrypt-hashed logins.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BENCH_ROOT, output } from '../peers.js';
import { removeBackendData } from './backend-cleanup.js';
import { spawnServer } from './process.js';
import type { ServerSpec, StartContext } from './types.js';

const CLI = path.resolve(BENCH_ROOT, '../ftpd/dist/cli.js');

async function prepare(): Promise<string | null> {
  return existsSync(CLI) ? null : `${CLI} is not built (run pnpm build)`;
}

/** The backends ours can be benchmarked on, as ftpd config `backends` entries (null: the command line, local disk). */
export const OUR_BACKENDS: Record<string, (ctx: StartContext) => Record<string, unknown> | null> = {
  local: () => null,
  memory: () => ({ type: 'memory' }),
  sqlite: (ctx) => ({ type: 'sqlite', file: path.join(ctx.work, 'fs.db') }),
  redis: (ctx) => ({ type: 'redis', url: 'redis://127.0.0.1:6379/0', prefix: `bench-${path.basename(ctx.work)}-${Date.now()}` }),
  postgres: () => ({ type: 'sql', url: 'postgres://postgres@127.0.0.1:5432/test', tablePrefix: `bench${Date.now()}_` }),
  mysql: () => ({ type: 'sql', url: 'mysql://root@127.0.0.1:3306/test', tablePrefix: `bench${Date.now()}_` }),
};

/**
 * Environment variables from `NAME=value` words separated by spaces (`--variant`), for trying a change that an
 * environment variable switches (a throwaway A/B build) against the same build without it, in the same rounds.
 */
export function parseVariant(words: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const word of words.split(/\s+/).filter(Boolean)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(word);
    if (m === null) throw new Error(`--variant: expected NAME=value words, got ${JSON.stringify(word)}`);
    env[m[1]!] = m[2]!;
  }
  if (Object.keys(env).length === 0) throw new Error('--variant: no NAME=value given');
  return env;
}

/**
 * ftpd on one backend. `scrypt` logs in through a config file's scrypt hash instead of the plain check; `workers`
 * runs that many processes on the port (`--workers`); `variant` adds environment variables (`--variant`).
 */
export function ours(backend: string, options: { scrypt?: boolean; profileDir?: string; workers?: number; variant?: Record<string, string> } = {}): ServerSpec {
  const make = OUR_BACKENDS[backend];
  if (make === undefined) throw new Error(`unknown backend ${backend} (known: ${Object.keys(OUR_BACKENDS).join(', ')})`);
  const viaConfig = backend !== 'local' || options.scrypt === true;
  if (viaConfig && options.workers) throw new Error('workers are benchmarked on the command line (local disk) only');
  return {
    name: options.variant ? 'ours (variant)' : options.scrypt ? 'ours (scrypt)' : options.workers ? `ours (${options.workers} workers)` : backend === 'local' ? 'ours' : `ours (${backend})`,
    ours: true,
    alwaysTls: true,
    slowLogins: options.scrypt === true,
    homeOnDisk: backend === 'local',
    prepare,
    async start(ctx) {
      const common = { detached: true, env: { ...process.env, NODE_ENV: 'production', ...options.variant } };
      // --profile: a CPU profile per server process, for finding where a missed target's time goes.
      const node = options.profileDir ? [`--cpu-prof`, `--cpu-prof-dir=${options.profileDir}`] : [];
      // BENCH_OURS_NODE_ARGS: runtime flags for trying a V8 setting on our server alone (split on spaces).
      node.push(...(process.env.BENCH_OURS_NODE_ARGS ?? '').split(' ').filter(Boolean));
      if (!viaConfig) {
        const args = [CLI, '--port', String(ctx.port), '--root', ctx.home, '--user', ctx.user, '--password', ctx.password];
        args.push('--pasv-range', `${ctx.passive[0]}-${ctx.passive[1]}`, '--log-level', 'warn', '--max-sessions', '0');
        args.push('--max-login-failures', '0');
        if (options.workers) args.push('--workers', String(options.workers));
        if (ctx.tls) args.push('--tls-cert', ctx.tls.cert, '--tls-key', ctx.tls.key);
        return spawnServer(process.execPath, [...node, ...args], ctx.port, common);
      }
      const hash = (await output(process.execPath, [CLI, 'hash-password'], { input: `${ctx.password}\n` })).trim();
      const backendConfig = make(ctx) ?? { type: 'local', root: ctx.home };
      const config = {
        listeners: [{ host: '127.0.0.1', port: ctx.port }],
        ...(ctx.tls ? { tls: { cert: ctx.tls.cert, key: ctx.tls.key } } : {}),
        backends: { bench: backendConfig },
        users: [{ name: ctx.user, passwordHash: hash, backend: 'bench' }],
        server: { passivePortRange: ctx.passive, maxSessions: 0, maxLoginFailures: 0 },
        shutdownGrace: 0,
        log: { level: 'warn' },
      };
      const file = path.join(ctx.work, 'ftpd.json.yaml');
      writeFileSync(file, JSON.stringify(config, null, 2)); // JSON is YAML
      const running = await spawnServer(process.execPath, [...node, CLI, '--config', file], ctx.port, common);
      let removed: Promise<void> | undefined;
      return {
        pid: running.pid,
        async stop() {
          await running.stop();
          removed ??= removeBackendData(backendConfig).catch((err: unknown) => {
            console.warn(`could not remove the ${backend} data of this run: ${(err as Error).message}`);
          });
          await removed;
        },
      };
    },
  };
}

/**
 * Idle logged-in sessions: the server's memory (PSS of its whole process tree, so forking servers are billed
 * for every session process and shared pages are split fairly) before and after opening them, per session.
 * Each run starts a fresh server process, so memory freed by earlier workloads cannot hide the cost.
 */
import { FtpClient } from '../ftp-client.js';
import { treeMemory } from '../proc.js';
import { summarize } from '../stats.js';
import { repeat } from './measure.js';
import type { Row, Workload, WorkloadContext } from './types.js';

const KIB = 1024;
const OPENERS = 50;
/** Opening stops here (a server with slow logins is measured on the sessions it took by then, and says so). */
const OPEN_SECONDS = 8;

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Opens `count` logged-in sessions; returns them and how many failed. */
async function openSessions(ctx: WorkloadContext, count: number): Promise<{ sessions: FtpClient[]; loggedIn: number; failed: number; error: string }> {
  const sessions: FtpClient[] = [];
  let loggedIn = 0;
  let next = 0;
  let failed = 0;
  let error = '';
  const deadline = performance.now() + OPEN_SECONDS * 1000;
  const opener = async (): Promise<void> => {
    while (next < count && performance.now() < deadline) {
      next++;
      try {
        // A connection still not answered 2 s after the opening window is not waited for longer: a server that drops
        // connections past its backlog would otherwise hold each run for the whole SYN-retry schedule.
        const c = await FtpClient.connect({ host: '127.0.0.1', port: ctx.start.port, timeoutMs: OPEN_SECONDS * 1000 + 2000 });
        sessions.push(c);
        await c.login(ctx.start.user, ctx.start.password);
        loggedIn++;
      } catch (e) {
        failed++;
        error ||= (e as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: OPENERS }, opener));
  return { sessions, loggedIn, failed, error };
}

/** Memory per idle session (KiB, PSS and RSS) with `count` sessions on a fresh server; also the total PSS in MiB. */
export async function idleFootprint(ctx: WorkloadContext, count: number): Promise<{ pssKiB: number; rssKiB: number; totalMiB: number; failed: number }> {
  const server = await ctx.restart();
  // A first round of sessions (as many as the openers run at once), closed again, so that what a server sets up
  // once (code loaded on first use, a JIT's compiled code, pools sized for concurrent logins) is not billed to
  // each idle session. Fair to every server: one that sets up nothing loses nothing.
  const warm = await openSessions(ctx, OPENERS);
  warm.sessions.forEach((s) => s.destroy());
  await settle(1000);
  const before = treeMemory(server.pid);
  const opened = await openSessions(ctx, count);
  try {
    await settle(1500);
    const after = treeMemory(server.pid);
    const n = opened.loggedIn;
    if (n === 0) throw new Error(`no session logged in: ${opened.error}`);
    if (opened.failed > 0) ctx.log(`  ${opened.failed} of ${count} sessions failed, e.g. ${opened.error}`);
    if (n + opened.failed < count) ctx.log(`  ${n} of ${count} sessions opened within ${OPEN_SECONDS} s`);
    return {
      pssKiB: (after.pssBytes - before.pssBytes) / n / KIB,
      rssKiB: (after.rssBytes - before.rssBytes) / n / KIB,
      totalMiB: after.pssBytes / KIB / KIB,
      failed: count - n,
    };
  } finally {
    opened.sessions.forEach((s) => s.destroy());
  }
}

export function idle(count = 1000, options: { oursOnly?: boolean; runs?: number } = {}): Workload {
  const id = count === 1000 ? 'idle' : `idle-${count}`;
  return {
    id,
    title: `${count.toLocaleString('en')} idle logged-in sessions`,
    alone: true,
    async run(ctx) {
      if (options.oursOnly && !ctx.spec.ours) return [];
      const { values, errors } = await repeat(
        options.runs ?? ctx.runs,
        async () => {
          const f = await idleFootprint(ctx, count);
          // A server that caps its sessions is measured on those it took; the failures are reported beside it.
          if (f.failed > count * 0.9) throw new Error(`${f.failed} of ${count} sessions failed`);
          return [f.pssKiB, f.rssKiB, f.totalMiB, f.failed];
        },
        4,
      );
      const note = errors.length ? `${errors.length} failed: ${errors[0]}` : undefined;
      return [
        { workload: id, metric: 'memory per session (PSS)', unit: 'KiB', better: 'lower', figure: summarize(values[0]!), note },
        { workload: id, metric: 'memory per session (RSS)', unit: 'KiB', better: 'lower', figure: summarize(values[1]!) },
        { workload: id, metric: 'server total with them (PSS)', unit: 'MiB', better: 'lower', figure: summarize(values[2]!) },
        { workload: id, metric: 'sessions not opened', unit: 'count', better: 'info', figure: summarize(values[3]!) },
      ] satisfies Row[];
    },
  };
}

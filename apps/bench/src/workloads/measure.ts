/** Brackets a piece of work with wall time and the CPU readings every figure carries. */
import { generateLoad, loadGenerator, type LoadOptions, type LoadResult } from '../load-generator.js';
import { childrenCpuSeconds, machineBusySeconds, selfCpuSeconds, treeCpuSeconds } from '../proc.js';
import type { WorkloadContext } from './types.js';

export interface Measured<T> {
  value: T;
  seconds: number;
  /** CPU seconds of the server's process tree. */
  serverCpu: number;
  /** CPU seconds of the clients: this process (load generator) and its reaped children (curl). */
  clientCpu: number;
  /** Busy CPU seconds of the whole machine: server + client + kernel (+ anything else running). */
  machineCpu: number;
}

export async function measure<T>(serverPid: number, work: () => Promise<T>): Promise<Measured<T>> {
  const s0 = treeCpuSeconds(serverPid);
  const c0 = childrenCpuSeconds() + selfCpuSeconds();
  const m0 = machineBusySeconds();
  const t0 = performance.now();
  const value = await work();
  const seconds = (performance.now() - t0) / 1000;
  // Forking servers' session processes exit just after their last reply; their CPU time counts once the parent
  // has reaped them, so the readings wait a moment (outside the timed part).
  await new Promise((r) => setTimeout(r, 150));
  return {
    value,
    seconds,
    serverCpu: treeCpuSeconds(serverPid) - s0,
    clientCpu: childrenCpuSeconds() + selfCpuSeconds() - c0,
    machineCpu: machineBusySeconds() - m0,
  };
}

/** Runs `attempt` `runs` times; a failed attempt is NaN (and its message kept), so one failure does not end the figure. */
export async function repeat(runs: number, attempt: (i: number) => Promise<number[]>, width: number): Promise<{ values: number[][]; errors: string[] }> {
  const values: number[][] = Array.from({ length: width }, () => []);
  const errors: string[] = [];
  for (let i = 0; i < runs; i++) {
    try {
      const got = await attempt(i);
      got.forEach((v, k) => values[k]!.push(v));
    } catch (e) {
      errors.push((e as Error).message);
      for (const list of values) list.push(Number.NaN);
    }
  }
  return { values, errors };
}

/**
 * One bout of the C load generator's sessions against the workload's server (its port and account), measured. The
 * generator is built first, outside the measurement: the compiler's time and CPU are no client's.
 */
export async function measureLoad(ctx: WorkloadContext, options: Omit<LoadOptions, 'port' | 'user' | 'password'>): Promise<Measured<LoadResult>> {
  await loadGenerator();
  return measure(ctx.server.pid, () => generateLoad({ ...options, port: ctx.start.port, user: ctx.start.user, password: ctx.start.password }));
}

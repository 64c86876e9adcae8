/**
 * Readings from /proc: a process tree's CPU seconds and memory, and the whole machine's busy time. CPU seconds
 * are steadier than wall time on a shared 2-core machine, so every figure carries them.
 */
import { readFileSync, readdirSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux ABI Node supports

/** The fields of /proc/PID/stat this file uses. */
export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime, in seconds: this process and every child it has reaped. */
  cpuSeconds: number;
  rssBytes: number;
}

/** Parses one /proc/PID/stat line (the command name may hold spaces and parentheses). */
export function parseStat(line: string): ProcStat {
  const close = line.lastIndexOf(')');
  const pid = Number(line.slice(0, line.indexOf(' ')));
  const f = line.slice(close + 2).split(' ');
  // f[0] is field 3 (state); field n is f[n - 3].
  const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  return { pid, ppid: Number(f[1]), cpuSeconds: ticks / TICKS_PER_SECOND, rssBytes: Number(f[21]) * 4096 };
}

function readStat(pid: number): ProcStat | null {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null; // gone between the listing and the read
  }
}

/** `root` and all its live descendants. */
export function processTree(root: number): ProcStat[] {
  const all: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s !== null) all.push(s);
  }
  const children = new Map<number, ProcStat[]>();
  for (const s of all) {
    const list = children.get(s.ppid) ?? [];
    list.push(s);
    children.set(s.ppid, list);
  }
  const tree: ProcStat[] = [];
  const rootStat = all.find((s) => s.pid === root);
  if (rootStat === undefined) return tree;
  const todo = [rootStat];
  while (todo.length > 0) {
    const s = todo.pop()!;
    tree.push(s);
    todo.push(...(children.get(s.pid) ?? []));
  }
  return tree;
}

/**
 * CPU seconds used by a process tree so far. Children that exited and were reaped count through their parent's
 * cutime/cstime, so forking servers (vsftpd, pure-ftpd) are billed for their finished sessions too.
 */
export function treeCpuSeconds(root: number): number {
  return processTree(root).reduce((sum, s) => sum + s.cpuSeconds, 0);
}

/** This process's reaped children (curl runs), in CPU seconds. */
export function childrenCpuSeconds(): number {
  const f = readFileSync('/proc/self/stat', 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND;
}

/** This process's own CPU seconds (the load generator). */
export function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Busy CPU seconds of the whole machine (all but idle and iowait), summed over cores. */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = v as [number, number, number, number, number, number, number, number];
  return (user + nice + system + irq + softirq + (steal ?? 0)) / TICKS_PER_SECOND;
}

/** Proportional set size of one process in bytes (shared pages split among their users), or its RSS if unreadable. */
function pssBytes(s: ProcStat): number {
  try {
    const text = readFileSync(`/proc/${s.pid}/smaps_rollup`, 'utf8');
    const m = /^Pss:\s+(\d+) kB/m.exec(text);
    if (m) return Number(m[1]) * 1024;
  } catch {
    // fall through
  }
  return s.rssBytes;
}

/** Memory of a process tree: summed RSS and summed PSS (PSS is fair to forking servers that share pages). */
export function treeMemory(root: number): { rssBytes: number; pssBytes: number; processes: number } {
  const tree = processTree(root);
  return {
    rssBytes: tree.reduce((sum, s) => sum + s.rssBytes, 0),
    pssBytes: tree.reduce((sum, s) => sum + pssBytes(s), 0),
    processes: tree.length,
  };
}

import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { machineBusySeconds, parseStat, processTree, treeCpuSeconds, treeMemory } from '../src/proc.js';

describe('/proc readings', () => {
  it('parses a stat line whose command name holds spaces and parentheses', () => {
    // pid (comm) state ppid ... utime stime cutime cstime ... rss at field 24
    const fields = ['S', '7', ...Array.from({ length: 9 }, () => '0'), '150', '50', '30', '20', ...Array.from({ length: 6 }, () => '0'), '1000', '0'];
    const s = parseStat(`42 (a (b) c) ${fields.join(' ')}`);
    expect(s).toEqual({ pid: 42, ppid: 7, cpuSeconds: 2.5, rssBytes: 1000 * 4096 });
  });

  it('finds a child in the tree of this process and bills its CPU time to the tree', async () => {
    // The child burns 0.3 s of its own CPU (not of wall time: on a loaded machine 300 ms of wall time may give it
    // less), bounded by 5 s of wall time, then says so and waits.
    const burn = 'const end = Date.now() + 5000; while (process.cpuUsage().user < 300000 && Date.now() < end); console.log("done"); setTimeout(() => {}, 5000)';
    const child = spawn(process.execPath, ['-e', burn]);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the child did not finish burning CPU within 8 s')), 8000);
        child.stdout.once('data', () => (clearTimeout(timer), resolve()));
      });
      const tree = processTree(process.pid);
      expect(tree.map((s) => s.pid)).toContain(child.pid);
      expect(treeCpuSeconds(child.pid!)).toBeGreaterThanOrEqual(0.2);
      const mem = treeMemory(process.pid);
      expect(mem.processes).toBeGreaterThanOrEqual(2);
      expect(mem.pssBytes).toBeGreaterThan(10 * 1024 * 1024);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('counts machine busy time that grows while a core is busy', () => {
    const before = machineBusySeconds();
    const end = Date.now() + 200;
    while (Date.now() < end);
    expect(machineBusySeconds() - before).toBeGreaterThanOrEqual(0.1);
  });
});

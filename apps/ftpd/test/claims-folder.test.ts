import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeClaimsFolder } from '../src/workers/claims-folder.js';

const shm = '/dev/shm';
const made: string[] = [];
afterEach(() => {
  for (const p of made.splice(0)) rmSync(p, { recursive: true, force: true });
});

/** The pid of a process that has exited (a short child, waited for). */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid as number;
}

describe.skipIf(!existsSync(shm))('the workers\' claims folder (SKIPPED without /dev/shm: the folder goes to tmpdir there)', () => {
  it("is made in /dev/shm, and removes dead supervisors' empty folders, but not busy ones, files, or live ones'", () => {
    const dead = deadPid();
    const empty = join(shm, `ftpd-claims-${dead}-empty`);
    const busy = join(shm, `ftpd-claims-${dead}-busy`);
    const file = join(shm, `ftpd-claims-${dead}-file`);
    const live = join(shm, `ftpd-claims-${process.pid}-live`);
    made.push(empty, busy, file, live);
    mkdirSync(empty);
    // Made by this version: nothing in it but its epoch marker.
    symlinkSync('e0123-0', join(empty, 'epoch'));
    mkdirSync(busy);
    writeFileSync(join(busy, '1-2.w'), '');
    writeFileSync(file, '');
    mkdirSync(live);
    const folder = makeClaimsFolder();
    made.push(folder);
    expect(folder.startsWith(join(shm, `ftpd-claims-${process.pid}-`))).toBe(true);
    // Marked as made before any claim, so that the workers' first claims need not wait (see startFileClaimsFolder).
    expect(readdirSync(folder)).toEqual(['epoch']);
    expect(readlinkSync(join(folder, 'epoch'))).toMatch(/^e[0-9a-f]+-0$/);
    expect(existsSync(empty)).toBe(false);
    // Busy and touched just now: it may be a live supervisor's in another PID namespace.
    expect(existsSync(busy)).toBe(true);
    expect(existsSync(file)).toBe(true);
    expect(existsSync(live)).toBe(true);
  });
});

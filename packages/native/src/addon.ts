/** The compiled addon (src/native, built into dist/native.node when the package installs), loaded once. */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { getSystemErrorMap } from 'node:util';

/** What the addon exports (addon.c). */
export interface Addon {
  trySend(socketFd: number, fileFd: number, offset: number, count: number, budget: number, progress: Float64Array): number;
  start(socketFd: number, fileFd: number, offset: number, count: number, progress: Float64Array, callback: (state: number, sent: number) => void): number;
  receive(socketFd: number, fileFd: number, offset: number, progress: Float64Array, callback: (state: number, written: number, fileFailed: boolean) => void): number;
  cancel(id: number): void;
  states: { SENT_ALL: number; WOULD_BLOCK: number; AT_EOF: number; CANCELLED: number; BUDGET_USED: number };
  lstatRows(prefix: string, names: readonly string[], rows: Float64Array, dev?: number, ino?: number): { index: number; errno: number } | null;
  openBeneath(root: string, relative: string, flags: number, mode: number): number;
  /** open(2)'s O_PATH on this machine. */
  O_PATH: number;
  unackedBytes(fd: number): number;
  /** malloc_trim(0): 1 released, 0 nothing to release (always 0 without glibc: see HAS_MALLOC_TRIM). */
  trimHeap(): number;
  /** Built against glibc, which has malloc_trim. */
  HAS_MALLOC_TRIM: boolean;
}

let addon: Addon | null | undefined;
let addonMissing: string | null = null;

/** The addon, loaded once; null (and {@link addonMissingReason} says why) where it is not there. */
export function loadAddon(): Addon | null {
  if (addon !== undefined) return addon;
  if (process.platform !== 'linux') {
    addonMissing = `this addon is for Linux; this is ${process.platform}`;
    return (addon = null);
  }
  try {
    // Written as a path from the package's folder: the same file from dist/index.js and from src/index.ts (tests).
    addon = createRequire(import.meta.url)(fileURLToPath(new URL('../dist/native.node', import.meta.url))) as Addon;
  } catch (err) {
    addonMissing = `the addon did not load (${(err as Error).message.split('\n')[0]}); rebuild with \`node src/native/build.mjs\` in @ftp/native`;
    addon = null;
  }
  return addon;
}

/** Why {@link loadAddon} gave null (null when it loaded). */
export function addonMissingReason(): string | null {
  loadAddon();
  return addonMissing;
}

/**
 * The addon for one of its fast paths, unless that path's switch (an environment variable: `FTP_SENDFILE`,
 * `FTP_KERNEL_RECEIVE`, `FTP_NATIVE_LSTAT`, `FTP_NATIVE_OPEN`, `FTP_MALLOC_TRIM`) is '0', for A/B measurements.
 */
export function addonFor(switchName: string): Addon | null {
  return process.env[switchName] === '0' ? null : loadAddon();
}

/** Why {@link addonFor} gives null: the switch, or why the addon is missing; null when it gives the addon. */
export function addonForReason(switchName: string): string | null {
  return process.env[switchName] === '0' ? `turned off by ${switchName}=0` : addonMissingReason();
}

/** A negative errno as libuv names and describes it (`[ 'ENOTDIR', 'not a directory' ]`). */
export function errnoName(errno: number): [code: string, description: string] {
  return getSystemErrorMap().get(errno) ?? [`E${-errno}`, 'unknown error'];
}

import { VfsError } from './errors.js';

/**
 * Splits an absolute or relative POSIX path into its meaningful segments (no empty segments, no `.`); `..` is kept.
 */
function rawSegments(path: string): string[] {
  const out: string[] = [];
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    out.push(seg);
  }
  return out;
}

function applySegments(stack: string[], path: string): void {
  for (const seg of rawSegments(path)) {
    if (seg === '..') stack.pop();
    else stack.push(seg);
  }
}

/**
 * Joins an FTP argument onto an absolute working directory and normalises the result: POSIX, `.` and `..`
 * resolved, duplicate and trailing slashes removed, never above `/` (`/../..` → `/`). An absolute `arg` starts
 * from `/`; an empty `arg` yields the normalised `cwd`.
 *
 * @throws VfsError `EINVAL` when either part contains a NUL byte.
 */
export function resolvePath(cwd: string, arg: string): string {
  if (cwd.includes('\0') || arg.includes('\0')) {
    throw new VfsError('EINVAL', 'EINVAL: path contains a NUL byte', { syscall: 'resolve' });
  }
  const stack: string[] = [];
  if (!arg.startsWith('/')) applySegments(stack, cwd);
  applySegments(stack, arg);
  return stack.length === 0 ? '/' : `/${stack.join('/')}`;
}

/**
 * Whether `path` is absolute and already in normal form: no empty, `.` or `..` segment and no trailing slash.
 * Providers normalise every path they get, and nearly all of them already are.
 */
function isNormal(path: string): boolean {
  if (path === '/') return true;
  if (path.charCodeAt(0) !== 0x2f || path.charCodeAt(path.length - 1) === 0x2f) return false;
  if (path.includes('//') || path.includes('/./') || path.includes('/../') || path.includes('\0')) return false;
  return !path.endsWith('/.') && !path.endsWith('/..');
}

/** Normalises an absolute path (`resolvePath('/', path)`). */
export function normalizePath(path: string): string {
  return isNormal(path) ? path : resolvePath('/', path);
}

/** The segments of a normalised absolute path: `/a/b` → `['a', 'b']`, `/` → `[]`. */
export function splitPath(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}

/** The parent of a normalised absolute path; `/` is its own parent. */
export function dirname(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** The last segment of a normalised absolute path; `''` for `/`. */
export function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * Joins a name (or a relative path) onto a directory and normalises the result, as {@link resolvePath} does; a
 * leading slash in `name` does not make it absolute.
 */
export function joinPath(dir: string, name: string): string {
  return resolvePath(dir, name.replace(/^\/+/, ''));
}

/** True when the normalised absolute `path` is `root` or lies below it. */
export function isInside(root: string, path: string): boolean {
  if (root === '/') return path.startsWith('/');
  return path === root || path.startsWith(`${root}/`);
}

/**
 * The path of `path` relative to `root`, as an absolute path of the sub-tree (`/home/u/a`, `/home/u` → `/a`);
 * undefined when `path` is not inside `root`.
 */
export function relativeTo(root: string, path: string): string | undefined {
  if (!isInside(root, path)) return undefined;
  if (root === '/') return path;
  return path.length === root.length ? '/' : path.slice(root.length);
}

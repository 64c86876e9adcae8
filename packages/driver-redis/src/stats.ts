import { VfsDirent, VfsStats } from '@ftp/vfs';
import type { DirEntry, NodeKind } from '@ftp/vfs';

const KINDS: Record<string, NodeKind> = { f: 'file', d: 'directory', l: 'symlink' };

function str(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  return Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
}

function num(v: unknown, fallback: number): number {
  const s = str(v);
  const n = s === undefined ? NaN : Number(s);
  return Number.isFinite(n) ? n : fallback;
}

/** A node as the scripts answer it: ino, then the inode fields t, s, m, o, b, l. */
export interface NodeInfo {
  ino: number;
  kind: NodeKind;
  stats: VfsStats;
  target: string | undefined;
}

/** Decodes `[ino, t, s, m, o, b, l]` starting at `at` of a script reply. */
export function nodeAt(reply: readonly unknown[], at: number): NodeInfo {
  const kind = KINDS[str(reply[at + 1]) ?? 'f'] ?? 'file';
  const mtimeMs = num(reply[at + 3], 0);
  const ino = num(reply[at], 0);
  const target = str(reply[at + 6]);
  const stats = new VfsStats({
    kind,
    size: kind === 'directory' ? 4096 : num(reply[at + 2], 0),
    mode: num(reply[at + 4], kind === 'directory' ? 0o755 : 0o644),
    mtimeMs,
    birthtimeMs: num(reply[at + 5], mtimeMs),
    ino,
  });
  return { ino, kind, stats, target };
}

/** Decodes a LIST reply with stats, from index `from` on: per entry name then the 7 node fields. */
export function entriesOf(reply: readonly unknown[], from = 0): DirEntry[] {
  const out: DirEntry[] = [];
  for (let i = from; i + 7 < reply.length; i += 8) out.push({ name: str(reply[i]) ?? '', stats: nodeAt(reply, i + 1).stats });
  return out;
}

/** Decodes a LIST reply with stats as `fs.Dirent`-like entries. */
export function direntsOf(reply: readonly unknown[], dirPath: string): VfsDirent[] {
  const out: VfsDirent[] = [];
  for (let i = 0; i + 7 < reply.length; i += 8) out.push(new VfsDirent(str(reply[i]) ?? '', nodeAt(reply, i + 1).kind, dirPath));
  return out;
}

/** Decodes a name list. */
export function namesOf(reply: readonly unknown[]): string[] {
  return reply.map((v) => str(v) ?? '');
}

export { str, num };

import { sql } from 'kysely';
import type { Kysely, RawBuilder } from 'kysely';
import { fsError } from '@ftp/vfs';
import { resolvePath, splitPath } from '@ftp/vfs';
import { INODE_COLUMNS, ROOT_PARENT, T_DIR, T_FILE, T_LINK, toInode } from './schema.js';
import type { Database, Inode, Tables } from './schema.js';
import type { DialectName } from './dialects.js';

/**
 * Most components resolved by one query (one self-join each); deeper paths take one query per this many.
 * PostgreSQL plans a chain of more than 8 joins slowly (past join_collapse_limit and towards GEQO): measured here,
 * a depth-20 `stat` took ~7 ms as one 21-way join and ~3.5 ms as three queries of at most 8, against ~0.7 ms at
 * depth 1. MySQL and SQLite plan the chain cheaply (depth 20: ~1 ms and ~0.5 ms in one query).
 */
export function maxJoins(dialect: DialectName): number {
  return dialect === 'postgres' ? 8 : 24;
}
/** Symlinks followed in one resolution before ELOOP. */
const MAX_SYMLINK_HOPS = 40;

/** Where a path leads. */
export interface Location {
  /** The canonical path (links resolved, except the last one when not followed). */
  path: string;
  /** The directory holding the entry; undefined for the root. */
  parent: Inode | undefined;
  /** Ids from the root to `parent`, inclusive (to refuse moving a directory into itself). */
  chain: number[];
  /** The last component ('' for the root). */
  name: string;
  /** The entry, when it exists. */
  node: Inode | undefined;
  /** The entries of `node` when asked for (`list`) and `node` is a directory. */
  children?: Inode[];
}

type Q = Kysely<Database>;

interface WalkResult {
  /** levels[i] is the inode of component i (levels[0]: the start), undefined from the first missing one on. */
  levels: (Inode | undefined)[];
  children: Inode[];
}

/**
 * One query for a whole path: the start row, then one LEFT JOIN per component on the unique (parent, name) index,
 * optionally one more for the children of the last level (`list`: path and listing in one round trip). Portable
 * over the three dialects, unlike arrays or VALUES lists a recursive CTE would need to take the components.
 */
async function walk(q: Q, t: Tables, startId: number | undefined, names: string[], withChildren: boolean): Promise<WalkResult> {
  const table = sql.table(t.inodes);
  const cols = (alias: string, all: boolean): RawBuilder<unknown>[] =>
    (all ? INODE_COLUMNS : (['id', 'type', 'target'] as const)).map((c) => sql`${sql.ref(`${alias}.${c}`)} as ${sql.id(`${alias}_${c}`)}`);
  const last = names.length;
  const select: RawBuilder<unknown>[] = [];
  for (let i = 0; i <= last; i++) select.push(...cols(`n${i}`, i === last));
  if (withChildren) select.push(...cols('c', true));
  const joins: RawBuilder<unknown>[] = [];
  names.forEach((name, k) => {
    const a = `n${k + 1}`;
    joins.push(sql`left join ${table} as ${sql.id(a)} on ${sql.ref(`${a}.parent`)} = ${sql.ref(`n${k}.id`)} and ${sql.ref(`${a}.name`)} = ${name}`);
  });
  if (withChildren) joins.push(sql`left join ${table} as ${sql.id('c')} on ${sql.ref('c.parent')} = ${sql.ref(`n${last}.id`)}`);
  const where =
    startId === undefined ? sql`${sql.ref('n0.parent')} = ${ROOT_PARENT} and ${sql.ref('n0.name')} = ${''}` : sql`${sql.ref('n0.id')} = ${startId}`;
  const query = sql<Record<string, unknown>>`select ${sql.join(select)} from ${table} as ${sql.id('n0')} ${sql.join(joins, sql` `)} where ${where}`;
  const { rows } = await query.execute(q);
  const levels: (Inode | undefined)[] = [];
  const first = rows[0];
  for (let i = 0; i <= last; i++) {
    const id = first?.[`n${i}_id`];
    if (first === undefined || id === null || id === undefined) break;
    const a = `n${i}`;
    levels.push(
      i === last
        ? toInode(Object.fromEntries(INODE_COLUMNS.map((c) => [c, first[`${a}_${c}`]])))
        : toInode({ id, type: first[`${a}_type`], target: first[`${a}_target`], parent: null, name: names[i - 1] ?? '', size: 0, mtime: 0, birthtime: 0, mode: 0, sha256: null, gen: 0 }),
    );
  }
  const children: Inode[] = [];
  if (withChildren) {
    for (const r of rows) if (r.c_id !== null && r.c_id !== undefined) children.push(toInode(Object.fromEntries(INODE_COLUMNS.map((c) => [c, r[`c_${c}`]]))));
  }
  return { levels, children };
}

/**
 * Resolves `path` (absolute, normalised) to a {@link Location}: one query for paths of up to `perQuery` components (see {@link maxJoins}), links
 * followed inside the filesystem (absolute targets from its root, relative from the link's directory, `..` stops
 * at the root). Throws ENOENT when a directory on the way is missing, ENOTDIR when it is a file, ELOOP.
 *
 * @param followLast follow a link in the last component (stat) or not (lstat, unlink, rename).
 * @param withChildren also fetch the children of the last component (in the same query).
 */
export async function locate(q: Q, t: Tables, path: string, followLast: boolean, syscall: string, withChildren = false, perQuery = 24): Promise<Location> {
  let names = splitPath(path);
  for (let hop = 0; hop <= MAX_SYMLINK_HOPS; hop++) {
    // Walk in segments of `perQuery` components; each segment starts from the last id of the previous one.
    const levels: Inode[] = [];
    let children: Inode[] = [];
    let missingAt = -1;
    for (let done = 0; done === 0 || done < names.length; ) {
      const seg = names.slice(done, done + perQuery);
      const isLast = done + seg.length >= names.length;
      const start = levels.length === 0 ? undefined : (levels[levels.length - 1] as Inode).id;
      const r = await walk(q, t, start, seg, withChildren && isLast);
      if (r.levels.length === 0) throw fsError('EIO', syscall, path); // the root row is missing: not migrated?
      const got = levels.length === 0 ? r.levels : r.levels.slice(1);
      for (const l of got) levels.push(l as Inode);
      children = r.children;
      if (r.levels.length < seg.length + 1) {
        missingAt = levels.length;
        break;
      }
      // A file or link in the middle stops the walk here (its children would be none anyway).
      if (levels.slice(done + 1, levels.length - 1).some((l) => l.type !== T_DIR)) break;
      done += seg.length;
      if (names.length === 0) break;
    }
    // levels[0] is the root; levels[i] is names[i - 1].
    let restart: string | undefined;
    for (let i = 1; i < levels.length; i++) {
      const node = levels[i] as Inode;
      const isLastName = i === names.length;
      if (node.type === T_LINK && (!isLastName || followLast)) {
        const dir = `/${names.slice(0, i - 1).join('/')}`;
        const rest = names.slice(i).join('/');
        const target = resolvePath(dir, node.target ?? '');
        restart = rest === '' ? target : resolvePath(target, rest);
        break;
      }
      if (!isLastName && node.type === T_FILE) throw fsError('ENOTDIR', syscall, path);
    }
    if (restart !== undefined) {
      names = splitPath(restart);
      continue;
    }
    if (missingAt >= 0 && missingAt < names.length) throw fsError('ENOENT', syscall, path);
    const canonical = `/${names.join('/')}`;
    if (names.length === 0) return { path: '/', parent: undefined, chain: [], name: '', node: levels[0], ...(withChildren ? { children } : {}) };
    const parent = levels[names.length - 1] as Inode;
    const node = levels[names.length];
    return {
      path: canonical,
      parent,
      chain: levels.slice(0, names.length).map((l) => l.id),
      name: names[names.length - 1] as string,
      node,
      ...(withChildren && node !== undefined ? { children } : {}),
    };
  }
  throw fsError('ELOOP', syscall, path);
}

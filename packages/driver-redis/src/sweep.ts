import type { Redis } from 'ioredis';
import { isCluster, type RedisClient } from './client.js';
import { Keys } from './keys.js';

/** Most SCAN iterations per node: a bound on the loop even if keys keep appearing while it runs. */
const MAX_SCAN_ROUNDS = 100_000;

async function sweepNode(node: Redis, pattern: string, kept: string | undefined): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  for (let round = 0; round < MAX_SCAN_ROUNDS; round++) {
    const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    const keys = kept === undefined ? found : found.filter((k) => k !== kept);
    if (keys.length > 0) deleted += await node.unlink(...keys);
    cursor = next;
    if (cursor === '0') break;
  }
  return deleted;
}

/** Options of {@link deleteFilesystem}. */
export interface DeleteFilesystemOptions {
  /**
   * Also delete the inode id counter, `{prefix}:seq` (default false: it is kept, one key of a few dozen bytes). Only
   * when no server uses the filesystem any more, nor will before restarting: a server still running holds inode ids
   * (downloads, uploads, file handles, their lease timers) that a filesystem created again with a new counter would
   * hand out to new files, which those leftovers would then read, overwrite or delete.
   */
  removeIdCounter?: boolean;
}

/**
 * Deletes every key of the filesystem `prefix` (SCAN on `{prefix}:*`, then UNLINK) but its inode id counter: the way
 * to remove a whole filesystem, or to clean up after tests. On a Cluster every master is scanned. Answers how many
 * keys were deleted.
 *
 * The counter stays so that a filesystem created again under the same prefix never hands out an inode id of the
 * deleted one: servers that were using it may still hold such ids (a download running, an upload, a release or lease
 * renewal on its way), and must find nothing under them rather than a new file. Pass `{ removeIdCounter: true }`
 * when nothing uses the filesystem any more.
 */
export async function deleteFilesystem(client: RedisClient, prefix: string, options: DeleteFilesystemOptions = {}): Promise<number> {
  const keys = new Keys(prefix);
  const kept = options.removeIdCounter === true ? undefined : keys.idCounter;
  if (isCluster(client)) {
    let n = 0;
    for (const node of client.nodes('master')) n += await sweepNode(node, keys.pattern, kept);
    return n;
  }
  return sweepNode(client, keys.pattern, kept);
}

/** Counts the keys of the filesystem `prefix` (SCAN), for monitoring and tests. */
export async function countKeys(client: Redis, prefix: string, match = '*'): Promise<number> {
  const pattern = new Keys(prefix).match(match);
  let cursor = '0';
  let n = 0;
  for (let round = 0; round < MAX_SCAN_ROUNDS; round++) {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    n += keys.length;
    cursor = next;
    if (cursor === '0') break;
  }
  return n;
}

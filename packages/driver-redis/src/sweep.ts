import type { Redis } from 'ioredis';
import { isCluster, type RedisClient } from './client.js';
import { Keys } from './keys.js';

/** Most SCAN iterations per node: a bound on the loop even if keys keep appearing while it runs. */
const MAX_SCAN_ROUNDS = 100_000;

async function sweepNode(node: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  for (let round = 0; round < MAX_SCAN_ROUNDS; round++) {
    const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    if (keys.length > 0) deleted += await node.unlink(...keys);
    cursor = next;
    if (cursor === '0') break;
  }
  return deleted;
}

/**
 * Deletes every key of the filesystem `prefix` (SCAN on `{prefix}:*`, then UNLINK): the way to remove a whole
 * filesystem, or to clean up after tests. On a Cluster every master is scanned. Answers how many keys were deleted.
 */
export async function deleteFilesystem(client: RedisClient, prefix: string): Promise<number> {
  const { pattern } = new Keys(prefix);
  if (isCluster(client)) {
    let n = 0;
    for (const node of client.nodes('master')) n += await sweepNode(node, pattern);
    return n;
  }
  return sweepNode(client, pattern);
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

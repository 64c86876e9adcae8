import { createHash } from 'node:crypto';

/** A Lua script with its SHA-1, run by EVALSHA (EVAL once per node when the script cache lacks it). */
export interface LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

/**
 * How long a call that changed the filesystem is remembered by its call id (`{p}:q:<call id>`), ms: a copy of it
 * arriving meanwhile answers OK and changes nothing. ioredis sends again the commands left unanswered when a
 * connection drops (`autoResendUnfulfilledCommands`), so a call Redis ran whose reply was lost runs twice; the
 * copy comes as soon as the connection is back, and the caller waits at most the driver's 30 s `commandTimeout`
 * for it. Two minutes cover that with room; each record is a key of about 100 bytes.
 */
export const REPLAY_WINDOW_MS = 120_000;

function script(name: string, body: string, prelude = true): LuaScript {
  const source = prelude ? PRELUDE + body : body;
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

/*
 * Shared by the filesystem scripts. ARGV[1] is the hash tag (`{prefix}`); keys are built from it inside the script
 * (all in the slot of KEYS[1], the root inode, so Redis Cluster accepts them).
 *
 * Every script answers a table whose first element is a status: 'OK', a Node error code ('ENOENT', …), or 'LINK'
 * when path resolution met a symbolic link it must follow: {'LINK', which, index, target}. The client then rewrites
 * path number `which` (components 1..index replaced by the link target) and runs the script again, so a link-free
 * path costs one round-trip and each link one more.
 */
const PRELUDE = `
local P = ARGV[1]
local function ik(i) return P .. ':i:' .. i end
local function dk(i) return P .. ':d:' .. i end
local function ck(i) return P .. ':c:' .. i end
local function rk(i) return P .. ':r:' .. i end
local function qk(c) return P .. ':q:' .. c end
-- A script that changes the filesystem can run twice for one call (see REPLAY_WINDOW_MS): its second run would find
-- its own work done and answer ENOENT or EEXIST, or act on whatever another client put at the path meanwhile. So the
-- call id of each call that changed something is kept for a while, and a run that finds it answers OK at once.
local function replayed(call) return redis.call('EXISTS', qk(call)) == 1 end
-- Called once the script has written something else: over maxmemory Redis refuses SET only to a script that has not.
local function done(call)
  redis.call('SET', qk(call), 1, 'PX', ${REPLAY_WINDOW_MS})
  return {'OK'}
end
local function split(path)
  local t = {}
  for s in string.gmatch(path, '[^/]+') do t[#t + 1] = s end
  return t
end
-- Walks path from the root. Returns r, nil on success: r.parent (false for the root), r.name, r.ino (false when the
-- last component is missing), r.t, r.chain (the directories walked, root first, the parent last); or nil, status.
local function resolve(which, path, follow)
  -- The root gone (Redis lost its data: a restart without persistence, FLUSHDB, eviction): the caller makes it again
  -- (INIT) and runs the call once more. Writing under it now would make a root of nothing but the fields written.
  if redis.call('HGET', ik(0), 't') ~= 'd' then return nil, {'NOROOT'} end
  local comps = split(path)
  local n = #comps
  local chain = {'0'}
  if n == 0 then return {parent = false, name = '', ino = '0', t = 'd', chain = chain, root = true}, nil end
  local cur = '0'
  for i = 1, n do
    local child = redis.call('HGET', dk(cur), comps[i])
    local t = false
    if child then t = redis.call('HGET', ik(child), 't') end
    if not t then
      if i < n then return nil, {'ENOENT'} end
      return {parent = cur, name = comps[i], ino = false, t = false, chain = chain}, nil
    end
    if t == 'l' and (i < n or follow) then
      return nil, {'LINK', which, i, redis.call('HGET', ik(child), 'l')}
    end
    if i == n then return {parent = cur, name = comps[i], ino = child, t = t, chain = chain}, nil end
    if t ~= 'd' then return nil, {'ENOTDIR'} end
    cur = child
    chain[#chain + 1] = cur
  end
end
-- The Redis clock in ms: leases are written and judged by it, so servers with skewed clocks agree on them.
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Live downloads of inode ino: the members of its lease set whose expiry is still ahead (expired ones removed first:
-- a reader that died leaves a member nobody else would remove).
local function readers(ino)
  redis.call('ZREMRANGEBYSCORE', rk(ino), '-inf', clock())
  return redis.call('ZCARD', rk(ino))
end
-- Registers or renews reader id's lease on inode ino for ms. The set itself expires a second after its latest
-- lease, so a process that dies leaves nothing behind. Over maxmemory Redis still lets a script that has written
-- (ZREMRANGEBYSCORE) go on, so a full Redis keeps serving downloads with their leases (a few bytes each); should
-- ZADD be refused all the same, the read goes on without a lease (a delete then frees the content at once and the
-- reader fails with EIO). Answers 1, or 0 then.
local function lease(ino, id, ms)
  local t = clock()
  local k = rk(ino)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', t)
  local added = redis.pcall('ZADD', k, t + tonumber(ms), id)
  if type(added) == 'table' and added.err then return 0 end
  local last = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', k, tonumber(last[2]) - t + 1000)
  return 1
end
-- Removes an inode whose entry is gone. A file's content goes at once unless a download holds a lease on it: then
-- it gets the grace period, so that the download keeps reading whole chunks of this version (the grace bounds how
-- long a stalled reader holds it; the last reader to leave deletes it). Grace 0: deleted at once, read or not.
local function drop(ino, t, grace)
  redis.call('DEL', ik(ino))
  if t == 'd' then redis.call('DEL', dk(ino)) end
  if t == 'f' then
    if tonumber(grace) > 0 and readers(ino) > 0 then redis.call('PEXPIRE', ck(ino), grace) else redis.call('UNLINK', ck(ino)) end
  end
end
-- Only an inode that is there: HSET on a missing one would make a hash of nothing but its time.
local function touch(ino, now) if redis.call('EXISTS', ik(ino)) == 1 then redis.call('HSET', ik(ino), 'm', now) end end
-- A new inode id: the counter's next value, passing over any id that still has a key. The counter only grows
-- (deleteFilesystem keeps it), so in use this passes over nothing and costs one EXISTS; should the counter be lost or
-- set back while the filesystem's keys remain (deleted by hand, an older driver's deleteFilesystem running beside
-- the servers), new files never get the id, and so the content, of a file, directory, upload or reader still there.
-- At most 10,000 ids are passed over in one call (Redis runs nothing else meanwhile): nil then, and the caller answers
-- EBUSY; the next call goes on from there.
local function newId()
  for _ = 1, 10000 do
    local id = redis.call('INCR', P .. ':seq')
    if redis.call('EXISTS', ik(id), dk(id), ck(id), rk(id)) == 0 then return id end
  end
  return nil
end
-- The directory that path leads to, links followed: its inode id, nil; or nil, status (ENOENT, ENOTDIR, LINK…).
local function opendir(path)
  local r, e = resolve(1, path, true)
  if e then return nil, e end
  if not r.ino then return nil, {'ENOENT'} end
  if r.t ~= 'd' then return nil, {'ENOTDIR'} end
  return r.ino, nil
end
-- Appends a directory entry to a listing reply: name, ino, t, s, m, o, b, l. An entry whose inode hash is missing
-- is left out rather than answered without stats.
local function addEntry(out, name, ino)
  local f = redis.call('HMGET', ik(ino), 't', 's', 'm', 'o', 'b', 'l')
  if not f[1] then return end
  out[#out + 1] = name
  out[#out + 1] = ino
  for k = 1, 6 do out[#out + 1] = f[k] end
end
`;

/**
 * ARGV: tag, chunkSize, now. Creates the root when missing; answers the chunk size the filesystem was made with. A
 * filesystem created again after deleteFilesystem finds the counter that outlived it and goes on from there. A root
 * that lost its type (an older driver's write to it after Redis had lost its data made a hash of one field) is made
 * a folder again, keeping what it has.
 */
export const INIT = script(
  'init',
  `
if redis.call('EXISTS', ik(0)) == 0 then
  redis.call('HSET', ik(0), 't', 'd', 'm', ARGV[3], 'b', ARGV[3], 'o', 493, 'cs', ARGV[2])
  redis.call('SETNX', P .. ':seq', 0)
elseif redis.call('HGET', ik(0), 't') ~= 'd' then
  redis.call('HSET', ik(0), 't', 'd')
  for _, f in ipairs({{'m', ARGV[3]}, {'b', ARGV[3]}, {'o', 493}, {'cs', ARGV[2]}}) do redis.call('HSETNX', ik(0), f[1], f[2]) end
  redis.call('HDEL', ik(0), 's', 'l')
  redis.call('SETNX', P .. ':seq', 0)
end
return {'OK', redis.call('HGET', ik(0), 'cs')}
`,
);

/** ARGV: tag, path, follow (1|0). Answers {'OK', ino, t, s, m, o, b, l}. */
export const STAT = script(
  'stat',
  `
local r, e = resolve(1, ARGV[2], ARGV[3] == '1')
if e then return e end
if not r.ino then return {'ENOENT'} end
local f = redis.call('HMGET', ik(r.ino), 't', 's', 'm', 'o', 'b', 'l')
return {'OK', r.ino, f[1], f[2], f[3], f[4], f[5], f[6]}
`,
);

/**
 * ARGV: tag, path, withStats (1|0). Answers {'OK', name, …} or, with stats, {'OK', then per entry name, ino, t, s,
 * m, o, b, l}: a whole directory with its stats in one round-trip.
 */
export const LIST = script(
  'list',
  `
local ino, e = opendir(ARGV[2])
if e then return e end
local all = redis.call('HGETALL', dk(ino))
local out = {'OK'}
if ARGV[3] ~= '1' then
  for j = 1, #all, 2 do out[#out + 1] = all[j] end
  return out
end
for j = 1, #all, 2 do addEntry(out, all[j], all[j + 1]) end
return out
`,
);

/**
 * One page of a directory listed a page at a time. ARGV: tag, path, ino, cursor, count. With ino '' the
 * directory is opened from path (its errors and links answered as LIST answers them); otherwise path is only
 * named in errors and the page is read from that inode, so a listing goes on in the directory it opened even if
 * the directory is renamed meanwhile (inode ids are never reused). Answers {'OK', ino, next cursor, entries in the
 * directory now, then per entry name, ino, t, s, m, o, b, l}: one HSCAN call with COUNT, and the stats of what it
 * returned, read in the same script, so an entry is answered with the stats it has, or not at all.
 */
export const LIST_PAGE = script(
  'list-page',
  `
local ino = ARGV[3]
if ino == '' then
  local e
  ino, e = opendir(ARGV[2])
  if e then return e end
end
local page = redis.call('HSCAN', dk(ino), ARGV[4], 'COUNT', ARGV[5])
local out = {'OK', ino, page[1], redis.call('HLEN', dk(ino))}
local kv = page[2]
for j = 1, #kv, 2 do addEntry(out, kv[j], kv[j + 1]) end
return out
`,
);

/** ARGV: tag, path, recursive (1|0), mode, now, call id. */
export const MKDIR = script(
  'mkdir',
  `
if replayed(ARGV[6]) then return {'OK'} end
local comps = split(ARGV[2])
local created = false
local recursive = ARGV[3] == '1'
if #comps == 0 then if recursive then return {'OK'} end return {'EEXIST'} end
local cur = '0'
for i = 1, #comps do
  local child = redis.call('HGET', dk(cur), comps[i])
  local t = false
  if child then t = redis.call('HGET', ik(child), 't') end
  if t then
    if i == #comps and not recursive then return {'EEXIST'} end
    if t == 'l' then return {'LINK', 1, i, redis.call('HGET', ik(child), 'l')} end
    if i == #comps then if t == 'd' then return {'OK'} end return {'EEXIST'} end
    if t ~= 'd' then return {'ENOTDIR'} end
    cur = child
  else
    if i < #comps and not recursive then return {'ENOENT'} end
    local id = newId()
    if not id then return {'EBUSY'} end
    redis.call('HSET', ik(id), 't', 'd', 'm', ARGV[5], 'b', ARGV[5], 'o', ARGV[4])
    redis.call('HSET', dk(cur), comps[i], id)
    touch(cur, ARGV[5])
    cur = id
    created = true
  end
end
if created then return done(ARGV[6]) end
return {'OK'}
`,
);

/** ARGV: tag, path, now, call id. */
export const RMDIR = script(
  'rmdir',
  `
if replayed(ARGV[4]) then return {'OK'} end
local r, e = resolve(1, ARGV[2], false)
if e then return e end
-- The root: EPERM (FTP 550), for good; EBUSY would be 450 "try again later", which clients retry for ever.
if r.root then return {'EPERM'} end
if not r.ino then return {'ENOENT'} end
if r.t ~= 'd' then return {'ENOTDIR'} end
if redis.call('HLEN', dk(r.ino)) > 0 then return {'ENOTEMPTY'} end
redis.call('HDEL', dk(r.parent), r.name)
drop(r.ino, 'd', 0)
touch(r.parent, ARGV[3])
return done(ARGV[4])
`,
);

/** ARGV: tag, path, now, grace, call id. */
export const UNLINK = script(
  'unlink',
  `
if replayed(ARGV[5]) then return {'OK'} end
local r, e = resolve(1, ARGV[2], false)
if e then return e end
if r.root then return {'EISDIR'} end
if not r.ino then return {'ENOENT'} end
if r.t == 'd' then return {'EISDIR'} end
redis.call('HDEL', dk(r.parent), r.name)
drop(r.ino, r.t, ARGV[4])
touch(r.parent, ARGV[3])
return done(ARGV[5])
`,
);

/**
 * ARGV: tag, from, to, now, grace, call id. Moves one directory entry: O(1) whatever the size of the file or tree moved.
 * A directory may not move below itself: the directories walked to reach the target's parent must not include it.
 */
export const RENAME = script(
  'rename',
  `
if replayed(ARGV[6]) then return {'OK'} end
local s, e = resolve(1, ARGV[2], false)
if e then return e end
if s.root then return {'EPERM'} end
if not s.ino then return {'ENOENT'} end
local d, e2 = resolve(2, ARGV[3], false)
if e2 then return e2 end
if d.root then return {'EPERM'} end
if d.ino == s.ino then return {'OK'} end
if s.t == 'd' then
  for _, a in ipairs(d.chain) do if a == s.ino then return {'EINVAL'} end end
end
if d.ino then
  if d.t == 'd' then
    if s.t ~= 'd' then return {'EISDIR'} end
    if redis.call('HLEN', dk(d.ino)) > 0 then return {'ENOTEMPTY'} end
  elseif s.t == 'd' then
    return {'ENOTDIR'}
  end
  drop(d.ino, d.t, ARGV[5])
end
redis.call('HDEL', dk(s.parent), s.name)
redis.call('HSET', dk(d.parent), d.name, s.ino)
touch(s.parent, ARGV[4])
touch(d.parent, ARGV[4])
return done(ARGV[6])
`,
);

/** ARGV: tag, path, target, now, call id. */
export const SYMLINK = script(
  'symlink',
  `
if replayed(ARGV[5]) then return {'OK'} end
local r, e = resolve(1, ARGV[2], false)
if e then return e end
if r.root or r.ino then return {'EEXIST'} end
local id = newId()
if not id then return {'EBUSY'} end
redis.call('HSET', ik(id), 't', 'l', 'l', ARGV[3], 'm', ARGV[4], 'b', ARGV[4], 'o', 511, 's', string.len(ARGV[3]))
redis.call('HSET', dk(r.parent), r.name, id)
touch(r.parent, ARGV[4])
return done(ARGV[5])
`,
);

/** ARGV: tag, path, field (m|o), value. Sets mtime or mode of what the path leads to. */
export const SETATTR = script(
  'setattr',
  `
local r, e = resolve(1, ARGV[2], true)
if e then return e end
if not r.ino then return {'ENOENT'} end
redis.call('HSET', ik(r.ino), ARGV[3], ARGV[4])
return {'OK'}
`,
);

/**
 * ARGV: tag, path, reader id, lease ms. Answers {'OK', ino, size, mode, mtime} of a file to read. With a reader id the
 * reader's lease on the inode is registered in the same script as the path is resolved, so no delete can come
 * between the two ('': no lease, for a read of no bytes or a filesystem without grace period).
 */
export const OPEN_READ = script(
  'open-read',
  `
local r, e = resolve(1, ARGV[2], true)
if e then return e end
if not r.ino then return {'ENOENT'} end
if r.t == 'd' then return {'EISDIR'} end
local f = redis.call('HMGET', ik(r.ino), 's', 'o', 'm')
-- An empty file has no content to keep: no lease (the caller takes none either, told by the size).
if ARGV[3] ~= '' and (tonumber(f[1]) or 0) > 0 then lease(r.ino, ARGV[3], ARGV[4]) end
return {'OK', r.ino, f[1], f[2], f[3]}
`,
);

/**
 * ARGV: tag, ino, reader id, lease ms. Renews a reader's lease. Answers {'OK', 1}, or {'OK', 0} when there is nothing
 * left to protect: the content is gone (deleted while the lease had lapsed; the reader will fail with EIO), or the
 * lease is (it lapsed and was cleared, or the filesystem's keys were deleted). A lease that is gone is not taken
 * again: by then its inode id may name another file (a filesystem deleted and created again with a new counter),
 * whose content a lease brought back would hold, and whose upload in progress its release would delete.
 */
export const RENEW_LEASE = script(
  'renew-lease',
  `
if redis.call('ZSCORE', rk(ARGV[2]), ARGV[3]) == false or redis.call('EXISTS', ck(ARGV[2])) == 0 then
  redis.call('ZREM', rk(ARGV[2]), ARGV[3])
  return {'OK', 0}
end
return {'OK', lease(ARGV[2], ARGV[3], ARGV[4])}
`,
);

/**
 * ARGV: tag, ino, reader id. Ends a reader's lease. When the file was deleted or replaced meanwhile (its inode hash
 * is gone) and no other live reader remains, its content is deleted now rather than at the end of the grace period.
 * Only a release that finds its own lease still there deletes: that lease is what shows the content under this id
 * is the version it read. One whose lease is gone (it lapsed and was cleared, or the filesystem's keys were deleted)
 * may be looking at another file with the same id by now, such as an upload in progress (content, no inode yet):
 * it deletes nothing, and the version it read, if still there, goes at the end of its grace period.
 */
export const RELEASE_LEASE = script(
  'release-lease',
  `
if redis.call('ZREM', rk(ARGV[2]), ARGV[3]) == 1 and redis.call('EXISTS', ik(ARGV[2])) == 0 and readers(ARGV[2]) == 0 then
  redis.call('UNLINK', ck(ARGV[2]))
end
return {'OK'}
`,
);

/**
 * Starts an upload under a new, invisible inode. ARGV: tag, path, exclusive (1|0), mustExist (1|0).
 * Answers {'OK', newIno, baseIno or false, baseSize, baseMode}: the current file, whose prefix the caller may copy
 * (APPE, REST+STOR, writable handles) with COPY_CHUNKS.
 */
export const PREPARE = script(
  'prepare',
  `
local r, e = resolve(1, ARGV[2], true)
if e then return e end
if r.root or r.t == 'd' then return {'EISDIR'} end
if ARGV[3] == '1' and r.ino then return {'EEXIST'} end
if ARGV[4] == '1' and not r.ino then return {'ENOENT'} end
local id = newId()
if not id then return {'EBUSY'} end
if not r.ino then return {'OK', id, false, 0, false, r.parent, r.name} end
local f = redis.call('HMGET', ik(r.ino), 's', 'o')
return {'OK', id, r.ino, tonumber(f[1]) or 0, f[2], r.parent, r.name}
`,
);

/**
 * KEYS[1]: source content, KEYS[2]: destination content (same filesystem, same slot). ARGV: first chunk, last chunk
 * (inclusive), ttl. Copies chunks inside Redis, a batch per call: copy-on-write of a kept prefix never moves the
 * bytes through the client, and a big file is copied in many short steps instead of one long block of Redis.
 * Answers 1, or 0 when a source chunk is gone: the file was replaced or deleted meanwhile (the copy holds no lease,
 * its upload could not commit anyway: it commits only over the version it copies).
 */
export const COPY_CHUNKS = script(
  'copy-chunks',
  `
for j = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  local v = redis.call('HGET', KEYS[1], j)
  if not v then return 0 end
  redis.call('HSET', KEYS[2], j, v)
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`,
  false,
);

/**
 * Makes an upload visible: the entry of `path` now names the new inode, in one step. ARGV: tag, path, ino, size,
 * chunks, mode, now, exclusive (1|0), grace, base, folder id, name. The folder id and name are where PREPARE found
 * the file (empty: resolve `path`): the upload commits into that folder under that name even if the folder was
 * renamed meanwhile, as an upload on a disk does. The content must hold exactly `chunks` chunks: fewer means that its
 * TTL ran out while the upload stalled (EIO, nothing changes). The replaced version is dropped (see `drop`).
 *
 * `base` makes the commit conditional (compare-and-set, atomic since the script is): '*' replaces whatever is there
 * (STOR: last writer wins); otherwise the path must still name the inode the upload started from (APPE, REST+STOR,
 * writable handles that keep the content), or nothing ('') when there was no file then. An inode's content is never
 * rewritten (every write makes a new inode), so the same id is the same content. When it differs the upload is
 * discarded and EBUSY answered: another client replaced, deleted, renamed over or appended to the file meanwhile.
 *
 * A second run of one commit (its reply lost with the connection, the command sent again: see REPLAY_WINDOW_MS)
 * answers OK and changes nothing. Only this script creates the upload's inode hash, and only a visible file gets
 * reader leases, so either key shows the upload was made visible already; the path may name it still, or another
 * version by now (a rename, a newer upload). Run again, the script would otherwise drop the very inode it installs
 * (the file gone behind a 226), or answer EBUSY to an append that took effect, deleting the content of the file
 * that the first run made visible.
 */
export const COMMIT = script(
  'commit',
  `
local id = ARGV[3]
if redis.call('EXISTS', ik(id), rk(id)) > 0 then return {'OK'} end
local r, e
-- Into the folder the upload started in, wherever it is now (renamed, or moved with a folder above it). A folder
-- that is gone, or a name that has become a link, is resolved by path as before.
local dir, name = ARGV[11], ARGV[12]
if dir and dir ~= '' and (dir == '0' or redis.call('HGET', ik(dir), 't') == 'd') then
  local child = redis.call('HGET', dk(dir), name)
  local t = false
  if child then t = redis.call('HGET', ik(child), 't') end
  if t ~= 'l' then r = {parent = dir, name = name, ino = t and child or false, t = t} end
end
if not r then r, e = resolve(1, ARGV[2], true) end
if e then
  -- A link is followed by running the script again: keep the content for that run.
  if e[1] ~= 'LINK' then redis.call('UNLINK', ck(id)) end
  return e
end
if r.root or r.t == 'd' then redis.call('UNLINK', ck(id)) return {'EISDIR'} end
if ARGV[8] == '1' and r.ino then redis.call('UNLINK', ck(id)) return {'EEXIST'} end
if ARGV[10] ~= '*' and (r.ino or '') ~= ARGV[10] then redis.call('UNLINK', ck(id)) return {'EBUSY'} end
if redis.call('HLEN', ck(id)) ~= tonumber(ARGV[5]) then redis.call('UNLINK', ck(id)) return {'EIO'} end
redis.call('PERSIST', ck(id))
redis.call('HSET', ik(id), 't', 'f', 's', ARGV[4], 'm', ARGV[7], 'b', ARGV[7], 'o', ARGV[6])
redis.call('HSET', dk(r.parent), r.name, id)
if r.ino then drop(r.ino, r.t, ARGV[9]) end
touch(r.parent, ARGV[7])
return {'OK'}
`,
);

/**
 * KEYS: the inode, content and reader lease keys of an upload (one slot). Deletes the content of an upload that
 * will not be committed, unless it was committed after all: a commit whose reply timed out or was lost may have run,
 * or may still run, before this script (sent later on the same connection). Only COMMIT creates the inode hash, and
 * only a visible file gets leases (its content, replaced since, then waits out its readers), so either key shows
 * the content is a file's, not the upload's; inode ids are never reused. Answers 1 then, and 0 once discarded.
 */
export const DISCARD = script(
  'discard',
  `
if redis.call('EXISTS', KEYS[1], KEYS[3]) > 0 then return 1 end
redis.call('UNLINK', KEYS[2])
return 0
`,
  false,
);

/** KEYS[1]: routing key. INFO memory of the node that holds the filesystem's slot. */
export const MEMORY_INFO = script('memory-info', `return redis.call('INFO', 'memory')`, false);

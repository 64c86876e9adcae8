import {
  formatFtpTime,
  formatHashFeat,
  formatHashReplyText,
  HASH_ALGORITHMS,
  parseFtpTime,
  parseHashAlgorithm,
  parseHashRange,
  parseMfmt,
  parseOpts,
  type HashAlgorithm,
} from '@ftp/protocol';
import { describeCapabilities, dirname, hashFile, openReadStream, openWriteStream, resolvePath, type FileStats } from '@ftp/vfs';
import { pipeline } from 'node:stream/promises';
import type { Permissions } from '../driver.js';
import { FtpError } from '../errors.js';
import { reportChange } from '../change-log.js';
import { banKey } from '../login-guard.js';
import { rangesSendable, requirePermission, takeRange, type Session } from '../session.js';
import { exists } from './transfer.js';

/** The FEAT line of HASH, with the session's algorithm marked. */
export function hashFeatLine(s: Session): string {
  return formatHashFeat(HASH_ALGORITHMS, s.hashAlgorithm);
}

/** OPTS HASH (draft-bryan-ftpext-hash §4): shows or selects the algorithm. */
export function optsHash(s: Session, value: string): Promise<void> | void {
  if (value.trim() === '') return s.reply(200, s.hashAlgorithm);
  s.hashAlgorithm = parseHashAlgorithm(value.trim());
  return s.reply(200, s.hashAlgorithm);
}

async function plainFile(s: Session, path: string): Promise<FileStats> {
  const st = await s.vfs.stat(path);
  if (!st.isFile()) throw new FtpError(553, `${path}: not a plain file.`);
  return st;
}

/** RANG (draft-bryan-ftp-range): an inclusive byte range for the next HASH or RETR; `RANG 1 0` clears it. */
export function rang(s: Session, arg: string): Promise<void> | void {
  // A RANG that fails resets the selection to the whole file (draft-bryan-ftp-range §3), as REST does its offset;
  // and the later of REST and RANG says where the next transfer starts.
  s.range = null;
  s.restOffset = 0;
  const range = parseHashRange(arg);
  if (range.end === undefined) return s.reply(350, 'Restarting at 0. End byte range at EOF.');
  // draft-bryan-ftp-range §5: octet ranges are of the file as stored, which only TYPE I in MODE S sends as it is.
  if (!rangesSendable(s)) return s.reply(551, 'RANG needs TYPE I and MODE S; the range is cleared.');
  s.range = { start: range.start, end: range.end };
  return s.reply(350, `Restarting at ${range.start}. End byte range at ${range.end}.`);
}

/** HASH (draft-bryan-ftpext-hash): the digest of a file, or of the RANG range, computed by the provider or streamed. */
export async function hash(s: Session, arg: string): Promise<void> {
  const range = takeRange(s);
  requirePermission(s, 'read');
  const path = s.resolveFile(arg);
  const st = await plainFile(s, path);
  // A digest must be of at least one byte of the file (its end is clamped to the last byte); RETR sends 0 octets.
  if (range && range.start >= st.size) throw new FtpError(554, `Range start ${range.start} is beyond the end of the file (${st.size} bytes).`);
  const start = range ? Math.min(range.start, st.size) : 0;
  const endExclusive = range ? Math.min(range.end + 1, st.size) : st.size;
  const digest = await digestOf(s, path, s.hashAlgorithm, start, endExclusive);
  if (digest === null) return;
  const last = Math.max(start, endExclusive - 1);
  return s.reply(213, formatHashReplyText(s.hashAlgorithm, start, last, digest, arg));
}

/** XCRC, XMD5, XSHA1, XSHA256, XSHA512: the older one-algorithm commands: `X... path [start [end]]`, 250 and the hex digest. */
export function legacyHash(algorithm: HashAlgorithm) {
  return async (s: Session, arg: string): Promise<void> => {
    requirePermission(s, 'read');
    const { path: name, rest } = await splitHashArgument(s, arg);
    const numbers = rest.trim() === '' ? [] : rest.trim().split(/\s+/);
    if (numbers.length > 2 || numbers.some((n) => !/^\d+$/.test(n))) throw new FtpError(501, 'Syntax: X<ALGO> <path> [<start> [<end>]].');
    const path = s.resolve(name);
    const st = await plainFile(s, path);
    // As HASH: a range that starts at or past the end names no byte of the file (not an empty digest).
    if (numbers[0] !== undefined && Number(numbers[0]) >= st.size) {
      throw new FtpError(554, `Range start ${numbers[0]} is beyond the end of the file (${st.size} bytes).`);
    }
    const start = Math.min(Number(numbers[0] ?? 0), st.size);
    const end = Math.min(numbers[1] !== undefined ? Number(numbers[1]) : st.size, st.size);
    if (end < start) throw new FtpError(501, 'The end is before the start.');
    const digest = await digestOf(s, path, algorithm, start, end);
    if (digest !== null) return s.reply(250, digest);
  };
}

/**
 * A file's digest, computed in a hash slot (`maxConcurrentHashes`, `maxConcurrentHashesPerIp`) and stopped by ABOR or
 * the session's end, waiting included: null once stopped, after the 426 (a client that left gets none). A hash reads
 * its whole file; one that nobody waits for any more must not go on reading it (a client sending HASH of a big file
 * and leaving at once kept a core busy, past the server's stop).
 */
async function digestOf(s: Session, path: string, algorithm: HashAlgorithm, start: number, end: number): Promise<string | null> {
  const work = s.stoppableWork();
  try {
    const release = await s.ctx.hashSlots.acquire(banKey(s.remoteAddress), work.signal);
    try {
      return await hashFile(s.vfs, path, algorithm, start, end, { signal: work.signal });
    } finally {
      release();
    }
  } catch (err) {
    if (!work.signal.aborted) throw err;
    if (!s.isClosed) await s.reply(426, 'Hash aborted.');
    return null;
  } finally {
    work.done();
  }
}


/**
 * The path of an XCRC/XMD5/XSHA* argument, which may be double-quoted (so it can hold spaces), and what follows it.
 * Unquoted, up to two trailing numbers are the range, but as with MDTM and a time, a file named with them wins:
 * `XMD5 report 2024` is the digest of `report 2024` where there is one, else of `report` from byte 2024.
 */
async function splitHashArgument(s: Session, arg: string): Promise<{ path: string; rest: string }> {
  const trimmed = arg.trimStart();
  if (trimmed.startsWith('"')) {
    const close = trimmed.indexOf('"', 1);
    if (close > 0) return { path: trimmed.slice(1, close), rest: trimmed.slice(close + 1) };
  }
  const m = /^(.*?)((?:\s+\d+){0,2})$/.exec(arg);
  const path = m?.[1] ?? arg;
  const numbers = m?.[2]?.match(/\s+\d+/g) ?? [];
  // The longest name first: the whole argument, then all but its last number.
  for (let kept = numbers.length; kept > 0; kept--) {
    const name = path + numbers.slice(0, kept).join('');
    if (await exists(s, s.resolve(name))) return { path: name, rest: numbers.slice(kept).join('') };
  }
  return { path, rest: numbers.join('') };
}


/** AVBL (draft-peterson-streamlined-ftp-command-extensions): free bytes where the path is. */
export async function avbl(s: Session, arg: string): Promise<void> {
  const fs = s.vfs;
  if (!fs.availableSpace) throw new FtpError(502, 'AVBL is not supported by this filesystem.');
  const path = s.resolve(arg.trim() === '' ? '.' : arg);
  const st = await fs.stat(path);
  if (!st.isDirectory()) throw new FtpError(550, `${path}: not a directory.`);
  const bytes = await fs.availableSpace(path);
  return s.reply(213, Number.isFinite(bytes) ? String(Math.max(0, Math.floor(bytes))) : String(Number.MAX_SAFE_INTEGER));
}

/** COMB (ftpserverlib's extension for parallel uploads): `COMB "target" "part1" "part2" ...`, parts removed after. */
export async function comb(s: Session, arg: string): Promise<void> {
  requirePermission(s, 'write');
  requirePermission(s, 'delete');
  const names = splitNames(arg);
  if (names.length < 2) throw new FtpError(501, 'Syntax: COMB <target> <part> [<part> ...].');
  const target = s.resolveNew(names[0] as string);
  const parts = names.slice(1).map((n) => s.resolve(n));
  const partStats: FileStats[] = [];
  for (const part of parts) partStats.push(await plainFile(s, part));
  await refuseOverlaps(s, target, parts, partStats);
  const fs = s.vfs;
  if (fs.concat) {
    await fs.concat(target, parts);
  } else {
    // Appending to the first part when it is the target avoids copying it.
    const appendToFirst = parts[0] === target;
    const upload = await openWriteStream(fs, target, appendToFirst ? { append: true } : {});
    try {
      for (const part of appendToFirst ? parts.slice(1) : parts) {
        const source = await openReadStream(fs, part);
        await pipeline(source, upload, { end: false });
      }
      await new Promise<void>((resolve, reject) => {
        upload.once('error', reject);
        upload.end(() => resolve());
      });
    } catch (err) {
      upload.transferError?.(err as Error);
      upload.destroy(err as Error);
      throw err;
    }
  }
  // Reported once the target is written, before the parts go: a part that cannot be deleted fails the command
  // (550), but the target has changed all the same.
  reportChange(s, 'combine', target, { parts: [...parts] });
  for (const part of parts) if (part !== target) await fs.unlink(part);
  return s.reply(250, `Combined ${parts.length} files into ${target}.`);
}

/**
 * Refuses, before anything is written, a COMB whose parts overlap: a part named twice (by its name or through a
 * link) would be copied twice and then unlinked twice, and a target that is also a later part would be emptied
 * before it is read, losing its contents. The target may be the first part only (the others are then appended).
 */
async function refuseOverlaps(s: Session, target: string, parts: readonly string[], partStats: readonly FileStats[]): Promise<void> {
  const partIds = await Promise.all(parts.map((part, i) => fileIdentity(s, part, partStats[i] ?? null)));
  if (new Set(partIds).size !== partIds.length) throw new FtpError(553, 'A part is named more than once; nothing was combined.');
  const targetId = await fileIdentity(s, target, await s.vfs.stat(target).catch(() => null));
  parts.forEach((part, i) => {
    // The first part as the target is appended to, which needs it named as itself, not through a link.
    if (partIds[i] === targetId && (i > 0 || part !== target)) {
      throw new FtpError(553, `${target}: the target can only be the first part; nothing was combined.`);
    }
  });
}

/** Links followed to find what a name is (a cycle or a longer chain is left as it stands). */
const MAX_LINK_HOPS = 8;

/**
 * What `path` names, for telling two names of one file apart: the device and inode where the filesystem gives
 * both (hard links too), else the path with the links of its last part followed.
 */
async function fileIdentity(s: Session, path: string, st: FileStats | null): Promise<string> {
  const dev = st?.dev;
  if (st?.ino && dev !== undefined && dev !== 0) return `inode ${dev}:${st.ino}`;
  const fs = s.vfs;
  let current = path;
  for (let hop = 0; hop < MAX_LINK_HOPS && fs.lstat && fs.readlink; hop++) {
    const link = await fs.lstat(current).catch(() => null);
    if (!link?.isSymbolicLink()) break;
    const to = await fs.readlink(current).catch(() => null);
    if (to === null) break;
    current = resolvePath(dirname(current), to);
  }
  return `path ${current}`;
}

function splitNames(arg: string): string[] {
  const names: string[] = [];
  const re = /"((?:[^"]|"")*)"|(\S+)/g;
  for (let m = re.exec(arg); m; m = re.exec(arg)) names.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : (m[2] as string));
  return names;
}

/** MFMT (draft-somers-ftp-mfxx): sets the modification time; 213 with the new time. */
export async function mfmt(s: Session, arg: string): Promise<void> {
  const { time, path: name } = parseMfmt(arg);
  return setModified(s, name, time);
}

/** MFCT (draft-somers-ftp-mfxx): sets the creation time, where the filesystem keeps one. */
export async function mfct(s: Session, arg: string): Promise<void> {
  const { time, path: name } = parseMfmt(arg);
  requirePermission(s, 'site');
  const fs = s.vfs;
  if (!fs.setCreationTime) throw new FtpError(502, 'Changing the creation time is not supported by this filesystem.');
  const path = s.resolve(name);
  await fs.stat(path);
  await fs.setCreationTime(path, time);
  reportChange(s, 'set-created', path, { timeSet: time.toISOString() });
  return s.reply(213, `Create=${formatFtpTime(time)}; ${name}`);
}

async function setModified(s: Session, name: string, time: Date): Promise<void> {
  const kept = await setModificationTime(s, name, time);
  return s.reply(213, `Modify=${formatFtpTime(kept)}; ${name}`);
}

/**
 * Sets `name`'s modification time (MFMT, MDTM with a time, SITE UTIME); returns the time the filesystem kept, which
 * MDTM will then give: ext4 clamps 1900 to 1901 and 9999 to 2446.
 */
export async function setModificationTime(s: Session, name: string, time: Date): Promise<Date> {
  requirePermission(s, 'site');
  const fs = s.vfs;
  if (!fs.setTimes) throw new FtpError(502, 'Changing times is not supported by this filesystem.');
  const path = s.resolve(name);
  await fs.stat(path);
  await fs.setTimes(path, time);
  const kept = await fs.stat(path).then(
    (st) => new Date(st.mtimeMs),
    () => time,
  );
  reportChange(s, 'set-modified', path, { timeSet: kept.toISOString() });
  return kept;
}

/** MDTM: with a time before the path, some clients (old WS_FTP, lftp's fallback) set the time instead. */
export async function mdtmSet(s: Session, arg: string): Promise<boolean> {
  const m = /^(\d{14}(?:\.\d{1,3})?)\s+(.+)$/.exec(arg);
  if (!m) return false;
  // A file literally named like a timestamp and a path wins: only treat it as a set when that does not exist.
  const literal = await s.vfs.stat(s.resolve(arg)).then(
    () => true,
    () => false,
  );
  if (literal) return false;
  await setModified(s, m[2] as string, parseFtpTime(m[1] as string));
  return true;
}

/**
 * Whether the session could make changes that need `what`: the user has the permission, and the storage is not a
 * read-only view (whose every change fails). Before login, what the user will be allowed is not known yet: yes.
 */
export function mayChange(s: Session, what: keyof Permissions): boolean {
  return s.permissions[what] && s.fs?.readonly !== true;
}

/** Whether the provider can do what an optional FEAT line promises. */
export function capability(s: Session, name: keyof ReturnType<typeof describeCapabilities>): boolean {
  return s.fs !== null && describeCapabilities(s.fs)[name];
}

/** OPTS MODE Z LEVEL <0-9> (draft-preston-ftpext-deflate §4). */
function optsModeZ(s: Session, value: string): Promise<void> | void {
  const m = /^Z\s+LEVEL\s+(\d)$/i.exec(value.trim());
  if (!m) throw new FtpError(501, 'Syntax: OPTS MODE Z LEVEL <0-9>.');
  if (!s.settings.modeZ) throw new FtpError(504, 'Mode Z is disabled.');
  s.deflateLevel = Number(m[1]);
  return s.reply(200, `MODE Z LEVEL set to ${s.deflateLevel}.`);
}

/** LANG (RFC 2640 §4.3): English only. */
export function lang(s: Session, arg: string): Promise<void> | void {
  const tag = arg.trim().toUpperCase();
  if (tag === '' || tag === 'EN' || tag.startsWith('EN-')) return s.reply(200, 'Language set to EN.');
  throw new FtpError(504, 'Only EN is supported.');
}

/** OPTS for the extension options (HASH); returns false when the option is not one of ours. */
export function extensionOpts(s: Session, arg: string): Promise<void> | void | false {
  const { name, value } = parseOpts(arg);
  if (name === 'HASH') return optsHash(s, value);
  if (name === 'MODE') return optsModeZ(s, value);
  return false;
}

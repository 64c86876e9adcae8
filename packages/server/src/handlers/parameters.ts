import { parseAllo, parseMode, parseRestOffset, parseStru, parseType } from '@ftp/protocol';
import type { Session } from '../session.js';

/** TYPE (RFC 959 §3.1.1): A (with line-ending conversion), I, and L 8 (the same as I). */
export function type(s: Session, arg: string): Promise<void> | void {
  const t = parseType(arg);
  s.transferType = t.type === 'A' ? 'A' : 'I';
  return s.reply(200, t.type === 'A' ? 'Type set to A.' : t.type === 'L' ? 'Type set to L 8.' : 'Type set to I.');
}

/** MODE (RFC 959 §3.4): S, or Z (deflate, draft-preston-ftpext-deflate) unless `modeZ` is off. B and C get 504. */
export function mode(s: Session, arg: string): Promise<void> | void {
  const m = parseMode(arg);
  if (m === 'Z' && !s.settings.modeZ) return s.reply(504, 'Mode Z is disabled.');
  s.mode = m;
  return s.reply(200, `Mode set to ${m}.`);
}

/** STRU: file structure only. */
export function stru(s: Session, arg: string): Promise<void> | void {
  parseStru(arg);
  return s.reply(200, 'Structure set to F.');
}

/** REST (RFC 3659 §5): the offset the next RETR, STOR or APPE starts from. */
export function rest(s: Session, arg: string): Promise<void> | void {
  // A REST that fails clears the one before it: the next transfer must not start at an offset the client replaced.
  s.restOffset = 0;
  // The later of REST and RANG says where the next transfer starts.
  s.range = null;
  s.restOffset = parseRestOffset(arg);
  return s.reply(350, `Restarting at ${s.restOffset}. Send STORE or RETRIEVE to initiate transfer.`);
}

/**
 * ALLO (RFC 959 §4.1.3): asks the provider to reserve room (452 when it cannot); without an `allocate`
 * capability storage is allocated as it is written, and the answer is 202.
 */
export async function allo(s: Session, arg: string): Promise<void> {
  const { size } = parseAllo(arg);
  const fs = s.vfs;
  // A user who may store nothing (anonymous, read-only) has nothing to reserve room for: storage is not asked,
  // whose refusal (EROFS) would be a warning in the log each time, as often as the client likes.
  if (!fs.allocate || (!s.permissions.write && !s.permissions.append)) return s.reply(202, 'No storage allocation necessary.');
  await fs.allocate(s.cwd, size);
  return s.reply(200, `Room for ${size} bytes.`);
}

import { hexForEscapes } from '@ftp/protocol';
import type { Session } from './session.js';

/** What a command (not a transfer) changed in storage. */
export type ChangeAction = 'delete' | 'make-folder' | 'remove-folder' | 'rename' | 'chmod' | 'symlink' | 'set-modified' | 'set-created' | 'combine';

/**
 * A change a command made to storage: the `change` event, and a line at info level, so that an operator can audit
 * who deleted, renamed or changed what (transfers have their own `transfer` event and line). Emitted after the
 * storage call succeeded, before the reply.
 */
export interface ChangeEvent {
  session: number;
  user: string | undefined;
  action: ChangeAction;
  /** The path changed (for `rename`, the old name; for `symlink`, the link; for `combine`, the target). */
  path: string;
  /** `rename`: the new name; `symlink`: the link's target as given. */
  to?: string;
  /** `rename`: a file of the new name was there before, and was replaced. */
  replaced?: true;
  /** `chmod`: the mode set (its permission bits). */
  mode?: number;
  /**
   * `set-modified`, `set-created`: the time set (ISO 8601; not `time`, which log lines give the moment they were
   * written), as storage kept it where it says (ext4 clamps years).
   */
  timeSet?: string;
  /** `combine`: the parts joined into `path` (then deleted, but for the target when it was the first part). */
  parts?: string[];
}

/** Whether a change `s` makes is recorded anywhere: a log at info level, or a listener of the `change` event. */
export function changesRecorded(s: Session): boolean {
  return s.logAt('info') !== null || s.ctx.listens('change');
}

/**
 * Reports a change `s` made: its log line (the session's logger names the session and the user) and the event.
 * Names are logged with their non-UTF-8 bytes written out (`hexForEscapes`).
 */
export function reportChange(s: Session, action: ChangeAction, path: string, details: Omit<ChangeEvent, 'session' | 'user' | 'action' | 'path'> = {}): void {
  const logged = {
    action,
    path: hexForEscapes(path),
    ...details,
    ...(details.to !== undefined ? { to: hexForEscapes(details.to) } : {}),
    ...(details.parts !== undefined ? { parts: details.parts.map(hexForEscapes) } : {}),
    ...(details.mode !== undefined ? { mode: `0${details.mode.toString(8).padStart(3, '0')}` } : {}),
  };
  s.logAt('info')?.info(logged, 'changed');
  const event: ChangeEvent = { session: s.id, user: s.user, action, path, ...details };
  s.ctx.emit('change', event);
}

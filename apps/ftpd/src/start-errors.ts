import type { Logger } from 'pino';
import { withoutPem } from './secret-text.js';

/**
 * How a failure to start reaches the operator: one line on stderr and one fatal log record, both without any PEM
 * text (a key pasted where a path belongs must not be printed back). The fatal record carries the error's type,
 * code and message (under `error`, not pino's `err`, which would add the stack); its stack, useful only to a developer, goes to a debug record. A worker leaves stderr to its
 * supervisor, which says it once for all.
 */
export function reportStartFailure(logger: Logger, err: unknown, why = messageOf(err), options: { stderr: boolean } = { stderr: true }): void {
  const e = err as NodeJS.ErrnoException;
  logger.fatal({ error: { type: e?.name ?? typeof err, message: messageOf(err), ...(e?.code ? { code: e.code } : {}) } }, `cannot start: ${why}`);
  logger.debug({ stack: withoutPem(e?.stack ?? String(err)) }, 'start failure details');
  if (options.stderr) process.stderr.write(`ftpd: cannot start: ${why}\n`);
}

/** An error's message, without PEM text, on one line. */
export function messageOf(err: unknown): string {
  return withoutPem((err as Error)?.message ?? String(err)).replace(/\s*\n\s*/g, ' ');
}

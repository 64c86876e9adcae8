import type { Logger } from 'pino';
import { messageOf } from './start-errors.js';

/**
 * Runs `work` at each call, one run at a time: a SIGHUP's reload must not read what runs while another one is
 * replacing it. Calls during a run make one more run after it (the file may have changed again since it was read).
 */
export function oneAtATime(logger: Logger, work: () => Promise<void>): () => void {
  let busy = false;
  let again = false;
  const run = (): void => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    void work()
      .catch((err: unknown) => logger.error(`SIGHUP: reload failed: ${messageOf(err)}`))
      .finally(() => {
        busy = false;
        if (again) {
          again = false;
          run();
        }
      });
  };
  return run;
}

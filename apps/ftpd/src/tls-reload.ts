import type { Logger } from 'pino';
import { handleHangUps } from './hang-ups.js';
import { messageOf } from './start-errors.js';

/** Said when SIGHUP finds no certificate files to read again. */
export const NOTHING_TO_RELOAD = 'no certificate files: no TLS, or --self-signed';

/**
 * SIGHUP's work (`systemctl reload`): reads the TLS files again and logs the outcome. A pair that would not serve
 * is refused and the current one kept. `reload` resolves with null once done, or with why there was nothing to do.
 */
export function tlsReloader(logger: Logger, reload: () => Promise<string | null>): () => void {
  return () => {
    reload().then(
      (nothing) => {
        if (nothing !== null) logger.info(`SIGHUP: nothing to reload (${nothing})`);
        else logger.info('TLS certificate reloaded');
      },
      (err: unknown) => logger.error(`TLS certificate reload failed, the previous one stays: ${messageOf(err)}`),
    );
  };
}

/**
 * Reads the TLS files again at each SIGHUP from now until the returned function is called (a hang-up that came
 * while the server started, noted since cli.ts, at once: see hang-ups.ts).
 */
export function onHangUp(logger: Logger, reload: () => Promise<string | null>): () => void {
  return handleHangUps(tlsReloader(logger, reload));
}

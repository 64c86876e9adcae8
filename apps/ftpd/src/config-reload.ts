import type { Logger } from 'pino';
import { localHomeWarnings } from './config/home-check.js';
import { ConfigError, loadConfig } from './config/load.js';
import { planReload, type ReloadPlan } from './config/reload-plan.js';
import type { FtpdConfig } from './config/schema.js';
import { withoutPem } from './secret-text.js';
import { messageOf } from './start-errors.js';

/** Where a reload goes: the one server process, or a supervisor's workers. */
export interface ReloadTarget {
  /** Reads the TLS files `tls` names; rejects, the pair in use staying, when they would not serve. */
  readTls(tls: NonNullable<FtpdConfig['tls']>): Promise<void>;
  /** Puts `config`'s users in service, and its TLS files when `tlsRead` (readTls took them). */
  apply(config: FtpdConfig, tlsRead: boolean): void;
}

/**
 * SIGHUP in config mode (`systemctl reload`): reads and validates `file` again, with the environment's overrides,
 * as at start, and applies what may change while serving (see {@link planReload}): the users, for new logins, and
 * the TLS files. Logs one error line for an invalid file (then nothing changes), a warning naming the sections that
 * wait for a restart, an error line for users or TLS files that cannot be applied (the running ones stay), and one
 * info line saying what was applied. Resolves with the configuration running afterwards; never rejects.
 */
export async function reloadConfiguration(file: string, running: FtpdConfig, logger: Logger, target: ReloadTarget): Promise<FtpdConfig> {
  let next: FtpdConfig;
  try {
    next = loadConfig(file);
  } catch (err) {
    const why = err instanceof ConfigError ? `${err.file}: invalid configuration: ${err.problems.join('; ')}` : messageOf(err);
    logger.error(`SIGHUP: configuration not reloaded, nothing changed: ${withoutPem(why)}`);
    return running;
  }
  const plan = planReload(running, next);
  if (plan.restartNeeded.length > 0) logger.warn(`SIGHUP: ${plan.restartNeeded.join(', ')} changed: restart ftpd to apply them`);
  if ('refused' in plan.users) logger.error(`SIGHUP: users not reloaded, the running ones stay: ${plan.users.refused}: restart ftpd to apply it`);
  let config = plan.config;
  let tlsRead = false;
  if (plan.tls) {
    try {
      await target.readTls(plan.tls);
      tlsRead = true;
    } catch (err) {
      // The same words as a reload of the TLS files alone: operators' alerts may look for them.
      logger.error(`TLS certificate reload failed, the previous one stays: ${messageOf(err)}`);
      config = { ...config, ...(running.tls ? { tls: running.tls } : {}) };
    }
  }
  try {
    target.apply(config, tlsRead);
  } catch (err) {
    logger.error(`SIGHUP: configuration not reloaded: ${messageOf(err)}`);
    return running;
  }
  // As at start: a home that is a file refuses that user's logins (said at each one); said here once too.
  if (!('refused' in plan.users)) for (const warning of localHomeWarnings(config)) logger.warn(`SIGHUP: ${warning}`);
  logger.info(`SIGHUP: configuration reloaded: ${usersOutcome(plan)}, ${tlsRead ? 'TLS reloaded' : running.tls ? 'TLS unchanged' : 'no TLS'}`);
  return config;
}

/** `3 users (1 added, 1 removed, 1 changed)`, or why they were not applied. */
function usersOutcome(plan: ReloadPlan): string {
  if ('refused' in plan.users) return 'users unchanged (refused, see the error above)';
  const { total, added, removed, changed } = plan.users.change;
  return `${total} user${total === 1 ? '' : 's'} (${added} added, ${removed} removed, ${changed} changed)`;
}

import { resolve } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { FtpServer, type BanStore, type SessionGate } from '@ftp/server';
import { LocalProvider, makeFoldersSync } from '@ftp/vfs';
import type { FtpdOptions } from './options.js';
import { selfSignedCertificate } from './self-signed.js';
import { CLI_TLS_NAMES, readTlsMaterial, validityWarning } from './tls-material.js';

export { parseOptions, USAGE, UsageError, type FtpdOptions } from './options.js';

/** A running ftpd: its server, address, and a way to stop it. */
export interface Ftpd {
  server: FtpServer;
  address: AddressInfo;
  /** The implicit FTPS listener's address, when one was asked for. */
  implicitAddress: AddressInfo | undefined;
  /** The SHA-256 fingerprint of the certificate made by `--self-signed`, for clients to check. */
  fingerprint: string | undefined;
  /**
   * Reads `--tls-cert` and `--tls-key` again (SIGHUP): new TLS sessions use them, running ones are untouched.
   * Rejects with a TlsMaterialError, keeping the current pair, when the new files would not serve; resolves false
   * when there are no files to read again (no TLS, or `--self-signed`).
   */
  reloadTls(): Promise<boolean>;
  close(graceMs?: number): Promise<void>;
}

/**
 * What a worker process adds when several share the port (see `--workers`): listeners with `reusePort`, the
 * supervisor's shared session count and bans, and the certificate it made once for all of them.
 */
export interface WorkerHooks {
  banStore: BanStore;
  /** Given when a session limit is set: the limits then hold for all workers together. */
  sessionGate: SessionGate | undefined;
  /** The certificate the supervisor made for `--self-signed`. */
  selfSigned: { cert: string; key: string; fingerprint: string | undefined } | null;
}

/** Starts the reference server: one user over a local folder (created if missing). */
export async function startFtpd(options: FtpdOptions, logger: Logger, worker?: WorkerHooks): Promise<Ftpd> {
  const root = resolve(options.root);
  await makeFolder(root, '--root');
  const fs = new LocalProvider(root, { syncMetadata: options.syncMetadata });
  const generated = worker?.selfSigned ?? (options.selfSigned ? await selfSignedCertificate() : null);
  const files = options.tlsCert && options.tlsKey ? { cert: options.tlsCert, key: options.tlsKey } : null;
  const readFiles = async (): Promise<{ cert: string | Buffer; key: string | Buffer }> => {
    const material = await readTlsMaterial(files!, CLI_TLS_NAMES);
    const warning = validityWarning(material.certificate, '--tls-cert');
    // Each worker would say it again: the supervisor says it once.
    if (warning && !worker) logger.warn(warning);
    return { cert: material.options.cert as Buffer, key: material.options.key as Buffer };
  };
  let tls = generated ?? (files ? await readFiles() : null);
  let anonymous;
  if (options.anonymousRoot) {
    const anonymousRoot = resolve(options.anonymousRoot);
    await makeFolder(anonymousRoot, '--anonymous-root');
    // Both names clients log in anonymously with (vsftpd's and the config file's), unless `ftp` is the real user
    // (the default user's name).
    const users = options.user.toLowerCase() === 'ftp' ? ['anonymous'] : ['anonymous', 'ftp'];
    anonymous = { fs: new LocalProvider(anonymousRoot, { syncMetadata: options.syncMetadata }), users };
  }
  const server = new FtpServer({
    logger,
    anonymous,
    ...(worker ? { banStore: worker.banStore } : {}),
    ...(worker?.sessionGate ? { sessionGate: worker.sessionGate } : {}),
    settings: {
      passivePortRange: options.passivePortRange,
      publicHost: options.publicHost,
      tlsRequired: options.tlsRequired,
      tlsSessionReuse: options.tlsSessionReuse,
      allowCcc: options.allowCcc,
      tlsUploadRequiresCloseNotify: options.tlsUploadRequiresCloseNotify,
      maxLoginFailures: options.maxLoginFailures,
      banDuration: options.banDuration,
      banExempt: options.banExempt,
      failedLoginDelay: options.loginDelay,
      maxSessions: options.maxSessions,
      modeZ: options.modeZ,
    },
    driver: {
      authenticate: (_session, user, password) => (user === options.user && sameSecret(password, options.password) ? { fs } : null),
      ...(tls ? { tlsOptions: () => tls } : {}),
    },
  });
  const shared = worker ? { reusePort: true } : {};
  const address = await server.listen(options.port, options.host, shared);
  let implicitAddress: AddressInfo | undefined;
  try {
    implicitAddress = options.implicitPort !== undefined ? await server.listenImplicitTls(options.implicitPort, options.host, shared) : undefined;
  } catch (err) {
    // The plain listener must not go on serving (and hold the process) when the server as asked for cannot start.
    await server.close(0);
    throw err;
  }
  const reloadTls = async (): Promise<boolean> => {
    if (generated || !files) return false;
    tls = await readFiles();
    return true;
  };
  return { server, address, implicitAddress, fingerprint: generated?.fingerprint, reloadTls, close: (graceMs) => server.close(graceMs) };
}

/** mkdir -p, saying plainly when the path is a file (mkdir's own EEXIST names neither the option nor the problem). */
async function makeFolder(path: string, option: string): Promise<void> {
  try {
    makeFoldersSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new Error(`${option} ${path} is not a directory`);
    throw err;
  }
}

/** Compares secrets in constant time, so response timing does not reveal a matching prefix. */
function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

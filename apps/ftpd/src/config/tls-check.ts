import { CONFIG_TLS_NAMES, readTlsMaterial, TlsMaterialError, validityWarning, type TlsMaterial } from '../tls-material.js';
import { ConfigError } from './load.js';
import type { FtpdConfig } from './schema.js';

/** The configured certificate and key, checked (see readTlsMaterial): a broken pair must neither start nor replace a working one. */
export async function readConfiguredTls(tls: NonNullable<FtpdConfig['tls']>): Promise<TlsMaterial> {
  const passphrase = typeof tls.passphrase === 'string' ? tls.passphrase : undefined;
  return readTlsMaterial({ cert: tls.cert, key: tls.key, passphrase, ciphers: tls.ciphers }, CONFIG_TLS_NAMES);
}

/**
 * What `check-config` and the start add to the file's validation: the TLS files are read and must serve. Throws a
 * {@link ConfigError} naming the problem; resolves with a warning when the certificate is out of date or nearly so.
 */
export async function checkConfiguredTls(config: FtpdConfig, file: string): Promise<string | null> {
  if (!config.tls) return null;
  try {
    const material = await readConfiguredTls(config.tls);
    return validityWarning(material.certificate, 'tls.cert');
  } catch (err) {
    if (err instanceof TlsMaterialError) throw new ConfigError(file, [err.message]);
    throw err;
  }
}

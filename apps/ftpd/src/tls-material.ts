import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { looksLikeFileContent } from './secret-text.js';

/** The certificate and key files of a server, with what goes with them. */
export interface TlsFiles {
  cert: string;
  key: string;
  passphrase?: string | undefined;
  /** OpenSSL cipher list; checked here too, since a list OpenSSL knows nothing of would refuse every handshake. */
  ciphers?: string | undefined;
}

/** How the operator named each part, for the messages: `tls.cert` in a file, `--tls-cert` on the command line. */
export interface TlsNames {
  cert: string;
  key: string;
  /** What to say when the key is encrypted and no passphrase was given. */
  encryptedKeyHint: string;
}

export const CONFIG_TLS_NAMES: TlsNames = { cert: 'tls.cert', key: 'tls.key', encryptedKeyHint: 'give its passphrase in tls.passphrase' };
export const CLI_TLS_NAMES: TlsNames = {
  cert: '--tls-cert',
  key: '--tls-key',
  encryptedKeyHint: 'the command line takes no passphrase: decrypt it (openssl pkey -in KEY -out PLAIN-KEY) or use a configuration file with tls.passphrase',
};

/** Certificates within this many days of their end get a warning at start, at a reload and from check-config. */
export const EXPIRY_WARNING_DAYS = 14;

/** TLS material that cannot serve: the message is one line, names the file, and never shows its content. */
export class TlsMaterialError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsMaterialError';
  }
}

/** What a server serves with: the options for its TLS contexts and the certificate, for its dates. */
export interface TlsMaterial {
  options: SecureContextOptions;
  certificate: X509Certificate;
}

/**
 * Reads a certificate and its key and checks that they serve: each parses, the key opens with the passphrase,
 * the two belong together and OpenSSL takes them (with the cipher list). Without this a broken pair (swapped
 * files, another key, a half-written file, a wrong passphrase) started, or replaced a working pair at a reload,
 * and every FTPS login then failed.
 */
export async function readTlsMaterial(files: TlsFiles, names: TlsNames): Promise<TlsMaterial> {
  const [certPem, keyPem] = await Promise.all([readPem(files.cert, names.cert), readPem(files.key, names.key)]);
  const certificate = parseCertificate(certPem, keyPem, names);
  const key = parseKey(keyPem, files.passphrase, names);
  if (!certificate.checkPrivateKey(key)) throw new TlsMaterialError(`${names.cert} and ${names.key} do not belong together: the certificate is for another key`);
  const options: SecureContextOptions = {
    cert: certPem,
    key: keyPem,
    ...(files.passphrase !== undefined ? { passphrase: files.passphrase } : {}),
    ...(files.ciphers ? { ciphers: files.ciphers } : {}),
  };
  try {
    createSecureContext(options);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_SSL_NO_CIPHER_MATCH') throw new TlsMaterialError('tls.ciphers: OpenSSL knows none of the ciphers listed');
    throw new TlsMaterialError(`${names.cert} and ${names.key}: OpenSSL refuses them (${opensslReason(err)})`);
  }
  return { options, certificate };
}

/** A warning when the certificate is not valid now or ends within {@link EXPIRY_WARNING_DAYS}; null when it is fine. */
export function validityWarning(certificate: X509Certificate, name: string, now = new Date()): string | null {
  const from = new Date(certificate.validFrom);
  const to = new Date(certificate.validTo);
  if (now < from) return `${name} is not valid before ${from.toISOString()}: clients that check it refuse it`;
  if (now > to) return `${name} expired on ${to.toISOString()}: clients that check it refuse it`;
  const daysLeft = (to.getTime() - now.getTime()) / 86_400_000;
  if (daysLeft < EXPIRY_WARNING_DAYS) return `${name} expires on ${to.toISOString()}, in ${timeLeft(to.getTime() - now.getTime())}`;
  return null;
}

/**
 * "13 days 4 hours", "1 day 23 hours", "5 hours", "12 minutes": whole units, cut down (a two-day certificate made a
 * minute ago has 1 day 23 hours left, not "1 day(s)").
 */
export function timeLeft(ms: number): string {
  const unit = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;
  const minutes = Math.max(0, Math.floor(ms / 60_000));
  const hours = Math.floor(minutes / 60);
  const days = Math.floor(hours / 24);
  if (days > 0) return hours % 24 === 0 ? unit(days, 'day') : `${unit(days, 'day')} ${unit(hours % 24, 'hour')}`;
  return hours > 0 ? unit(hours, 'hour') : unit(minutes, 'minute');
}

async function readPem(path: string, name: string): Promise<Buffer> {
  // A key or certificate pasted where its path belongs: said as such, whatever reading it as a path would fail with
  // (no such file, or a name too long, depending on where the base64 happens to hold a slash).
  if (looksLikeFileContent(path)) throw new TlsMaterialError(`${name}: holds file content (PEM text or several lines) where a file path is expected`);
  try {
    return await readFile(path);
  } catch (err) {
    // The code, not the message: the path is said once (it is a path: content was refused above).
    throw new TlsMaterialError(`${name}: cannot read ${path}: ${readFailure(err as NodeJS.ErrnoException)}`);
  }
}

function readFailure(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a folder';
    default:
      return err.code ?? 'unreadable';
  }
}

function parseCertificate(certPem: Buffer, keyPem: Buffer, names: TlsNames): X509Certificate {
  try {
    return new X509Certificate(certPem);
  } catch (err) {
    const text = certPem.toString('latin1');
    if (/PRIVATE KEY-----/.test(text) && keyPem.toString('latin1').includes('CERTIFICATE-----')) {
      throw new TlsMaterialError(`${names.cert} holds a private key and ${names.key} a certificate: they are swapped`);
    }
    if (/PRIVATE KEY-----/.test(text)) throw new TlsMaterialError(`${names.cert} holds a private key, not a certificate`);
    throw new TlsMaterialError(`${names.cert} is not a PEM certificate (${opensslReason(err)})`);
  }
}

function parseKey(keyPem: Buffer, passphrase: string | undefined, names: TlsNames): KeyObject {
  const text = keyPem.toString('latin1');
  // Asked without a passphrase, OpenSSL may prompt at the terminal; the message says what to do instead.
  const encrypted = text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || /Proc-Type: *4, *ENCRYPTED/.test(text);
  if (encrypted && passphrase === undefined) throw new TlsMaterialError(`${names.key} is encrypted: ${names.encryptedKeyHint}`);
  try {
    return createPrivateKey({ key: keyPem, ...(passphrase !== undefined ? { passphrase } : {}) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_OSSL_BAD_DECRYPT') throw new TlsMaterialError(`tls.passphrase does not decrypt ${names.key}`);
    if (!/PRIVATE KEY-----/.test(text) && text.includes('CERTIFICATE-----')) throw new TlsMaterialError(`${names.key} holds a certificate, not a private key`);
    throw new TlsMaterialError(`${names.key} is not a PEM private key (${opensslReason(err)})`);
  }
}

/** OpenSSL's reason without its numeric prefix: `error:0480006C:PEM routines::no start line` → `no start line`. */
function opensslReason(err: unknown): string {
  const message = (err as Error).message ?? String(err);
  return message.split('::').pop()?.trim() || message;
}

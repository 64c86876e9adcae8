import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * A throw-away self-signed certificate for trying FTPS locally (`--self-signed`), made with the `openssl` command
 * (Node can sign keys but not build X.509 certificates). Valid 30 days for localhost, 127.0.0.1 and ::1.
 */
export async function selfSignedCertificate(): Promise<{ cert: Buffer; key: Buffer; fingerprint: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ftpd-cert-'));
  try {
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
    await promisify(execFile)(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '30', '-subj', '/CN=ftpd self-signed', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1'],
      { timeout: 20000 },
    ).catch((err: NodeJS.ErrnoException) => {
      throw new Error(err.code === 'ENOENT' ? '--self-signed needs the openssl command (apt-get install openssl)' : `openssl failed: ${err.message}`);
    });
    const [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
    return { cert, key, fingerprint: new X509Certificate(cert).fingerprint256 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

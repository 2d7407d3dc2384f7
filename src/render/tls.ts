// PEM files for HAProxy: the certificate chain followed by its key, from a kubernetes.io/tls Secret.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { SecretData } from '../api/types.ts';
import { refuse } from './guard.ts';

export function buildPEM(field: string, secret: SecretData): string {
  const where = `${field} (Secret ${secret.name})`;
  const cert = secret.data['tls.crt'];
  const key = secret.data['tls.key'];
  if (!cert) refuse(where, 'has no tls.crt');
  if (!key) refuse(where, 'has no tls.key');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (error) {
    refuse(where, `tls.crt is not a PEM certificate: ${(error as Error).message}`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    // The parser's message could quote key material; say only what is wrong.
    refuse(where, 'tls.key is not a PEM private key');
  }
  if (!x509.checkPrivateKey(privateKey)) refuse(where, 'tls.key does not match the certificate in tls.crt');
  const text = (s: string) => (s.endsWith('\n') ? s : `${s}\n`);
  return `${text(cert.replaceAll('\r\n', '\n'))}${text(key.replaceAll('\r\n', '\n'))}`;
}

// PEM files for HAProxy: the certificate chain followed by its key, from a kubernetes.io/tls Secret.
import { secretRaw, tlsPairProblem } from '../api/secrets.ts';
import type { SecretData } from '../api/types.ts';
import { refuse } from './guard.ts';

/** The PEM HAProxy loads, after the same check validation makes (tlsPairProblem). */
export function buildPEM(field: string, secret: SecretData): string {
  const where = `${field} (Secret ${secret.name})`;
  const cert = secretRaw(secret, 'tls.crt');
  const key = secretRaw(secret, 'tls.key');
  if (!cert) refuse(where, 'has no tls.crt');
  if (!key) refuse(where, 'has no tls.key');
  const problem = tlsPairProblem(cert, key);
  if (problem) refuse(where, problem);
  const text = (s: string) => (s.endsWith('\n') ? s : `${s}\n`);
  return `${text(cert.replaceAll('\r\n', '\n'))}${text(key.replaceAll('\r\n', '\n'))}`;
}

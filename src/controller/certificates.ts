// TLS certificate expiry, from the Secrets the frontends name: a condition 14 days ahead and a
// metric. cert-manager renews at two thirds of a certificate's life (30 days before the end of a
// 90-day one), so a certificate inside 14 days means renewal has failed somewhere.
import { X509Certificate } from 'node:crypto';
import type { HALoadBalancerSpec, SecretData } from '../api/types.ts';
import { conditionTypes as T, type ConditionInput } from './conditions.ts';

export const EXPIRY_WARNING_DAYS = 14;

export interface CertificateExpiry {
  frontend: string;
  secret: string;
  /** The leaf certificate's notAfter, ISO 8601. */
  notAfter: string;
}

/** The leaf certificate of every TLS frontend; a Secret that does not parse is left out (the
 *  renderer reports it, naming the field). */
export function certificateExpiries(spec: HALoadBalancerSpec, secrets: readonly SecretData[]): CertificateExpiry[] {
  const out: CertificateExpiry[] = [];
  for (const frontend of spec.frontends) {
    if (!frontend.tls) continue;
    const secret = secrets.find((s) => s.name === frontend.tls!.secretRef.name);
    const pem = secret?.data['tls.crt'];
    if (!pem) continue;
    try {
      out.push({ frontend: frontend.name, secret: secret.name, notAfter: new Date(new X509Certificate(pem).validTo).toISOString() });
    } catch {
      // not a certificate: validation and the renderer say so
    }
  }
  return out;
}

/** CertificateExpiring: True from 14 days before the earliest notAfter; unset without TLS. */
export function certificateCondition(certificates: readonly CertificateExpiry[], now: Date): ConditionInput | undefined {
  if (certificates.length === 0) return undefined;
  const sorted = [...certificates].sort((a, b) => a.notAfter.localeCompare(b.notAfter));
  const first = sorted[0]!;
  const left = Date.parse(first.notAfter) - now.getTime();
  const what = `certificate of frontend ${first.frontend} (Secret ${first.secret})`;
  if (left <= 0) {
    return { type: T.certificateExpiring, status: 'True', reason: 'Expired', message: `the ${what} expired at ${first.notAfter}` };
  }
  if (left <= EXPIRY_WARNING_DAYS * 86_400_000) {
    return {
      type: T.certificateExpiring, status: 'True', reason: 'ExpiresSoon',
      message: `the ${what} expires at ${first.notAfter}, in ${Math.floor(left / 86_400_000)} days: renew it`,
    };
  }
  return {
    type: T.certificateExpiring, status: 'False', reason: 'Valid', message: `the first to expire is the ${what}, at ${first.notAfter}`,
  };
}

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateHALoadBalancer } from '../../src/api/validate.ts';
import { certificateCondition, certificateExpiries } from '../../src/controller/certificates.ts';

const dir = mkdtempSync(join(tmpdir(), 'halb-certs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A self-signed certificate valid for `days`, made by the real openssl. */
function cert(name: string, days: number): string {
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-days', String(days),
    '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`),
  ], { stdio: 'pipe' });
  return readFileSync(join(dir, `${name}.crt`), 'utf8');
}

const spec = validateHALoadBalancer({
  apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name: 'web' },
  spec: {
    region: 'nyc3',
    credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'k' } },
    frontends: [
      { name: 'www', port: 80, protocol: 'http', tls: { secretRef: { name: 'www-tls' } }, defaultBackend: 'web' },
      { name: 'api', port: 8080, protocol: 'http', tls: { secretRef: { name: 'api-tls' }, port: 8443 }, defaultBackend: 'web' },
      { name: 'plain', port: 81, protocol: 'http', defaultBackend: 'web' },
    ],
    backends: [{ name: 'web', servers: [{ name: 's1', address: '10.0.0.1' }] }],
  },
}).object!.spec;

describe('certificate expiry', () => {
  const now = new Date();
  const long = cert('long', 90);
  const short = cert('short', 10);

  it('reads notAfter of every TLS frontend\'s certificate', () => {
    const found = certificateExpiries(spec, [
      { name: 'www-tls', data: { 'tls.crt': long } }, { name: 'api-tls', data: { 'tls.crt': short } },
    ]);
    expect(found.map((c) => [c.frontend, c.secret])).toEqual([['www', 'www-tls'], ['api', 'api-tls']]);
    const days = (iso: string) => Math.round((Date.parse(iso) - now.getTime()) / 86_400_000);
    expect(found.map((c) => days(c.notAfter))).toEqual([90, 10]);
  });

  it('warns 14 days ahead, naming the frontend, the Secret and the date', () => {
    const found = certificateExpiries(spec, [
      { name: 'www-tls', data: { 'tls.crt': long } }, { name: 'api-tls', data: { 'tls.crt': short } },
    ]);
    const c = certificateCondition(found, now)!;
    expect(c).toMatchObject({ type: 'CertificateExpiring', status: 'True', reason: 'ExpiresSoon' });
    expect(c.message).toContain('frontend api (Secret api-tls)');
    expect(c.message).toContain(found[1]!.notAfter);
  });

  it.each([
    [20, 'False', 'Valid'],
    [13, 'True', 'ExpiresSoon'],
    [-1, 'True', 'Expired'],
  ])('%i days left: %s %s', (days, status, reason) => {
    const notAfter = new Date(now.getTime() + days * 86_400_000).toISOString();
    expect(certificateCondition([{ frontend: 'www', secret: 'www-tls', notAfter }], now)).toMatchObject({ status, reason });
  });

  it('has no condition without TLS, and skips what does not parse', () => {
    expect(certificateCondition([], now)).toBeUndefined();
    expect(certificateExpiries(spec, [{ name: 'www-tls', data: { 'tls.crt': 'not a certificate' } }])).toEqual([]);
  });
});

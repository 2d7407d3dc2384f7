// Test helpers: HALoadBalancers built through the real validation (defaults applied), Secrets,
// and TLS material made by openssl at test time (no private key is committed).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateHALoadBalancer } from '../../src/api/validate.ts';
import type { HALoadBalancer, SecretData } from '../../src/api/types.ts';

export const TOKEN = 'dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';

/** A valid HALoadBalancer with the schema's defaults applied; `spec` is merged over a small base. */
export function makeLB(name: string, spec: Record<string, unknown> = {}, metadata: Record<string, unknown> = {}): HALoadBalancer {
  const input = {
    apiVersion: 'halb.dev/v1alpha1',
    kind: 'HALoadBalancer',
    metadata: { name, namespace: 'default', uid: `uid-${name}`, ...metadata },
    spec: {
      region: 'nyc3',
      credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'ssh-privatekey' } },
      frontends: [{ name: 'www', port: 80, protocol: 'http', defaultBackend: 'web' }],
      backends: [{ name: 'web', port: 80, servers: [{ name: 's1', address: '10.10.0.21' }] }],
      ...spec,
    },
  };
  const { problems, object } = validateHALoadBalancer(input);
  if (!object) throw new Error(`test spec ${name} is invalid: ${JSON.stringify(problems)}`);
  return object;
}

let cachedTLS: { cert: string; key: string } | undefined;

/** A self-signed EC certificate and key, made once per test file. */
export function tlsPair(): { cert: string; key: string } {
  if (cachedTLS) return cachedTLS;
  const dir = mkdtempSync(join(tmpdir(), 'hrt-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30',
      '-subj', '/CN=www.example.com', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    cachedTLS = { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
    return cachedTLS;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function baseSecrets(extra: SecretData[] = []): SecretData[] {
  const { cert, key } = tlsPair();
  return [
    { name: 'do-api', namespace: 'default', data: { token: TOKEN } },
    { name: 'www-tls', namespace: 'default', type: 'kubernetes.io/tls', data: { 'tls.crt': cert, 'tls.key': key } },
    { name: 'vrrp', namespace: 'default', data: { password: 's3cr3t-x' } },
    ...extra,
  ];
}

/** The version a daemon on this machine reports. */
export function installedVersions(): { keepalived: string; haproxy: string } {
  // keepalived prints its version on stderr.
  const keepalived = execFileSync('sh', ['-c', 'keepalived --version 2>&1'], { encoding: 'utf8' });
  const haproxy = execFileSync('haproxy', ['-v'], { encoding: 'utf8' });
  const k = /Keepalived v(\d+\.\d+\.\d+)/.exec(keepalived);
  const h = /HAProxy version (\d+\.\d+\.\d+)/.exec(haproxy);
  if (!k?.[1] || !h?.[1]) throw new Error(`cannot read daemon versions: ${keepalived} ${haproxy}`);
  return { keepalived: k[1], haproxy: h[1] };
}

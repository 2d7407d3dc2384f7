// Test helpers: HALoadBalancers built through the real validation (defaults applied), Secrets,
// and the demo TLS pair from the examples.
import { execFileSync } from 'node:child_process';
import { loadAndValidate } from '../../src/api/manifests.ts';
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

/** The demo certificate and key that examples/seed-tutorial.yaml carries (no openssl needed). */
export function tlsPair(): { cert: string; key: string } {
  if (cachedTLS) return cachedTLS;
  const secret = loadAndValidate(['examples/seed-tutorial.yaml']).secrets.find((s) => s.name === 'www-tls');
  const cert = secret?.data['tls.crt'];
  const key = secret?.data['tls.key'];
  if (!cert || !key) throw new Error('examples/seed-tutorial.yaml has no www-tls Secret with tls.crt and tls.key');
  cachedTLS = { cert, key };
  return cachedTLS;
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

// A kubeconfig both real clients accept over plain http: kubectl sends no credentials there, and
// client-node refuses http: unless insecure-skip-tls-verify is set.
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';

export function kubeconfigYAML(server: string, context = 'halb-sandbox', namespace = 'default'): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: context, cluster: { server, 'insecure-skip-tls-verify': true } }],
    users: [{ name: context, user: {} }],
    contexts: [{ name: context, context: { cluster: context, user: context, namespace } }],
    'current-context': context,
    preferences: {},
  });
}

export function writeKubeconfig(path: string, server: string): void {
  writeFileSync(path, kubeconfigYAML(server), { mode: 0o600 });
}

// What the sandbox's cluster nodes answer, as kube-proxy would have them: every NodePort of a
// NodePort or LoadBalancer Service; under Local only where the Service has an endpoint, and the
// health-check port's /healthz saying so (200 or 503, kube-proxy's JSON). nginx takes the config.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { nodeListeners, renderNodeNginx } from '../../src/sandbox/cluster.ts';

const svc = (name: string, spec: Record<string, unknown>): k8s.V1Service => ({ metadata: { name, namespace: 'default' },
  spec } as k8s.V1Service);

const services = [
  svc('web', { type: 'LoadBalancer', ports: [{ port: 80, nodePort: 31080, protocol: 'TCP' }, { port: 53, nodePort: 31053,
    protocol: 'UDP' }] }),
  svc('np', { type: 'NodePort', ports: [{ port: 8080, nodePort: 30080 }] }),
  svc('plain', { type: 'ClusterIP', ports: [{ port: 80 }] }),
  svc('local', { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000, ports: [{ port: 80,
    nodePort: 31081 }] }),
];
const endpoints = (service: k8s.V1Service, node: string) => (service.metadata?.name === 'local' && node === 'node-1' ? 2 : 0);

describe('a cluster node\'s listeners', () => {
  it('every TCP NodePort answers with the node and the port; Local only where there are endpoints, with /healthz saying so', () => {
    expect(nodeListeners('node-1', services, endpoints)).toEqual([
      { port: 30080, body: 'node-1 30080' },
      { port: 31080, body: 'node-1 31080' },
      { port: 31081, body: 'node-1 31081' },
      { port: 32000, status: 200, json: true,
        body: '{"service":{"namespace":"default","name":"local"},"localEndpoints":2,"serviceProxyHealthy":true}' },
    ]);
    const other = nodeListeners('node-2', services, endpoints);
    expect(other.map((l) => l.port)).toEqual([30080, 31080, 32000]);
    expect(other.at(-1)).toMatchObject({ status: 503, body: expect.stringContaining('"localEndpoints":0') });
  });

  it('nginx accepts the config it renders', () => {
    const dir = mkdtempSync(join(tmpdir(), 'halb-node-'));
    try {
      writeFileSync(join(dir, 'nginx.conf'), renderNodeNginx('node-1', dir, nodeListeners('node-1', services, endpoints)));
      const r = spawnSync('nginx', ['-t', '-q', '-e', join(dir, 'error.log'), '-p', dir, '-c', join(dir, 'nginx.conf')],
        { encoding: 'utf8' });
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Services and EndpointSlices in the emulator, as the operator's metrics discovery uses them: a
// headless Service and an EndpointSlice owned by a HALoadBalancer, the real server's defaults,
// its refusals, and garbage collection with the owner.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeEmulator } from '../../src/sandbox/kube/index.ts';
import { startKubeEmulator } from '../../src/sandbox/kube/index.ts';

const SVC = '/api/v1/namespaces/default/services';
const SLICES = '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices';

describe('Services and EndpointSlices in the emulator', () => {
  let emu: KubeEmulator;
  const call = async (method: string, path: string, body?: unknown): Promise<{ code: number; json: Record<string, unknown> }> => {
    const init = { method, headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) };
    const res = await fetch(`${emu.url}${path}`, init);
    const text = await res.text();
    return { code: res.status, json: text ? JSON.parse(text) as Record<string, unknown> : {} };
  };
  beforeAll(async () => { emu = await startKubeEmulator({ port: 0 }); });
  afterAll(async () => { await emu?.close(); });

  it('are discovered under core/v1 and discovery.k8s.io/v1', async () => {
    const core = (await call('GET', '/api/v1')).json.resources as { name: string }[];
    expect(core.map((r) => r.name)).toContain('services');
    const discovery = (await call('GET', '/apis/discovery.k8s.io/v1')).json.resources as { name: string; kind: string }[];
    expect(discovery.map((r) => `${r.name} ${r.kind}`)).toContain('endpointslices EndpointSlice');
  });

  it('a headless Service keeps clusterIP None and gets the server defaults; a ClusterIP one gets an address', async () => {
    const headless = await call('POST', SVC, {
      metadata: { name: 'metrics' }, spec: { clusterIP: 'None', ports: [{ name: 'haproxy-metrics', port: 8404 }] },
    });
    expect(headless.code).toBe(201);
    expect(headless.json.spec).toMatchObject({
      type: 'ClusterIP', clusterIP: 'None', clusterIPs: ['None'], sessionAffinity: 'None',
      ports: [{ name: 'haproxy-metrics', port: 8404, protocol: 'TCP', targetPort: 8404 }],
    });
    const plain = await call('POST', SVC, { metadata: { name: 'plain' }, spec: { ports: [{ port: 80 }] } });
    expect((plain.json.spec as { clusterIP: string }).clusterIP).toMatch(/^10\.96\.\d+\.\d+$/);
    const moved = { ...(plain.json.spec as object), clusterIP: '10.96.9.9', clusterIPs: ['10.96.9.9'] };
    const changed = await call('PUT', `${SVC}/plain`, { ...plain.json, spec: moved });
    expect(changed.code).toBe(422);
  });

  it('refuses a port out of range and a slice without an addressType', async () => {
    const bad = await call('POST', SVC, { metadata: { name: 'bad' }, spec: { ports: [{ port: 70000 }] } });
    expect(bad.json).toMatchObject({ code: 422, reason: 'Invalid' });
    const slice = await call('POST', SLICES, { metadata: { name: 'bad' }, endpoints: [{ addresses: ['10.10.0.10'] }] });
    expect(slice.json).toMatchObject({ code: 422, reason: 'Invalid' });
    expect(JSON.stringify(slice.json)).toContain('addressType');
  });

  it('an EndpointSlice with the Service label lists the nodes, and goes with its owner', async () => {
    const created = await call('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'owner' } });
    const owner = created.json.metadata as { uid: string };
    const slice = await call('POST', SLICES, {
      metadata: {
        name: 'metrics-nodes',
        labels: { 'kubernetes.io/service-name': 'metrics', 'endpointslice.kubernetes.io/managed-by': 'halb.dev' },
        ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.uid, controller: true }] },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.10.0.10'], hostname: 'web-0', conditions: { ready: true } }],
      ports: [{ name: 'haproxy-metrics', port: 8404 }],
    });
    expect(slice.code).toBe(201);
    expect(slice.json.ports).toEqual([{ name: 'haproxy-metrics', port: 8404, protocol: 'TCP' }]);
    const listed = await call('GET', `${SLICES}?labelSelector=kubernetes.io%2Fservice-name%3Dmetrics`);
    expect((listed.json.items as unknown[]).length).toBe(1);
    await call('DELETE', '/api/v1/namespaces/default/configmaps/owner');
    expect((await call('GET', `${SLICES}/metrics-nodes`)).code).toBe(404);
  });
});

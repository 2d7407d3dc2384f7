// Every node's metrics, the Kubernetes way: the per-node series on the operator's /metrics and
// the metrics Service and EndpointSlice each HALoadBalancer gets. Pure functions table-driven;
// then the reconciler in-process against the emulator, the simulator and stand-in hosts.
import * as k8s from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import type { HALoadBalancer, HALoadBalancerStatus, NodeStatus } from '../../src/api/types.ts';
import { desiredMetricsEndpoints } from '../../src/controller/metrics-endpoints.ts';
import { failoverReason, nodeSeries } from '../../src/controller/node-metrics.ts';
import type { Observed } from '../../src/controller/observed.ts';
import { OperatorMetrics } from '../../src/controller/telemetry.ts';
import { kubeconfigYAML } from '../../src/sandbox/kube/index.ts';
import { basicObject, startHarness, type Harness } from './harness.ts';

const object = (backends = ['web', 'api']) => ({
  apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer',
  metadata: { name: 'edge', namespace: 'apps', uid: 'uid-1' },
  spec: { backends: backends.map((name) => ({ name })) },
}) as unknown as HALoadBalancer;

const status: HALoadBalancerStatus = {
  activeNode: 'edge-0',
  nodes: [
    { name: 'edge-0', vrrpState: 'MASTER', privateIPv4: '10.10.0.10' },
    { name: 'edge-1', vrrpState: 'BACKUP', privateIPv4: '10.10.0.11' },
    { name: 'edge-2', vrrpState: 'UNKNOWN' },
  ],
};

const observed: Observed = {
  droplets: [],
  hosts: {
    'edge-0': {
      reachable: true, configAppliedAt: 1_800_000_000, servers: { 'web/a': 'UP', 'web/b': 'DOWN', 'api/c': 'UP 1/3', 'api/d': 'MAINT' },
    },
    'edge-1': { reachable: true, servers: { 'web/a': 'DOWN', 'web/b': 'DOWN', 'api/c': 'no check', 'other/x': 'UP' } },
    'edge-2': { reachable: false, error: 'ssh failed' },
  },
};

describe('per-node series', () => {
  it('state, holder, reachability, servers up per backend of the spec, applied time', () => {
    expect(nodeSeries(object(), status, observed)).toEqual([
      {
        node: 'edge-0', vrrpState: 'MASTER', holdsIP: true, reachable: true, serversUp: { web: 1, api: 1 },
        configAppliedSeconds: 1_800_000_000,
      },
      { node: 'edge-1', vrrpState: 'BACKUP', holdsIP: false, reachable: true, serversUp: { web: 0, api: 1 } },
      { node: 'edge-2', vrrpState: 'UNKNOWN', holdsIP: false, reachable: false },
    ]);
  });

  it.each([
    ['the old holder is gone', [], 'node_gone'],
    ['the old holder does not answer', [{ name: 'edge-0', vrrpState: 'UNKNOWN' }], 'node_unreachable'],
    ['the old holder is BACKUP now', [{ name: 'edge-0', vrrpState: 'BACKUP' }], 'master_lost'],
    ['the old holder is FAULT', [{ name: 'edge-0', vrrpState: 'FAULT' }], 'master_lost'],
    ['the old holder is still MASTER (a split brain)', [{ name: 'edge-0', vrrpState: 'MASTER' }], 'other'],
  ] as [string, NodeStatus[], string][])('failover reason: %s', (_, nodes, reason) => {
    expect(failoverReason('edge-0', nodes)).toBe(reason);
  });

  it('a set replaces the last one, a node that left loses its series, and forgetting leaves none', async () => {
    const metrics = new OperatorMetrics({ processMetrics: false });
    const text = async () => (await metrics.registry.metrics()).split('\n')
      .filter((l) => l.startsWith('halb_node_') || l.startsWith('halb_failovers'));
    metrics.setNodeSeries('apps', 'edge', nodeSeries(object(), status, observed));
    const first = await text();
    expect(first).toContain('halb_node_vrrp_state{namespace="apps",name="edge",node="edge-0",state="MASTER"} 1');
    expect(first).toContain('halb_node_vrrp_state{namespace="apps",name="edge",node="edge-0",state="BACKUP"} 0');
    expect(first).toContain('halb_node_holds_ip{namespace="apps",name="edge",node="edge-0"} 1');
    expect(first).toContain('halb_node_reachable{namespace="apps",name="edge",node="edge-2"} 0');
    expect(first).toContain('halb_node_backend_servers_up{namespace="apps",name="edge",node="edge-1",backend="web"} 0');
    expect(first).toContain('halb_node_config_applied_timestamp_seconds{namespace="apps",name="edge",node="edge-0"} 1800000000');
    expect(first).toContain('halb_failovers_observed_total{namespace="apps",name="edge",reason="master_lost"} 0');
    // Cardinality: 4 states + holder + reachable per node, servers per node and backend read, 1 applied time, 5 reasons.
    expect(first.filter((l) => !l.startsWith('#'))).toHaveLength(3 * 6 + 2 * 2 + 1 + 5);

    metrics.setNodeSeries('apps', 'edge', nodeSeries(object(), { ...status, nodes: status.nodes!.slice(0, 1) }, observed));
    expect((await text()).filter((l) => l.includes('edge-1') || l.includes('edge-2'))).toEqual([]);
    metrics.forgetObject('apps', 'edge');
    expect((await text()).filter((l) => !l.startsWith('#'))).toEqual([]);

    metrics.setNodeSeries('apps', 'edge', nodeSeries(object(), status, observed));
    metrics.forgetAllObjects();
    expect((await text()).filter((l) => !l.startsWith('#'))).toEqual([]);
  });

  it('reconcile errors of both kinds start at 0', async () => {
    const text = await new OperatorMetrics({ processMetrics: false }).registry.metrics();
    expect(text).toContain('halb_reconcile_errors_total{kind="transient"} 0');
    expect(text).toContain('halb_reconcile_errors_total{kind="terminal"} 0');
  });
});

describe('the metrics Service and EndpointSlice', () => {
  it('a headless Service and a slice of the nodes with a VPC address, owned by the object', () => {
    const { service, slice } = desiredMetricsEndpoints(object(), status, 8404);
    const owner = [{ apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', name: 'edge', uid: 'uid-1', controller: true }];
    expect(service.metadata).toMatchObject({ name: 'edge-metrics', namespace: 'apps', ownerReferences: owner });
    expect(service.metadata!.labels).toMatchObject({ 'halb.dev/metrics': 'haproxy', 'halb.dev/haloadbalancer': 'edge' });
    expect(service.spec).toEqual({
      clusterIP: 'None', ports: [{ name: 'haproxy-metrics', port: 8404, protocol: 'TCP', targetPort: 8404 }],
    });
    expect(slice.metadata!.labels).toMatchObject({
      'kubernetes.io/service-name': 'edge-metrics', 'endpointslice.kubernetes.io/managed-by': 'operator.halb.dev',
    });
    expect(slice.metadata!.ownerReferences).toEqual(owner);
    expect(slice.endpoints).toEqual([
      { addresses: ['10.10.0.10'], hostname: 'edge-0', conditions: { ready: true } },
      { addresses: ['10.10.0.11'], hostname: 'edge-1', conditions: { ready: true } },
    ]);
  });
});

describe('the reconciler keeps them', () => {
  let h: Harness;
  afterEach(async () => { await h?.close(); });

  it('writes the Service and EndpointSlice once Ready, exports the series, ' +
    'counts a failover with its reason, forgets a deleted object', async () => {
    h = await startHarness();
    await h.create(basicObject());
    await h.passUntil('web', (o) => o?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false);
    const lb = (await h.get('web'))!;
    const kc = new k8s.KubeConfig();
    kc.loadFromString(kubeconfigYAML(h.kube.url));
    const service = await kc.makeApiClient(k8s.CoreV1Api).readNamespacedService({ name: 'web-metrics', namespace: 'default' });
    expect(service.spec?.clusterIP).toBe('None');
    expect(service.metadata?.ownerReferences?.[0]?.uid).toBe(lb.metadata.uid);
    const slice = await kc.makeApiClient(k8s.DiscoveryV1Api).readNamespacedEndpointSlice({ name: 'web-metrics', namespace: 'default' });
    expect((slice.endpoints ?? []).map((e) => [e.hostname, e.addresses[0]])).toEqual(lb.status!.nodes!.map((n) => [n.name, n.privateIPv4]));

    const metric = async (line: string) => (await h.ctx.metrics.registry.metrics()).split('\n').find((l) => l.startsWith(line));
    expect(await metric('halb_node_vrrp_state{namespace="default",name="web",node="web-0",state="MASTER"}')).toMatch(/ 1$/);
    expect(await metric('halb_node_holds_ip{namespace="default",name="web",node="web-0"}')).toMatch(/ 1$/);
    expect(await metric('halb_node_config_applied_timestamp_seconds{namespace="default",name="web",node="web-1"}')).toMatch(/ \d{10}$/);

    // web-0 crashes: keepalived on web-1 becomes MASTER and its failover script moves the IP.
    h.hosts.crash('web-0');
    await h.passUntil('web', (o) => o?.status?.activeNode === 'web-1', 60);
    expect(await metric('halb_failovers_observed_total{namespace="default",name="web",reason="node_unreachable"}')).toMatch(/ 1$/);
    expect(await metric('halb_node_reachable{namespace="default",name="web",node="web-0"}')).toMatch(/ 0$/);
    expect(await metric('halb_node_vrrp_state{namespace="default",name="web",node="web-1",state="MASTER"}')).toMatch(/ 1$/);

    await h.delete('web');
    await h.passUntil('web', (o) => o === undefined, 60);
    await h.pass('web');
    expect((await h.ctx.metrics.registry.metrics()).split('\n').filter((l) => l.includes('name="web"'))).toEqual([]);
  });
});

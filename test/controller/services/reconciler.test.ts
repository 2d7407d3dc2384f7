// The Service controller between its pure planner and the end-to-end suite: one pass at a time,
// in-process, against the Kubernetes emulator (real informers), the DigitalOcean simulator and
// stand-in hosts, with the HALoadBalancer controller doing the cloud and host work. Each test
// names what a pass writes (one write per change), the Events, and the status it leaves.
import type * as k8s from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HALoadBalancer } from '../../../src/api/types.ts';
import { basicObject } from '../harness.ts';
import { startServiceHarness, type ServiceHarness } from './harness.ts';

let h: ServiceHarness;
beforeEach(async () => {
  h = await startServiceHarness();
  await h.addNode('pool-a', '10.10.0.31');
  await h.addNode('pool-b', '10.10.0.32');
});
afterEach(async () => { await h?.close(); });

const condition = (s: k8s.V1Service | undefined) => s?.status?.conditions?.find((c) => c.type === 'halb.dev/LoadBalancerReady');
const serving = (s: k8s.V1Service | undefined) => condition(s)?.status === 'True';
const reasons = (events: { reason: string }[]) => events.map((e) => e.reason);
const servers = (lb: HALoadBalancer | undefined) => lb?.spec.backends[0]?.servers?.map((s) => `${s.name}=${s.address}`);
const reservedIPs = () => h.sim.state.listReservedIps() as { ip: string }[];

async function servedService(name = 'web', spec: Record<string, unknown> = {}, annotations: Record<string,
  string> = {}): Promise<k8s.V1Service> {
  await h.createService(name, spec, annotations);
  await h.converge(name, serving);
  return (await h.service(name))!;
}

describe('a Service with the class', () => {
  it('finalizer, then one HALoadBalancer owned by it, then the reserved IP in status once it serves', async () => {
    await h.createService('web');
    const first = await h.servicePass('web');
    expect(first).toMatchObject({ events: [], result: { requeueAfterMs: 0 } });
    expect((await h.service('web'))!.metadata!.finalizers).toEqual(['service.kubernetes.io/load-balancer-cleanup']);

    const create = await h.servicePass('web');
    expect(create.events.map((e) => `${e.kind} ${e.reason}`)).toEqual(['Service EnsuringLoadBalancer']);
    const lb = (await h.get('web'))!;
    const uid = (await h.service('web'))!.metadata!.uid;
    expect(lb.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Service', name: 'web', uid, controller: true,
      blockOwnerDeletion: true }]);
    expect(lb.metadata.labels).toMatchObject({ 'halb.dev/service': 'web', 'app.kubernetes.io/managed-by': 'halb-service-controller' });
    const nodePort = (await h.service('web'))!.spec!.ports![0]!.nodePort;
    expect(lb.spec.frontends).toEqual([{ name: 'http', port: 80, protocol: 'tcp', defaultBackend: 'http' }]);
    expect(lb.spec.backends[0]).toMatchObject({ name: 'http', port: nodePort });
    expect(servers(lb)).toEqual(['pool-a=10.10.0.31', 'pool-b=10.10.0.32']);
    expect(condition(await h.service('web'))).toMatchObject({ status: 'False', reason: 'Provisioning' });
    expect((await h.service('web'))!.status!.loadBalancer!.ingress ?? []).toEqual([]);

    await h.passUntil('web', (o) => o?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True');
    const ready = await h.servicePass('web');
    expect(reasons(ready.events)).toEqual(['EnsuredLoadBalancer']);
    const service = (await h.service('web'))!;
    expect(service.status!.loadBalancer!.ingress).toEqual([{ ip: reservedIPs()[0]!.ip, ipMode: 'VIP' }]);
    expect(condition(service)).toMatchObject({ status: 'True', reason: 'Ready' });

    // Converged: a pass writes nothing.
    const rv = service.metadata!.resourceVersion;
    const lbRV = (await h.get('web'))!.metadata.resourceVersion;
    expect((await h.servicePass('web')).events).toEqual([]);
    expect((await h.service('web'))!.metadata!.resourceVersion).toBe(rv);
    expect((await h.get('web'))!.metadata.resourceVersion).toBe(lbRV);
  });

  it('a changed port updates the frontends in one write; the address stays published meanwhile', async () => {
    const before = await servedService();
    await h.patchService('web', { spec: { ports: [{ name: 'http', port: 8080, targetPort: 8080 }] } });
    const update = await h.servicePass('web');
    expect(reasons(update.events)).toEqual(['EnsuringLoadBalancer']);
    expect((await h.get('web'))!.spec.frontends[0]).toMatchObject({ name: 'http', port: 8080 });
    const during = (await h.service('web'))!;
    expect(during.status!.loadBalancer!.ingress).toEqual(before.status!.loadBalancer!.ingress);
    expect(condition(during)).toMatchObject({ status: 'False', reason: 'Provisioning' });
    await h.converge('web', serving);
  });

  it('nodes joining, leaving or excluded change the servers; heartbeats change nothing', async () => {
    await servedService();
    h.enqueued();
    await h.patchNode('pool-b', { metadata: { labels: { 'node.kubernetes.io/exclude-from-external-load-balancers': 'true' } } });
    await h.addNode('pool-c', '10.10.0.33');
    await waitEnqueued('default/web');
    await h.servicePass('web');
    expect(servers(await h.get('web'))).toEqual(['pool-a=10.10.0.31', 'pool-c=10.10.0.33']);
    await h.patchNode('pool-c', { status: { conditions: [{ type: 'Ready', status: 'False' }] } }, true);
    await waitEnqueued('default/web');
    await h.servicePass('web');
    expect(servers(await h.get('web'))).toEqual(['pool-a=10.10.0.31']);
    // A status write that moves nothing the backends depend on enqueues nothing.
    await new Promise((r) => setTimeout(r, 300));
    h.enqueued();
    await h.patchNode('pool-a', { status: { nodeInfo: { kubeletVersion: 'v1.32.4' } } }, true);
    await new Promise((r) => setTimeout(r, 300));
    expect(h.enqueued()).toEqual([]);
  });

  it('Local: checks of the healthCheckNodePort over HTTP', async () => {
    await h.createService('web', { externalTrafficPolicy: 'Local' });
    await h.converge('web', () => true, 2);
    await h.servicePass('web');
    const hc = (await h.service('web'))!.spec!.healthCheckNodePort;
    expect((await h.get('web'))!.spec.backends[0]!.healthCheck).toEqual({ protocol: 'http', path: '/healthz', port: hc });
  });

  it('deleting it deletes the HALoadBalancer, waits for its cleanup, keeps the reserved IP (Retain), then lets it go', async () => {
    await servedService();
    const ip = reservedIPs()[0]!.ip;
    await h.deleteService('web');
    const deleting = await h.servicePass('web');
    expect(reasons(deleting.events)).toEqual(['DeletingLoadBalancer']);
    expect((await h.get('web'))!.metadata.deletionTimestamp).toBeDefined();
    expect((await h.servicePass('web')).result.requeueAfterMs).toBe(1000);
    await h.passUntil('web', (o) => o === undefined);
    expect(h.sim.state.dropletViews()).toEqual([]);
    const deleted = await h.servicePass('web');
    expect(reasons(deleted.events)).toEqual(['DeletedLoadBalancer']);
    expect(await h.service('web')).toBeUndefined();
    expect(reservedIPs().map((r) => r.ip)).toEqual([ip]);
  });

  it('a re-created Service adopts the kept address through spec.loadBalancerIP', async () => {
    await servedService();
    const ip = reservedIPs()[0]!.ip;
    await h.deleteService('web');
    await h.converge('web', (s) => s === undefined);
    await servedService('web', { loadBalancerIP: ip });
    expect((await h.service('web'))!.status!.loadBalancer!.ingress).toEqual([{ ip, ipMode: 'VIP' }]);
    expect(reservedIPs().map((r) => r.ip)).toEqual([ip]);
  });

  it('no longer a LoadBalancer: the load balancer goes, and so do the finalizer and the condition', async () => {
    await servedService();
    await h.patchService('web', { spec: { type: 'ClusterIP', loadBalancerClass: null } });
    await h.converge('web', (s) => !s?.metadata?.finalizers?.length);
    expect(await h.get('web')).toBeUndefined();
    const service = (await h.service('web'))!;
    expect(condition(service)).toBeUndefined();
    expect(service.status!.loadBalancer).toEqual({});
  });

  it('PROXY protocol gives ipMode Proxy', async () => {
    const service = await servedService('web', {}, { 'halb.dev/proxy-protocol': 'true' });
    expect(service.status!.loadBalancer!.ingress![0]!.ipMode).toBe('Proxy');
    expect((await h.get('web'))!.spec.backends[0]!.proxyProtocol).toBe(true);
  });
});

describe('what is left alone', () => {
  it('a Service without the class: not queued, not written, no Event', async () => {
    await h.createService('plain', { loadBalancerClass: undefined });
    await h.createService('other', { loadBalancerClass: 'example.com/other' });
    await new Promise((r) => setTimeout(r, 300));
    expect(h.enqueued()).toEqual([]);
    for (const name of ['plain', 'other']) {
      const before = (await h.service(name))!;
      expect(await h.servicePass(name)).toMatchObject({ events: [], result: {} });
      expect((await h.service(name))!.metadata!.resourceVersion).toBe(before.metadata!.resourceVersion);
      expect(await h.get(name)).toBeUndefined();
    }
  });

  it('a UDP port: a condition and a Warning naming the field, no finalizer, nothing in the cloud, no retry', async () => {
    await h.createService('dns', { ports: [{ name: 'http', port: 80 }, { name: 'dns', port: 53, protocol: 'UDP' }] });
    const record = await h.servicePass('dns');
    expect(record.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'SyncLoadBalancerFailed', kind: 'Service',
      name: 'dns' })]);
    expect(record.events[0]!.message).toContain('spec.ports[1].protocol: UDP is not served');
    expect(record.result).toEqual({});
    const service = (await h.service('dns'))!;
    expect(condition(service)).toMatchObject({ status: 'False', reason: 'InvalidService',
      message: expect.stringContaining('spec.ports[1].protocol') });
    expect(service.metadata!.finalizers ?? []).toEqual([]);
    expect(await h.get('dns')).toBeUndefined();
    expect(h.sim.responses).toEqual([]);
    // A second pass says nothing new.
    expect((await h.servicePass('dns')).events).toEqual([]);
  });

  it('allocateLoadBalancerNodePorts: false is refused the same way', async () => {
    await h.createService('np', { allocateLoadBalancerNodePorts: false });
    await h.servicePass('np');
    expect(condition(await h.service('np'))).toMatchObject({ reason: 'InvalidService',
      message: expect.stringContaining('spec.allocateLoadBalancerNodePorts') });
  });

  it('a HALoadBalancer of the same name that is not the Service\'s: NameTaken, and it is not touched', async () => {
    await h.create(basicObject('web'));
    const rv = (await h.get('web'))!.metadata.resourceVersion;
    await h.createService('web');
    await h.servicePass('web');
    const record = await h.servicePass('web');
    expect(record.result.requeueAfterMs).toBe(60_000);
    expect(condition(await h.service('web'))).toMatchObject({ reason: 'NameTaken' });
    expect((await h.get('web'))!.metadata.resourceVersion).toBe(rv);
  });

  it('no node to send traffic to: waiting, and the first Ready node starts it', async () => {
    await h.patchNode('pool-a', { status: { conditions: [{ type: 'Ready', status: 'False' }] } }, true);
    await h.patchNode('pool-b', { status: { conditions: [{ type: 'Ready', status: 'False' }] } }, true);
    await h.createService('web');
    await h.servicePass('web');
    expect(condition(await h.service('web'))).toMatchObject({ reason: 'NoNodes' });
    expect(await h.get('web')).toBeUndefined();
    await h.patchNode('pool-b', { status: { conditions: [{ type: 'Ready', status: 'True' }] } }, true);
    await h.converge('web', () => false, 3).catch(() => undefined);
    expect(servers(await h.get('web'))).toEqual(['pool-b=10.10.0.32']);
  });
});

async function waitEnqueued(key: string): Promise<void> {
  const seen: string[] = [];
  for (let i = 0; i < 100 && !seen.includes(key); i++) {
    seen.push(...h.enqueued());
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(seen).toContain(key);
}

// Services of type NodePort and LoadBalancer, and Nodes, in the emulator, through the real
// kubectl: what a load-balancer controller reads and writes (node ports, the health-check node
// port, status.loadBalancer, the class) and the refusals it meets, with the real server's
// messages (pkg/apis/core/validation, pkg/registry/core/service).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Harness } from './helpers.ts';
import { startHarness } from './helpers.ts';

const CLASS = 'halb.dev/haproxy';

interface ServiceJSON {
  spec: {
    type: string; ports: { name?: string; port: number; nodePort?: number; protocol: string }[]; healthCheckNodePort?: number;
    loadBalancerClass?: string; externalTrafficPolicy?: string; allocateLoadBalancerNodePorts?: boolean;
  };
  status: { loadBalancer: { ingress?: { ip: string; ipMode?: string }[] } };
}

const HTTP = { name: 'http', port: 80, targetPort: 8080 };
const HTTPS = { name: 'https', port: 443, targetPort: 8443 };

function loadBalancer(name: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' },
    spec: { type: 'LoadBalancer', loadBalancerClass: CLASS, selector: { app: name }, ports: [HTTP], ...extra },
  });
}

describe('Services of type LoadBalancer and Nodes in the emulator, with kubectl', () => {
  let h: Harness;
  beforeAll(async () => { h = await startHarness(); });
  afterAll(async () => { await h?.close(); });

  const ok = async (args: string[], stdin?: string): Promise<string> => {
    const r = await h.kubectl(args, stdin);
    expect(r.stderr, `kubectl ${args.join(' ')}`).toBe('');
    expect(r.code).toBe(0);
    return r.stdout;
  };
  const service = async (name: string) => JSON.parse(await ok(['get', 'svc', name, '-o', 'json'])) as ServiceJSON;
  const refused = async (args: string[], stdin?: string) => {
    const r = await h.kubectl(args, stdin);
    expect(r.code).toBe(1);
    return r.stderr;
  };

  it('allocates a node port per port, distinct across Services, and shows <pending> until status has an address', async () => {
    await ok(['apply', '-f', '-'], loadBalancer('web', { ports: [HTTP, HTTPS] }));
    await ok(['apply', '-f', '-'], loadBalancer('api'));
    const web = await service('web');
    const api = await service('api');
    const ports = [...web.spec.ports, ...api.spec.ports].map((p) => p.nodePort!);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(30000);
      expect(port).toBeLessThanOrEqual(32767);
    }
    expect(new Set(ports).size).toBe(3);
    expect(web.spec).toMatchObject({ externalTrafficPolicy: 'Cluster', allocateLoadBalancerNodePorts: true, loadBalancerClass: CLASS });
    expect(web.spec.healthCheckNodePort).toBeUndefined();
    const table = await ok(['get', 'svc', 'web']);
    expect(table).toMatch(/^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\n/);
    expect(table).toContain(`LoadBalancer   10.96.`);
    expect(table).toMatch(new RegExp(`<pending>\\s+80:${web.spec.ports[0]!.nodePort}/TCP,443:${web.spec.ports[1]!.nodePort}/TCP\\s`));
  });

  it('a re-apply keeps the node ports; changing one port keeps the other port\'s node port', async () => {
    const before = await service('web');
    expect(await ok(['apply', '-f', '-'], loadBalancer('web', { ports: [HTTP, HTTPS] })))
      .toBe('service/web unchanged\n');
    expect(await ok(['apply', '-f', '-'], loadBalancer('web', { ports: [{ ...HTTP, port: 8080 }, HTTPS] })))
      .toBe('service/web configured\n');
    const after = await service('web');
    expect(after.spec.ports.map((p) => p.port)).toEqual([8080, 443]);
    // Matched by name, as the registry does: the renamed-number port keeps its node port too.
    expect(after.spec.ports.map((p) => p.nodePort)).toEqual(before.spec.ports.map((p) => p.nodePort));
  });

  it('Local gets a health-check node port, which may not change', async () => {
    await ok(['apply', '-f', '-'], loadBalancer('local', { externalTrafficPolicy: 'Local' }));
    const local = await service('local');
    expect(local.spec.healthCheckNodePort).toBeGreaterThanOrEqual(30000);
    expect(local.spec.healthCheckNodePort).not.toBe(local.spec.ports[0]!.nodePort);
    const stderr = await refused(['patch', 'svc', 'local', '--type=merge', '-p', '{"spec":{"healthCheckNodePort":30999}}']);
    expect(stderr).toContain('spec.healthCheckNodePort: Forbidden: field is immutable');
    // Back to Cluster: the port is released and the field cleared.
    await ok(['patch', 'svc', 'local', '--type=merge', '-p', '{"spec":{"externalTrafficPolicy":"Cluster"}}']);
    expect((await service('local')).spec.healthCheckNodePort).toBeUndefined();
  });

  it('refuses a changed class, a class or source ranges off a LoadBalancer, and a taken or out-of-range node port', async () => {
    expect(await refused(['patch', 'svc', 'api', '--type=merge', '-p', '{"spec":{"loadBalancerClass":"example.com/other"}}']))
      .toContain('The Service "api" is invalid: spec.loadBalancerClass: Invalid value: "example.com/other": may not change once set');
    expect(await refused(['patch', 'svc', 'api', '--type=json', '-p', '[{"op":"remove","path":"/spec/loadBalancerClass"}]']))
      .toContain('spec.loadBalancerClass: Invalid value: "null": may not change once set');
    expect(await refused(['create', '-f', '-'], JSON.stringify({
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'plain' }, spec: { loadBalancerClass: CLASS, ports: [{ port: 80 }] },
    }))).toContain("spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'");
    expect(await refused(['create', '-f', '-'], JSON.stringify({
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'plain' },
      spec: { loadBalancerSourceRanges: ['10.0.0.0/8'], ports: [{ port: 80 }] },
    }))).toContain("spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'");
    const taken = (await service('api')).spec.ports[0]!.nodePort!;
    expect(await refused(['apply', '-f', '-'], loadBalancer('clash', { ports: [{ port: 80, nodePort: taken }] })))
      .toContain(`spec.ports[0].nodePort: Invalid value: ${taken}: provided port is already allocated`);
    expect(await refused(['apply', '-f', '-'], loadBalancer('clash', { ports: [{ port: 80, nodePort: 80 }] })))
      .toContain('spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. '
        + 'The range of valid ports is 30000-32767');
    expect(await refused(['apply', '-f', '-'], loadBalancer('clash', { loadBalancerClass: 'a/b/c' })))
      .toContain("spec.loadBalancerClass: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters");
  });

  it('allocateLoadBalancerNodePorts: false allocates none', async () => {
    await ok(['apply', '-f', '-'], loadBalancer('noports', { allocateLoadBalancerNodePorts: false }));
    expect((await service('noports')).spec.ports[0]!.nodePort).toBeUndefined();
  });

  it('status through its subresource: EXTERNAL-IP shows, ipMode defaults to VIP, and a type change clears it', async () => {
    const status = (ingress: Record<string, string>) => JSON.stringify({ status: { loadBalancer: { ingress: [ingress] } } });
    await ok(['patch', 'svc', 'api', '--subresource=status', '--type=merge', '-p', status({ ip: '198.51.100.10' })]);
    expect((await service('api')).status.loadBalancer.ingress).toEqual([{ ip: '198.51.100.10', ipMode: 'VIP' }]);
    expect(await ok(['get', 'svc', 'api', '--no-headers']))
      .toMatch(/^api\s+LoadBalancer\s+10\.96\.\S+\s+198\.51\.100\.10\s+80:3\d{4}\/TCP\s/);
    // Go's omitempty: an empty list written is not there on reading, so kubectl wait on
    // {.status.loadBalancer.ingress[0].ip} keeps waiting instead of failing on index 0.
    await ok(['patch', 'svc', 'noports', '--subresource=status', '--type=merge', '-p',
      '{"status":{"loadBalancer":{"ingress":[]},"conditions":[]}}']);
    expect((await service('noports')).status).toEqual({ loadBalancer: {} });
    const wait = await h.kubectl(['wait', 'svc/noports', '--for=jsonpath={.status.loadBalancer.ingress[0].ip}', '--timeout=1s']);
    expect(wait.stderr).toContain('timed out waiting for the condition');
    // A spec write cannot set status.
    await ok(['patch', 'svc', 'api', '--type=merge', '-p', status({ ip: '198.51.100.99' })]);
    expect((await service('api')).status.loadBalancer.ingress?.[0]?.ip).toBe('198.51.100.10');
    const badMode = status({ ip: '198.51.100.10', ipMode: 'Other' });
    expect(await refused(['patch', 'svc', 'api', '--subresource=status', '--type=merge', '-p', badMode]))
      .toContain('status.loadBalancer.ingress[0].ipMode: Unsupported value: "Other": supported values: "Proxy", "VIP"');
    await ok(['patch', 'svc', 'api', '--type=merge', '-p', '{"spec":{"type":"ClusterIP","loadBalancerClass":null}}']);
    const plain = await service('api');
    expect(plain.spec.ports[0]!.nodePort).toBeUndefined();
    expect(plain.spec).not.toHaveProperty('externalTrafficPolicy');
    expect(plain.status.loadBalancer).toEqual({});
  });

  it('kubectl expose with the class in --overrides makes a LoadBalancer Service', async () => {
    await ok(['create', 'service', 'clusterip', 'shop', '--tcp=80:8080']);
    expect(await ok(['expose', 'service', 'shop', '--name=shop-lb', '--type=LoadBalancer', '--port=80', '--target-port=8080',
      `--overrides={"apiVersion":"v1","spec":{"loadBalancerClass":"${CLASS}"}}`])).toBe('service/shop-lb exposed\n');
    expect((await service('shop-lb')).spec).toMatchObject({ type: 'LoadBalancer', loadBalancerClass: CLASS });
  });

  it('Nodes: kubectl get nodes -o wide shows status, roles and addresses', async () => {
    await ok(['create', '-f', '-'], JSON.stringify({
      apiVersion: 'v1', kind: 'Node',
      metadata: { name: 'pool-a-1', labels: { 'node.kubernetes.io/exclude-from-external-load-balancers': '' } },
      spec: { providerID: 'digitalocean://500000101' },
      status: {
        conditions: [{ type: 'Ready', status: 'True' }],
        addresses: [{ type: 'InternalIP', address: '10.10.0.31' }, { type: 'ExternalIP', address: '203.0.113.31' }],
        nodeInfo: { kubeletVersion: 'v1.32.4' },
      },
    }));
    expect(await ok(['get', 'nodes', '-o', 'wide', '--no-headers']))
      .toMatch(/^pool-a-1\s+Ready\s+<none>\s+\d+s\s+v1\.32\.4\s+10\.10\.0\.31\s+203\.0\.113\.31\s+<unknown>/);
    // Cordoning is a spec write; status stays.
    await ok(['cordon', 'pool-a-1']);
    expect(await ok(['get', 'nodes', '--no-headers'])).toMatch(/^pool-a-1\s+Ready,SchedulingDisabled\s/);
    const notReady = '{"status":{"conditions":[{"type":"Ready","status":"False"}]}}';
    await ok(['patch', 'node', 'pool-a-1', '--subresource=status', '--type=strategic', '-p', notReady]);
    expect(await ok(['get', 'nodes', '--no-headers'])).toMatch(/^pool-a-1\s+NotReady,SchedulingDisabled\s/);
    const node = JSON.parse(await ok(['get', 'node', 'pool-a-1', '-o', 'json'])) as { status: { addresses: unknown[] } };
    expect(node.status.addresses).toHaveLength(2);
  });
});

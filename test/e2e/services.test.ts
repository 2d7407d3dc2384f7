// Services of type LoadBalancer, end to end in the sandbox with the real kubectl: the sandbox's
// cluster nodes (droplets tagged as DOKS tags its nodes, with Node objects) answer on every
// NodePort with their name and the port; a Service with the class gets an EXTERNAL-IP whose
// traffic reaches every node, survives a failover, follows a port change and the nodes, sends
// Local traffic only to nodes that pass kube-proxy's health check, and leaves its reserved IP
// behind under Retain when deleted. A Service without the class is left alone.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DROPLET_IMAGE, startE2E, waitFor, type E2E } from './helpers.ts';

const CLASS = 'halb.dev/haproxy';
const NODES = ['node-1', 'node-2', 'node-3'];

interface ServiceJSON {
  metadata: { finalizers?: string[]; uid: string };
  spec: { ports: { port: number; nodePort: number }[]; healthCheckNodePort?: number };
  status: { loadBalancer: { ingress?: { ip: string; ipMode: string }[] }; conditions?: { type: string; status: string; reason: string }[] };
}

let e2e: E2E;
beforeAll(async () => { e2e = await startE2E(); }, 180_000);
afterAll(async () => { await e2e?.close(); }, 120_000);
afterEach((ctx) => e2e?.printLogIfFailed(ctx));

const image = DROPLET_IMAGE === 'ubuntu-24-04-x64' ? '' : `"halb.dev/droplet-image":"${DROPLET_IMAGE}"`;
const overrides = (extra = '') =>
  `--overrides={"apiVersion":"v1","metadata":{"annotations":{${image}}},"spec":{"loadBalancerClass":"${CLASS}"${extra}}}`;

async function service(name: string): Promise<ServiceJSON> {
  const r = await e2e.kubectl(['get', 'svc', name, '-o', 'json']);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as ServiceJSON;
}

/** The Service's EXTERNAL-IP once it has one, read with kubectl get (kubectl wait on
 *  `ingress[0]` once returned at once with no output while the list was still empty). */
async function externalIP(name: string): Promise<string> {
  return waitFor(`${name}'s EXTERNAL-IP`, async () => (await service(name)).status.loadBalancer.ingress?.[0]?.ip, 180_000, 250);
}

/** One request from the client namespace (the internet's side) to ip:port. */
async function request(ip: string, port = 80, timeoutSeconds = 2): Promise<string | undefined> {
  const r = await e2e.inHost('client', ['curl', '-sf', '-m', String(timeoutSeconds), `http://${ip}:${port}/`]);
  return r.code === 0 ? r.stdout.trim() : undefined;
}

/** The answers of `count` requests, as a set ("node-1 31080", ...). */
async function answers(ip: string, port = 80, count = 12): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) seen.add((await request(ip, port)) ?? 'FAILED');
  return seen;
}

/** Requests until the answers are exactly `expected` for `streak` requests in a row. */
async function until(ip: string, port: number, expected: string[], what: string): Promise<void> {
  await waitFor(what, async () => {
    const seen = await answers(ip, port, 9);
    return [...seen].sort().join('|') === [...expected].sort().join('|') || undefined;
  }, 90_000, 500);
}

describe('Services of type LoadBalancer in the sandbox', () => {
  let ip = '';
  let nodePort = 0;

  it('the cluster nodes: Node objects, droplets tagged k8s:<cluster-id>, each answering on a NodePort with its name', async () => {
    const nodes = await e2e.kubectl(['get', 'nodes', '-o', 'wide', '--no-headers']);
    expect(nodes.stdout.trim().split('\n').map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual(NODES.map((n) => `${n} Ready`));
    const tagged = e2e.sandbox.digitalocean.state.dropletViews().filter((d) => d.tags.includes(e2e.sandbox.status.cluster!.tag));
    expect(tagged.map((d) => d.name).sort()).toEqual(NODES);
    expect(e2e.sandbox.status.cluster!.tag).toMatch(/^k8s:[0-9a-f-]{36}$/);
  });

  it('kubectl expose --type=LoadBalancer with the class: the Service gets an EXTERNAL-IP', async () => {
    expect((await e2e.kubectl(['create', 'service', 'clusterip', 'web', '--tcp=80:8080'])).code).toBe(0);
    const exposed = await e2e.kubectl(['expose', 'service', 'web', '--name=web-lb', '--type=LoadBalancer', '--port=80',
      '--target-port=8080', overrides()]);
    expect(exposed.stdout + exposed.stderr).toBe('service/web-lb exposed\n');
    const pending = await e2e.kubectl(['get', 'svc', 'web-lb', '--no-headers']);
    expect(pending.stdout).toMatch(/^web-lb\s+LoadBalancer\s+\S+\s+<pending>\s+80:3\d{4}\/TCP\s/);
    ip = await externalIP('web-lb');
    expect(ip).toMatch(/^198\.51\.100\.\d+$/);
    const s = await service('web-lb');
    nodePort = s.spec.ports[0]!.nodePort;
    expect(s.metadata.finalizers).toEqual(['service.kubernetes.io/load-balancer-cleanup']);
    expect(s.status.loadBalancer.ingress).toEqual([{ ip, ipMode: 'VIP' }]);
    const table = await e2e.kubectl(['get', 'svc', 'web-lb']);
    expect(table.stdout).toMatch(/NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE/);
    expect(table.stdout).toMatch(new RegExp(`web-lb\\s+LoadBalancer\\s+\\S+\\s+${ip.replaceAll('.', '\\.')}\\s+80:${nodePort}/TCP`));
    // Its HALoadBalancer is owned by the Service; the Events are the cloud controller's.
    const owner = await e2e.kubectl(['get', 'halb', 'web-lb', '-o',
      'jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}']);
    expect(owner.stdout).toBe('Service/web-lb');
    const events = await e2e.kubectl(['get', 'events', '--field-selector', 'involvedObject.name=web-lb,involvedObject.kind=Service', '-o',
      'jsonpath={.items[*].reason}']);
    expect(events.stdout.split(' ')).toEqual(expect.arrayContaining(['EnsuringLoadBalancer', 'EnsuredLoadBalancer']));
  }, 240_000);

  it('traffic through it reaches every node\'s NodePort', async () => {
    await until(ip, 80, NODES.map((n) => `${n} ${nodePort}`), 'every node answering through the EXTERNAL-IP');
  }, 120_000);

  it('a failover keeps it serving', async () => {
    const active = (await e2e.kubectl(['get', 'halb', 'web-lb', '-o', 'jsonpath={.status.activeNode}'])).stdout;
    expect(active).toMatch(/^web-lb-[01]$/);
    const client = e2e.clientLoop(ip, { timeoutSeconds: 1 });
    expect((await e2e.inHost(active, ['sh', '-c', 'kill $(cat /run/haproxy.pid)'])).code).toBe(0);
    const killed = Date.now();
    await new Promise((r) => setTimeout(r, 100));
    await waitFor('traffic through the other node', async () => (await request(ip, 80, 1)) !== undefined || undefined, 60_000, 50);
    console.log(`Service failover: traffic resumed ${Date.now() - killed} ms after HAProxy was killed on ${active}`);
    await waitFor('the other node to hold the address', async () => {
      const now = (await e2e.kubectl(['get', 'halb', 'web-lb', '-o', 'jsonpath={.status.activeNode}'])).stdout;
      return (now !== active && now !== '') || undefined;
    }, 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    const { sent, failed } = await client.stop();
    console.log(`Service failover: ${failed} of ${sent} requests (1 s timeout, no pause) failed meanwhile`);
    expect(sent - failed).toBeGreaterThan(0);
    expect(await request(ip)).toMatch(/^node-\d /);
  }, 120_000);

  it('a changed port updates the frontends', async () => {
    const patch = await e2e.kubectl(['patch', 'svc', 'web-lb', '--type=json', '-p',
      '[{"op":"replace","path":"/spec/ports/0/port","value":8080}]']);
    expect(patch.code).toBe(0);
    expect((await service('web-lb')).spec.ports[0]!.nodePort).toBe(nodePort);
    await until(ip, 8080, NODES.map((n) => `${n} ${nodePort}`), 'the new port served');
    expect(await request(ip, 80, 1)).toBeUndefined();
    expect((await e2e.kubectl(['get', 'halb', 'web-lb', '-o', 'jsonpath={.spec.frontends[0].port}'])).stdout).toBe('8080');
  }, 120_000);

  it('an excluded node leaves the backends', async () => {
    const label = await e2e.kubectl(['label', 'node', 'node-2', 'node.kubernetes.io/exclude-from-external-load-balancers=true']);
    expect(label.code).toBe(0);
    await until(ip, 8080, ['node-1', 'node-3'].map((n) => `${n} ${nodePort}`), 'node-2 out of the backends');
    expect((await e2e.kubectl(['get', 'halb', 'web-lb', '-o',
      'jsonpath={.spec.backends[0].servers[*].name}'])).stdout).toBe('node-1 node-3');
    await e2e.kubectl(['label', 'node', 'node-2', 'node.kubernetes.io/exclude-from-external-load-balancers-']);
    await until(ip, 8080, NODES.map((n) => `${n} ${nodePort}`), 'node-2 back');
  }, 180_000);

  it('externalTrafficPolicy Local sends traffic only to the nodes that pass the health check', async () => {
    expect((await e2e.kubectl(['create', 'service', 'clusterip', 'local', '--tcp=80:8080'])).code).toBe(0);
    const exposed = await e2e.kubectl(['expose', 'service', 'local', '--name=local-lb', '--type=LoadBalancer', '--port=80',
      '--target-port=8080',
      overrides(',"externalTrafficPolicy":"Local"')]);
    expect(exposed.code).toBe(0);
    // The Service's endpoints live on node-1 and node-3, as an EndpointSlice controller would say.
    const slice = {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: 'local-lb-1', labels: { 'kubernetes.io/service-name': 'local-lb' } },
      addressType: 'IPv4', ports: [{ name: '', port: 8080, protocol: 'TCP' }],
      endpoints: [{ addresses: ['10.244.1.5'], nodeName: 'node-1', conditions: { ready: true } }, { addresses: ['10.244.3.5'],
        nodeName: 'node-3', conditions: { ready: true } }],
    };
    expect((await e2e.kubectl(['apply', '-f', '-'], JSON.stringify(slice))).code).toBe(0);
    const localIP = await externalIP('local-lb');
    const s = await service('local-lb');
    const port = s.spec.ports[0]!.nodePort;
    expect(await e2e.kubectl(['get', 'halb', 'local-lb', '-o', 'jsonpath={.spec.backends[0].healthCheck}']))
      .toMatchObject({ stdout: JSON.stringify({ path: '/healthz', port: s.spec.healthCheckNodePort, protocol: 'http' }) });
    await until(localIP, 80, [`node-1 ${port}`, `node-3 ${port}`], 'only the nodes with endpoints');
    // kube-proxy's answer on the health-check port, asked from a load balancer on the VPC.
    const healthz = async (address: string) => (await e2e.inHost('local-lb-0',
      ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '2',
        `http://${address}:${s.spec.healthCheckNodePort}/healthz`])).stdout;
    expect([await healthz('10.10.0.31'), await healthz('10.10.0.32'), await healthz('10.10.0.33')]).toEqual(['200', '503', '200']);
    // The endpoint moves to node-2: traffic follows the health checks, with no change to the HALoadBalancer.
    const generation = (await e2e.kubectl(['get', 'halb', 'local-lb', '-o', 'jsonpath={.metadata.generation}'])).stdout;
    slice.endpoints = [{ addresses: ['10.244.2.5'], nodeName: 'node-2', conditions: { ready: true } }];
    expect((await e2e.kubectl(['apply', '-f', '-'], JSON.stringify(slice))).code).toBe(0);
    await until(localIP, 80, [`node-2 ${port}`], 'only node-2');
    expect((await e2e.kubectl(['get', 'halb', 'local-lb', '-o', 'jsonpath={.metadata.generation}'])).stdout).toBe(generation);
  }, 240_000);

  it('deleting the Service removes the droplets and keeps the reserved IP (Retain)', async () => {
    const deleted = await e2e.kubectl(['delete', 'svc', 'web-lb', '--timeout=120s']);
    expect(deleted.stdout).toBe('service "web-lb" deleted\n');
    expect(e2e.sandbox.digitalocean.state.dropletViews().filter((d) => d.name.startsWith('web-lb-'))).toEqual([]);
    expect((await e2e.kubectl(['get', 'halb', 'web-lb', '--ignore-not-found'])).stdout).toBe('');
    const kept = (e2e.sandbox.digitalocean.state.listReservedIps() as { ip: string; droplet: unknown }[]).find((r) => r.ip === ip);
    expect(kept).toMatchObject({ ip, droplet: null });
    const events = await e2e.kubectl(['get', 'events', '--field-selector', 'involvedObject.name=web-lb,involvedObject.kind=Service', '-o',
      'jsonpath={.items[*].reason}']);
    expect(events.stdout.split(' ')).toEqual(expect.arrayContaining(['DeletingLoadBalancer', 'DeletedLoadBalancer']));
  }, 180_000);

  it('a Service without the class is left untouched', async () => {
    expect((await e2e.kubectl(['create', 'service', 'loadbalancer', 'plain', '--tcp=80:8080'])).code).toBe(0);
    const before = await service('plain');
    await new Promise((r) => setTimeout(r, 5000));
    const after = await service('plain');
    expect(after.metadata.finalizers).toBeUndefined();
    expect(after.status).toEqual(before.status);
    expect(after.status.loadBalancer).toEqual({});
    expect((await e2e.kubectl(['get', 'halb', 'plain', '--ignore-not-found'])).stdout).toBe('');
    expect((await e2e.kubectl(['get', 'svc', 'plain', '--no-headers'])).stdout).toMatch(/<pending>/);
  });
});

// The HALoadBalancer a Service asks for, as a pure function: table rows of (Service, Nodes,
// defaults) → the spec, or the problems naming the Service's field or annotation.
import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { desiredLoadBalancer, eligibleNodes, loadBalancerName, type Desired } from '../../../src/controller/services/desired.ts';
import { canonicalCIDR, defaultServiceDefaults, parseSecretRef, type ServiceDefaults } from '../../../src/controller/services/settings.ts';

const CLASS = 'halb.dev/haproxy';

function node(name: string, address: string, extra: { ready?: boolean; labels?: Record<string, string> } = {}): k8s.V1Node {
  return {
    metadata: { name, labels: { 'topology.kubernetes.io/region': 'nyc3', ...extra.labels } },
    status: {
      conditions: [{ type: 'Ready', status: extra.ready === false ? 'False' : 'True' }],
      addresses: [{ type: 'InternalIP', address }, { type: 'ExternalIP', address: `203.0.113.${address.split('.')[3]}` }],
    },
  } as k8s.V1Node;
}

const NODES = [node('pool-b', '10.10.0.32'), node('pool-a', '10.10.0.31'), node('pool-c', '10.10.0.33')];

function service(spec: Partial<k8s.V1ServiceSpec> = {}, annotations: Record<string, string> = {}, name = 'web'): k8s.V1Service {
  return {
    metadata: { name, namespace: 'default', uid: 'uid-web', annotations },
    spec: {
      type: 'LoadBalancer', loadBalancerClass: CLASS, externalTrafficPolicy: 'Cluster', allocateLoadBalancerNodePorts: true,
      ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 as never, nodePort: 31080 }],
      ...spec,
    },
  };
}

const desired = (s: k8s.V1Service, nodes = NODES, defaults: ServiceDefaults = defaultServiceDefaults) => desiredLoadBalancer(s, nodes,
  defaults);
const specOf = (d: Desired) => {
  if (d.kind !== 'desired') throw new Error(`not desired: ${JSON.stringify(d)}`);
  return d.spec;
};
const problemsOf = (d: Desired) => (d.kind === 'invalid' ? d.problems : []);

describe('the HALoadBalancer a Service asks for', () => {
  it('a tcp frontend per port, a backend at its NodePort on every eligible node, by name, from the operator\'s defaults', () => {
    const d = desired(service());
    expect(d).toMatchObject({ kind: 'desired', name: 'web', ipMode: 'VIP', nodes: ['pool-a', 'pool-b', 'pool-c'] });
    expect(specOf(d)).toEqual({
      region: 'nyc3', vpcUUID: '',
      credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'ssh-privatekey' } },
      droplets: { count: 2, size: 's-1vcpu-1gb' },
      floatingIP: { address: '', reclaimPolicy: 'Retain' },
      frontends: [{ name: 'http', port: 80, protocol: 'tcp', defaultBackend: 'http' }],
      backends: [{
        name: 'http', port: 31080,
        servers: [{ name: 'pool-a', address: '10.10.0.31' }, { name: 'pool-b', address: '10.10.0.32' }, { name: 'pool-c',
          address: '10.10.0.33' }],
      }],
      access: { sshSourceCIDRs: [], frontendSourceCIDRs: [] },
    });
  });

  const rows: [string, k8s.V1Service, (spec: ReturnType<typeof specOf>) => unknown, unknown][] = [
    ['appProtocol http gives an http frontend', service({ ports: [{ name: 'web', port: 80, appProtocol: 'http', nodePort: 31080 }] }),
      (s) => s.frontends[0]!.protocol, 'http'],
    ['an unnamed single port is named by its number', service({ ports: [{ port: 8080, nodePort: 31080 }] }), (s) => s.frontends[0]!.name,
      'port-8080'],
    ['Local checks the healthCheckNodePort over HTTP', service({ externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 }),
      (s) => s.backends[0]!.healthCheck, { protocol: 'http', path: '/healthz', port: 32000 }],
    ['Cluster keeps the default tcp check of the NodePort', service(), (s) => s.backends[0]!.healthCheck, undefined],
    ['spec.loadBalancerIP adopts the reserved IP', service({ loadBalancerIP: '198.51.100.7' }), (s) => s.floatingIP,
      { address: '198.51.100.7', reclaimPolicy: 'Retain' }],
    ['the annotation adopts it too, and Delete releases it with the Service',
      service({}, { 'halb.dev/reserved-ip': '198.51.100.8', 'halb.dev/reserved-ip-policy': 'Delete' }),
      (s) => s.floatingIP, { address: '198.51.100.8', reclaimPolicy: 'Delete' }],
    ['source ranges go to the host firewall, host bits cleared', service({ loadBalancerSourceRanges: ['203.0.113.7/24',
      ' 198.51.100.0/25 '] }),
      (s) => s.access!.frontendSourceCIDRs, ['203.0.113.0/24', '198.51.100.0/25']],
    ['the legacy source-range annotation when the field is empty', service({},
      { 'service.beta.kubernetes.io/load-balancer-source-ranges': '10.0.0.0/8' }),
      (s) => s.access!.frontendSourceCIDRs, ['10.0.0.0/8']],
    ['annotations override region, size, count, credentials and SSH sources',
      service({}, {
        'halb.dev/region': 'ams3', 'halb.dev/droplet-size': 's-2vcpu-2gb', 'halb.dev/droplet-count': '3',
        'halb.dev/token-secret': 'team-do/api-token', 'halb.dev/ssh-key-secret': 'team-ssh',
          'halb.dev/ssh-source-cidrs': '203.0.113.0/24, 10.1.2.3/32',
      }),
      (s) => [s.region, s.droplets, s.credentials, s.access!.sshSourceCIDRs],
      ['ams3', { count: 3, size: 's-2vcpu-2gb' }, { tokenSecretRef: { name: 'team-do', key: 'api-token' },
        sshKeySecretRef: { name: 'team-ssh', key: 'ssh-privatekey' } },
        ['203.0.113.0/24', '10.1.2.3/32']]],
    ['PROXY protocol to the nodes', service({}, { 'halb.dev/proxy-protocol': 'true' }), (s) => s.backends[0]!.proxyProtocol, true],
    ['droplets by tag instead of Node objects', service({}, { 'halb.dev/node-droplet-tag': 'k8s:c0ffee' }),
      (s) => [s.backends[0]!.dropletTag, s.backends[0]!.servers], ['k8s:c0ffee', undefined]],
    ['TLS on 443 pairs with the plain port of the same targetPort; the http frontend serves both',
      service({ ports: [{ name: 'http', port: 80, targetPort: 8080 as never, nodePort: 31080 }, { name: 'https', port: 443,
        targetPort: 8080 as never, nodePort: 31443 }] },
        { 'halb.dev/tls-secret': 'web-tls', 'halb.dev/tls-redirect-http': 'true' }),
      (s) => [s.frontends, s.backends.map((b) => b.port)],
      [[{ name: 'http', port: 80, protocol: 'http', tls: { secretRef: { name: 'web-tls' }, port: 443, redirectHTTP: true },
        defaultBackend: 'http' }], [31080]]],
  ];
  it.each(rows)('%s', (_name, svc, pick, expected) => {
    expect(pick(specOf(desired(svc)))).toEqual(expected);
  });

  it('ipMode is Proxy when halb sends PROXY protocol or terminates TLS, VIP otherwise', () => {
    const tls = service({ ports: [{ name: 'http', port: 80, nodePort: 31080 }, { name: 'https', port: 443, targetPort: 80 as never,
      nodePort: 31443 }] },
      { 'halb.dev/tls-secret': 'web-tls' });
    expect([service(), service({}, { 'halb.dev/proxy-protocol': 'true' }), tls].map((s) => (desired(s) as { ipMode: string }).ipMode))
      .toEqual(['VIP', 'Proxy', 'Proxy']);
  });

  it('the region comes from the annotation, else the flag, else the nodes when they agree', () => {
    expect(specOf(desired(service(), NODES, { ...defaultServiceDefaults, region: 'sfo3' })).region).toBe('sfo3');
    const mixed = [node('a', '10.10.0.31'), node('b', '10.10.0.32', { labels: { 'topology.kubernetes.io/region': 'ams3' } })];
    expect(problemsOf(desired(service(), mixed))).toEqual([{ path: 'metadata.annotations[halb.dev/region]',
      message: expect.stringContaining('no region') }]);
  });

  it('names: the Service\'s when it fits 40 characters, else a prefix and a hash; node names become server names', () => {
    expect(loadBalancerName('web')).toBe('web');
    const long = loadBalancerName('a-very-long-service-name-that-does-not-fit-forty');
    expect(long).toMatch(/^a-very-long-service-name-that-doe-[0-9a-f]{6}$/);
    expect(long.length).toBeLessThanOrEqual(40);
    expect(loadBalancerName('a-very-long-service-name-that-does-not-fit-fortz')).not.toBe(long);
    const dotted = specOf(desired(service(), [node('node-1.example.internal', '10.10.0.31')]));
    expect(dotted.backends[0]!.servers![0]!.name).toMatch(/^node-1-example-internal-[0-9a-f]{6}$/);
  });
});

describe('nodes that take traffic', () => {
  it('Ready, with an InternalIP, without the exclusion label', () => {
    const nodes = [
      node('ready', '10.10.0.31'),
      node('not-ready', '10.10.0.32', { ready: false }),
      node('excluded', '10.10.0.33', { labels: { 'node.kubernetes.io/exclude-from-external-load-balancers': '' } }),
      { metadata: { name: 'no-address' }, status: { conditions: [{ type: 'Ready', status: 'True' }] } } as k8s.V1Node,
    ];
    expect(eligibleNodes(nodes)).toEqual([{ name: 'ready', address: '10.10.0.31' }]);
  });

  it('none: waiting, not invalid', () => {
    expect(desired(service(), [node('down', '10.10.0.31', { ready: false })])).toMatchObject({ kind: 'waiting', reason: 'NoNodes' });
    // With a tag, Node objects do not matter.
    expect(desired(service({}, { 'halb.dev/node-droplet-tag': 'k8s:c0ffee' }), [], { ...defaultServiceDefaults,
      region: 'nyc3' }).kind).toBe('desired');
  });
});

describe('what halb cannot serve: problems naming the field, nothing desired', () => {
  const rows: [string, k8s.V1Service, { path: string; message: RegExp }[]][] = [
    ['a UDP port', service({ ports: [{ name: 'http', port: 80, nodePort: 31080 }, { name: 'dns', port: 53, protocol: 'UDP',
      nodePort: 31053 }] }),
      [{ path: 'spec.ports[1].protocol', message: /^UDP is not served/ }]],
    ['an SCTP port', service({ ports: [{ port: 9999, protocol: 'SCTP', nodePort: 31999 }] }), [{ path: 'spec.ports[0].protocol',
      message: /^SCTP is not served/ }]],
    ['allocateLoadBalancerNodePorts: false', service({ allocateLoadBalancerNodePorts: false, ports: [{ port: 80 }] }),
      [{ path: 'spec.allocateLoadBalancerNodePorts', message: /^false is not served/ }]],
    ['a port halb\'s nodes use themselves', service({ ports: [{ port: 22, nodePort: 31022 }] }), [{ path: 'spec.ports[0]',
      message: /22/ }]],
    ['an IPv6 source range', service({ loadBalancerSourceRanges: ['2001:db8::/64'] }), [{ path: 'spec.loadBalancerSourceRanges[0]',
      message: /IPv4/ }]],
    ['a bad loadBalancerIP', service({ loadBalancerIP: '198.51.100.300' }), [{ path: 'spec.loadBalancerIP',
      message: /not an IPv4 address/ }]],
    ['two different addresses', service({ loadBalancerIP: '198.51.100.7' }, { 'halb.dev/reserved-ip': '198.51.100.8' }),
      [{ path: 'spec.loadBalancerIP', message: /differs/ }]],
    ['a bad policy', service({}, { 'halb.dev/reserved-ip-policy': 'Keep' }), [{ path: 'metadata.annotations[halb.dev/reserved-ip-policy]',
      message: /Retain or Delete/ }]],
    ['a count out of range', service({}, { 'halb.dev/droplet-count': '9' }), [{ path: 'metadata.annotations[halb.dev/droplet-count]',
      message: /2 to 5/ }]],
    ['a TLS port without a plain partner', service({ ports: [{ name: 'https', port: 443, nodePort: 31443 }] },
      { 'halb.dev/tls-secret': 'web-tls' }),
      [{ path: 'metadata.annotations[halb.dev/tls-ports]', message: /443 has no plain port/ }]],
    ['a TLS port that is not the Service\'s', service({}, { 'halb.dev/tls-secret': 'web-tls', 'halb.dev/tls-ports': '8443' }),
      [{ path: 'metadata.annotations[halb.dev/tls-ports]', message: /8443 is not a port of this Service/ }]],
    ['TLS ports without a Secret', service({}, { 'halb.dev/tls-ports': '443' }), [{ path: 'metadata.annotations[halb.dev/tls-ports]',
      message: /needs halb.dev\/tls-secret/ }]],
    ['proxy-protocol not a boolean', service({}, { 'halb.dev/proxy-protocol': 'yes' }),
      [{ path: 'metadata.annotations[halb.dev/proxy-protocol]', message: /true or false/ }]],
  ];
  it.each(rows)('%s', (_name, svc, expected) => {
    const d = desired(svc);
    expect(d.kind).toBe('invalid');
    expect(problemsOf(d)).toEqual(expected.map((e) => ({ path: e.path, message: expect.stringMatching(e.message) })));
  });
});

describe('settings parsing', () => {
  it.each([
    ['do-api', { name: 'do-api', key: 'token' }], ['do-api/other', { name: 'do-api', key: 'other' }], ['Bad_Name', undefined], ['a/b/c',
      undefined],
  ])('secret reference %s', (value, expected) => expect(parseSecretRef(value, 'token')).toEqual(expected));
  it.each([['10.1.2.3/8', '10.0.0.0/8'], ['0.0.0.0/0', '0.0.0.0/0'], ['10.0.0.0/33', undefined], ['2001:db8::/64', undefined], ['10.0.0.1',
    undefined]])(
    'CIDR %s', (value, expected) => expect(canonicalCIDR(value)).toBe(expected));
});

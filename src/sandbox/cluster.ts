// The sandbox's Kubernetes cluster nodes, for Services of type LoadBalancer: a few hosts on the
// VPC that are DigitalOcean droplets tagged as DOKS tags its nodes (k8s, k8s:<cluster-id>,
// k8s:worker), each with a Node object as a kubelet would write it, and a stand-in for
// kube-proxy that keeps every node answering on each Service's NodePorts with its name and the
// port, and on a Local Service's healthCheckNodePort with kube-proxy's /healthz (200 with local
// endpoints, 503 without, from the EndpointSlices). Under externalTrafficPolicy Local a node
// without a local endpoint does not answer the NodePort, as kube-proxy drops that traffic.
import { release } from 'node:os';
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { createKeyedInformer, type KeyedInformer } from '../controller/informer.ts';
import type { DigitalOceanSimulator } from './digitalocean/simulator.ts';
import type { Fabric } from './fabric/index.ts';

/** The cluster's id, as DOKS names it in its nodes' droplet tag k8s:<id>. */
export const CLUSTER_ID = '5a1db0c2-0c6a-4d2c-9b7e-7e57c1a55e7d';
export const NODE_TAG = `k8s:${CLUSTER_ID}`;
export const CLUSTER_NODES: ReadonlyArray<{ name: string; privateIPv4: string }> = [
  { name: 'node-1', privateIPv4: '10.10.0.31' },
  { name: 'node-2', privateIPv4: '10.10.0.32' },
  { name: 'node-3', privateIPv4: '10.10.0.33' },
];
const REGION = 'nyc3';
const RENDER_RETRY_MS = 1000;

export interface SandboxCluster {
  tag: string;
  nodes: { name: string; privateIPv4: string; dropletId: number }[];
  /** Resolves once every node's config follows the Services and EndpointSlices the server holds now. */
  settled(): Promise<void>;
  stop(): void;
}

interface ServiceSpec {
  type?: string;
  ports?: { port: number; nodePort?: number; protocol?: string }[];
  externalTrafficPolicy?: string;
  healthCheckNodePort?: number;
}

interface Listener { port: number; body: string; status?: number; json?: boolean }

/** The Node a kubelet on a DOKS node writes: Ready, its addresses, the region label. */
function nodeObject(name: string, privateIPv4: string, droplet: { id: number; publicIPv4: string }): k8s.V1Node {
  const now = new Date();
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64',
        'topology.kubernetes.io/region': REGION, 'node.kubernetes.io/instance-type': 's-2vcpu-4gb',
          'doks.digitalocean.com/node-pool': 'pool-1',
      },
    },
    spec: { providerID: `digitalocean://${droplet.id}` },
    status: {
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status',
        lastHeartbeatTime: now, lastTransitionTime: now }],
      addresses: [{ type: 'InternalIP', address: privateIPv4 }, { type: 'ExternalIP', address: droplet.publicIPv4 }, { type: 'Hostname',
        address: name }],
      nodeInfo: {
        kubeletVersion: 'v1.33.1', kubeProxyVersion: '', osImage: 'Debian GNU/Linux 12 (bookworm)', kernelVersion: release(),
        containerRuntimeVersion: 'containerd://1.7.25', operatingSystem: 'linux', architecture: 'amd64',
        machineID: '', systemUUID: '', bootID: '',
      },
    },
  };
}

/** What each node answers, from the Services and the nodes' local endpoints. */
export function nodeListeners(node: string, services: readonly k8s.V1Service[], localEndpoints: (service: k8s.V1Service,
  node: string) => number): Listener[] {
  const listeners: Listener[] = [];
  for (const service of services) {
    const spec = (service.spec ?? {}) as ServiceSpec;
    if (spec.type !== 'NodePort' && spec.type !== 'LoadBalancer') continue;
    const local = spec.externalTrafficPolicy === 'Local';
    const endpoints = localEndpoints(service, node);
    for (const port of spec.ports ?? []) {
      if (!port.nodePort || (port.protocol ?? 'TCP') !== 'TCP' || (local && endpoints === 0)) continue;
      listeners.push({ port: port.nodePort, body: `${node} ${port.nodePort}` });
    }
    if (spec.type === 'LoadBalancer' && local && spec.healthCheckNodePort) {
      const body = JSON.stringify({ service: { namespace: service.metadata?.namespace, name: service.metadata?.name },
        localEndpoints: endpoints, serviceProxyHealthy: true });
      listeners.push({ port: spec.healthCheckNodePort, body, status: endpoints > 0 ? 200 : 503, json: true });
    }
  }
  return listeners.sort((a, b) => a.port - b.port);
}

/** nginx's config for a node: its name on 80, as the other backends, and the listeners. */
export function renderNodeNginx(node: string, dir: string, listeners: readonly Listener[]): string {
  const quote = (s: string) => `'${s.replace(/[\\']/g, (c) => `\\${c}`)}\\n'`;
  const servers = listeners.map((l) => [
    '  server {',
    `    listen ${l.port};`,
    ...(l.json
      ? ['    location = /healthz {', '      default_type application/json;', `      return ${l.status} ${quote(l.body)};`, '    }',
        '    location / { return 404; }']
      : [`    location / { return 200 ${quote(l.body)}; }`]),
    '  }',
  ].join('\n'));
  return [
    `# halb sandbox cluster node ${node}: what kube-proxy would serve, rendered from the Services`,
    'worker_processes 1;',
    `pid "${dir}/nginx.pid";`,
    `error_log "${dir}/error.log";`,
    'events { worker_connections 256; }',
    'http {',
    '  access_log off;',
    '  server_tokens off;',
    '  default_type text/plain;',
    '  server {',
    '    listen 80 default_server;',
    `    location / { return 200 ${quote(node)}; }`,
    '  }',
    ...servers,
    '}',
    '',
  ].join('\n');
}

/** Endpoints of a Service on a node, from its EndpointSlices (kubernetes.io/service-name), ready ones. */
function localEndpointCounter(slices: KeyedInformer<k8s.V1EndpointSlice>) {
  return (service: k8s.V1Service, node: string) => slices.objects()
    .filter((s) => s.metadata?.namespace === service.metadata?.namespace
      && s.metadata?.labels?.['kubernetes.io/service-name'] === service.metadata?.name)
    .flatMap((s) => s.endpoints ?? [])
    .filter((e) => e.nodeName === node && e.conditions?.ready !== false).length;
}

export interface SandboxClusterOptions { fabric: Fabric; digitalocean: DigitalOceanSimulator; admin: k8s.KubeConfig; log: Logger }

export async function startSandboxCluster(opts: SandboxClusterOptions): Promise<SandboxCluster> {
  const { fabric, digitalocean, admin, log } = opts;
  const present = new Set(fabric.status().hosts.map((h) => h.name));
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const discovery = admin.makeApiClient(k8s.DiscoveryV1Api);
  const nodes: SandboxCluster['nodes'] = [];
  for (const node of CLUSTER_NODES) {
    if (!present.has(node.name)) await fabric.addBackend(node);
    const droplet = digitalocean.state.seedDroplet({ name: node.name, size: 's-2vcpu-4gb', tags: ['k8s', NODE_TAG, 'k8s:worker'],
      privateIPv4: node.privateIPv4 });
    nodes.push({ ...node, dropletId: droplet.id });
    try {
      await core.createNode({ body: nodeObject(node.name, node.privateIPv4, droplet) });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
    }
  }
  const rendered = new Map<string, string>();
  let pending: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const slices = createKeyedInformer<k8s.V1EndpointSlice>(admin, '/apis/discovery.k8s.io/v1/endpointslices',
    () => discovery.listEndpointSliceForAllNamespaces(),
    () => schedule(), log.child({ informer: 'endpointslices' }), {});
  const services = createKeyedInformer<k8s.V1Service>(admin, '/api/v1/services', () => core.listServiceForAllNamespaces(),
    () => schedule(), log.child({ informer: 'services' }), {});
  const localEndpoints = localEndpointCounter(slices);
  // One render at a time, after a short quiet spell: kube-proxy syncs its rules the same way.
  const render = async () => {
    for (const node of CLUSTER_NODES) {
      const listeners = nodeListeners(node.name, services.objects(), localEndpoints);
      const key = JSON.stringify(listeners);
      if (rendered.get(node.name) === key) continue;
      await fabric.reconfigureBackend(node.name, (dir) => renderNodeNginx(node.name, dir, listeners));
      rendered.set(node.name, key);
      log.info({ node: node.name, ports: listeners.map((l) => l.port) }, 'programmed node ports');
    }
  };
  // A failed render is tried again a second later: no further event may come to ask for it.
  function schedule(delayMs = 50): void {
    clearTimeout(timer);
    timer = setTimeout(() => {
      pending = pending.then(render).catch((err: unknown) => {
        log.warn({ err, retryInMs: RENDER_RETRY_MS }, 'node ports not programmed; retrying');
        if (!stopped) schedule(RENDER_RETRY_MS);
      });
    }, delayMs);
  }
  await slices.start();
  await services.start();
  schedule();
  log.info({ tag: NODE_TAG, nodes: nodes.map((n) => n.name) }, 'cluster nodes up');
  return {
    tag: NODE_TAG,
    nodes,
    async settled() {
      await new Promise((r) => setTimeout(r, 100));
      await pending;
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      slices.stop();
      services.stop();
    },
  };
}

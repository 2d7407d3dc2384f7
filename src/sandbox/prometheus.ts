// `halb sandbox up --prometheus`: Debian's Prometheus in the sandbox, with halb's alert rules,
// scraping the operator and every load-balancer node the way the chart's ServiceMonitors do.
//
// In a cluster, Prometheus runs on a node inside the VPC: it reaches the nodes' VPC addresses and
// the API server. Here it runs in its own namespace, `<prefix>-prometheus`, with one leg on the
// fabric's VPC bridge (10.10.0.9, below the simulator's pool) and one /30 link to this machine.
// Over that link it reaches the operator's /metrics and its target discovery: the EndpointSlices
// the operator keeps, as Prometheus's Kubernetes discovery would list them (endpointSliceTargets);
// this machine reaches its web API there. `halb sandbox down` removes the namespace with the fabric's.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import {
  HOST_LINK_CANDIDATES, VPC_RANGE, chooseFreeSubnet, hostLinkAddresses, namespaceName, parseCidr, readHostRoutes,
} from './fabric/index.ts';
import { run } from './fabric/system.ts';

/** Prometheus's address on the VPC: the simulator gives droplets addresses from .10 on. */
export const PROMETHEUS_VPC_IPV4 = '10.10.0.9';
export const PROMETHEUS_PORT = 9090;
/** HAProxy's metrics port on every node (render's default), named as the operator's EndpointSlices name it. */
export const NODE_METRICS_PORT_NAME = 'haproxy-metrics';
/** How often Prometheus scrapes and evaluates the rules in the sandbox. */
export const SANDBOX_SCRAPE_INTERVAL_SECONDS = 5;

export interface SandboxPrometheusOptions {
  stateDir: string;
  /** The fabric's namespace prefix and core namespace (from its status). */
  prefix: string;
  coreNamespace: string;
  /** The sandbox's kubeconfig, for reading EndpointSlices and Services. */
  kubeconfig: string;
  /** Port of the operator's /metrics on this machine; absent without an operator. */
  operatorMetricsPort?: number;
  rulesFile: string;
  log: Logger;
}

export interface SandboxPrometheus {
  /** Prometheus's web API, reachable from this machine. */
  url: string;
  namespace: string;
  configFile: string;
  close(): Promise<void>;
}

/** The scrape configuration: what the chart's ServiceMonitors make the Prometheus Operator write. */
export function renderPrometheusConfig(opts: {
  rulesFile: string; discoveryURL: string; operatorTarget?: string; intervalSeconds: number;
}): string {
  const interval = `${opts.intervalSeconds}s`;
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: `${Math.max(1, opts.intervalSeconds - 1)}s` },
    rule_files: [opts.rulesFile],
    scrape_configs: [
      // ServiceMonitor halb-operator: the Service halb-operator-metrics, port metrics. The sandbox's
      // operator is no pod, so its one endpoint is given here.
      ...(opts.operatorTarget ? [{
        job_name: 'halb-operator-metrics',
        // As the ServiceMonitor's honorLabels: the series' own namespace label is the object's.
        honor_labels: true,
        static_configs: [{
          targets: [opts.operatorTarget],
          labels: { namespace: 'halb-system', service: 'halb-operator-metrics', endpoint: 'metrics' },
        }],
      }] : []),
      // ServiceMonitor halb-nodes: every Service labelled halb.dev/metrics=haproxy, its EndpointSlices'
      // endpoints on the port haproxy-metrics; the job is the label's value (jobLabel). The targets
      // and their __meta_kubernetes_* labels come from discoveryURL (see endpointSliceTargets).
      {
        job_name: 'haproxy',
        http_sd_configs: [{ url: opts.discoveryURL, refresh_interval: interval }],
        relabel_configs: [
          { source_labels: ['__meta_kubernetes_service_label_halb_dev_metrics'], regex: 'haproxy', action: 'keep' },
          { source_labels: ['__meta_kubernetes_endpointslice_port_name'], regex: NODE_METRICS_PORT_NAME, action: 'keep' },
          { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
          { source_labels: ['__meta_kubernetes_service_name'], target_label: 'service' },
          { source_labels: ['__meta_kubernetes_endpointslice_port_name'], target_label: 'endpoint' },
          { source_labels: ['__meta_kubernetes_service_label_halb_dev_haloadbalancer'], target_label: 'name' },
          { source_labels: ['__meta_kubernetes_endpointslice_endpoint_hostname'], target_label: 'node' },
        ],
      },
    ],
  };
  return `# Written by halb sandbox up --prometheus.\n${JSON.stringify(config, null, 2)}\n`;
}

/** A label name as Prometheus's Kubernetes discovery writes it (model.LabelName sanitised). */
const labelName = (key: string) => key.replace(/[^a-zA-Z0-9_]/g, '_');

export interface TargetGroup { targets: string[]; labels: Record<string, string> }

/**
 * The targets Prometheus's Kubernetes discovery (role endpointslice) finds: one per endpoint and
 * port of each EndpointSlice, with the slice's, the endpoint's and its Service's meta labels.
 * Debian's Prometheus is built without Kubernetes discovery, so the sandbox serves these to its
 * HTTP discovery, and the relabelling above is the Prometheus Operator's, unchanged.
 */
export function endpointSliceTargets(slices: k8s.V1EndpointSlice[], services: k8s.V1Service[]): TargetGroup[] {
  const groups: TargetGroup[] = [];
  for (const slice of slices) {
    const namespace = slice.metadata?.namespace ?? '';
    const serviceName = slice.metadata?.labels?.['kubernetes.io/service-name'];
    const service = services.find((s) => s.metadata?.namespace === namespace && s.metadata?.name === serviceName);
    const common: Record<string, string> = {
      __meta_kubernetes_namespace: namespace,
      __meta_kubernetes_endpointslice_name: slice.metadata?.name ?? '',
      __meta_kubernetes_endpointslice_address_type: slice.addressType,
    };
    if (service) {
      common.__meta_kubernetes_service_name = service.metadata?.name ?? '';
      for (const [k, v] of Object.entries(service.metadata?.labels ?? {})) {
        common[`__meta_kubernetes_service_label_${labelName(k)}`] = v;
        common[`__meta_kubernetes_service_labelpresent_${labelName(k)}`] = 'true';
      }
    }
    for (const port of slice.ports ?? []) {
      for (const endpoint of slice.endpoints ?? []) {
        for (const address of endpoint.addresses) {
          groups.push({
            targets: [`${address}:${port.port}`],
            labels: {
              ...common,
              __meta_kubernetes_endpointslice_port: String(port.port),
              __meta_kubernetes_endpointslice_port_name: port.name ?? '',
              __meta_kubernetes_endpointslice_port_protocol: port.protocol ?? 'TCP',
              __meta_kubernetes_endpointslice_endpoint_conditions_ready: String(endpoint.conditions?.ready ?? true),
              ...(endpoint.hostname ? { __meta_kubernetes_endpointslice_endpoint_hostname: endpoint.hostname } : {}),
            },
          });
        }
      }
    }
  }
  return groups;
}

/** Serves endpointSliceTargets, read from the API server at each request, for http_sd_configs. */
function startDiscovery(listenHost: string, kubeconfigFile: string, log: Logger): Promise<Server> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigFile);
  const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const server = createServer((req, res) => {
    Promise.all([discovery.listEndpointSliceForAllNamespaces(), core.listServiceForAllNamespaces()]).then(([slices, services]) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(endpointSliceTargets(slices.items, services.items)));
    }, (err: Error) => {
      log.warn({ err: err.message }, 'listing EndpointSlices for Prometheus failed');
      res.writeHead(502).end(err.message);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, () => resolve(server));
  });
}

export async function startSandboxPrometheus(opts: SandboxPrometheusOptions): Promise<SandboxPrometheus> {
  const { log } = opts;
  const namespace = namespaceName(opts.prefix, 'prometheus');
  const dir = join(opts.stateDir, 'prometheus');
  mkdirSync(join(dir, 'data'), { recursive: true });

  const subnet = chooseFreeSubnet(await readHostRoutes(), HOST_LINK_CANDIDATES);
  if (!subnet) throw new Error(`no free /30 for Prometheus's link among ${HOST_LINK_CANDIDATES[0]}..${HOST_LINK_CANDIDATES.at(-1)}`);
  const link = hostLinkAddresses(subnet);
  const hostIf = `${opts.prefix}-prom`;
  await run('ip', ['netns', 'add', namespace]);
  // Its machine-side end goes with the namespace; the VPC leg is a veth into the core's bridge.
  await run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', namespace]);
  await run('ip', ['addr', 'add', `${link.host}/${link.bits}`, 'dev', hostIf]);
  await run('ip', ['link', 'set', hostIf, 'up']);
  await run('ip', ['-n', opts.coreNamespace, 'link', 'add', 'vpcprom', 'type', 'veth', 'peer', 'name', 'eth1', 'netns', namespace]);
  await run('ip', ['-n', opts.coreNamespace, 'link', 'set', 'vpcprom', 'master', 'brvpc']);
  await run('ip', ['-n', opts.coreNamespace, 'link', 'set', 'vpcprom', 'up']);
  for (const args of [
    ['addr', 'add', `${link.core}/${link.bits}`, 'dev', 'eth0'],
    ['addr', 'add', `${PROMETHEUS_VPC_IPV4}/${parseCidr(VPC_RANGE).bits}`, 'dev', 'eth1'],
    ['link', 'set', 'lo', 'up'], ['link', 'set', 'eth0', 'up'], ['link', 'set', 'eth1', 'up'],
  ]) await run('ip', ['-n', namespace, ...args]);

  const discovery = await startDiscovery(link.host, opts.kubeconfig, log);
  const discoveryURL = `http://${link.host}:${(discovery.address() as AddressInfo).port}/endpointslices`;
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, renderPrometheusConfig({
    rulesFile: opts.rulesFile, discoveryURL,
    ...(opts.operatorMetricsPort ? { operatorTarget: `${link.host}:${opts.operatorMetricsPort}` } : {}),
    intervalSeconds: SANDBOX_SCRAPE_INTERVAL_SECONDS,
  }));

  const url = `http://${link.core}:${PROMETHEUS_PORT}`;
  const logFile = join(dir, 'prometheus.log');
  const out = openSync(logFile, 'a');
  const child = spawn('ip', [
    'netns', 'exec', namespace, 'prometheus', `--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=${link.core}:${PROMETHEUS_PORT}`, '--web.enable-lifecycle', '--log.level=info',
  ], { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  child.unref();
  writeFileSync(join(dir, 'prometheus.pid'), `${child.pid}\n`);
  const deadline = Date.now() + 30_000;
  while (!(await fetch(`${url}/-/ready`).then((r) => r.ok, () => false))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-10).join('\n') : '';
      throw new Error(`Prometheus did not become ready (see ${logFile}):\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  log.info({ url, namespace, vpcAddress: PROMETHEUS_VPC_IPV4, config: configFile }, 'started Prometheus');
  return {
    url, namespace, configFile,
    async close() {
      child.kill('SIGTERM');
      await new Promise<void>((resolve) => discovery.close(() => resolve()));
    },
  };
}

// `halb sandbox up --prometheus`: Debian's Prometheus in the sandbox, with halb's alert rules,
// scraping the operator and every load-balancer node the way the chart's ServiceMonitors do.
//
// In a cluster, Prometheus runs on a node inside the VPC: it reaches the nodes' VPC addresses and
// the API server. Here it runs in its own namespace, `<prefix>-prometheus`, with one leg on the
// fabric's VPC bridge (10.10.0.9, below the simulator's pool) and one /30 link to this machine.
// Over that link it reaches the operator's /metrics and, through a relay, the Kubernetes API,
// where its Kubernetes service discovery reads the EndpointSlices the operator keeps; this
// machine reaches its web API there. `halb sandbox down` removes the namespace with the fabric's.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { Logger } from '../log.ts';
import { HOST_LINK_CANDIDATES, VPC_RANGE, chooseFreeSubnet, hostLinkAddresses, namespaceName, parseCidr, readHostRoutes } from './fabric/index.ts';
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
  /** The Kubernetes API on this machine (the emulator's or the real server's URL). */
  kubernetesURL: string;
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
export function renderPrometheusConfig(opts: { rulesFile: string; kubeconfig: string; operatorTarget?: string; intervalSeconds: number }): string {
  const interval = `${opts.intervalSeconds}s`;
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: `${Math.max(1, opts.intervalSeconds - 1)}s` },
    rule_files: [opts.rulesFile],
    scrape_configs: [
      // ServiceMonitor halb-operator: the Service halb-operator-metrics, port metrics. The sandbox's
      // operator is no pod, so its one endpoint is given here.
      ...(opts.operatorTarget ? [{
        job_name: 'halb-operator-metrics',
        static_configs: [{ targets: [opts.operatorTarget], labels: { namespace: 'halb-system', service: 'halb-operator-metrics', endpoint: 'metrics' } }],
      }] : []),
      // ServiceMonitor halb-nodes: every Service labelled halb.dev/metrics=haproxy, its EndpointSlices'
      // endpoints on the port haproxy-metrics; the job is the label's value (jobLabel).
      {
        job_name: 'haproxy',
        kubernetes_sd_configs: [{ role: 'endpointslice', kubeconfig_file: opts.kubeconfig }],
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

/** A TCP relay from host:port to the API server on loopback, for the Prometheus namespace only. */
function startRelay(listenHost: string, target: URL): Promise<Server> {
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    client.pipe(upstream).pipe(client);
    const close = () => { client.destroy(); upstream.destroy(); };
    client.on('error', close);
    upstream.on('error', close);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, () => resolve(server));
  });
}

/** A kubeconfig for Prometheus's service discovery: the relay, with the sandbox's credentials. */
function relayKubeconfig(kubeconfigFile: string, relayURL: string, serverName: string): string {
  const config = parse(readFileSync(kubeconfigFile, 'utf8')) as { clusters?: { cluster: Record<string, unknown> }[] };
  for (const { cluster } of config.clusters ?? []) {
    cluster.server = relayURL;
    // The serving certificate names the API server's own host, not the relay's address.
    if (relayURL.startsWith('https:')) cluster['tls-server-name'] = serverName;
  }
  return stringify(config);
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

  const api = new URL(opts.kubernetesURL);
  const relay = await startRelay(link.host, api);
  const relayPort = (relay.address() as { port: number }).port;
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, relayKubeconfig(join(opts.stateDir, 'kubeconfig'), `${api.protocol}//${link.host}:${relayPort}`, api.hostname), { mode: 0o600 });
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, renderPrometheusConfig({
    rulesFile: opts.rulesFile, kubeconfig,
    ...(opts.operatorMetricsPort ? { operatorTarget: `${link.host}:${opts.operatorMetricsPort}` } : {}),
    intervalSeconds: SANDBOX_SCRAPE_INTERVAL_SECONDS,
  }));

  const url = `http://${link.core}:${PROMETHEUS_PORT}`;
  const logFile = join(dir, 'prometheus.log');
  const out = openSync(logFile, 'a');
  const child = spawn('ip', ['netns', 'exec', namespace, 'prometheus', `--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=${link.core}:${PROMETHEUS_PORT}`, '--web.enable-lifecycle', '--log.level=info'], { detached: true, stdio: ['ignore', out, out] });
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
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    },
  };
}

// `halb sandbox up`: the Kubernetes emulator, the DigitalOcean simulator and the namespace
// fabric, wired together in one process, plus the operator. The simulator's hooks drive the
// fabric: a created droplet becomes a host, a completed assign action re-points the floating-IP
// DNAT. Everything lives in one state folder; `down` removes what `up` made and nothing else.
// The Kubernetes API is the emulator (the default, instant) or, with kube: 'real', the upstream
// kube-apiserver, kube-controller-manager and etcd, where the operator runs as its ServiceAccount
// under deploy/'s RBAC.
import { execFileSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { request } from 'node:https';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { buildCRD, CRD_NAME } from '../api/crd.ts';
import { startOperator, type RunningOperator } from '../controller/operator.ts';
import { defaultServiceDefaults } from '../controller/services/settings.ts';
import { startSandboxCluster, type SandboxCluster } from './cluster.ts';
import { startKubeEmulator } from './kube/index.ts';
import { startRealKube, type RealKube } from './kube-real/control-plane.ts';
import { installOperatorIdentity, type OperatorIdentity } from './kube-real/identity.ts';
import { CONTROL_PLANE_TOOLS, upstreamBinaries } from './kube-real/upstream.ts';
import { startDigitalOceanSimulator, type DigitalOceanSimulator, type SimulatorDelays } from './digitalocean/simulator.ts';
import { startSandboxPrometheus, type SandboxPrometheus } from './prometheus.ts';
import {
  ANCHOR_RANGE, DEFAULT_BACKENDS, HOST_ROUTED_RANGES, inRange, destroyFabric, fabricHooks, fabricUp, openFabric,
  type Fabric, type FabricStatus,
} from './fabric/index.ts';

/** halb's alert rules, which the sandbox's Prometheus evaluates. */
const RULES_FILE = fileURLToPath(new URL('../../deploy/prometheus/halb-rules.yaml', import.meta.url));

/** The token the simulator accepts in the sandbox (it accepts any non-empty one). */
export const SANDBOX_TOKEN = 'dop_v1_sandbox';

/** Which Kubernetes API server the sandbox runs: the emulator, or the upstream one. */
export type KubeKind = 'emulator' | 'real';

export interface SandboxOptions {
  stateDir: string;
  operator: boolean;
  /** Default 'emulator'. */
  kube?: KubeKind;
  /** Simulated delays: droplet boot, action completion (realistic in the demo, short in tests). */
  delays?: Partial<SimulatorDelays>;
  /** How long a droplet's sshd stays silent after creation. */
  bootDelayMs?: number;
  /** Operator timings. */
  resyncIntervalMs?: number;
  backstopGraceMs?: number;
  /** Also start Prometheus with halb's rules, scraping the operator and the nodes (--prometheus). */
  prometheus?: boolean;
  log: Logger;
}

export interface SandboxStatus {
  pid: number;
  stateDir: string;
  kubeconfig: string;
  /** The operator's credentials: on the real server its ServiceAccount token; else kubeconfig. */
  operatorKubeconfig: string;
  digitalocean: { endpoint: string; token: string };
  kubernetes: { server: string; kind: KubeKind; version?: string; caFile?: string };
  operator: boolean;
  hosts: { name: string; namespace: string; role: string; publicIPv4?: string; privateIPv4?: string; anchorIPv4?: string }[];
  floatingIPs?: Record<string, string>;
  /** Prometheus's web API, with --prometheus. */
  prometheus?: { url: string };
  /** The cluster nodes (Node objects, droplets with the DOKS tag) that Services of type LoadBalancer reach. */
  cluster?: { tag: string; nodes: { name: string; privateIPv4: string }[] };
}

/** The sandbox's Kubernetes API as the sandbox and its tests drive it, whichever server it is. */
export interface SandboxKube {
  kind: KubeKind;
  url: string;
  port: number;
  /** The real control plane, when it is the real one. */
  real?: RealKube;
  /** The operator's identity on the real server (deploy/base's ServiceAccount and RBAC). */
  operatorIdentity?: OperatorIdentity;
  /** Stops serving the API (the real one keeps etcd's data); start() serves it again, same port and state. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface RunningSandbox {
  status: SandboxStatus;
  kube: SandboxKube;
  digitalocean: DigitalOceanSimulator;
  fabric: Fabric;
  operator?: RunningOperator;
  prometheus?: SandboxPrometheus;
  cluster: SandboxCluster;
  /** Stops the processes of this sandbox, leaving the fabric for `down`. */
  stop(): Promise<void>;
}

const statusFile = (stateDir: string) => join(stateDir, 'sandbox.json');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The sandbox's recorded endpoints plus the fabric's hosts; null when no sandbox runs there. */
export function readSandboxStatus(stateDir: string): (SandboxStatus & { running: boolean }) | null {
  const file = statusFile(stateDir);
  if (!existsSync(file)) return null;
  const recorded = JSON.parse(readFileSync(file, 'utf8')) as SandboxStatus;
  let fabric: FabricStatus | null = null;
  try {
    fabric = openFabric({ stateDir })?.status() ?? null;
  } catch {
    fabric = null;
  }
  return {
    ...recorded,
    running: alive(recorded.pid),
    hosts: [...(fabric?.hosts ?? []).map((h) => ({
      name: h.name, namespace: h.namespace, role: h.role,
      ...(h.publicIPv4 ? { publicIPv4: h.publicIPv4 } : {}),
      ...(h.privateIPv4 ? { privateIPv4: h.privateIPv4 } : {}),
      ...(h.anchorIPv4 ? { anchorIPv4: h.anchorIPv4 } : {}),
    }))],
    floatingIPs: fabric?.floatingIPs ?? {},
  };
}

/** Hosts this machine installs packages from. */
const PACKAGE_HOSTS = ['deb.debian.org', 'registry.npmjs.org'];

/**
 * Package hosts that resolve into the ranges the sandbox routes into its fabric: while it is
 * up, this machine reaches them through the sandbox, so apt-get and npm fail until `down`.
 */
export async function packageHostsInSandboxRanges(): Promise<{ host: string; address: string }[]> {
  const { lookup } = await import('node:dns/promises');
  const found = await Promise.all(PACKAGE_HOSTS.map(async (host) => {
    try {
      const { address } = await lookup(host, { family: 4 });
      return HOST_ROUTED_RANGES.some((range) => inRange(address, range)) ? [{ host, address }] : [];
    } catch {
      return [];
    }
  }));
  return found.flat();
}

/** Creates the objects that do not exist yet, as kubectl create would; an existing one is kept. */
async function ensureObjects(kc: k8s.KubeConfig, objects: k8s.KubernetesObject[]): Promise<void> {
  const client = k8s.KubernetesObjectApi.makeApiClient(kc);
  for (const object of objects) {
    try {
      await client.create(object);
    } catch (err) {
      if ((err as { code?: number }).code !== 409) {
        throw new Error(`creating ${object.kind} ${object.metadata?.name} failed: ${(err as Error).message}`, { cause: err });
      }
    }
  }
}

/**
 * The CRD, applied as it is (server-side apply, so a sandbox that is up again gets the current
 * one). Not through client-node's typed client: its model of JSONSchemaProps drops most
 * `x-kubernetes-validations` (4 of the CRD's 10 CEL rules reached the real API server that way).
 */
async function applyCRD(kc: k8s.KubeConfig): Promise<void> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the sandbox kubeconfig names no cluster');
  const url = new URL(
    `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}?fieldManager=halb-sandbox&force=true`, cluster.server);
  const options: import('node:https').RequestOptions = { method: 'PATCH', headers: { 'Content-Type': 'application/apply-patch+yaml' } };
  await kc.applyToHTTPSOptions(options);
  const body = JSON.stringify(buildCRD());
  await new Promise<void>((resolve, reject) => {
    const send = url.protocol === 'https:' ? request : httpRequest;
    const req = send(url, options, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => { text += chunk.toString(); });
      res.on('end', () => (res.statusCode && res.statusCode < 300
        ? resolve()
        : reject(new Error(`applying the CRD failed (${res.statusCode}): ${text.slice(0, 500)}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Waits until the CRD is Established: from then on its objects can be created. */
async function crdEstablished(kc: k8s.KubeConfig): Promise<void> {
  const api = kc.makeApiClient(k8s.ApiextensionsV1Api);
  for (let i = 0; i < 600; i++) {
    const crd = await api.readCustomResourceDefinition({ name: CRD_NAME }).catch(() => undefined);
    if (crd?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the CRD ${CRD_NAME} was not Established within 60 s`);
}

/** The emulator as a SandboxKube: stop() closes it, start() opens it again on the same port and state file. */
async function emulatorKube(stateDir: string, log: Logger): Promise<SandboxKube> {
  const stateFile = join(stateDir, 'kube-state.json');
  const logger = log.child({ component: 'kube-emulator' });
  let emulator = await startKubeEmulator({ host: '127.0.0.1', port: 0, stateFile, logger });
  const kube: SandboxKube = {
    kind: 'emulator',
    url: emulator.url,
    port: emulator.port,
    stop: () => emulator.close(),
    async start() {
      emulator = await startKubeEmulator({ host: '127.0.0.1', port: kube.port, stateFile, logger });
    },
    close: () => emulator.close(),
  };
  emulator.writeKubeconfig(join(stateDir, 'kubeconfig'));
  return kube;
}

async function realKube(stateDir: string, log: Logger): Promise<SandboxKube> {
  const real = await startRealKube({ dir: join(stateDir, 'kube-real'), logger: log.child({ component: 'kube-real' }) });
  real.writeKubeconfig(join(stateDir, 'kubeconfig'));
  return {
    kind: 'real', url: real.url, port: real.port, real,
    stop: () => real.stop(),
    start: () => real.start(),
    close: () => real.close(),
  };
}

/** Whether the sandbox's Kubernetes API answers /version. */
export async function kubeAnswers(kubernetes: SandboxStatus['kubernetes']): Promise<boolean> {
  if (!kubernetes.caFile) return fetch(`${kubernetes.server}/version`).then((r) => r.ok, () => false);
  const ca = readFileSync(kubernetes.caFile);
  return new Promise((resolve) => {
    const req = request(`${kubernetes.server}/version`, { ca, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

function operatorKey(stateDir: string): { privateKey: string; publicKey: string } {
  const file = join(stateDir, 'operator_ed25519');
  if (!existsSync(file)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'halb-operator', '-f', file]);
  return { privateKey: readFileSync(file, 'utf8'), publicKey: readFileSync(`${file}.pub`, 'utf8').trim() };
}

/** The CRD and the Secrets the examples need, the operator's identity, and the operator. */
async function seedAndStartOperator(
  opts: SandboxOptions, kube: SandboxKube, digitalocean: DigitalOceanSimulator,
): Promise<{ operator?: RunningOperator; operatorKubeconfig: string }> {
  const kubeconfig = join(opts.stateDir, 'kubeconfig');
  const admin = new k8s.KubeConfig();
  admin.loadFromFile(kubeconfig);
  const key = operatorKey(opts.stateDir);
  await applyCRD(admin);
  await crdEstablished(admin);
  await ensureObjects(admin, [
    {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'do-api', namespace: 'default' }, type: 'Opaque',
      stringData: { token: SANDBOX_TOKEN },
    } as k8s.KubernetesObject,
    {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'halb-ssh', namespace: 'default' }, type: 'kubernetes.io/ssh-auth',
      stringData: { 'ssh-privatekey': key.privateKey },
    } as k8s.KubernetesObject,
  ]);
  // On the real server the operator is who a cluster install makes it: its ServiceAccount, its
  // RBAC, a token as its pod gets one. Its Lease lives in its own namespace, as deployed.
  const identity = kube.real ? await installOperatorIdentity(kube.real, opts.stateDir) : undefined;
  if (identity) kube.operatorIdentity = identity;
  if (!opts.operator) return { operatorKubeconfig: identity?.kubeconfig ?? kubeconfig };
  const operator = await startOperator(identity?.kubeConfig() ?? admin, {
    doEndpoint: digitalocean.endpoint,
    render: { apiBaseURL: digitalocean.url },
    resyncIntervalMs: opts.resyncIntervalMs ?? 5000,
    backstopGraceMs: opts.backstopGraceMs ?? 15_000,
    sshTimeoutMs: 5000,
    concurrency: 4,
    metricsPort: 0,
    leaderElection: true,
    leaseNamespace: identity?.namespace ?? 'default',
    leaseName: 'halb-operator',
    identity: `sandbox-${process.pid}`,
    // Services of type LoadBalancer with the class: the cluster nodes say the region (nyc3).
    services: defaultServiceDefaults,
  }, opts.log.child({ component: 'operator' }));
  return { operator, operatorKubeconfig: identity?.kubeconfig ?? kubeconfig };
}

export async function startSandbox(opts: SandboxOptions): Promise<RunningSandbox> {
  const { stateDir, log } = opts;
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const existing = readSandboxStatus(stateDir);
  if (existing?.running) {
    throw new Error(`a sandbox already runs from ${stateDir} (pid ${existing.pid}); run halb sandbox down first, or use it`);
  }
  // Before anything is built: the real server's binaries must be there.
  if (opts.kube === 'real') upstreamBinaries(CONTROL_PLANE_TOOLS);

  const fabric = await fabricUp({ stateDir, bootDelayMs: opts.bootDelayMs ?? 0, logger: log.child({ component: 'fabric' }) });
  const hostIPv4 = fabric.status().hostLink?.hostIPv4;
  if (!hostIPv4) throw new Error('the fabric has no link to this machine; the simulators cannot be reached from the droplets');

  // Droplets reach the simulator as real ones reach api.digitalocean.com: over the fabric's
  // link, at the machine's end of it. It listens nowhere else.
  const hooks = fabricHooks(fabric);
  const digitalocean = await startDigitalOceanSimulator({
    host: hostIPv4,
    port: 0,
    delays: opts.delays ?? {},
    addressing: { anchorCidr: ANCHOR_RANGE },
    logger: log.child({ component: 'digitalocean-simulator' }),
    hooks: {
      onDropletCreated: (d) => hooks.dropletCreated(d),
      onDropletDeleted: (d) => hooks.dropletDeleted(d.id),
      onDropletDied: (d) => hooks.dropletPowerChanged(d.id, false),
      onDropletPowerChanged: (d, power) =>
        (power === 'reboot' ? hooks.dropletRebooted(d.id) : hooks.dropletPowerChanged(d.id, power === 'on')),
      onMaintenanceEventChanged: (d, event) => hooks.maintenanceEventChanged(d.id, event),
      onReservedIpAssignmentChanged: (c) => hooks.reservedIPAssigned(c.ip, c.dropletId),
    },
  });
  // The backends are droplets too, tagged web, so dropletTag backends find them.
  for (const b of DEFAULT_BACKENDS) digitalocean.state.seedDroplet({ name: b.name, tags: ['web'], privateIPv4: b.privateIPv4 });

  const kubeKind = opts.kube ?? 'emulator';
  let kube: SandboxKube;
  try {
    kube = kubeKind === 'real' ? await realKube(stateDir, log) : await emulatorKube(stateDir, log);
  } catch (err) {
    await digitalocean.close();
    throw err;
  }
  const kubeconfig = join(stateDir, 'kubeconfig');
  let operatorKubeconfig = kubeconfig;
  let operator: RunningOperator | undefined;
  try {
    ({ operator, operatorKubeconfig } = await seedAndStartOperator(opts, kube, digitalocean));
  } catch (err) {
    await kube.close();
    await digitalocean.close();
    throw err;
  }

  let cluster: SandboxCluster;
  try {
    const admin = new k8s.KubeConfig();
    admin.loadFromFile(kubeconfig);
    cluster = await startSandboxCluster({ fabric, digitalocean, admin, log: log.child({ component: 'cluster' }) });
  } catch (err) {
    await operator?.stop();
    await kube.close();
    await digitalocean.close();
    throw err;
  }

  let prometheus: SandboxPrometheus | undefined;
  if (opts.prometheus) {
    const fabricStatus = fabric.status();
    try {
      prometheus = await startSandboxPrometheus({
        stateDir, prefix: fabricStatus.prefix, coreNamespace: fabricStatus.coreNamespace, kubeconfig,
        ...(operator?.metricsURL ? { operatorMetricsPort: Number(new URL(operator.metricsURL).port) } : {}),
        rulesFile: RULES_FILE, log: log.child({ component: 'prometheus' }),
      });
    } catch (err) {
      // Nothing of this process may keep it alive after a failed up.
      cluster.stop();
      await operator?.stop();
      await kube.close();
      await digitalocean.close();
      throw err;
    }
  }

  const status: SandboxStatus = {
    pid: process.pid,
    stateDir,
    kubeconfig,
    operatorKubeconfig,
    digitalocean: { endpoint: digitalocean.endpoint, token: SANDBOX_TOKEN },
    kubernetes: {
      server: kube.url, kind: kube.kind,
      ...(kube.real ? { version: kube.real.versions.kubernetes, caFile: kube.real.pki.caCert } : {}),
    },
    operator: opts.operator,
    hosts: [],
    cluster: { tag: cluster.tag, nodes: cluster.nodes.map(({ name, privateIPv4 }) => ({ name, privateIPv4 })) },
    ...(prometheus ? { prometheus: { url: prometheus.url } } : {}),
  };
  writeFileSync(statusFile(stateDir), `${JSON.stringify(status, null, 2)}\n`);
  log.info({ kubeconfig, digitalocean: digitalocean.endpoint, kubernetes: kube.url, kube: kube.kind }, 'sandbox up');

  const running: RunningSandbox = {
    status, kube, digitalocean, fabric, cluster,
    ...(operator ? { operator } : {}),
    ...(prometheus ? { prometheus } : {}),
    // Through `running`, so a part a test restarted (the emulator, say) is the one stopped.
    async stop() {
      await running.prometheus?.close();
      running.cluster.stop();
      await running.operator?.stop();
      await running.kube.close();
      await running.digitalocean.close();
    },
  };
  return running;
}

/** Removes every namespace, process and file the sandbox made in stateDir. Safe to run twice. */
export async function destroySandbox(stateDir: string, log: Logger): Promise<void> {
  const recorded = existsSync(statusFile(stateDir)) ? JSON.parse(readFileSync(statusFile(stateDir), 'utf8')) as SandboxStatus : undefined;
  if (recorded && recorded.pid !== process.pid && alive(recorded.pid)) {
    process.kill(recorded.pid, 'SIGTERM');
    for (let i = 0; i < 100 && alive(recorded.pid); i++) await new Promise((r) => setTimeout(r, 100));
    if (alive(recorded.pid)) process.kill(recorded.pid, 'SIGKILL');
  }
  await destroyFabric({ stateDir, logger: log.child({ component: 'fabric' }) });
  rmSync(stateDir, { recursive: true, force: true });
}

// `halb sandbox up`: the Kubernetes emulator, the DigitalOcean simulator and the namespace
// fabric, wired together in one process, plus the operator. The simulator's hooks drive the
// fabric: a created droplet becomes a host, a completed assign action re-points the floating-IP
// DNAT. Everything lives in one state folder; `down` removes what `up` made and nothing else.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { buildCRD, CRD_NAME } from '../api/crd.ts';
import { startOperator, type RunningOperator } from '../controller/operator.ts';
import { startKubeEmulator, type KubeEmulator } from './kube/index.ts';
import { startDigitalOceanSimulator, type DigitalOceanSimulator, type SimulatorDelays } from './digitalocean/simulator.ts';
import { startSandboxPrometheus, type SandboxPrometheus } from './prometheus.ts';
import { ANCHOR_RANGE, DEFAULT_BACKENDS, HOST_ROUTED_RANGES, inRange, destroyFabric, fabricHooks, fabricUp, openFabric, type Fabric, type FabricStatus } from './fabric/index.ts';

/** halb's alert rules, which the sandbox's Prometheus evaluates. */
const RULES_FILE = fileURLToPath(new URL('../../deploy/prometheus/halb-rules.yaml', import.meta.url));

/** The token the simulator accepts in the sandbox (it accepts any non-empty one). */
export const SANDBOX_TOKEN = 'dop_v1_sandbox';

export interface SandboxOptions {
  stateDir: string;
  operator: boolean;
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
  digitalocean: { endpoint: string; token: string };
  kubernetes: { server: string };
  operator: boolean;
  hosts: { name: string; namespace: string; role: string; publicIPv4?: string; privateIPv4?: string; anchorIPv4?: string }[];
  floatingIPs?: Record<string, string>;
  /** Prometheus's web API, with --prometheus. */
  prometheus?: { url: string };
}

export interface RunningSandbox {
  status: SandboxStatus;
  kube: KubeEmulator;
  digitalocean: DigitalOceanSimulator;
  fabric: Fabric;
  operator?: RunningOperator;
  prometheus?: SandboxPrometheus;
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

/** Creates (or updates) an object in the emulator through plain JSON, as kubectl apply would. */
async function ensureObject(server: string, path: string, body: Record<string, unknown>): Promise<void> {
  const post = await fetch(`${server}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (post.ok || post.status === 409) return;
  throw new Error(`creating ${path} failed: ${post.status} ${await post.text()}`);
}

function operatorKey(stateDir: string): { privateKey: string; publicKey: string } {
  const file = join(stateDir, 'operator_ed25519');
  if (!existsSync(file)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'halb-operator', '-f', file]);
  return { privateKey: readFileSync(file, 'utf8'), publicKey: readFileSync(`${file}.pub`, 'utf8').trim() };
}

export async function startSandbox(opts: SandboxOptions): Promise<RunningSandbox> {
  const { stateDir, log } = opts;
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const existing = readSandboxStatus(stateDir);
  if (existing?.running) throw new Error(`a sandbox already runs from ${stateDir} (pid ${existing.pid}); run halb sandbox down first, or use it`);

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
      onDropletPowerChanged: (d, power) => (power === 'reboot' ? hooks.dropletRebooted(d.id) : hooks.dropletPowerChanged(d.id, power === 'on')),
      onMaintenanceEventChanged: (d, event) => hooks.maintenanceEventChanged(d.id, event),
      onReservedIpAssignmentChanged: (c) => hooks.reservedIPAssigned(c.ip, c.dropletId),
    },
  });
  // The backends are droplets too, tagged web, so dropletTag backends find them.
  for (const b of DEFAULT_BACKENDS) digitalocean.state.seedDroplet({ name: b.name, tags: ['web'], privateIPv4: b.privateIPv4 });

  const kube = await startKubeEmulator({ host: '127.0.0.1', port: 0, stateFile: join(stateDir, 'kube-state.json'), logger: log.child({ component: 'kube-emulator' }) });
  const kubeconfig = join(stateDir, 'kubeconfig');
  kube.writeKubeconfig(kubeconfig);

  // What the examples need: the CRD and the two credential Secrets.
  await ensureObject(kube.url, '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', buildCRD());
  for (let i = 0; i < 100 && !(await fetch(`${kube.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}`)).ok; i++) await new Promise((r) => setTimeout(r, 50));
  const key = operatorKey(stateDir);
  await ensureObject(kube.url, '/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'do-api', namespace: 'default' }, type: 'Opaque', stringData: { token: SANDBOX_TOKEN } });
  await ensureObject(kube.url, '/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'halb-ssh', namespace: 'default' }, type: 'kubernetes.io/ssh-auth', stringData: { 'ssh-privatekey': key.privateKey } });

  let operator: RunningOperator | undefined;
  if (opts.operator) {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    operator = await startOperator(kc, {
      doEndpoint: digitalocean.endpoint,
      render: { apiBaseURL: digitalocean.url },
      resyncIntervalMs: opts.resyncIntervalMs ?? 5000,
      backstopGraceMs: opts.backstopGraceMs ?? 15_000,
      sshTimeoutMs: 5000,
      concurrency: 4,
      metricsPort: 0,
      leaderElection: true,
      leaseNamespace: 'default',
      leaseName: 'halb-operator',
      identity: `sandbox-${process.pid}`,
    }, log.child({ component: 'operator' }));
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
    digitalocean: { endpoint: digitalocean.endpoint, token: SANDBOX_TOKEN },
    kubernetes: { server: kube.url },
    operator: opts.operator,
    hosts: [],
    ...(prometheus ? { prometheus: { url: prometheus.url } } : {}),
  };
  writeFileSync(statusFile(stateDir), `${JSON.stringify(status, null, 2)}\n`);
  log.info({ kubeconfig, digitalocean: digitalocean.endpoint, kubernetes: kube.url }, 'sandbox up');

  const running: RunningSandbox = {
    status, kube, digitalocean, fabric,
    ...(operator ? { operator } : {}),
    ...(prometheus ? { prometheus } : {}),
    // Through `running`, so a part a test restarted (the emulator, say) is the one stopped.
    async stop() {
      await running.prometheus?.close();
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

// The reconciler in-process, in the manner of cert-manager's test Builder: the Kubernetes
// emulator (with the CRD and real informers filling the caches), the DigitalOcean simulator
// over real HTTP, and stand-in hosts at the HostConnector seam. A test drives one reconcile
// pass at a time and reads what it did: the Events recorded (one per action), the DigitalOcean
// requests sent, and the object's status. No root, no namespaces, no SSH.
import * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import { generateEd25519KeyPair } from '../../src/ssh-keys.ts';
import { buildCRD } from '../../src/api/crd.ts';
import { API_VERSION, KIND } from '../../src/api/schema.ts';
import type { HALoadBalancer, StoredHALoadBalancer } from '../../src/api/types.ts';
import { FirewallGenerations } from '../../src/controller/backend-firewalls.ts';
import type { Clock, ControllerContext, ControllerSettings } from '../../src/controller/context.ts';
import type { EventRecorder } from '../../src/controller/events.ts';
import { createHALoadBalancerInformer, createSecretInformer, type KeyedInformer } from '../../src/controller/informer.ts';
import { createKubeWriter } from '../../src/controller/kube.ts';
import { AppliedMetricsEndpoints } from '../../src/controller/metrics-endpoints.ts';
import { reconcile, type PassResult } from '../../src/controller/reconciler.ts';
import { SharedReads } from '../../src/controller/shared-reads.ts';
import { LoginKeys } from '../../src/controller/ssh-access.ts';
import { OperatorMetrics } from '../../src/controller/telemetry.ts';
import { DigitalOceanProvider } from '../../src/digitalocean/provider.ts';
import { startKubeEmulator, kubeconfigYAML, type KubeEmulator } from '../../src/sandbox/kube/index.ts';
import { startDigitalOceanSimulator, type DigitalOceanSimulator, type SimulatorOptions } from '../../src/sandbox/digitalocean/simulator.ts';
import { waitFor } from '../wait.ts';
import { StandInHosts, type StandInHost } from './standin-hosts.ts';

export const TOKEN = 'dop_v1_harness';
const log = pino({ level: process.env.HALB_LOG_LEVEL ?? 'silent' });

export interface RecordedEvent { type: string; reason: string; message: string; kind: string; name: string }

export interface PassRecord {
  result: PassResult;
  /** Event reasons in order, e.g. ['DropletCreated', 'DropletCreated']. */
  events: string[];
  eventDetails: RecordedEvent[];
  /** DigitalOcean requests, as "POST /v2/droplets 202". */
  requests: string[];
  error?: unknown;
}

export interface Harness {
  kube: KubeEmulator;
  /** A kubeconfig for the emulator, for clients of other kinds (the Service controller's). */
  kubeConfig: k8s.KubeConfig;
  /** Every Event recorded so far, in order. */
  recorded: readonly RecordedEvent[];
  sim: DigitalOceanSimulator;
  hosts: StandInHosts;
  ctx: ControllerContext;
  /** Moves the controller's clock (the backstop's and the repair's grace). */
  clock: Clock & { advance(ms: number): void };
  create(object: Record<string, unknown>): Promise<void>;
  patch(name: string, patch: Record<string, unknown>): Promise<void>;
  delete(name: string): Promise<void>;
  get(name: string): Promise<HALoadBalancer | undefined>;
  /** One reconcile of default/<name>, after the caches caught up with the server. */
  pass(name: string, signal?: AbortSignal): Promise<PassRecord>;
  /** Passes until `done` holds (or `max` passes), waiting out each requeue that is short. */
  passUntil(name: string, done: (object: HALoadBalancer | undefined) => boolean, max?: number): Promise<PassRecord[]>;
  /** A fresh context, as a restarted operator has: no memory of earlier passes. */
  restart(): void;
  close(): Promise<void>;
}

export function basicObject(name = 'web', spec: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace: 'default' },
    spec: {
      region: 'nyc3',
      credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'ssh-privatekey' } },
      frontends: [{ name: 'www', port: 80, defaultBackend: 'web' }],
      backends: [{ name: 'web', servers: [{ name: 's1', address: '10.10.0.21' }, { name: 's2', address: '10.10.0.22' }] }],
      // The stand-in hosts see the operator come from 203.0.113.253, as the sandbox's do.
      access: { sshSourceCIDRs: ['203.0.113.0/24'] },
      ...spec,
    },
  };
}

export async function startHarness(
  options: { simulator?: SimulatorOptions; settings?: Partial<ControllerSettings> } = {},
): Promise<Harness> {
  const hosts = new StandInHosts();
  const kube = await startKubeEmulator({ logger: log });
  const sim = await startDigitalOceanSimulator({
    delays: { dropletActiveMs: 30, reservedIpActionMs: 150, dropletActionMs: 30 }, ...options.simulator,
    hooks: {
      onDropletCreated: (d) => hosts.add(d), onDropletDeleted: (d) => hosts.remove(d),
      onDropletPowerChanged: (d, change) => hosts.power(d, change),
    },
  });
  hosts.onMaster = (host) => failoverScript(sim, host);
  const kc = new k8s.KubeConfig();
  kc.loadFromString(kubeconfigYAML(kube.url));
  kube.seed([buildCRD() as unknown as Record<string, unknown>]);
  await waitFor('the CRD to serve', async () => (await fetch(`${kube.url}/apis/halb.dev/v1alpha1`)).ok, 10_000, 20);
  const key = generateEd25519KeyPair();
  kube.seed([
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'do-api', namespace: 'default' }, stringData: { token: TOKEN } },
    {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'halb-ssh', namespace: 'default' },
      stringData: { 'ssh-privatekey': key.private },
    },
  ]);
  const objects = createHALoadBalancerInformer(kc, () => undefined, log);
  const secrets = createSecretInformer(kc, () => undefined, log);
  await Promise.all([objects.start(), secrets.start()]);
  let offsetMs = 0;
  const clock = { now: () => new Date(Date.now() + offsetMs), advance: (ms: number) => { offsetMs += ms; } };
  const recorded: RecordedEvent[] = [];
  const events: EventRecorder = {
    record: async (o, type, reason, message) => { recorded.push({ type, reason, message, kind: o.kind, name: o.metadata.name }); },
  };
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const target = { group: 'halb.dev', version: 'v1alpha1', namespace: 'default', plural: 'haloadbalancers' };
  const settings: ControllerSettings = {
    resyncIntervalMs: 30_000, backstopGraceMs: 10_000, reconcileDeadlineMs: 20_000, render: { apiBaseURL: sim.url }, ...options.settings,
  };
  const newContext = (): ControllerContext => contextFor(kc, sim, hosts, objects, secrets, events, clock, settings);
  const harness: Harness = {
    kube, kubeConfig: kc, recorded, sim, hosts, clock, ctx: newContext(),
    create: async (object) => { await api.createNamespacedCustomObject({ ...target, body: object }); },
    patch: async (name, patch) => {
      await api.patchNamespacedCustomObject({ ...target, name, body: patch },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    },
    delete: async (name) => { await api.deleteNamespacedCustomObject({ ...target, name }); },
    get: async (name) => (await api.getNamespacedCustomObject({ ...target, name }).catch(() => undefined)) as HALoadBalancer | undefined,
    async pass(name, signal = new AbortController().signal) {
      await caughtUp(harness, objects, name);
      const eventsBefore = recorded.length;
      const requestsBefore = sim.responses.length;
      const record = (extra: Partial<PassRecord>): PassRecord => ({
        result: {}, ...extra,
        events: recorded.slice(eventsBefore).map((e) => e.reason), eventDetails: recorded.slice(eventsBefore),
        requests: sim.responses.slice(requestsBefore).map((r) => `${r.method} ${r.route} ${r.status}`),
      });
      try {
        return record({ result: await reconcile(harness.ctx, `default/${name}`, signal) });
      } catch (error) {
        return record({ error });
      }
    },
    async passUntil(name, done, max = 40) {
      const records: PassRecord[] = [];
      for (let i = 0; i < max; i++) {
        const record = await harness.pass(name);
        records.push(record);
        if (done(await harness.get(name))) return records;
        const wait = record.error ? 100 : Math.min(record.result.requeueAfterMs ?? 0, 1000);
        await new Promise((r) => setTimeout(r, wait));
      }
      const last = JSON.stringify(records.at(-1), (_k, v: unknown) => (v instanceof Error ? v.message : v));
      throw new Error(`not done after ${max} passes; last: ${last}`);
    },
    restart: () => { harness.ctx = newContext(); },
    async close() {
      objects.stop();
      secrets.stop();
      await sim.close();
      await kube.close();
    },
  };
  return harness;
}

function contextFor(
  kc: k8s.KubeConfig, sim: DigitalOceanSimulator, hosts: StandInHosts, objects: KeyedInformer, secrets: KeyedInformer<k8s.V1Secret>,
  events: EventRecorder, clock: Clock, settings: ControllerSettings): ControllerContext {
  const providers = new Map<string, DigitalOceanProvider>();
  return {
    objects: {
      get: (namespace, name) => objects.get(namespace, name) as StoredHALoadBalancer | undefined,
      list: () => objects.objects() as unknown as StoredHALoadBalancer[],
    },
    secrets: { get: (namespace, name) => secrets.get(namespace, name), list: () => secrets.objects() },
    kube: createKubeWriter(kc),
    cloud: (token) => {
      if (!providers.has(token)) {
        providers.set(token, new DigitalOceanProvider({
          token, endpoint: sim.endpoint, backoff: { baseMs: 10, maxMs: 100 }, rateLimitReserve: 0, maxAttempts: 3,
        }));
      }
      return providers.get(token)!;
    },
    hosts, events, metrics: new OperatorMetrics({ processMetrics: false }), clock, log, settings,
    shared: new SharedReads({ clock, floorMs: 0, backstopGraceMs: settings.backstopGraceMs }),
    loginKeys: new LoginKeys(), firewallGenerations: new FirewallGenerations(), metricsEndpoints: new AppliedMetricsEndpoints(),
  };
}

/** Waits until the informer holds what the server holds for the object (or knows it is gone). */
async function caughtUp(harness: Harness, objects: KeyedInformer, name: string): Promise<void> {
  const server = await harness.get(name);
  await waitFor(`the cache to hold default/${name}`, () => {
    const cached = objects.get('default', name);
    return server ? cached?.metadata?.resourceVersion === server.metadata.resourceVersion : cached === undefined;
  }, 5000, 5);
}

/** What halb's failover script does on a new MASTER: move the object's reserved IP to it. */
function failoverScript(sim: DigitalOceanSimulator, host: StandInHost): void {
  const owner = host.droplet.tags.find((t) => t.startsWith('halb-uid-'));
  for (const r of sim.state.listReservedIps() as { ip: string; droplet: { id: number; tags: string[] } | null; locked: boolean }[]) {
    if (r.droplet && r.droplet.id !== host.droplet.id && r.droplet.tags.includes(owner ?? '') && !r.locked) {
      sim.state.reservedIpAction(r.ip, { type: 'assign', droplet_id: host.droplet.id }, 'reserved_ip');
    }
  }
}

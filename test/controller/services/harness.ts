// The Service controller in-process, on the HALoadBalancer controller's harness (the emulator,
// the simulator, stand-in hosts): real informers on Services, Nodes and the Service's
// HALoadBalancers fill the caches; a test drives one Service pass at a time and the
// HALoadBalancer passes it needs, and reads the Events, the writes and the status.
import * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import { createServiceInformers, serviceContext, type ServiceInformers } from '../../../src/controller/services/controller.ts';
import { createServiceWriter } from '../../../src/controller/services/kube.ts';
import { reconcileService, type ServicePassResult } from '../../../src/controller/services/reconciler.ts';
import { defaultServiceDefaults, type ServiceDefaults } from '../../../src/controller/services/settings.ts';
import { waitFor } from '../../wait.ts';
import { startHarness, type Harness, type RecordedEvent } from '../harness.ts';

export const CLASS = 'halb.dev/haproxy';
const log = pino({ level: process.env.HALB_LOG_LEVEL ?? 'silent' });

export interface ServicePassRecord {
  result: ServicePassResult;
  events: RecordedEvent[];
  error?: unknown;
}

export interface ServiceHarness extends Harness {
  /** Keys the Service informers enqueued since the last call (what a queue would have run). */
  enqueued(): string[];
  createService(name: string, spec?: Record<string, unknown>, annotations?: Record<string, string>): Promise<void>;
  patchService(name: string, patch: Record<string, unknown>): Promise<void>;
  deleteService(name: string): Promise<void>;
  service(name: string): Promise<k8s.V1Service | undefined>;
  /** A Ready node with an InternalIP, as a kubelet writes it. */
  addNode(name: string, internalIP: string, labels?: Record<string, string>): Promise<void>;
  patchNode(name: string, patch: Record<string, unknown>, status?: boolean): Promise<void>;
  /** One Service pass, after the caches caught up with the server. */
  servicePass(name: string): Promise<ServicePassRecord>;
  /** Service passes (and passes of its HALoadBalancer) until `done` holds. */
  converge(name: string, done: (service: k8s.V1Service | undefined) => boolean, max?: number): Promise<void>;
}

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

export async function startServiceHarness(defaults: Partial<ServiceDefaults> = {}): Promise<ServiceHarness> {
  const base = await startHarness();
  const core = base.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const queued: string[] = [];
  const settings = { ...defaultServiceDefaults, serviceClass: CLASS, ...defaults };
  const informers: ServiceInformers = createServiceInformers(base.kubeConfig, (key) => queued.push(key),
    { defaults: settings }, log);
  await Promise.all([informers.nodes.start(), informers.balancers.start(), informers.services.start()]);
  const ctx = () => serviceContext(base.ctx, informers, createServiceWriter(base.kubeConfig), settings);
  const getService = (name: string) => core.readNamespacedService({ name, namespace: 'default' }).catch(() => undefined);
  const caughtUp = async (name: string) => {
    const server = await getService(name);
    await waitFor(`the Service cache to hold default/${name}`, () => {
      const cached = informers.services.get('default', name);
      return server ? cached?.metadata?.resourceVersion === server.metadata?.resourceVersion : cached === undefined;
    }, 5000, 5);
    // And the HALoadBalancer the pass will read.
    const balancer = await base.get(name);
    await waitFor(`the HALoadBalancer caches to hold default/${name}`, () => {
      const owned = informers.balancers.get('default', name);
      const all = base.ctx.objects.get('default', name);
      if (!balancer) return !owned && !all;
      return all?.metadata.resourceVersion === balancer.metadata.resourceVersion
        && (!balancer.metadata.labels?.['halb.dev/service'] || owned?.metadata?.resourceVersion === balancer.metadata.resourceVersion);
    }, 5000, 5);
  };
  const harness: ServiceHarness = {
    ...base,
    enqueued: () => queued.splice(0),
    async createService(name, spec = {}, annotations = {}) {
      await core.createNamespacedService({
        namespace: 'default',
        body: {
          metadata: { name, annotations },
          spec: { type: 'LoadBalancer', loadBalancerClass: CLASS, selector: { app: name }, ports: [{ name: 'http', port: 80,
            targetPort: 8080 as never }], ...spec },
        },
      });
    },
    async patchService(name, patch) {
      await core.patchNamespacedService({ name, namespace: 'default', body: patch }, mergePatch);
    },
    async deleteService(name) {
      await core.deleteNamespacedService({ name, namespace: 'default' });
    },
    service: getService,
    async addNode(name, internalIP, labels = {}) {
      await core.createNode({
        body: {
          metadata: { name, labels: { 'topology.kubernetes.io/region': 'nyc3', ...labels } },
          spec: { providerID: `digitalocean://${name}` },
          status: { conditions: [{ type: 'Ready', status: 'True' } as k8s.V1NodeCondition], addresses: [{ type: 'InternalIP',
            address: internalIP }] },
        },
      });
    },
    async patchNode(name, patch, status = false) {
      if (status) await core.patchNodeStatus({ name, body: patch }, mergePatch);
      else await core.patchNode({ name, body: patch }, mergePatch);
    },
    async servicePass(name) {
      await caughtUp(name);
      const before = base.recorded.length;
      try {
        const result = await reconcileService(ctx(), `default/${name}`, new AbortController().signal);
        return { result, events: base.recorded.slice(before) };
      } catch (error) {
        return { result: {}, events: base.recorded.slice(before), error };
      }
    },
    async converge(name, done, max = 80) {
      for (let i = 0; i < max; i++) {
        const record = await harness.servicePass(name);
        if (record.error) throw record.error;
        if (done(await getService(name))) return;
        // The HALoadBalancer's pass says how long its cloud work needs; the Service's only when it waits itself.
        const balancer = (await base.get(name)) ? await base.pass(name) : undefined;
        const waits = [record.result.requeueAfterMs, balancer?.result.requeueAfterMs].filter((w): w is number => w !== undefined);
        await new Promise((r) => setTimeout(r, Math.min(waits.length ? Math.min(...waits) : 50, 500)));
      }
      throw new Error(`Service ${name} did not converge in ${max} passes`);
    },
    async close() {
      informers.services.stop();
      informers.nodes.stop();
      informers.balancers.stop();
      await base.close();
    },
  };
  return harness;
}

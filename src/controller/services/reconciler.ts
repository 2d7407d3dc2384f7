// One reconcile of one Service, level-based and keyed like the HALoadBalancer's: the Service,
// the Nodes and its HALoadBalancer come from the informers' caches; the pass works out the
// HALoadBalancer the Service asks for (desired.ts, pure), writes it when it differs (one write),
// and reports back on the Service (status.ts, pure): the reserved IP once the load balancer
// serves, a condition, and the Events DigitalOcean's cloud controller uses. The HALoadBalancer's
// own reconciler does the cloud and host work. Services without the class are never touched.
import type * as k8s from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../../log.ts';
import { withDefaults } from '../../api/defaults.ts';
import { API_VERSION, KIND } from '../../api/schema.ts';
import type { HALoadBalancerInput, StoredHALoadBalancer } from '../../api/types.ts';
import type { Clock } from '../context.ts';
import type { EventRecorder, EventSubject } from '../events.ts';
import type { ObjectCache } from '../kube.ts';
import { desiredLoadBalancer, loadBalancerName, type Desired } from './desired.ts';
import type { ServiceWriter } from './kube.ts';
import { SERVICE_FINALIZER, type ServiceDefaults } from './settings.ts';
import {
  LOAD_BALANCER_CONDITION, balancerOutcome, currentCondition, problemsMessage, serviceReasons, serviceStatus, statusChanged,
  type ConditionOutcome, type Ingress,
} from './status.ts';

/** Labels the Service controller puts on its HALoadBalancers; its informer selects on the first. */
export const SERVICE_LABEL = 'halb.dev/service';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'halb-service-controller';

/** What a Service reconcile reads and writes, shared with the HALoadBalancer controller where it can be. */
export interface ServiceContext {
  services: ObjectCache<k8s.V1Service>;
  nodes: { list(): k8s.V1Node[] };
  /** The HALoadBalancer controller's cache. */
  balancers: ObjectCache<StoredHALoadBalancer>;
  writer: ServiceWriter;
  events: EventRecorder;
  clock: Clock;
  log: Logger;
  defaults: ServiceDefaults;
}

export interface ServicePassResult { requeueAfterMs?: number }

/** How soon to look again while the HALoadBalancer is being deleted (its finalizer cleans up the cloud). */
const DELETION_POLL_MS = 1000;
/** How soon to look again at a name another object holds. */
const NAME_TAKEN_RECHECK_MS = 60_000;

/** Whether this controller serves the Service: type LoadBalancer with our class. */
export function servedBy(service: k8s.V1Service, serviceClass: string): boolean {
  return service.spec?.type === 'LoadBalancer' && service.spec.loadBalancerClass === serviceClass;
}

const subject = (service: k8s.V1Service): EventSubject => ({
  apiVersion: 'v1', kind: 'Service',
  metadata: {
    name: service.metadata?.name ?? '', namespace: service.metadata?.namespace ?? 'default',
    ...(service.metadata?.uid ? { uid: service.metadata.uid } : {}),
    ...(service.metadata?.resourceVersion ? { resourceVersion: service.metadata.resourceVersion } : {}),
  },
});

const ownedBy = (balancer: StoredHALoadBalancer, service: k8s.V1Service) =>
  balancer.metadata.ownerReferences?.some((r) => r.uid === service.metadata?.uid) ?? false;

export async function reconcileService(ctx: ServiceContext, key: string, signal: AbortSignal): Promise<ServicePassResult> {
  const slash = key.indexOf('/');
  const service = ctx.services.get(key.slice(0, slash), key.slice(slash + 1));
  if (!service) return {};
  const pass = { ...ctx, log: ctx.log.child({ service: key }) };
  const finalized = service.metadata?.finalizers?.includes(SERVICE_FINALIZER) ?? false;
  if (!servedBy(service, ctx.defaults.serviceClass) || service.metadata?.deletionTimestamp) {
    // Not (or no longer) ours: clean up only what we made, which the finalizer marks.
    return finalized ? cleanUp(pass, service, signal) : {};
  }
  return converge(pass, service, finalized, signal);
}

async function converge(ctx: ServiceContext, service: k8s.V1Service, finalized: boolean, signal: AbortSignal): Promise<ServicePassResult> {
  const namespace = service.metadata?.namespace ?? 'default';
  const desired = desiredLoadBalancer(service, ctx.nodes.list(), ctx.defaults);
  const name = desired.kind === 'desired' ? desired.name : loadBalancerName(service.metadata?.name ?? '');
  const balancer = ctx.balancers.get(namespace, name);
  if (balancer && !ownedBy(balancer, service) && balancer.metadata.deletionTimestamp) {
    // A Service of the same name, deleted a moment ago: its load balancer is still going.
    const message = `HALoadBalancer ${namespace}/${name} of an earlier Service of this name is being deleted: waiting`;
    await report(ctx, service, { status: 'False', reason: serviceReasons.provisioning, message }, []);
    return { requeueAfterMs: DELETION_POLL_MS };
  }
  if (balancer && !ownedBy(balancer, service)) {
    const message = `HALoadBalancer ${namespace}/${name} exists and is not this Service's: rename one of them`;
    await report(ctx, service, { status: 'False', reason: serviceReasons.nameTaken, message }, []);
    return { requeueAfterMs: NAME_TAKEN_RECHECK_MS };
  }
  if (desired.kind !== 'desired') {
    // Left as it is: nothing is created, and a load balancer that exists keeps its last spec.
    await report(ctx, service, refusal(desired), publishedIngress(service, balancer));
    return {};
  }
  // The finalizer first, so nothing is created that deleting the Service would not clean up.
  if (!finalized) {
    await ctx.writer.setServiceFinalizers(service, [...(service.metadata?.finalizers ?? []), SERVICE_FINALIZER]);
    return { requeueAfterMs: 0 };
  }
  signal.throwIfAborted();
  const wrote = await writeBalancer(ctx, service, desired, balancer);
  const applying = `HALoadBalancer ${name}: applying the current spec`;
  const outcome: ConditionOutcome = wrote || !balancer ? { status: 'False', reason: serviceReasons.provisioning, message: applying }
    : balancerOutcome(balancer);
  const serving = !wrote && balancer && balancerOutcome(balancer).serving;
  const ingress = serving ? [{ ip: balancer.status!.floatingIP!, ipMode: desired.ipMode }]
    : publishedIngress(service, balancer, desired.ipMode);
  await report(ctx, service, outcome, ingress);
  return {};
}

function refusal(desired: Exclude<Desired, { kind: 'desired' }>): ConditionOutcome {
  if (desired.kind === 'invalid') return { status: 'False', reason: serviceReasons.invalid, message: problemsMessage(desired.problems) };
  return { status: 'False', reason: desired.reason, message: desired.message };
}

/** The address already published stays while the load balancer converges (it still holds the IP). */
function publishedIngress(service: k8s.V1Service, balancer: StoredHALoadBalancer | undefined, ipMode?: Ingress['ipMode']): Ingress[] {
  const floating = balancer?.status?.floatingIP;
  return (service.status?.loadBalancer?.ingress ?? [])
    .filter((i) => i.ip && i.ip === floating)
    .map((i) => ({ ip: i.ip!, ipMode: ipMode ?? (i.ipMode === 'Proxy' ? 'Proxy' : 'VIP') }));
}

/** Creates or replaces the HALoadBalancer when its spec or labels differ; true when it wrote. */
async function writeBalancer(ctx: ServiceContext, service: k8s.V1Service, desired: Extract<Desired, { kind: 'desired' }>,
  balancer: StoredHALoadBalancer | undefined): Promise<boolean> {
  const next: HALoadBalancerInput = {
    apiVersion: API_VERSION, kind: KIND,
    metadata: {
      name: desired.name, namespace: service.metadata?.namespace ?? 'default',
      labels: { [SERVICE_LABEL]: service.metadata?.name ?? '', [MANAGED_BY_LABEL]: MANAGED_BY },
      // Garbage-collected with the Service, should anything delete it without its finalizer.
      ownerReferences: [{
        apiVersion: 'v1', kind: 'Service', name: service.metadata?.name ?? '', uid: service.metadata?.uid ?? '', controller: true,
          blockOwnerDeletion: true,
      }],
    },
    spec: desired.spec,
  };
  const ports = desired.spec.frontends.map((f) => (f.tls ? `${f.port}+${f.tls.port}/tls` : `${f.port}/${f.protocol ?? 'http'}`)).join(', ');
  const backends = desired.nodes.length ? `nodes ${desired.nodes.join(', ')}` : `droplets tagged ${desired.spec.backends[0]?.dropletTag}`;
  if (!balancer) {
    await ctx.events.record(subject(service), 'Normal', 'EnsuringLoadBalancer',
      `Ensuring load balancer: creating HALoadBalancer ${desired.name} (${ports}; ${backends})`);
    await ctx.writer.createBalancer(next);
    ctx.log.info({ halb: desired.name, ports, backends }, 'created load balancer');
    return true;
  }
  const labelsMatch = Object.entries(next.metadata.labels ?? {}).every(([k, v]) => balancer.metadata.labels?.[k] === v);
  if (labelsMatch && isDeepStrictEqual(withDefaults(balancer.spec), withDefaults(desired.spec))) return false;
  await ctx.events.record(subject(service), 'Normal', 'EnsuringLoadBalancer',
    `Ensuring load balancer: updating HALoadBalancer ${desired.name} (${ports}; ${backends})`);
  await ctx.writer.replaceBalancer(balancer, next);
  ctx.log.info({ halb: desired.name, ports, backends }, 'updated load balancer');
  return true;
}

/** Writes status when it changed, with the Events for what a person should notice. */
async function report(ctx: ServiceContext, service: k8s.V1Service, outcome: ConditionOutcome, ingress: Ingress[]): Promise<void> {
  const before = currentCondition(service);
  const status = serviceStatus(service, outcome, ingress, ctx.clock.now().toISOString().replace(/\.\d+Z$/, 'Z'));
  if (!statusChanged(service, status)) return;
  const changed = before?.status !== outcome.status || before.reason !== outcome.reason || before.message !== outcome.message;
  if (changed && outcome.status === 'True') {
    await ctx.events.record(subject(service), 'Normal', 'EnsuredLoadBalancer',
      `Ensured load balancer: ${ingress.map((i) => `${i.ip} (${i.ipMode})`).join(', ')}`);
  } else if (changed && outcome.reason !== serviceReasons.provisioning) {
    await ctx.events.record(subject(service), 'Warning', 'SyncLoadBalancerFailed', `Error syncing load balancer: ${outcome.message}`);
  }
  await ctx.writer.patchServiceStatus(service, status);
  ctx.log.info({ status: outcome.status, reason: outcome.reason, ingress: ingress.map((i) => i.ip) }, 'reported on service');
}

/** Deletes the HALoadBalancer (its own finalizer removes the droplets, and the reserved IP under
 *  Delete), waits for it to go, then lets the Service go. */
async function cleanUp(ctx: ServiceContext, service: k8s.V1Service, signal: AbortSignal): Promise<ServicePassResult> {
  const namespace = service.metadata?.namespace ?? 'default';
  const balancer = ctx.balancers.get(namespace, loadBalancerName(service.metadata?.name ?? ''));
  if (balancer && ownedBy(balancer, service)) {
    if (!balancer.metadata.deletionTimestamp) {
      await ctx.events.record(subject(service), 'Normal', 'DeletingLoadBalancer',
        `Deleting load balancer: HALoadBalancer ${balancer.metadata.name}`);
      await ctx.writer.deleteBalancer(balancer);
      ctx.log.info({ halb: balancer.metadata.name }, 'deleting load balancer');
    }
    return { requeueAfterMs: DELETION_POLL_MS };
  }
  signal.throwIfAborted();
  if (!service.metadata?.deletionTimestamp && currentCondition(service)) {
    // The Service stays (its type or class changed): our condition goes; the API server has
    // already cleared status.loadBalancer for a Service that is no longer a LoadBalancer.
    const conditions = (service.status?.conditions ?? []).filter((c) => c.type !== LOAD_BALANCER_CONDITION);
    await ctx.writer.patchServiceStatus(service, { ingress: [], conditions });
    return { requeueAfterMs: 0 };
  }
  await ctx.writer.setServiceFinalizers(service, (service.metadata?.finalizers ?? []).filter((f) => f !== SERVICE_FINALIZER));
  await ctx.events.record(subject(service), 'Normal', 'DeletedLoadBalancer', 'Deleted load balancer');
  ctx.log.info('deleted load balancer');
  return {};
}

// The Service controller beside the HALoadBalancer controller, in the same process and
// leadership: informers on Services, Nodes and its own HALoadBalancers only enqueue Service keys;
// its own keyed work queue runs reconcileService. A Node event enqueues every Service of the
// class (their backends follow the nodes); a HALoadBalancer event enqueues the Service it belongs
// to (its status carries the reserved IP and readiness back).
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../../log.ts';
import { GROUP, PLURAL, VERSION } from '../../api/schema.ts';
import type { StoredHALoadBalancer } from '../../api/types.ts';
import type { ControllerContext } from '../context.ts';
import { createKeyedInformer, objectKey, type KeyedInformer } from '../informer.ts';
import { WorkQueue } from '../workqueue.ts';
import { eligibleNodes } from './desired.ts';
import { createServiceWriter, type ServiceWriter } from './kube.ts';
import { SERVICE_LABEL, reconcileService, servedBy, type ServiceContext } from './reconciler.ts';
import { EXCLUDE_LABEL, REGION_LABEL, SERVICE_FINALIZER, type ServiceDefaults } from './settings.ts';

export interface ServiceControllerOptions {
  defaults: ServiceDefaults;
  concurrency: number;
  deadlineMs: number;
  /** How often every Service of the class is looked at again, as the HALoadBalancers are: a
   *  missed event (a watch restarted between two changes) costs one interval, not forever. */
  resyncIntervalMs: number;
  /** Watch one namespace; unset: all (Nodes are cluster-wide either way). */
  namespace?: string;
}

export interface RunningServiceController {
  synced(): boolean;
  stop(): Promise<void>;
}

/** The caches a Service reconcile reads. */
export interface ServiceInformers {
  services: KeyedInformer<k8s.V1Service>;
  nodes: KeyedInformer<k8s.V1Node>;
  balancers: KeyedInformer;
}

/** A Service reconcile's context from the controller's (Events, clock, log, the HALoadBalancer cache). */
export function serviceContext(ctx: ControllerContext, informers: ServiceInformers, writer: ServiceWriter,
  defaults: ServiceDefaults): ServiceContext {
  const owned = (namespace: string, name: string) => informers.balancers.get(namespace, name) as StoredHALoadBalancer | undefined;
  return {
    services: { get: (namespace, name) => informers.services.get(namespace, name), list: () => informers.services.objects() },
    nodes: { list: () => informers.nodes.objects() },
    // Its own informer first (it notified this pass); the HALoadBalancer controller's cache for
    // objects that are not a Service's, whose name may be taken.
    balancers: { get: (namespace, name) => owned(namespace, name) ?? ctx.objects.get(namespace, name), list: () => ctx.objects.list() },
    writer, events: ctx.events, clock: ctx.clock, log: ctx.log.child({ controller: 'services' }), defaults,
  };
}

/** What of a Node moves its Services' backends (not its heartbeats). */
function nodeSignature(node: k8s.V1Node): string {
  const eligible = eligibleNodes([node]).map((n) => n.address).join('');
  return `${eligible}|${node.metadata?.labels?.[REGION_LABEL] ?? ''}|${node.metadata?.labels?.[EXCLUDE_LABEL] ?? '-'}`;
}

/** What of a Service a pass acts on: not the status this controller writes. */
function serviceSignature(service: k8s.V1Service): string {
  const meta = service.metadata ?? {};
  return JSON.stringify([service.spec, meta.annotations, meta.finalizers, meta.deletionTimestamp ? 'deleting' : '', meta.uid]);
}

export function createServiceInformers(kc: k8s.KubeConfig, enqueue: (key: string) => void,
  options: Pick<ServiceControllerOptions, 'defaults' | 'namespace'>,
  log: Logger): ServiceInformers {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const ns = options.namespace;
  const serviceClass = options.defaults.serviceClass;
  const interesting = (s: k8s.V1Service) => servedBy(s, serviceClass) || (s.metadata?.finalizers?.includes(SERVICE_FINALIZER) ?? false);
  const seenServices = new Map<string, string>();
  const services = createKeyedInformer<k8s.V1Service>(kc, ns ? `/api/v1/namespaces/${ns}/services` : '/api/v1/services',
    () => (ns ? core.listNamespacedService({ namespace: ns }) : core.listServiceForAllNamespaces()), (service, event) => {
      const key = objectKey(service);
      const signature = serviceSignature(service);
      if (event === 'delete') seenServices.delete(key);
      else if (event === 'update' && seenServices.get(key) === signature) return;
      else seenServices.set(key, signature);
      // Services without the class are never touched, not even queued.
      if (interesting(service)) enqueue(key);
    }, log.child({ informer: 'services' }), options);
  const seenNodes = new Map<string, string>();
  const nodes = createKeyedInformer<k8s.V1Node>(kc, '/api/v1/nodes', () => core.listNode(), (node, event) => {
    const name = node.metadata?.name ?? '';
    const signature = event === 'delete' ? 'gone' : nodeSignature(node);
    if (seenNodes.get(name) === signature) return;
    if (event === 'delete') seenNodes.delete(name);
    else seenNodes.set(name, signature);
    for (const service of services.objects()) if (servedBy(service, serviceClass)) enqueue(objectKey(service));
  }, log.child({ informer: 'nodes' }), {});
  const selector = SERVICE_LABEL;
  const path = ns ? `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}` : `/apis/${GROUP}/${VERSION}/${PLURAL}`;
  const listBalancers = () => (ns
    ? custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL, labelSelector: selector })
    : custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL,
      labelSelector: selector })) as Promise<k8s.KubernetesListObject<k8s.KubernetesObject>>;
  const balancers = createKeyedInformer(kc, path, listBalancers, (balancer) => {
    const service = balancer.metadata?.labels?.[SERVICE_LABEL];
    if (service) enqueue(`${balancer.metadata?.namespace ?? 'default'}/${service}`);
  }, log.child({ informer: 'service-haloadbalancers' }), { ...options, labelSelector: selector });
  return { services, nodes, balancers };
}

export async function startServiceController(kc: k8s.KubeConfig, ctx: ControllerContext, options: ServiceControllerOptions,
  log: Logger): Promise<RunningServiceController> {
  const queue = new WorkQueue({
    concurrency: options.concurrency,
    deadlineMs: options.deadlineMs,
    onError: (key, err, retryInMs) => log.warn({ service: key, err, retryInMs }, 'service reconcile failed; retrying'),
  });
  const informers = createServiceInformers(kc, (key) => queue.add(key), options, log);
  const serviceCtx = serviceContext(ctx, informers, createServiceWriter(kc), options.defaults);
  queue.start((key, signal) => reconcileService(serviceCtx, key, signal));
  // Nodes and load balancers first: a Service reconcile reads them.
  await informers.nodes.start();
  await informers.balancers.start();
  await informers.services.start();
  const served = () => informers.services.objects().filter((s) => servedBy(s, options.defaults.serviceClass));
  const resyncTimer = setInterval(() => {
    for (const service of served()) queue.addAfter(objectKey(service), 0);
  }, options.resyncIntervalMs);
  resyncTimer.unref();
  log.info({ serviceClass: options.defaults.serviceClass }, 'started service controller');
  return {
    synced: () => informers.services.synced() && informers.nodes.synced() && informers.balancers.synced(),
    async stop() {
      clearInterval(resyncTimer);
      informers.services.stop();
      informers.nodes.stop();
      informers.balancers.stop();
      await queue.shutdown();
    },
  };
}

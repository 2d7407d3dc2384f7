// An informer on HALoadBalancers that does not stay dead. client-node's informer stops for good
// on any error other than a 410 (a failed list, a dropped connection), and its own stop() is
// delivered as an error too, so a naive restart-on-error resurrects a stopped informer. This
// wrapper restarts with backoff and keeps its own `stopped` flag. Every event only enqueues the
// object's key: the reconciler re-reads the object itself.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { dayTwoSignature } from '../api/day-two.ts';
import { GROUP, PLURAL, VERSION } from '../api/schema.ts';
import { backoffDelay } from '../backoff.ts';

export interface KeyedInformer<T extends k8s.KubernetesObject = k8s.KubernetesObject> {
  start(): Promise<void>;
  stop(): void;
  /** True once the first list has completed since the last (re)start. */
  synced(): boolean;
  /** Keys of every object the cache holds. */
  keys(): string[];
  /** The cached objects. */
  objects(): T[];
  /** One cached object. */
  get(namespace: string, name: string): T | undefined;
}

export function objectKey(object: k8s.KubernetesObject): string {
  return `${object.metadata?.namespace ?? 'default'}/${object.metadata?.name ?? ''}`;
}

export interface InformerOptions {
  /** Watch one namespace; unset watches all. */
  namespace?: string;
  /** Watch only objects with these labels (a label selector). */
  labelSelector?: string;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export function createHALoadBalancerInformer(
  kc: k8s.KubeConfig, enqueue: (key: string) => void, log: Logger, options: InformerOptions = {},
): KeyedInformer {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const path = options.namespace
    ? `/apis/${GROUP}/${VERSION}/namespaces/${options.namespace}/${PLURAL}`
    : `/apis/${GROUP}/${VERSION}/${PLURAL}`;
  const list = () => (options.namespace
    ? api.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: options.namespace, plural: PLURAL })
    : api.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })
  ) as Promise<k8s.KubernetesListObject<k8s.KubernetesObject>>;
  // The operator's own status writes come back as updates; they change nothing to act on, so
  // only a new generation, a deletion, a finalizer change or a day-two annotation (a preferred
  // node, a node in maintenance) enqueues (the resync covers the rest).
  const seen = new Map<string, string>();
  return createKeyedInformer(kc, path, list, (obj, event) => {
    const key = objectKey(obj);
    const meta = obj.metadata ?? {};
    const signature = `${meta.generation}|${meta.deletionTimestamp ?? ''}|${(meta.finalizers ?? []).join(',')}|${dayTwoSignature(meta)}`;
    if (event === 'delete') seen.delete(key);
    else if (event === 'update' && seen.get(key) === signature) return;
    else seen.set(key, signature);
    enqueue(key);
  }, log.child({ informer: PLURAL }), options);
}

/**
 * An informer on Secrets that reports the key of each Secret that changes, so the objects that
 * name it are reconciled at once (a rotated certificate or token reaches the nodes in seconds).
 */
export function createSecretInformer(
  kc: k8s.KubeConfig, onSecret: (key: string) => void, log: Logger, options: InformerOptions = {},
): KeyedInformer<k8s.V1Secret> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const path = options.namespace ? `/api/v1/namespaces/${options.namespace}/secrets` : '/api/v1/secrets';
  const list = () => (options.namespace ? core.listNamespacedSecret({ namespace: options.namespace }) : core.listSecretForAllNamespaces());
  return createKeyedInformer<k8s.V1Secret>(kc, path, list, (obj) => onSecret(objectKey(obj)), log.child({ informer: 'secrets' }), options);
}

/** The cache holds the object the handlers get: without its managedFields (a few KB each that
 *  nothing here reads; controller-runtime's TransformStripManagedFields), 1,000 cost MiBs less. */
function withoutManagedFields<T extends k8s.KubernetesObject>(obj: T): T {
  if (obj.metadata) delete obj.metadata.managedFields;
  return obj;
}

/** An informer of any kind (the Service controller's Services, Nodes and HALoadBalancers too). */
export function createKeyedInformer<T extends k8s.KubernetesObject>(
  kc: k8s.KubeConfig, path: string, list: () => Promise<k8s.KubernetesListObject<T>>,
  notify: (obj: T, event: 'add' | 'update' | 'delete' | 'resync') => void, log: Logger, options: InformerOptions,
): KeyedInformer<T> {
  const informer = k8s.makeInformer<T>(kc, path, list, options.labelSelector);
  let stopped = true;
  let isSynced = false;
  let failures = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  const on = (event: 'add' | 'update' | 'delete') => (obj: T) => {
    failures = 0;
    notify(withoutManagedFields(obj), event);
  };
  informer.on('add', on('add'));
  informer.on('update', on('update'));
  informer.on('delete', on('delete'));
  informer.on('connect', () => { isSynced = false; });
  const scheduleRestart = (err: unknown) => {
    isSynced = false;
    if (stopped || restartTimer) return; // stop() aborts the request, which arrives as an error
    failures++;
    const delay = backoffDelay(failures - 1, { baseMs: options.baseDelayMs ?? 1000, maxMs: options.maxDelayMs ?? 30_000 });
    log.warn({ err, retryInMs: delay }, 'informer stopped; restarting');
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      void begin();
    }, delay);
  };
  informer.on('error', scheduleRestart);

  async function begin(): Promise<void> {
    if (stopped) return;
    try {
      await informer.start();
      // stop() during the first list leaves the watch that start() then opened: close it.
      if (stopped) {
        void informer.stop();
        return;
      }
      isSynced = true;
      // After a restart the cache may have missed deletes and changes: look at everything.
      for (const obj of informer.list()) notify(obj, 'resync');
    } catch (err) {
      scheduleRestart(err); // a no-op when the 'error' event already scheduled it
    }
  }

  return {
    async start() {
      stopped = false;
      await begin();
    },
    stop() {
      stopped = true;
      clearTimeout(restartTimer);
      restartTimer = undefined;
      void informer.stop();
    },
    synced: () => isSynced,
    keys: () => informer.list().map(objectKey),
    objects: () => [...informer.list()],
    get: (namespace, name) => informer.get(name, namespace),
  };
}

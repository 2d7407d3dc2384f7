// The operator process: leader election gates the controller; the informers and a periodic
// resync only enqueue keys; workers reconcile keys with per-key backoff, each pass with its own
// AbortSignal. Losing the Lease or SIGTERM aborts the passes in flight, then (on SIGTERM) the
// Lease is released so a standby takes over at once.
import * as k8s from '@kubernetes/client-node';
import { hostname } from 'node:os';
import type { Logger } from '../log.ts';
import { withDefaults } from '../api/defaults.ts';
import { referencedSecrets } from '../api/derived.ts';
import type { StoredHALoadBalancer } from '../api/types.ts';
import { DigitalOceanProvider } from '../digitalocean/provider.ts';
import { pooledSshHostConnector, type HostConnector } from '../hosts/connector.ts';
import { SessionPool } from '../hosts/pool.ts';
import { FirewallGenerations } from './backend-firewalls.ts';
import { systemClock, type Clock, type ControllerContext, type ControllerSettings } from './context.ts';
import { createEventRecorder } from './events.ts';
import { createHALoadBalancerInformer, createSecretInformer, type KeyedInformer } from './informer.ts';
import { createKubeWriter } from './kube.ts';
import { AppliedMetricsEndpoints } from './metrics-endpoints.ts';
import { createLeaderElector, type LeaderElector } from './leader.ts';
import { reconcile } from './reconciler.ts';
import { startServiceController, type RunningServiceController } from './services/controller.ts';
import type { ServiceDefaults } from './services/settings.ts';
import { SharedReads } from './shared-reads.ts';
import { LoginKeys } from './ssh-access.ts';
import { OperatorMetrics, startTelemetryServer } from './telemetry.ts';
import { VrrpWatches } from './vrrp-watch.ts';
import { WorkQueue } from './workqueue.ts';

export interface OperatorOptions extends Omit<ControllerSettings, 'reconcileDeadlineMs'> {
  /** DigitalOcean API base for the operator, with /v2 (default https://api.digitalocean.com/v2). */
  doEndpoint?: string;
  sshTimeoutMs?: number;
  /** SSH sessions kept open to nodes at most (default DEFAULT_MAX_SESSIONS, src/hosts/pool.ts). */
  maxSshSessions?: number;
  /** Shared DigitalOcean inventory is reused at least this long across objects (default 2000). */
  inventoryMaxAgeMs?: number;
  /** The longest one reconcile may take (default 120 s). */
  reconcileDeadlineMs?: number;
  /** Watch one namespace; unset: all. */
  namespace?: string;
  concurrency: number;
  /** Port of /healthz, /readyz, /metrics; 0 picks one, -1 serves none. */
  metricsPort: number;
  leaderElection: boolean;
  leaseNamespace: string;
  leaseName: string;
  identity?: string;
  /** Also serve Services of type LoadBalancer with this class (the Service controller). */
  services?: ServiceDefaults;
}

/** What tests replace: the nodes (a stand-in host) and the clock. */
export interface OperatorSeams {
  hosts?: HostConnector;
  clock?: Clock;
}

export interface RunningOperator {
  metricsURL?: string;
  isLeader(): boolean;
  stop(): Promise<void>;
}

const DEFAULT_DEADLINE_MS = 120_000;

/** One DigitalOcean provider per token: its rate-limit pacing is the token's. */
function providerCache(options: OperatorOptions, log: Logger): (token: string) => DigitalOceanProvider {
  const providers = new Map<string, DigitalOceanProvider>();
  return (token) => {
    let provider = providers.get(token);
    if (!provider) {
      const endpoint = options.doEndpoint ? { endpoint: options.doEndpoint } : {};
      provider = new DigitalOceanProvider({ token, ...endpoint, logger: log.child({ component: 'digitalocean' }) });
      providers.set(token, provider);
    }
    return provider;
  };
}

interface Informers {
  objects: KeyedInformer;
  secrets: KeyedInformer<k8s.V1Secret>;
}

/** The informer holds HALoadBalancers as the API server sends them. */
const asHALoadBalancer = (object: k8s.KubernetesObject | undefined) => object as StoredHALoadBalancer | undefined;

/** The controller's context around two informers' caches; it outlives leaderships. */
function controllerContext(kc: k8s.KubeConfig, options: OperatorOptions, seams: OperatorSeams, informers: () => Informers | undefined,
  metrics: OperatorMetrics, log: Logger): ControllerContext {
  const clock = seams.clock ?? systemClock;
  const objects = {
    get: (namespace: string, name: string) => asHALoadBalancer(informers()?.objects.get(namespace, name)),
    list: () => (informers()?.objects.objects() ?? []).map((o) => asHALoadBalancer(o)!),
  };
  const secrets = {
    get: (namespace: string, name: string) => informers()?.secrets.get(namespace, name),
    list: () => informers()?.secrets.objects() ?? [],
  };
  const { doEndpoint: _endpoint, sshTimeoutMs, maxSshSessions, inventoryMaxAgeMs, namespace: _namespace, concurrency: _concurrency,
    ...rest } = options;
  const settings: ControllerSettings = {
    resyncIntervalMs: rest.resyncIntervalMs, backstopGraceMs: rest.backstopGraceMs,
    reconcileDeadlineMs: options.reconcileDeadlineMs ?? DEFAULT_DEADLINE_MS,
    ...(rest.render ? { render: rest.render } : {}), ...(rest.sshEndpoint ? { sshEndpoint: rest.sshEndpoint } : {}),
  };
  const hosts = seams.hosts ?? pooledSshHostConnector({
    timeoutMs: sshTimeoutMs ?? 10_000,
    ...(maxSshSessions !== undefined ? { maxSessions: maxSshSessions } : {}),
    ...(options.render?.metadataBaseURL ? { metadataBaseURL: options.render.metadataBaseURL } : {}),
  });
  if (hosts instanceof SessionPool) metrics.sessionsKept = () => hosts.size;
  return {
    objects, secrets, kube: createKubeWriter(kc), cloud: providerCache(options, log), hosts,
    events: createEventRecorder(kc, log, options.identity), metrics, clock, log, settings,
    shared: new SharedReads({
      clock, backstopGraceMs: options.backstopGraceMs, ...(inventoryMaxAgeMs ? { floorMs: inventoryMaxAgeMs } : {}),
    }),
    loginKeys: new LoginKeys(), firewallGenerations: new FirewallGenerations(), metricsEndpoints: new AppliedMetricsEndpoints(),
  };
}

export async function startOperator(
  kc: k8s.KubeConfig, options: OperatorOptions, log: Logger, seams: OperatorSeams = {},
): Promise<RunningOperator> {
  const metrics = new OperatorMetrics();
  let running: { queue: WorkQueue; informers: Informers; resyncTimer: NodeJS.Timeout; services?: RunningServiceController } | undefined;
  const ctx = controllerContext(kc, options, seams, () => running?.informers, metrics, log);
  // A change of keepalived's state on a node reconciles its object at once.
  ctx.vrrpWatches = new VrrpWatches((key) => running?.queue.add(key), log.child({ component: 'vrrp-watch' }));
  let leading = false;

  // Starting and stopping run one after the other: a stop (the Lease lost, SIGTERM) that comes
  // while the informers are still listing waits for the start, then undoes all of it.
  let transition: Promise<void> = Promise.resolve();
  const inTurn = (step: () => Promise<void>) => (transition = transition.then(step, step));
  const startController = () => inTurn(async () => {
    leading = true;
    metrics.leader.set(1);
    running = await startWork(kc, options, ctx, log);
  });
  const stopController = () => inTurn(async () => {
    leading = false;
    metrics.leader.set(0);
    // The next leader exports the objects' series; stale ones here would count twice.
    metrics.forgetAllObjects();
    const stopping = running;
    running = undefined;
    if (!stopping) return;
    clearInterval(stopping.resyncTimer);
    stopping.informers.objects.stop();
    stopping.informers.secrets.stop();
    await Promise.all([stopping.queue.shutdown(), stopping.services?.stop()]);
    // Another replica may lead now: no session or watch of this one stays open.
    ctx.vrrpWatches?.stopAll();
    if (ctx.hosts instanceof SessionPool) ctx.hosts.closeAll();
  });

  const synced = () => (running?.informers.objects.synced() ?? false) && (running?.informers.secrets.synced() ?? false)
    && (running?.services?.synced() ?? true);
  const telemetry = options.metricsPort >= 0
    ? await startTelemetryServer(metrics, { live: () => true, ready: () => !leading || synced() }, options.metricsPort)
    : undefined;

  let elector: LeaderElector | undefined;
  let electorRun: Promise<void> | undefined;
  if (options.leaderElection) {
    elector = createLeaderElector(kc, {
      namespace: options.leaseNamespace, name: options.leaseName, identity: options.identity ?? `${hostname()}-${process.pid}`,
    }, log);
    electorRun = elector.run({
      onStarted: () => { void startController(); },
      // Losing the lease means another replica may act: abort the work in flight at once.
      onStopped: () => { void stopController(); },
    });
  } else {
    await startController();
  }

  return {
    ...(telemetry ? { metricsURL: telemetry.url } : {}),
    isLeader: () => leading,
    async stop() {
      await stopController();
      await elector?.stop();
      await electorRun;
      await telemetry?.close();
      log.info('stopped operator');
    },
  };
}

/** The informers, the queue and the resync timer of one leadership. */
async function startWork(kc: k8s.KubeConfig, options: OperatorOptions, ctx: ControllerContext, log: Logger) {
  const queue = new WorkQueue({
    concurrency: options.concurrency,
    deadlineMs: ctx.settings.reconcileDeadlineMs,
    onError: (key, err, retryInMs) => log.warn({ halb: key, err, retryInMs }, 'reconcile failed; retrying'),
  });
  const scope = options.namespace ? { namespace: options.namespace } : {};
  const objects = createHALoadBalancerInformer(kc, (key) => queue.add(key), log, scope);
  // A changed Secret enqueues every object in its namespace that names it.
  const secrets = createSecretInformer(kc, (secretKey) => {
    const [namespace = '', name = ''] = secretKey.split('/');
    for (const object of objects.objects().map(asHALoadBalancer)) {
      if (!object?.spec || (object.metadata.namespace ?? 'default') !== namespace) continue;
      if (referencedSecrets(withDefaults(object.spec)).has(name)) queue.add(`${namespace}/${object.metadata.name}`);
    }
  }, log, scope);
  const resync = resyncTracker(ctx, log);
  queue.start(async (key, signal) => {
    try {
      return await reconcile(ctx, key, signal);
    } finally {
      resync.reconciled(key);
    }
  });
  // The caches must be filled before a reconcile reads them: Secrets first, then the objects.
  await secrets.start();
  await objects.start();
  // External state (DigitalOcean, the hosts) changes without Kubernetes events: look again.
  const resyncTimer = setInterval(() => resync.begin(objects.keys(), (key) => queue.addAfter(key, 0)), options.resyncIntervalMs);
  resyncTimer.unref();
  log.info({ concurrency: options.concurrency, namespace: options.namespace ?? '(all)' }, 'started controller');
  // The second controller: Services of type LoadBalancer with the class, each served by a HALoadBalancer.
  const services = options.services?.serviceClass ? await startServiceController(kc, ctx, {
    defaults: options.services, concurrency: options.concurrency, deadlineMs: ctx.settings.reconcileDeadlineMs,
    resyncIntervalMs: options.resyncIntervalMs, ...scope,
  }, log.child({ controller: 'services' })) : undefined;
  return { queue, informers: { objects, secrets }, resyncTimer, ...(services ? { services } : {}) };
}

/** A resync is done when every key it enqueued has been reconciled once (for whatever reason);
 *  how long that takes says whether the interval holds at this many objects. */
function resyncTracker(ctx: ControllerContext, log: Logger) {
  let current: { startedAt: number; pending: Set<string> } | undefined;
  return {
    begin(keys: string[], enqueue: (key: string) => void) {
      if (current) log.warn({ pending: current.pending.size, objects: keys.length }, 'resync still running at the next interval');
      else if (keys.length) current = { startedAt: performance.now(), pending: new Set(keys) };
      for (const key of keys) enqueue(key);
    },
    reconciled(key: string) {
      if (!current?.pending.delete(key) || current.pending.size) return;
      const seconds = (performance.now() - current.startedAt) / 1000;
      ctx.metrics.resyncSeconds.observe(seconds);
      log.info({ durationMs: Math.round(seconds * 1000) }, 'completed resync');
      current = undefined;
    },
  };
}

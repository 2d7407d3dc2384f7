// The operator process: leader election gates the controller; the informer and a periodic
// resync only enqueue keys; workers reconcile keys with per-key backoff. SIGTERM stops the
// workers, then releases the lease so a standby takes over at once.
import * as k8s from '@kubernetes/client-node';
import { hostname } from 'node:os';
import type { Logger } from '../log.ts';
import { createEventRecorder } from './events.ts';
import { createHALoadBalancerInformer, createSecretInformer, objectKey, type KeyedInformer } from './informer.ts';
import { referencedSecrets } from '../api/derived.ts';
import type { HALoadBalancer } from '../api/types.ts';
import { createLeaderElector, type LeaderElector } from './leader.ts';
import { Reconciler, type ReconcilerOptions } from './reconciler.ts';
import { OperatorMetrics, startTelemetryServer } from './telemetry.ts';
import { WorkQueue } from './workqueue.ts';

export interface OperatorOptions extends ReconcilerOptions {
  /** Watch one namespace; unset: all. */
  namespace?: string;
  concurrency: number;
  /** Port of /healthz, /readyz, /metrics; 0 picks one, -1 serves none. */
  metricsPort: number;
  leaderElection: boolean;
  leaseNamespace: string;
  leaseName: string;
  identity?: string;
}

export interface RunningOperator {
  metricsURL?: string;
  isLeader(): boolean;
  stop(): Promise<void>;
}

export async function startOperator(kc: k8s.KubeConfig, options: OperatorOptions, log: Logger): Promise<RunningOperator> {
  const metrics = new OperatorMetrics();
  const events = createEventRecorder(kc, log, options.identity);
  const reconciler = new Reconciler({ kc, log, events, metrics, options });
  let queue: WorkQueue | undefined;
  let informer: KeyedInformer | undefined;
  let secrets: KeyedInformer | undefined;
  let resyncTimer: NodeJS.Timeout | undefined;
  let leading = false;

  const startController = async () => {
    leading = true;
    metrics.leader.set(1);
    queue = new WorkQueue({
      concurrency: options.concurrency,
      onError: (key, err, retryInMs) => log.warn({ halb: key, err, retryInMs }, 'reconcile failed; retrying'),
    });
    const q = queue;
    const scope = options.namespace ? { namespace: options.namespace } : {};
    informer = createHALoadBalancerInformer(kc, (key) => q.add(key), log, scope);
    const halbs = informer;
    // A changed Secret enqueues every object in its namespace that names it.
    secrets = createSecretInformer(kc, (secretKey) => {
      const [namespace, name = ''] = secretKey.split('/');
      for (const obj of halbs.objects() as unknown as HALoadBalancer[]) {
        if ((obj.metadata.namespace ?? 'default') === namespace && obj.spec && referencedSecrets(obj.spec).has(name)) q.add(objectKey(obj as never));
      }
    }, log, scope);
    // A resync is done when every key it enqueued has been reconciled once (for whatever
    // reason); how long that takes says whether the interval is kept at this many objects.
    let resync: { startedAt: number; pending: Set<string> } | undefined;
    const reconciled = (key: string) => {
      if (!resync?.pending.delete(key) || resync.pending.size) return;
      const seconds = (performance.now() - resync.startedAt) / 1000;
      metrics.resyncSeconds.observe(seconds);
      log.info({ durationMs: Math.round(seconds * 1000) }, 'completed resync');
      resync = undefined;
    };
    q.start(async (key) => {
      try {
        return await reconciler.reconcile(key);
      } finally {
        reconciled(key);
      }
    });
    await informer.start();
    await secrets.start();
    // External state (DigitalOcean, the hosts) changes without Kubernetes events: look again.
    resyncTimer = setInterval(() => {
      const keys = informer?.keys() ?? [];
      if (resync) log.warn({ pending: resync.pending.size, objects: keys.length }, 'resync still running at the next interval');
      else if (keys.length) resync = { startedAt: performance.now(), pending: new Set(keys) };
      for (const key of keys) q.addAfter(key, 0);
    }, options.resyncIntervalMs);
    resyncTimer.unref();
    log.info({ concurrency: options.concurrency, namespace: options.namespace ?? '(all)' }, 'started controller');
  };
  const stopController = async () => {
    leading = false;
    metrics.leader.set(0);
    clearInterval(resyncTimer);
    informer?.stop();
    secrets?.stop();
    await queue?.shutdown();
    informer = undefined;
    secrets = undefined;
    queue = undefined;
  };

  const telemetry = options.metricsPort >= 0
    ? await startTelemetryServer(metrics, { live: () => true, ready: () => !leading || ((informer?.synced() ?? false) && (secrets?.synced() ?? false)) }, options.metricsPort)
    : undefined;

  let elector: LeaderElector | undefined;
  let electorRun: Promise<void> | undefined;
  if (options.leaderElection) {
    elector = createLeaderElector(kc, { namespace: options.leaseNamespace, name: options.leaseName, identity: options.identity ?? `${hostname()}-${process.pid}` }, log);
    electorRun = elector.run({
      onStarted: () => { void startController(); },
      // Losing the lease means another replica may act: stop at once.
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

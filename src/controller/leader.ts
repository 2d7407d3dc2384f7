// Lease leader election in the manner of client-go: read the Lease; take it when it is free or
// expired, renew it while we hold it, with resourceVersion preconditions so that two replicas
// racing get one 409 and one win. Times are MicroTime (six fractional digits): the API server
// refuses client-node's default three. A graceful shutdown releases the lease so a standby
// takes over at once instead of after leaseDuration.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../log.ts';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewIntervalMs?: number;
  retryIntervalMs?: number;
}

export interface LeaderElector {
  /** Runs until stopped; calls onStarted when leadership is won and onStopped when it is lost. */
  run(callbacks: { onStarted: () => void; onStopped: () => void }): Promise<void>;
  isLeader(): boolean;
  /** Stops campaigning and releases the lease if held. */
  stop(): Promise<void>;
}

const microTime = (date: Date) => new k8s.V1MicroTime(date.toISOString());

function apiCode(err: unknown): number | undefined {
  return (err as { code?: number }).code;
}

interface LeaseTarget {
  api: k8s.CoordinationV1Api;
  options: LeaderElectionOptions;
  durationSeconds: number;
}

/** One attempt to acquire or renew; true when we hold the lease afterwards. */
async function acquireOrRenew({ api, options, durationSeconds }: LeaseTarget): Promise<boolean> {
  const now = new Date();
  let lease: k8s.V1Lease;
  try {
    lease = await api.readNamespacedLease({ name: options.name, namespace: options.namespace });
  } catch (err) {
    if (apiCode(err) !== 404) throw err;
    await api.createNamespacedLease({
      namespace: options.namespace,
      body: {
        metadata: { name: options.name, namespace: options.namespace },
        spec: {
          holderIdentity: options.identity, leaseDurationSeconds: durationSeconds, acquireTime: microTime(now), renewTime: microTime(now),
          leaseTransitions: 0,
        },
      },
    });
    return true;
  }
  const spec = lease.spec ?? {};
  const holder = spec.holderIdentity ?? '';
  const renewed = spec.renewTime ? new Date(String(spec.renewTime)).getTime() : 0;
  const expired = renewed + (spec.leaseDurationSeconds ?? durationSeconds) * 1000 < now.getTime();
  if (holder && holder !== options.identity && !expired) return false;
  const taking = holder !== options.identity;
  lease.spec = {
    ...spec,
    holderIdentity: options.identity,
    leaseDurationSeconds: durationSeconds,
    renewTime: microTime(now),
    ...(taking ? { acquireTime: microTime(now), leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
  };
  await api.replaceNamespacedLease({ name: options.name, namespace: options.namespace, body: lease });
  return true;
}

/** Gives the lease up: an empty holder lets a standby take over at once, as client-go's release does. */
async function release({ api, options }: LeaseTarget, log: Logger): Promise<void> {
  try {
    const lease = await api.readNamespacedLease({ name: options.name, namespace: options.namespace });
    if (lease.spec?.holderIdentity !== options.identity) return;
    lease.spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(new Date()) };
    await api.replaceNamespacedLease({ name: options.name, namespace: options.namespace, body: lease });
    log.info({ lease: `${options.namespace}/${options.name}` }, 'released leadership');
  } catch (err) {
    log.warn({ err }, 'lease release failed');
  }
}

export function createLeaderElector(kc: k8s.KubeConfig, options: LeaderElectionOptions, log: Logger): LeaderElector {
  const duration = options.leaseDurationSeconds ?? 15;
  const target: LeaseTarget = { api: kc.makeApiClient(k8s.CoordinationV1Api), options, durationSeconds: duration };
  const renewMs = options.renewIntervalMs ?? Math.floor((duration * 1000) / 3);
  const retryMs = options.retryIntervalMs ?? 2000;
  const lease = `${options.namespace}/${options.name}`;
  let leader = false;
  let stopped = false;
  /** The acquire/renew in flight, and whether the last one left us holding the lease. */
  let attempt: Promise<boolean> | undefined;
  let holdsLease = false;
  let wake: (() => void) | undefined;

  const sleep = (ms: number) => new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    wake = () => { clearTimeout(timer); resolve(); };
  });

  return {
    isLeader: () => leader,
    async run({ onStarted, onStopped }) {
      while (!stopped) {
        let holds = false;
        try {
          attempt = acquireOrRenew(target);
          holds = await attempt;
        } catch (err) {
          // 409: another replica won the race; anything else: try again on the next round.
          if (apiCode(err) !== 409) log.warn({ err }, 'lease update failed');
        }
        holdsLease = holds;
        // Stopped while the attempt was in flight: stop() releases; do not start again.
        if (stopped) break;
        if (holds !== leader) {
          leader = holds;
          if (holds) log.info({ lease, identity: options.identity }, 'acquired leadership');
          else log.warn({ lease }, 'lost leadership');
          (holds ? onStarted : onStopped)();
        }
        if (!stopped) await sleep(leader ? renewMs : retryMs);
      }
    },
    async stop() {
      stopped = true;
      wake?.();
      // An attempt in flight may still take or renew the lease: let it land, then release.
      await attempt?.then((holds) => { holdsLease = holds; }, () => undefined);
      if (!leader && !holdsLease) return;
      leader = false;
      holdsLease = false;
      await release(target, log);
    },
  };
}

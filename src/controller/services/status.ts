// A Service's status, as a pure function of what its load balancer shows: the reserved IP in
// status.loadBalancer.ingress once the HALoadBalancer has served it (ipMode Proxy when halb sends
// PROXY protocol or terminates TLS, so kube-proxy sends in-cluster clients through it too), and
// one condition saying whether the load balancer serves this Service's current spec, and if not,
// why, naming the field. Other controllers' conditions are kept as they are.
import type * as k8s from '@kubernetes/client-node';
import type { Problem } from '../../api/validate.ts';
import type { StoredHALoadBalancer } from '../../api/types.ts';

/** The Service condition this controller owns. */
export const LOAD_BALANCER_CONDITION = 'halb.dev/LoadBalancerReady';

export const serviceReasons = {
  ready: 'Ready',
  provisioning: 'Provisioning',
  invalid: 'InvalidService',
  noNodes: 'NoNodes',
  nameTaken: 'NameTaken',
} as const;

export interface Ingress { ip: string; ipMode: 'Proxy' | 'VIP' }

export interface ConditionOutcome { status: 'True' | 'False'; reason: string; message: string }

export interface ServiceStatus {
  ingress: Ingress[];
  conditions: k8s.V1Condition[];
}

/** Why the child is not serving yet, from its Ready condition; Ready when it serves its current spec. */
export function balancerOutcome(balancer: StoredHALoadBalancer): ConditionOutcome & { serving: boolean; stalled: boolean } {
  const conditions = balancer.status?.conditions ?? [];
  const ready = conditions.find((c) => c.type === 'Ready');
  const stalled = conditions.some((c) => c.type === 'Stalled' && c.status === 'True');
  const current = (balancer.status?.observedGeneration ?? 0) === (balancer.metadata.generation ?? 0);
  const name = `HALoadBalancer ${balancer.metadata.name}`;
  if (ready?.status === 'True' && current) {
    return { status: 'True', reason: serviceReasons.ready, message: `${name} serves on ${balancer.status?.floatingIP}`, serving: true,
      stalled };
  }
  const detail = current && ready ? `${ready.reason}: ${ready.message}` : 'applying the current spec';
  return { status: 'False', reason: stalled && ready ? ready.reason : serviceReasons.provisioning, message: `${name}: ${detail}`,
    serving: false, stalled };
}

export const problemsMessage = (problems: readonly Problem[]) => problems.map((p) => (p.path ? `${p.path}: ${p.message}`
  : p.message)).join('; ');

const sameTime = (a: unknown, b: unknown) => new Date(String(a)).getTime() === new Date(String(b)).getTime();
/** metav1.Time: RFC 3339 at second precision (the informer's typed objects carry Dates). */
const seconds = (time: unknown) => new Date(time instanceof Date ? time : String(time)).toISOString().replace(/\.\d+Z$/, 'Z');

/** The Service's new status: our condition set or moved (its transition time only when status flips). */
export function serviceStatus(service: k8s.V1Service, outcome: ConditionOutcome, ingress: Ingress[], now: string): ServiceStatus {
  const previous = service.status?.conditions ?? [];
  const before = previous.find((c) => c.type === LOAD_BALANCER_CONDITION);
  const transition = before?.lastTransitionTime && before.status === outcome.status ? seconds(before.lastTransitionTime) : now;
  const condition = {
    type: LOAD_BALANCER_CONDITION, status: outcome.status, reason: outcome.reason, message: outcome.message.slice(0, 32768),
    lastTransitionTime: transition as unknown as Date,
  } as k8s.V1Condition;
  return { ingress, conditions: [...previous.filter((c) => c.type !== LOAD_BALANCER_CONDITION), condition] };
}

/** Whether writing `next` would change anything in the Service's status. */
export function statusChanged(service: k8s.V1Service, next: ServiceStatus): boolean {
  const ingress = (service.status?.loadBalancer?.ingress ?? []).map((i) => ({ ip: i.ip, ipMode: i.ipMode ?? 'VIP' }));
  if (JSON.stringify(ingress) !== JSON.stringify(next.ingress)) return true;
  const previous = service.status?.conditions ?? [];
  if (previous.length !== next.conditions.length) return true;
  return next.conditions.some((c) => {
    const old = previous.find((p) => p.type === c.type);
    return !old || old.status !== c.status || old.reason !== c.reason || old.message !== c.message || !sameTime(old.lastTransitionTime,
      c.lastTransitionTime);
  });
}

/** The condition as it is now on the Service, if any. */
export function currentCondition(service: k8s.V1Service): k8s.V1Condition | undefined {
  return service.status?.conditions?.find((c) => c.type === LOAD_BALANCER_CONDITION);
}

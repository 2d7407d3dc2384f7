// metav1.Condition bookkeeping, as KEP-1623 and cert-manager do it: a list keyed by type, every
// condition carries the generation it was computed from, and lastTransitionTime moves only when
// the status flips, so an unchanged observation never rewrites status.
import type { Condition } from '../api/types.ts';

export type ConditionStatus = Condition['status'];

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  /** CamelCase, non-empty. */
  reason: string;
  message: string;
}

export const conditionTypes = {
  ready: 'Ready',
  reconciling: 'Reconciling',
  stalled: 'Stalled',
  dropletsReady: 'DropletsReady',
  floatingIPAssigned: 'FloatingIPAssigned',
  configApplied: 'ConfigApplied',
  failoverReady: 'FailoverReady',
  degraded: 'Degraded',
  sshExposed: 'SSHExposed',
  failoverTokenShared: 'FailoverTokenShared',
  certificateExpiring: 'CertificateExpiring',
} as const;

/** The conditions Ready summarises, in the order their reasons are reported. */
export const readinessConditions = [
  conditionTypes.dropletsReady,
  conditionTypes.floatingIPAssigned,
  conditionTypes.configApplied,
  conditionTypes.failoverReady,
] as const;

/** Returns the list with one condition set; the input is not modified. */
export function setCondition(conditions: readonly Condition[], input: ConditionInput, generation: number, now: string): Condition[] {
  const previous = conditions.find((c) => c.type === input.type);
  const next: Condition = {
    type: input.type,
    status: input.status,
    observedGeneration: generation,
    lastTransitionTime: previous && previous.status === input.status ? previous.lastTransitionTime : now,
    reason: input.reason,
    message: input.message,
  };
  return previous ? conditions.map((c) => (c === previous ? next : c)) : [...conditions, next];
}

/** Sets many conditions at once, in order. */
export function setConditions(
  conditions: readonly Condition[], inputs: readonly ConditionInput[], generation: number, now: string,
): Condition[] {
  return inputs.reduce<Condition[]>((acc, input) => setCondition(acc, input, generation, now), [...conditions]);
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** Ready is True when every readiness condition is True; otherwise it carries the first failure. */
export function summarizeReady(inputs: readonly ConditionInput[]): ConditionInput {
  for (const type of readinessConditions) {
    const c = inputs.find((i) => i.type === type);
    if (!c) return { type: conditionTypes.ready, status: 'Unknown', reason: 'Reconciling', message: `${type} not yet observed` };
    if (c.status !== 'True') {
      return { type: conditionTypes.ready, status: c.status === 'False' ? 'False' : 'Unknown', reason: c.reason, message: c.message };
    }
  }
  return { type: conditionTypes.ready, status: 'True', reason: 'Ready', message: 'the load balancer is serving' };
}

/** Reasons that stay until a person acts: the spec, a Secret, the DigitalOcean account, a host
 *  that refuses the files or presents another key, a firewall that would lock the operator out. */
export const STALLED_REASONS: ReadonlySet<string> = new Set([
  'InvalidSpec', 'SecretNotFound', 'CloudResourceNotFound', 'CloudRequestRefused', 'ValidationFailed', 'HostKeyChanged', 'WouldLockOut',
]);

/**
 * kstatus's two conditions, from Ready and the conditions it summarises (sigs.k8s.io/cli-utils
 * kstatus, which Flux and `kubectl wait` follow): Stalled=True while a person must act (the
 * object is Failed), else Reconciling=True until Ready is True or while a planned failover is
 * under way (InProgress), else both False (Current).
 */
export function kstatusConditions(inputs: readonly ConditionInput[], plannedFailover?: ConditionInput): [ConditionInput, ConditionInput] {
  const ready = inputs.find((c) => c.type === conditionTypes.ready);
  const stuck = inputs.find((c) => (c.type === conditionTypes.ready || (readinessConditions as readonly string[]).includes(c.type)) &&
    c.status === 'False' && STALLED_REASONS.has(c.reason));
  if (stuck) {
    return [
      { type: conditionTypes.reconciling, status: 'False', reason: stuck.reason, message: 'waiting for a person to act: see Stalled' },
      { type: conditionTypes.stalled, status: 'True', reason: stuck.reason, message: stuck.message },
    ];
  }
  const notStalled: ConditionInput = { type: conditionTypes.stalled, status: 'False', reason: 'AsExpected', message: '' };
  // A planned failover under way is progress too, while the load balancer serves (Argo CD: Progressing).
  if (plannedFailover?.status === 'True') {
    return [
      { type: conditionTypes.reconciling, status: 'True', reason: plannedFailover.reason, message: plannedFailover.message },
      notStalled,
    ];
  }
  if (ready?.status === 'True') return [{ type: conditionTypes.reconciling, status: 'False', reason: 'Ready', message: '' }, notStalled];
  return [
    { type: conditionTypes.reconciling, status: 'True', reason: ready?.reason ?? 'Reconciling', message: ready?.message ?? '' },
    notStalled,
  ];
}

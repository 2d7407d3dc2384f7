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
export function setConditions(conditions: readonly Condition[], inputs: readonly ConditionInput[], generation: number, now: string): Condition[] {
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
    if (c.status !== 'True') return { type: conditionTypes.ready, status: c.status === 'False' ? 'False' : 'Unknown', reason: c.reason, message: c.message };
  }
  return { type: conditionTypes.ready, status: 'True', reason: 'Ready', message: 'the load balancer is serving' };
}

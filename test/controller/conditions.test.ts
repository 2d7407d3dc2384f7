import { describe, expect, it } from 'vitest';
import { setCondition, setConditions, summarizeReady, type ConditionInput } from '../../src/controller/conditions.ts';
import type { Condition } from '../../src/api/types.ts';

const t0 = '2026-11-24T10:00:00Z';
const t1 = '2026-11-24T10:05:00Z';
const ready = (status: Condition['status'], reason = 'X'): ConditionInput => ({ type: 'Ready', status, reason, message: '' });

describe('setCondition', () => {
  it('adds a condition with the generation and the time', () => {
    expect(setCondition([], ready('False'), 3, t0)).toEqual([
      { type: 'Ready', status: 'False', observedGeneration: 3, lastTransitionTime: t0, reason: 'X', message: '' },
    ]);
  });

  it.each([
    ['keeps lastTransitionTime when the status stays', 'False', 'Other', t0],
    ['moves lastTransitionTime when the status flips', 'True', 'X', t1],
  ] as const)('%s', (_name, status, reason, expected) => {
    const before = setCondition([], ready('False'), 1, t0);
    const after = setCondition(before, ready(status, reason), 2, t1);
    expect(after).toHaveLength(1);
    expect(after[0]!.lastTransitionTime).toBe(expected);
    expect(after[0]!.observedGeneration).toBe(2);
    expect(after[0]!.reason).toBe(reason);
  });

  it('leaves the input list untouched and other types in place', () => {
    const before = setConditions([], [ready('True'), { type: 'Degraded', status: 'False', reason: 'AsExpected', message: '' }], 1, t0);
    const frozen = structuredClone(before);
    const after = setCondition(before, { type: 'Degraded', status: 'True', reason: 'NodeFault', message: 'web-1 FAULT' }, 1, t1);
    expect(before).toEqual(frozen);
    expect(after.map((c) => c.type)).toEqual(['Ready', 'Degraded']);
  });
});

describe('summarizeReady', () => {
  const all = (overrides: Partial<Record<string, ConditionInput['status']>>): ConditionInput[] =>
    ['DropletsReady', 'FloatingIPAssigned', 'ConfigApplied', 'FailoverReady'].map((type) => ({
      type, status: overrides[type] ?? 'True', reason: `${type}Reason`, message: `${type} message`,
    }));

  it.each([
    ['all True', all({}), 'True', 'Ready'],
    ['the first failing one gives its reason', all({ ConfigApplied: 'False', FailoverReady: 'False' }), 'False', 'ConfigAppliedReason'],
    ['Unknown stays Unknown', all({ DropletsReady: 'Unknown' }), 'Unknown', 'DropletsReadyReason'],
    ['a missing condition is Unknown', all({}).slice(1), 'Unknown', 'Reconciling'],
  ] as const)('%s', (_name, inputs, status, reason) => {
    const r = summarizeReady(inputs);
    expect(r.status).toBe(status);
    expect(r.reason).toBe(reason);
  });
});

// The ConfigApplied Event says how a change went live: through HAProxy's runtime API (no
// reload), or by a reload and why it could not go through the runtime API.
import { describe, expect, it } from 'vitest';
import { howApplied } from '../../src/controller/act.ts';

describe('how a change went live', () => {
  it.each([
    ['runtime commands, no reload', ['runtime haproxy 3 commands'], undefined, 'runtime haproxy 3 commands'],
    ['a reload the planner chose', ['reloaded haproxy'], 'global changed', 'reloaded haproxy: global changed'],
    ['a runtime command HAProxy refused', ['runtime-failed del server web/s2: busy', 'reloaded haproxy'], undefined,
      'reloaded haproxy: runtime-failed del server web/s2: busy'],
    ['a first start says nothing more', ['started haproxy', 'started keepalived'],
      'the host\'s files are not the last this session applied', undefined],
    ['a reload without a known reason', ['reloaded haproxy'], undefined, undefined],
  ])('%s', (_what, steps, reason, expected) => {
    expect(howApplied(steps, reason)).toBe(expected);
  });
});

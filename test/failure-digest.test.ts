// The digest printed at the end of a failed run: distinct warnings with their counts, in the
// order of their last time, and the last info records.
import { describe, expect, it } from 'vitest';
import { failureDigest, objectStateLines, recordLine } from './failure-digest.ts';

const at = (second: number) => Date.UTC(2026, 11, 6, 14, 0, second);

describe('failure digest', () => {
  it('writes a record as time, level, message, context and the error\'s first line', () => {
    expect(recordLine({ level: 40, time: at(5), msg: 'reconcile failed; retrying', halb: 'default/web', retryInMs: 2000,
      err: { message: 'connect ECONNREFUSED 10.0.0.1:22\n    at stack' }, hostLink: { nested: true } }))
      .toBe('14:00:05.000 WARN "reconcile failed; retrying" halb=default/web retryInMs=2000 err="connect ECONNREFUSED 10.0.0.1:22"');
  });

  it('folds a run of the same info record into one line with its count, and lists the objects\' conditions', () => {
    const records = [1, 2, 3].map((s) => ({ level: 30, time: at(s), msg: 'completed resync', component: 'operator' }));
    const state = objectStateLines(JSON.stringify({ items: [{ metadata: { namespace: 'default', name: 'basic' }, status: {
      conditions: [{ type: 'Ready', status: 'False', reason: 'HostUnreachable', message: 'ssh to 203.0.113.15 failed' }],
      nodes: [{ name: 'basic-0', vrrpState: 'MASTER' }] } }] }));
    expect(failureDigest('t', [], records, state).split('\n').slice(2)).toEqual([
      '  last 1 info records (a run of the same one folded, with its count):',
      '    14:00:03.000 info "completed resync" component=operator ×3',
      '  objects:',
      '    default/basic: Ready=False/HostUnreachable (ssh to 203.0.113.15 failed); nodes basic-0:MASTER',
      '',
    ]);
  });

  it('counts repeated warnings once each, orders them by their last time, and keeps the last info records', () => {
    const records = [
      { level: 40, time: at(1), msg: 'informer stopped; restarting', component: 'operator', err: { message: 'socket hang up' } },
      { level: 40, time: at(2), msg: 'reconcile failed; retrying', err: { message: 'ssh: timed out' } },
      { level: 30, time: at(3), msg: 'served request' },
      { level: 40, time: at(4), msg: 'informer stopped; restarting', component: 'operator', err: { message: 'socket hang up' } },
      { level: 30, time: at(5), msg: 'created droplet', droplet: 'web-0' },
    ];
    const digest = failureDigest('services.test.ts > gets an IP', ['timed out after 180000 ms\nstack'], records).split('\n');
    expect(digest).toEqual([
      '=== failed: services.test.ts > gets an IP',
      '  error: timed out after 180000 ms',
      '  warnings (2 distinct, last 25, each with its count):',
      '    14:00:02.000 WARN "reconcile failed; retrying" err="ssh: timed out" ×1',
      '    14:00:04.000 WARN "informer stopped; restarting" component=operator err="socket hang up" ×2',
      '  last 1 info records (a run of the same one folded, with its count):',
      '    14:00:05.000 info "created droplet" droplet=web-0',
      '',
    ]);
  });
});

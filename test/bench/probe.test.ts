// The benchmarks' outage arithmetic: from the first failed send to the first success after the
// last failure, and when that was (the failover benchmark times status from it).
import { describe, expect, it } from 'vitest';
import { outageMs } from '../../bench/lib/probe.ts';

const at = (sentMs: number, ok: boolean) => ({ sentMs, ok, detail: '' });

describe('outageMs', () => {
  it.each([
    ['nothing failed', [at(0, true), at(20, true)], { outageMs: 0, failed: 0, sent: 2 }],
    ['one gap, served again', [at(0, true), at(20, false), at(40, false), at(60, true), at(80, true)],
      { outageMs: 40, failed: 2, sent: 5, endMs: 60 }],
    ['two gaps count as one outage to the last recovery', [at(0, false), at(20, true), at(40, false), at(60, true)],
      { outageMs: 60, failed: 2, sent: 4, endMs: 60 }],
    ['never served again: up to the last failure', [at(0, true), at(20, false), at(40, false)],
      { outageMs: 20, failed: 2, sent: 3, endMs: 40 }],
    ['samples out of order', [at(60, true), at(20, false), at(0, true)], { outageMs: 40, failed: 1, sent: 3, endMs: 60 }],
  ])('%s', (_name, samples, expected) => {
    expect(outageMs(samples)).toEqual(expected);
  });
});

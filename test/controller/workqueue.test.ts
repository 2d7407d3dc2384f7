import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/backoff.ts';
import { WorkQueue } from '../../src/controller/workqueue.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('backoffDelay', () => {
  it.each([
    [-1, 0], [0, 100], [1, 200], [2, 400], [9, 1000], [999, 1000],
  ])('retry %i waits %i ms (base 100, cap 1000, no jitter)', (attempt, expected) => {
    expect(backoffDelay(attempt, { baseMs: 100, maxMs: 1000 })).toBe(expected);
  });
});

describe('WorkQueue', () => {
  it('de-duplicates a key added many times while it waits', async () => {
    const q = new WorkQueue({ concurrency: 1 });
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) { q.add('default/a'); q.add('default/b'); }
    q.start(async (key) => { seen.push(key); });
    await q.idle();
    expect(seen).toEqual(['default/a', 'default/b']);
  });

  it('never handles one key in two workers at once, and handles it again when it changed meanwhile', async () => {
    const q = new WorkQueue({ concurrency: 4 });
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    q.start(async () => {
      running++; runs++;
      maxRunning = Math.max(maxRunning, running);
      if (runs === 1) { q.add('ns/x'); q.add('ns/x'); } // events arrive during the reconcile
      await sleep(20);
      running--;
    });
    q.add('ns/x');
    await sleep(5);
    await q.idle();
    expect(maxRunning).toBe(1);
    expect(runs).toBe(2);
  });

  it('bounds concurrency across keys', async () => {
    const q = new WorkQueue({ concurrency: 2 });
    let running = 0;
    let maxRunning = 0;
    q.start(async () => { running++; maxRunning = Math.max(maxRunning, running); await sleep(10); running--; });
    for (const k of ['a', 'b', 'c', 'd', 'e']) q.add(k);
    await q.idle();
    expect(maxRunning).toBe(2);
  });

  it('retries a failing key with growing delays and forgets the failures after a success', async () => {
    const errors: number[] = [];
    const q = new WorkQueue({ concurrency: 1, baseDelayMs: 10, maxDelayMs: 1000, onError: (_k, _e, delay) => errors.push(delay) });
    let calls = 0;
    const done = new Promise<void>((resolve) => {
      q.start(async () => {
        calls++;
        if (calls <= 3) throw new Error('transient');
        resolve();
      });
    });
    q.add('k');
    await done;
    await q.idle();
    expect(errors).toEqual([10, 20, 40]);
    expect(q.failuresOf('k')).toBe(0);
  });

  it('requeues after the delay a reconcile asks for, keeping the earliest deadline', async () => {
    const q = new WorkQueue();
    const times: number[] = [];
    const start = Date.now();
    q.start(async () => {
      times.push(Date.now() - start);
      return times.length === 1 ? { requeueAfterMs: 60 } : undefined;
    });
    q.add('k');
    await sleep(10);
    q.addAfter('k', 10_000); // a later deadline must not postpone the earlier one
    await sleep(150);
    expect(times.length).toBe(2);
    expect(times[1]!).toBeGreaterThanOrEqual(55);
    await q.shutdown();
  });

  it('shutdown cancels pending timers and waits for the key in hand', async () => {
    const q = new WorkQueue();
    let finished = false;
    let calls = 0;
    q.start(async () => { calls++; await sleep(30); finished = true; return { requeueAfterMs: 5 }; });
    q.add('k');
    await sleep(5);
    await q.shutdown();
    expect(finished).toBe(true);
    await sleep(30);
    expect(calls).toBe(1);
  });
});

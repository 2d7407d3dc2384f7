// A keyed work queue in the manner of client-go's: events only enqueue `namespace/name`, a key
// sits in the queue at most once, one worker handles a key at a time (a key added while it is
// being handled is handled again afterwards), failures back off per key, and timed requeues
// keep the earliest deadline. Each handling gets an AbortSignal: it aborts at the deadline
// and at shutdown (the leader Lease lost), so no work outlives the right to do it.
import { backoffDelay } from '../backoff.ts';

export interface ReconcileResult {
  /** Look again after this long: waiting on something external, not an error. */
  requeueAfterMs?: number;
}

export type Reconciler = (key: string, signal: AbortSignal) => Promise<ReconcileResult | void>;

export interface WorkQueueOptions {
  /** Keys handled at once; each key by one worker at a time. */
  concurrency?: number;
  /** First retry delay after a failure; doubles per consecutive failure of the key. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Called when a reconcile throws; the key is retried with backoff. */
  onError?: (key: string, error: unknown, retryInMs: number) => void;
  /** The longest one handling may take: its signal aborts then (default: none). */
  deadlineMs?: number;
}

export class DeadlineExceededError extends Error {
  constructor(key: string, ms: number) {
    super(`reconcile of ${key} took longer than ${ms} ms; cancelled`);
    this.name = 'DeadlineExceededError';
  }
}

export class ShutdownError extends Error {
  constructor() {
    super('the work queue shut down');
    this.name = 'AbortError';
  }
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  /** Keys being handled, each with the controller that cancels it. */
  private readonly active = new Map<string, AbortController>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private readonly idleWaiters: (() => void)[] = [];
  private reconciler: Reconciler | undefined;
  private stopped = false;
  private readonly concurrency: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly onError: WorkQueueOptions['onError'];
  private readonly deadlineMs: number | undefined;

  constructor(options: WorkQueueOptions = {}) {
    this.concurrency = options.concurrency ?? 4;
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 5 * 60_000;
    this.onError = options.onError;
    this.deadlineMs = options.deadlineMs;
  }

  start(reconciler: Reconciler): void {
    this.reconciler = reconciler;
    this.pump();
  }

  /** Enqueues a key now. A no-op when it is already waiting. */
  add(key: string): void {
    if (this.stopped) return;
    const pending = this.timers.get(key);
    if (pending) {
      clearTimeout(pending.timer);
      this.timers.delete(key);
    }
    if (this.active.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
  }

  /** Enqueues a key after a delay; an earlier pending deadline wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + delayMs;
    const pending = this.timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Retries a failed key with its per-key backoff; returns the delay chosen. */
  addRateLimited(key: string): number {
    const failures = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, failures);
    const delay = backoffDelay(failures - 1, { baseMs: this.baseDelayMs, maxMs: this.maxDelayMs });
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears a key's failure count after a success. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  get length(): number {
    return this.queue.length;
  }

  /** Resolves when nothing is queued or being handled (timed requeues may still be pending). */
  idle(): Promise<void> {
    if (!this.queue.length && !this.active.size) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops taking keys, cancels timers, aborts the keys being handled and waits for them. */
  async shutdown(): Promise<void> {
    this.stopped = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.queue.length = 0;
    this.queued.clear();
    for (const controller of this.active.values()) controller.abort(new ShutdownError());
    await this.idle();
  }

  private pump(): void {
    const reconciler = this.reconciler;
    if (!reconciler) return;
    while (!this.stopped && this.active.size < this.concurrency && this.queue.length) {
      const key = this.queue.shift()!;
      this.queued.delete(key);
      const controller = new AbortController();
      this.active.set(key, controller);
      void this.handle(reconciler, key, controller);
    }
    if (!this.queue.length && !this.active.size) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private async handle(reconciler: Reconciler, key: string, controller: AbortController): Promise<void> {
    const deadline = this.deadlineMs === undefined
      ? undefined
      : setTimeout(() => controller.abort(new DeadlineExceededError(key, this.deadlineMs!)), this.deadlineMs);
    try {
      const result = await reconciler(key, controller.signal);
      this.forget(key);
      if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (error) {
      const delay = this.stopped ? 0 : this.addRateLimited(key);
      this.onError?.(key, error, delay);
    } finally {
      clearTimeout(deadline);
      this.active.delete(key);
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}

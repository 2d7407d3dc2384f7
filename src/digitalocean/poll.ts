// The one polling loop: asks again with a growing interval until an answer comes, the time
// runs out or the signal aborts. The operator never polls inside a reconcile (a DigitalOcean
// action in progress is a timed requeue); scripts, tests and the sandbox that must wait for an
// action use this.
import { DigitalOceanError } from './errors.ts';

export interface WaitSettings {
  /** First poll interval; it doubles up to maxIntervalMs. */
  intervalMs: number;
  maxIntervalMs: number;
  timeoutMs: number;
}

export const DEFAULT_WAIT: WaitSettings = { intervalMs: 2000, maxIntervalMs: 15_000, timeoutMs: 600_000 };

/**
 * Calls `attempt` until it returns a value other than undefined. Gives up after
 * `wait.timeoutMs` with a transient DigitalOceanError saying what it waited for.
 */
export async function poll<T>(what: string, attempt: () => Promise<T | undefined>, wait: WaitSettings,
  sleep: (ms: number) => Promise<void>, request = { method: 'GET', path: '' }): Promise<T> {
  const deadline = Date.now() + wait.timeoutMs;
  let interval = wait.intervalMs;
  for (;;) {
    const value = await attempt();
    if (value !== undefined) return value;
    if (Date.now() + interval > deadline) {
      throw new DigitalOceanError('transient', `${what}: still waiting after ${wait.timeoutMs} ms`, request);
    }
    await sleep(interval);
    interval = Math.min(wait.maxIntervalMs, interval * 2);
  }
}

// Exponential backoff, one definition for every retry in halb: the work queue's per-key
// retries, the informers' restarts and the DigitalOcean client's request retries.

export interface BackoffSettings {
  baseMs: number;
  maxMs: number;
}

/**
 * The delay before retry number `attempt` (0 for the first retry): base·2^attempt, capped at
 * max, scaled by `random()` in [0, 1]. The DigitalOcean client passes Math.random (full
 * jitter, so many clients do not retry in step); the work queue passes none (a fixed delay).
 */
export function backoffDelay(attempt: number, settings: BackoffSettings, random: () => number = () => 1): number {
  if (attempt < 0) return 0;
  const ceiling = Math.min(settings.maxMs, settings.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(random() * ceiling);
}

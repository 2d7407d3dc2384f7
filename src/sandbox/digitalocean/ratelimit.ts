// DigitalOcean's rate limit: per token, over rolling windows (5,000 per hour and 250 per
// minute). Every accepted request counts against each window for the window's length after it
// was made; `ratelimit-reset` is when the oldest counted request leaves the binding window.

export interface RateLimitWindow {
  limit: number;
  windowMs: number;
}

export const DIGITALOCEAN_RATE_LIMITS: readonly RateLimitWindow[] = [
  { limit: 5000, windowMs: 3_600_000 },
  { limit: 250, windowMs: 60_000 },
];

export interface RateLimitDecision {
  allowed: boolean;
  headers: { 'ratelimit-limit': string; 'ratelimit-remaining': string; 'ratelimit-reset': string };
  /** Seconds to wait, set on a 429 caused by a window other than the first (the burst limit). */
  retryAfterSeconds?: number;
}

/** One token's rolling windows. The first window is the one reported in `ratelimit-limit`. */
export class RollingRateLimiter {
  private readonly windows: readonly RateLimitWindow[];
  /** Acceptance times, oldest first, pruned to the longest window. */
  private readonly accepted: number[] = [];
  private readonly longest: number;

  constructor(windows: readonly RateLimitWindow[]) {
    if (windows.length === 0) throw new Error('rate limit needs at least one window');
    for (const w of windows) {
      if (!(w.limit >= 1) || !(w.windowMs >= 1)) throw new Error(`invalid rate-limit window ${JSON.stringify(w)}`);
    }
    this.windows = windows;
    this.longest = Math.max(...windows.map((w) => w.windowMs));
  }

  /** Counts the request if every window has room, and returns the headers to send. */
  take(now: number): RateLimitDecision {
    this.prune(now);
    let binding = this.windows[0]!;
    let bindingIndex = 0;
    let bindingRemaining = Infinity;
    for (const [i, w] of this.windows.entries()) {
      const remaining = w.limit - this.countSince(now - w.windowMs);
      if (remaining < bindingRemaining) {
        bindingRemaining = remaining;
        binding = w;
        bindingIndex = i;
      }
    }
    const allowed = bindingRemaining > 0;
    if (allowed) {
      this.accepted.push(now);
      bindingRemaining -= 1;
    }
    const oldest = this.oldestSince(now - binding.windowMs);
    const resetMs = oldest === undefined ? now + binding.windowMs : oldest + binding.windowMs;
    const decision: RateLimitDecision = {
      allowed,
      headers: {
        'ratelimit-limit': String(this.windows[0]!.limit),
        'ratelimit-remaining': String(Math.max(0, bindingRemaining)),
        'ratelimit-reset': String(Math.ceil(resetMs / 1000)),
      },
    };
    if (!allowed && bindingIndex > 0) decision.retryAfterSeconds = Math.max(1, Math.ceil((resetMs - now) / 1000));
    return decision;
  }

  /** The most requests accepted within any span of `windowMs` (for tests and benchmarks). */
  static maxInAnyWindow(times: readonly number[], windowMs: number): number {
    let max = 0;
    let start = 0;
    for (let end = 0; end < times.length; end++) {
      while (times[end]! - times[start]! >= windowMs) start++;
      max = Math.max(max, end - start + 1);
    }
    return max;
  }

  private prune(now: number): void {
    let drop = 0;
    while (drop < this.accepted.length && this.accepted[drop]! <= now - this.longest) drop++;
    if (drop > 0) this.accepted.splice(0, drop);
  }

  private countSince(since: number): number {
    let n = 0;
    for (let i = this.accepted.length - 1; i >= 0 && this.accepted[i]! > since; i--) n++;
    return n;
  }

  private oldestSince(since: number): number | undefined {
    return this.accepted.find((t) => t > since);
  }
}
